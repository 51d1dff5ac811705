"""The MLflow pyfunc wrapper: feature DataFrame in, class probabilities out.

Logged as "model from code" (pyfunc_entry.py), so MLflow stores this source file rather than
a cloudpickle of an object; the trained parts live in the `model_dir` artifact (see
predictor.py: skops for sklearn, .keras for Keras, JSON for the rest).
"""

from __future__ import annotations

import mlflow.pyfunc

from vee_tasks.training.predictor import MODEL_DIR_ARTIFACT, ResolutionPredictor


class VeeResolutionModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        self.predictor = ResolutionPredictor.load(context.artifacts[MODEL_DIR_ARTIFACT])

    def predict(self, context, model_input, params=None):
        return self.predictor.predict_proba(model_input)
