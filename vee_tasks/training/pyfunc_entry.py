"""Model-from-code entry point that MLflow copies into each logged model."""

from mlflow.models import set_model

from vee_tasks.training.pyfunc_model import VeeResolutionModel

set_model(VeeResolutionModel())
