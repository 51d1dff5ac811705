"""Holdout metrics, per-class auto-apply thresholds, and the two plots MLflow keeps.

The confidence policy: for each class, the lowest confidence threshold such that, on the
calibration slice (the holdout then measures it out of sample), the exceptions predicted as
that class with at least that confidence are right
with precision >= target (default 0.98) and number at least `min_support`. A class that
cannot get there gets a threshold above 1: it is never auto-applied.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vee_tasks.config import RESOLUTION_CODES

NEVER = 2.0  # threshold of a class that is never auto-applied


def _macro_f1(y: np.ndarray, pred: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Macro-F1 over `labels` (the classes of the whole holdout), from one confusion matrix."""
    matrix = np.bincount(y * k + pred, minlength=k * k).reshape(k, k).astype("float64")
    tp = np.diag(matrix)
    denominator = matrix.sum(axis=0) + matrix.sum(axis=1)  # predicted + actual = 2tp + fp + fn
    f1 = np.divide(2 * tp, denominator, out=np.zeros(k), where=denominator > 0)
    return float(f1[labels].mean()) if len(labels) else 0.0


def paired_gain_se(y: np.ndarray, pred_new: np.ndarray, pred_old: np.ndarray,
                   resamples: int = 200, seed: int = 0) -> float:
    """Standard error of the macro-F1 gain of `pred_new` over `pred_old` on the same rows, by
    a paired bootstrap (both models on each resample). A fixed seed: a rerun decides alike."""
    y, pred_new, pred_old = (np.asarray(a, dtype="int64") for a in (y, pred_new, pred_old))
    n, k = len(y), len(RESOLUTION_CODES)
    if n < 2:
        return 0.0
    labels = np.unique(y)
    rng = np.random.default_rng(seed)
    gains = np.empty(resamples)
    for i in range(resamples):
        rows = rng.integers(0, n, n)
        gains[i] = (_macro_f1(y[rows], pred_new[rows], labels, k)
                    - _macro_f1(y[rows], pred_old[rows], labels, k))
    return float(gains.std(ddof=1))


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, bins: int = 15) -> float:
    """Top-label ECE with equal-width confidence bins."""
    if len(y) == 0:
        return float("nan")
    conf = proba.max(axis=1)
    correct = (proba.argmax(axis=1) == y).astype("float64")
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def choose_thresholds(
    y: np.ndarray, proba: np.ndarray, target: float, min_support: int
) -> dict[str, float]:
    """Per code, the lowest confidence at which these rows' predictions of that code reach
    `target` precision, measured on at least `min_support` of them; NEVER when none does.
    Training passes the calibration slice, so that the holdout measures the thresholds out
    of sample. A precision needs rows that could be wrong: with fewer than `min_support` rows
    of other codes (a slice of one class, outside probe 2026-11-27: ESTIMATE auto-applied
    from 0.405, 67 % right at night) it measures nothing, and the code gets NEVER."""
    pred = proba.argmax(axis=1)
    conf = proba.max(axis=1)
    out: dict[str, float] = {}
    for k, code in enumerate(RESOLUTION_CODES):
        m = pred == k
        if m.sum() < min_support or int((y != k).sum()) < min_support:
            out[code] = NEVER
            continue
        order = np.argsort(-conf[m], kind="stable")
        c = conf[m][order]
        right = (y[m][order] == k).astype("float64")
        precision = np.cumsum(right) / np.arange(1, len(right) + 1)
        # Candidate cut after position i: only where the next confidence is strictly lower
        # (ties cannot be split by a threshold).
        ok = (precision >= target) & (np.arange(1, len(c) + 1) >= min_support)
        ok &= np.append(c[1:] < c[:-1], True)
        if ok.any():
            i = int(np.flatnonzero(ok).max())
            out[code] = float(c[i])
        else:
            out[code] = NEVER
    return out


def auto_apply_mask(proba: np.ndarray, thresholds: dict[str, float]) -> np.ndarray:
    pred = proba.argmax(axis=1)
    conf = proba.max(axis=1)
    limits = np.array([thresholds.get(c, NEVER) for c in RESOLUTION_CODES])
    return conf >= limits[pred]


def evaluate(
    y: np.ndarray,
    proba: np.ndarray,
    thresholds: dict[str, float] | None = None,
    target: float = 0.98,
    min_support: int = 30,
) -> tuple[dict[str, float], dict[str, float]]:
    """(metrics, thresholds); thresholds are chosen here unless given."""
    from sklearn.metrics import accuracy_score, f1_score, log_loss, precision_recall_fscore_support

    labels = list(range(len(RESOLUTION_CODES)))
    pred = proba.argmax(axis=1)
    present = sorted(set(y.tolist()))
    metrics: dict[str, float] = {
        "n_holdout": float(len(y)),
        "accuracy": float(accuracy_score(y, pred)),
        # macro over the classes that occur in the holdout (absent ones have no recall)
        "macro_f1": float(f1_score(y, pred, labels=present, average="macro", zero_division=0)),
        "log_loss": float(log_loss(y, np.clip(proba, 1e-12, 1.0), labels=labels)),
        "ece": expected_calibration_error(y, proba),
    }
    precision, recall, _, support = precision_recall_fscore_support(
        y, pred, labels=labels, zero_division=0
    )
    for k, code in enumerate(RESOLUTION_CODES):
        metrics[f"precision_{code}"] = float(precision[k])
        metrics[f"recall_{code}"] = float(recall[k])
        metrics[f"support_{code}"] = float(support[k])
    if thresholds is None:
        thresholds = choose_thresholds(y, proba, target, min_support)
    auto = auto_apply_mask(proba, thresholds)
    metrics["auto_apply_share"] = float(auto.mean()) if len(y) else 0.0
    if auto.any():  # none applied: no precision to report (1.0 read as "always right")
        metrics["auto_apply_precision"] = float((pred[auto] == y[auto]).mean())
    return metrics, thresholds


def wilson_upper(right: int, total: int, z: float = 1.645) -> float:
    """One-sided 95 % upper confidence bound of a proportion (Wilson score)."""
    if total == 0:
        return 1.0
    p = right / total
    centre = p + z * z / (2 * total)
    spread = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return float(min(1.0, (centre + spread) / (1 + z * z / total)))


def withdraw_missed_thresholds(y: np.ndarray, proba: np.ndarray, thresholds: dict[str, float],
                               target: float) -> tuple[dict[str, float], list[str]]:
    """Thresholds (chosen on the calibration slice) whose auto-applied holdout rows show, with
    95 % confidence, a precision below `target`: set to NEVER, with why. Only ever takes
    auto-apply away, and only on evidence: each code is judged on its own holdout rows."""
    pred = proba.argmax(axis=1)
    conf = proba.max(axis=1)
    kept, withdrawn = dict(thresholds), []
    for k, code in enumerate(RESOLUTION_CODES):
        limit = thresholds.get(code, NEVER)
        if limit > 1.0:
            continue
        applied = (pred == k) & (conf >= limit)
        total, right = int(applied.sum()), int((y[applied] == k).sum())
        if total and wilson_upper(right, total) < target:
            kept[code] = NEVER
            withdrawn.append(f"{code} (holdout {right}/{total} right at >= {limit:.3f}, "
                             f"below {target:g})")
    return kept, withdrawn


def plot_confusion(y: np.ndarray, proba: np.ndarray, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import confusion_matrix

    labels = list(range(len(RESOLUTION_CODES)))
    cm = confusion_matrix(y, proba.argmax(axis=1), labels=labels)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(labels, RESOLUTION_CODES, rotation=30, ha="right")
    ax.set_yticks(labels, RESOLUTION_CODES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("analyst")
    for i in labels:
        for j in labels:
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_reliability(y: np.ndarray, proba: np.ndarray, path: Path, title: str, bins: int = 15) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    conf = proba.max(axis=1)
    correct = proba.argmax(axis=1) == y
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges[1:-1]), 0, bins - 1)
    xs, ys, ns = [], [], []
    for b in range(bins):
        m = which == b
        if m.any():
            xs.append(conf[m].mean())
            ys.append(correct[m].mean())
            ns.append(int(m.sum()))
    fig, ax = plt.subplots(figsize=(5.5, 5.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect")
    ax.plot(xs, ys, "o-", label="model")
    for x, yv, n in zip(xs, ys, ns):
        ax.annotate(str(n), (x, yv), fontsize=7, xytext=(3, -9), textcoords="offset points")
    ax.set_xlabel("confidence (top class)")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left")
    ax.set_title(f"{title}  ECE={expected_calibration_error(y, proba):.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def metrics_table(rows: dict[str, dict[str, float]]) -> str:
    """A fixed-width table of the main metrics, one line per candidate."""
    cols = ["macro_f1", "accuracy", "log_loss", "ece", "auto_apply_share", "auto_apply_precision"]
    head = f"{'candidate':<12}" + "".join(f"{c:>21}" for c in cols)
    lines = [head]
    for name, m in rows.items():
        cells = [f"{m[c]:>21.4f}" if c in m else f"{'-':>21}" for c in cols]  # -: none applied
        lines.append(f"{name:<12}" + "".join(cells))
    return "\n".join(lines)

