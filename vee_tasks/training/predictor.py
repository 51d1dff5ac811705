"""The model as stored in the registry: a directory with meta.json and one model file.

Layout (format 1):
  meta.json      kind (sklearn | keras | baseline), feature schema fingerprint, classes,
                 category vocabularies, numeric scaling, calibration (temperature and
                 per-class offsets: softmax(logits / T + b)), per-class thresholds
  sklearn/       MLflow sklearn model of a HistGradientBoostingClassifier, saved with
                 serialization_format="skops" (no arbitrary pickle; types allowlisted)
  model.keras    Keras network (native .keras format)
A baseline keeps its per-rule table in meta.json. `ResolutionPredictor` turns the feature
frame of vee_tasks.features into calibrated probabilities over RESOLUTION_CODES; it is used
by training (evaluation), by the MLflow pyfunc wrapper, and by vee_tasks.registry.
TensorFlow and skops are imported only when a model of that kind is loaded.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from vee_tasks.config import RESOLUTION_CODES
from vee_tasks.features import (
    CATEGORICAL_COLUMNS,
    CATEGORY_VALUES,
    NONE,
    NUMERIC_COLUMNS,
    UNKNOWN,
    feature_schema_fingerprint,
)

FORMAT_VERSION = 1
META_FILE = "meta.json"
# The pyfunc artifact (a directory) holding a version's trained parts: written by
# training/register.py, read by training/pyfunc_model.py and registry._download_predictor.
MODEL_DIR_ARTIFACT = "model_dir"
SKLEARN_DIR = "sklearn"  # an MLflow sklearn model saved with serialization_format="skops"
SKOPS_FILE = "model.skops"
KERAS_FILE = "model.keras"
SKLEARN_PREDICT_BLOCK = 2048  # rows per predict call on the fallback path (hgb_predict_proba)
# scikit-learn versions whose private HistGradientBoosting attributes hgb_predict_proba uses
# (the lock file pins 1.9.1); any other takes the public path
_SKLEARN_PRIVATE_API = ("1.9.",)
# Types a stored sklearn model may contain beyond skops' defaults; anything else is refused
# at save and at load time. Exact names (plus the gradient-boosting internals' own modules):
# a broad prefix such as "builtins." would let partial(exec, ...) through. HGB keeps its
# loss link as functools.partial of sklearn.utils.validation.check_array; skops lists a
# partial's wrapped function separately, so it is checked against this list too.
_TRUSTED_EXACT = (
    "functools.partial",
    "sklearn.utils.validation.check_array",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
)
_TRUSTED_PREFIXES = (
    "sklearn.ensemble._hist_gradient_boosting.",
    "sklearn._loss.",
)


@contextmanager
def _quiet_skops_type_lookup():
    """skops finds a function's module by reading the attribute from every loaded module
    (also when skops.io is first imported); under Airflow that touches ~1,000 deprecated
    aliases, each warning into the task log. Only warnings raised from that lookup are
    silenced."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=r"skops\.io\._utils")
        yield


def _is_trusted(type_name: str) -> bool:
    """In the exact list, or a class defined (not merely imported) in a module under the
    prefixes. skops finds a type as getattr(import_module(module), name), so a bare prefix
    test also passed what those modules import (FunctionTransformer, Parallel, dataclass:
    a crafted file loaded a FunctionTransformer, outside review 2026-11-28) and names of
    attributes of attributes."""
    if type_name in _TRUSTED_EXACT:
        return True
    if not type_name.startswith(_TRUSTED_PREFIXES):
        return False
    module_name, _, attr = type_name.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ImportError:  # "module.Class.method": not a module
        return False
    found = getattr(module, attr, None)
    return (isinstance(found, type) and found.__module__ == module_name
            and found.__qualname__ == attr)


class ModelFormatError(RuntimeError):
    """The stored model is corrupt or does not fit this code (features, classes, format)."""


def _sklearn_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"scikit-learn=={version('scikit-learn')}", f"skops=={version('skops')}"]


def category_vocab(col: str) -> list[str]:
    """Index 0 is the fill value (NONE or UNKNOWN), then the contract's values, then UNKNOWN."""
    head = NONE if col.startswith("last_resolution") else UNKNOWN
    values = [head, *CATEGORY_VALUES[col]]
    if UNKNOWN not in values:
        values.append(UNKNOWN)
    return values


def encode_categoricals(frame: pd.DataFrame) -> np.ndarray:
    """Integer codes per categorical column; unseen values map to UNKNOWN."""
    out = np.zeros((len(frame), len(CATEGORICAL_COLUMNS)), dtype=np.int32)
    for j, col in enumerate(CATEGORICAL_COLUMNS):
        vocab = category_vocab(col)
        index = {v: i for i, v in enumerate(vocab)}
        unknown = index[UNKNOWN]
        out[:, j] = [index.get(v, unknown) for v in frame[col].astype(object).tolist()]
    return out


def numeric_matrix(frame: pd.DataFrame) -> np.ndarray:
    values = frame[list(NUMERIC_COLUMNS)].to_numpy(dtype="float64", na_value=np.nan)
    return np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)


def tree_matrix(frame: pd.DataFrame) -> np.ndarray:
    """The gradient-boosted trees' input: the categoricals' codes, then the numeric columns,
    float64, non-finite values as 0; built column by column in one Fortran-ordered matrix,
    the layout the trees walk (hgb_predict_proba). Stacking the parts row-major and
    transposing after copied a scoring chunk twice: 0.21 s per 25,000 rows, against 0.07 s
    for this build."""
    n_cat = len(CATEGORICAL_COLUMNS)
    x = np.empty((len(frame), n_cat + len(NUMERIC_COLUMNS)), dtype=np.float64, order="F")
    x[:, :n_cat] = encode_categoricals(frame)
    x[:, n_cat:] = frame[list(NUMERIC_COLUMNS)].to_numpy(dtype="float64", na_value=np.nan)
    np.nan_to_num(x, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return x


def squash(values: np.ndarray) -> np.ndarray:
    """Signed log: heavy-tailed kWh and counts on one scale for the network."""
    return np.sign(values) * np.log1p(np.abs(values))


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def hgb_predict_proba(model, x: np.ndarray) -> np.ndarray:
    """`model.predict_proba(x)` of a fitted HistGradientBoostingClassifier, the same numbers,
    faster: its input checks and category encoding once for all rows, then every tree walks
    the rows with the matrix laid out column by column, so that a tree's few split features
    are read sequentially. Measured on the bench's model (300 trees, 50,000 rows of 141
    features): 0.50-0.85 s against 1.0-1.6 s in blocks of 2,048 rows (each block paid the
    encoding, ~12 ms, and a row-major matrix, 2.9-3.2 s in one call, reads a cache line per
    row and split). These are scikit-learn's private attributes, used only on the versions
    in _SKLEARN_PRIVATE_API (the lock file pins one); on another version, or should they
    be missing, the public call in row blocks gives the same result. tests/test_training.py
    compares the two."""
    import sklearn

    if not sklearn.__version__.startswith(_SKLEARN_PRIVATE_API):
        return _hgb_predict_proba_in_blocks(model, x)
    try:
        from sklearn.utils._openmp_helpers import _openmp_effective_n_threads
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(model)
        # the checks and encoding predict_proba makes (the input's width among them)
        encoded = model._preprocess_X(x, reset=False)
        columns = np.asfortranarray(encoded, dtype=np.float64)
        baseline = model._baseline_prediction
        raw = np.zeros((len(columns), model.n_trees_per_iteration_), dtype=baseline.dtype,
                       order="F")
        raw += baseline
        model._predict_iterations(columns, model._predictors, raw, False,
                                  _openmp_effective_n_threads())
        return model._loss.predict_proba(raw)
    except (AttributeError, ImportError, TypeError):  # the private API moved
        return _hgb_predict_proba_in_blocks(model, x)


def _hgb_predict_proba_in_blocks(model, x: np.ndarray) -> np.ndarray:
    """The public call, in row blocks that stay in cache while every tree walks them (one
    call over 200,000 rows was 2.4x slower)."""
    return np.vstack(
        [model.predict_proba(x[i : i + SKLEARN_PREDICT_BLOCK])
         for i in range(0, len(x), SKLEARN_PREDICT_BLOCK)]
    )


def check_columns(frame: pd.DataFrame) -> None:
    missing = [c for c in (*CATEGORICAL_COLUMNS, *NUMERIC_COLUMNS) if c not in frame.columns]
    if missing:
        raise ModelFormatError(f"feature frame lacks {len(missing)} column(s): {missing[:5]}")


@dataclass
class ResolutionPredictor:
    """Calibrated class probabilities from a feature frame; see module docstring."""

    kind: str
    meta: dict
    model: object = None
    classes: tuple[str, ...] = RESOLUTION_CODES
    thresholds: dict = field(default_factory=dict)

    @property
    def temperature(self) -> float:
        return float(self.meta.get("temperature", 1.0))

    # --- raw scores (logits over RESOLUTION_CODES) -------------------------------------
    def logits(self, frame: pd.DataFrame) -> np.ndarray:
        check_columns(frame)
        n = len(frame)
        k = len(RESOLUTION_CODES)
        if n == 0:
            return np.zeros((0, k))
        if self.kind == "baseline":
            table = self.meta["baseline"]["table"]
            prior = np.asarray(self.meta["baseline"]["prior"], dtype="float64")
            rows = [table.get(rule, prior) for rule in frame["rule_code"].astype(object)]
            return np.log(np.clip(np.asarray(rows, dtype="float64"), 1e-9, 1.0))
        if self.kind == "sklearn":
            proba = hgb_predict_proba(self.model, tree_matrix(frame))
            full = np.full((n, k), 1e-9)
            for j, label in enumerate(self.model.classes_):
                full[:, int(label)] = np.maximum(proba[:, j], 1e-9)
            return np.log(full)
        if self.kind == "keras":
            inputs = self.keras_inputs(frame, self.meta)
            return np.asarray(self.model.predict(inputs, verbose=0, batch_size=4096), dtype="float64")
        raise ModelFormatError(f"unknown model kind {self.kind!r}")

    @staticmethod
    def keras_inputs(frame: pd.DataFrame, meta: dict) -> dict:
        cats = encode_categoricals(frame)
        num = squash(numeric_matrix(frame))
        center = np.asarray(meta["numeric_center"], dtype="float64")
        scale = np.asarray(meta["numeric_scale"], dtype="float64")
        num = np.clip((num - center) / scale, -6.0, 6.0).astype("float32")
        inputs = {f"cat_{c}": cats[:, j : j + 1] for j, c in enumerate(CATEGORICAL_COLUMNS)}
        inputs["numeric"] = num
        return inputs

    def predict_proba(self, frame: pd.DataFrame) -> pd.DataFrame:
        """DataFrame indexed like `frame`, columns RESOLUTION_CODES, rows summing to 1."""
        bias = np.asarray(self.meta.get("class_bias") or [0.0] * len(RESOLUTION_CODES))
        proba = softmax(self.logits(frame) / self.temperature + bias)
        return pd.DataFrame(proba, index=frame.index, columns=list(RESOLUTION_CODES))

    # --- storage -------------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        meta = dict(self.meta)
        meta.update(
            format_version=FORMAT_VERSION,
            kind=self.kind,
            feature_schema=feature_schema_fingerprint(),
            classes=list(RESOLUTION_CODES),
            categorical=list(CATEGORICAL_COLUMNS),
            numeric=list(NUMERIC_COLUMNS),
            thresholds={c: float(self.thresholds.get(c, 2.0)) for c in RESOLUTION_CODES},
        )
        if self.kind == "sklearn":
            with _quiet_skops_type_lookup():
                import mlflow.sklearn
                import skops.io as sio

                trusted = sio.get_untrusted_types(data=sio.dumps(self.model))
                refused = [t for t in trusted if not _is_trusted(t)]
                if refused:
                    raise ModelFormatError(f"sklearn model holds types outside the allowlist: {refused}")
                mlflow.sklearn.save_model(
                    self.model,
                    str(directory / SKLEARN_DIR),
                    serialization_format="skops",
                    skops_trusted_types=trusted,
                    pip_requirements=_sklearn_requirements(),
                )
        elif self.kind == "keras":
            self.model.save(directory / KERAS_FILE)
        (directory / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return directory

    @classmethod
    def load(cls, directory: Path) -> "ResolutionPredictor":
        directory = Path(directory)
        try:
            meta = json.loads((directory / META_FILE).read_text())
        except (OSError, ValueError) as exc:
            raise ModelFormatError(f"no readable {META_FILE} in {directory}: {exc}") from None
        if meta.get("format_version") != FORMAT_VERSION:
            raise ModelFormatError(
                f"model format {meta.get('format_version')!r}, this code reads {FORMAT_VERSION}"
            )
        if meta.get("feature_schema") != feature_schema_fingerprint():
            raise ModelFormatError(
                "model was trained on another feature set "
                f"({meta.get('feature_schema')} != {feature_schema_fingerprint()}); retrain it"
            )
        if tuple(meta.get("classes", ())) != RESOLUTION_CODES:
            raise ModelFormatError(f"model classes {meta.get('classes')} != {RESOLUTION_CODES}")
        kind = meta.get("kind")
        model = None
        try:
            if kind == "sklearn":
                path = directory / SKLEARN_DIR / SKOPS_FILE
                with _quiet_skops_type_lookup():
                    import skops.io as sio

                    untrusted = sio.get_untrusted_types(file=path)
                    refused = [t for t in untrusted if not _is_trusted(t)]
                    if refused:
                        raise ModelFormatError(f"stored sklearn model holds untrusted types {refused}")
                    # skops directly, trusting exactly the types checked above: not
                    # mlflow.sklearn.load_model, which follows the stored MLmodel (its trusted
                    # types and code paths are the artifact writer's word, not ours)
                    model = sio.load(path, trusted=untrusted)
            elif kind == "keras":
                # TensorFlow's C++ start-up lines go to stderr, which Airflow logs as ERROR:
                # 2.21 prints the oneDNN notice whatever TF_CPP_MIN_LOG_LEVEL says, so the
                # oneDNN graph rewrites are off for scoring (a small MLP: same speed, results
                # equal but for round-off)
                os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
                os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
                import keras

                # safe_mode (the default, said aloud): no Lambda layers' stored bytecode
                model = keras.saving.load_model(directory / KERAS_FILE, compile=False, safe_mode=True)
            elif kind != "baseline":
                raise ModelFormatError(f"unknown model kind {kind!r}")
        except ModelFormatError:
            raise
        except Exception as exc:  # noqa: BLE001 - any load failure means a corrupt model
            raise ModelFormatError(f"cannot load the {kind} model in {directory}: {exc}") from exc
        thresholds = {c: float(v) for c, v in meta.get("thresholds", {}).items()}
        return cls(kind=kind, meta=meta, model=model, thresholds=thresholds)
