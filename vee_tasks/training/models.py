"""The candidates: per-rule majority baseline, gradient boosting (sklearn), a Keras network.

Each fits on the training slice, is calibrated on the time-ordered calibration slice that
follows it (temperature scaling, then per-class offsets: softmax(logits / T + b), six
numbers stored in meta.json, no pickled calibrator), and comes back as a
ResolutionPredictor (predictor.py).
"""

from __future__ import annotations

import logging
import os

import numpy as np
import pandas as pd

from vee_tasks.config import RESOLUTION_CODES, RULE_CODES
from vee_tasks.features import CATEGORICAL_COLUMNS, NUMERIC_COLUMNS
from vee_tasks.training.predictor import (
    ResolutionPredictor,
    category_vocab,
    numeric_matrix,
    softmax,
    squash,
    tree_matrix,
)

log = logging.getLogger(__name__)

CANDIDATES = ("sklearn", "keras")
BASELINE = "baseline"


def label_index(labels: pd.Series) -> np.ndarray:
    index = {c: i for i, c in enumerate(RESOLUTION_CODES)}
    return labels.map(index).to_numpy(dtype="int64")


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The T in [0.05, 20] minimising the negative log-likelihood of softmax(logits / T)."""
    from scipy.optimize import minimize_scalar

    if len(y) == 0:
        return 1.0

    def nll(log_t: float) -> float:
        p = softmax(logits / np.exp(log_t))
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))

    best = minimize_scalar(nll, bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(best.x))


def fit_class_bias(logits: np.ndarray, y: np.ndarray, temperature: float,
                   l2: float = 0.01) -> np.ndarray:
    """Per-class offsets added to logits / T, fitted by penalised log-likelihood: they absorb
    a shift of the class mix between the training weeks and the recent ones (seasons,
    campaigns) that one temperature cannot."""
    from scipy.optimize import minimize

    k = logits.shape[1]
    if len(y) < 20 * k:
        return np.zeros(k)
    z = logits / temperature

    def loss(b: np.ndarray) -> float:
        p = softmax(z + b)
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0)))
                     + l2 * np.sum(b**2))

    return minimize(loss, np.zeros(k), method="L-BFGS-B").x


def calibrate(predictor: ResolutionPredictor, calib: pd.DataFrame, y_calib: np.ndarray) -> None:
    """Temperature, then per-class offsets, both on the time-ordered calibration slice."""
    predictor.meta["temperature"] = 1.0
    predictor.meta["class_bias"] = [0.0] * len(RESOLUTION_CODES)
    if len(calib):
        logits = predictor.logits(calib)
        t = fit_temperature(logits, y_calib)
        predictor.meta["temperature"] = t
        predictor.meta["class_bias"] = fit_class_bias(logits, y_calib, t).tolist()
    log.info("%s temperature %.3f, class offsets %s", predictor.kind,
             predictor.meta["temperature"], np.round(predictor.meta["class_bias"], 3).tolist())


def fit_baseline(train: pd.DataFrame, y: np.ndarray) -> ResolutionPredictor:
    """Majority resolution per rule code (what an analyst team's rule of thumb would do).

    Stored as one-hot rows so that its argmax is the majority; its probabilities are not
    meant to be calibrated (it is a reference, not a candidate for the registry).
    """
    k = len(RESOLUTION_CODES)
    prior_counts = np.bincount(y, minlength=k).astype("float64")
    prior = np.eye(k)[int(prior_counts.argmax())] if prior_counts.sum() else np.full(k, 1 / k)
    table = {}
    rules = train["rule_code"].astype(object).to_numpy()
    for rule in RULE_CODES:
        mask = rules == rule
        if mask.any():
            counts = np.bincount(y[mask], minlength=k)
            table[rule] = np.eye(k)[int(counts.argmax())].tolist()
    meta = {"baseline": {"table": table, "prior": prior.tolist()}, "temperature": 1.0}
    return ResolutionPredictor(kind=BASELINE, meta=meta)


def fit_sklearn(
    train: pd.DataFrame, y: np.ndarray, *, max_iter: int = 200, seed: int = 0
) -> ResolutionPredictor:
    from sklearn.ensemble import HistGradientBoostingClassifier

    x = tree_matrix(train)
    n_cat = len(CATEGORICAL_COLUMNS)
    mask = np.zeros(x.shape[1], dtype=bool)
    mask[:n_cat] = True
    present = np.bincount(y)
    # scikit-learn draws the early-stopping validation set stratified by class, which fails
    # ("the least populated class in y has only 1 member") when a code has one label (a
    # code new in the MDMS, a sample cut by VEE_MAX_TRAINING_ROWS; review 2026-11-29)
    use_early_stopping = bool(len(y) >= 2000 and present[present > 0].min() >= 2)
    if len(y) >= 2000 and not use_early_stopping:
        log.warning("sklearn: a resolution code has a single training label: no early stopping "
                    "(its validation split is drawn per code), %d iterations", max_iter)
    # 63 bins and early stopping after 10 flat rounds: as good on the holdout as 255 bins and
    # a slower rate, several times faster on a busy 2-core machine.
    params = {"learning_rate": 0.1, "max_iter": max_iter, "max_leaf_nodes": 31,
              "min_samples_leaf": 20, "l2_regularization": 1.0, "max_bins": 63}
    model = HistGradientBoostingClassifier(
        **params,
        categorical_features=mask,
        early_stopping=use_early_stopping,
        validation_fraction=0.15 if use_early_stopping else None,
        n_iter_no_change=10,
        random_state=seed,
    )
    model.fit(x, y)
    log.info("sklearn: %d iterations on %d rows", model.n_iter_, len(y))
    meta = {"params": {**params, "n_iter": int(model.n_iter_)}}
    return ResolutionPredictor(kind="sklearn", meta=meta, model=model)


def fit_keras(
    train: pd.DataFrame, y: np.ndarray, *, epochs: int = 40, seed: int = 0
) -> ResolutionPredictor:
    """A small MLP over embeddings of the categorical columns and scaled numeric columns."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    keras.utils.set_random_seed(seed)
    num = squash(numeric_matrix(train))
    center = num.mean(axis=0)
    scale = num.std(axis=0)
    scale[scale < 1e-6] = 1.0
    meta = {"numeric_center": center.tolist(), "numeric_scale": scale.tolist()}
    inputs = ResolutionPredictor.keras_inputs(train, meta)

    layers = keras.layers
    cat_inputs, embedded = [], []
    for col in CATEGORICAL_COLUMNS:
        size = len(category_vocab(col))
        inp = keras.Input(shape=(1,), dtype="int32", name=f"cat_{col}")
        emb = layers.Embedding(size, min(4, size), name=f"emb_{col}")(inp)
        cat_inputs.append(inp)
        embedded.append(layers.Flatten(name=f"flat_{col}")(emb))
    num_input = keras.Input(shape=(len(NUMERIC_COLUMNS),), dtype="float32", name="numeric")
    h = layers.Concatenate(name="concat")([*embedded, num_input])
    h = layers.Dense(128, activation="relu", name="dense_1")(h)
    h = layers.Dropout(0.15, name="dropout_1")(h)
    h = layers.Dense(64, activation="relu", name="dense_2")(h)
    logits = layers.Dense(len(RESOLUTION_CODES), name="logits")(h)
    model = keras.Model([*cat_inputs, num_input], logits, name="vee_resolution_mlp")
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=2e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # Early stopping on the last 10% of the (time-ordered) training slice.
    n_val = max(1, int(len(y) * 0.1)) if len(y) >= 200 else 0
    callbacks = []
    fit_kwargs = {}
    if n_val:
        split = len(y) - n_val
        fit_inputs = {k: v[:split] for k, v in inputs.items()}
        fit_kwargs["validation_data"] = ({k: v[split:] for k, v in inputs.items()}, y[split:])
        callbacks.append(
            keras.callbacks.EarlyStopping(patience=5, restore_best_weights=True, monitor="val_loss")
        )
        y_fit = y[:split]
    else:
        fit_inputs, y_fit = inputs, y
    history = model.fit(
        fit_inputs, y_fit, epochs=epochs, batch_size=256, verbose=0, callbacks=callbacks,
        shuffle=True, **fit_kwargs,
    )
    meta["params"] = {"epochs": epochs, "epochs_run": len(history.history["loss"]),
                      "batch_size": 256, "learning_rate": 2e-3, "hidden": [128, 64],
                      "dropout": 0.15, "embedding_dim": 4}
    log.info("keras: %d epochs on %d rows", meta["params"]["epochs_run"], len(y_fit))
    return ResolutionPredictor(kind="keras", meta=meta, model=model)
