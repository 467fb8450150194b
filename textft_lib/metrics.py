"""Classification metrics, calibration and error analysis, written out in NumPy (lesson 07).

* **metrics**: ``accuracy``, ``precision_recall_f1``, ``confusion_matrix``,
  ``classification_report``, ``format_report``;
* **calibration**: ``reliability_bins``, ``expected_calibration_error``, ``softmax``,
  ``fit_temperature``, and the plots ``plot_confusion_matrix`` / ``plot_reliability``;
* **error analysis**: ``most_confident_mistakes``;
* ``as_labels``: the label check every function here (and the baselines) applies;
  ``class_ids``: the stricter check for the labels a model is *fit* on (exactly 0..n-1);
  ``check_int`` / ``check_number``: the checks of numeric arguments (sizes, rates).

Example::

    from textft_lib import metrics
    metrics.accuracy([0, 1, 1], [0, 1, 0])                                  # 2/3
    metrics.classification_report([0, 1, 1], [0, 1, 0], ["neg", "pos"])["macro_f1"]
"""

from __future__ import annotations

import math
import warnings
from typing import Any, Sequence

import numpy as np

from textft_lib.checks import as_label_names, check_int, check_number, string_list  # noqa: F401  (re-exported)


# --------------------------------------------------------------------------- metrics


def as_labels(y: Any, name: str) -> np.ndarray:
    """``y`` (list, array or tensor) as an ``(N,)`` int64 array of class ids, or a clear error.

    Raises ``ValueError`` for a non-1-D, ragged or empty ``y`` or a negative id, and
    ``TypeError`` for a lone string or ids that are not whole numbers (``2.0`` is accepted,
    ``0.9``, ``"1"``, ``True`` and ``inf`` are not). ``name`` is the argument's name, used in
    the messages.

    Example: ``as_labels([1.0, 0.0], "labels")`` is ``array([1, 0])``.
    """
    if isinstance(y, (str, bytes)):
        raise TypeError(f"{name} must be a sequence of class ids, not one string ({y[:20]!r})")
    if isinstance(y, dict) or isinstance(y, (set, frozenset)):
        raise TypeError(f"{name} must be a sequence of class ids (a list, array or tensor), "
                        f"got a {type(y).__name__}, which has no order")
    try:
        arr = np.asarray(y.detach().cpu() if hasattr(y, "detach") else y)
    except (ValueError, TypeError):     # ragged nesting, or an object numpy cannot read
        raise ValueError(f"{name} must be a 1-D sequence of class ids; got a {type(y).__name__} "
                         "that is not one (nested lists of different lengths?)") from None
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of class ids, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: at least one example is needed")
    if not np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.bool_:
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            hint = (": map word labels to ids first (data.load_labelled does it)"
                    if arr.dtype.kind in "USO" else "")
            raise TypeError(f"{name} must hold integer class ids, got dtype {arr.dtype}{hint}")
    if arr.min() < 0:
        raise ValueError(f"{name} holds a negative class id ({arr.min()})")
    return arr.astype(np.int64)


def class_ids(y: Any, name: str, n_classes: int | None = None) -> tuple[np.ndarray, int]:
    """The labels a model is fit on, checked to be the class ids ``0 .. n-1``: ``(labels, n)``.

    Why: the course numbers classes 0..n-1 everywhere (``label_names[i]`` names class i; a
    confusion matrix has row i for it; a head of n outputs gives ids 0..n-1), and a fitted
    model predicts the very ids it was trained on. A model fit on labels 1/2 predicts 1/2,
    and scored against test labels 0/1 it gets an accuracy of 0.0 with no error anywhere.
    ``accuracy`` cannot tell that mistake from a bad model (a model may rightly predict a
    class a small test set lacks), so the check belongs where the ids enter the model.

    Without ``n_classes`` every id from 0 to the largest must occur (``n`` = how many
    there are); with it, ids must lie in ``0 .. n_classes - 1`` (a class may be absent).
    Raises ``ValueError`` otherwise, plus ``as_labels``' errors.

    Example: ``class_ids([0, 1, 1], "train_labels")`` gives ``(array([0, 1, 1]), 2)``;
    ``class_ids([1, 2], "train_labels")`` raises ``ValueError``.
    """
    arr = as_labels(y, name)
    present = np.unique(arr)
    if n_classes is not None:
        n_classes = check_int(n_classes, "n_classes", minimum=1)
        if present[-1] >= n_classes:
            raise ValueError(f"{name} hold class ids {present[:10].tolist()}, but there are {n_classes} classes "
                             f"(ids 0..{n_classes - 1})")
        return arr, n_classes
    n = int(present[-1]) + 1
    if len(present) != n:
        missing = sorted(set(range(n)) - set(present.tolist()))[:10]
        raise ValueError(f"{name} hold class ids {present[:10].tolist()}, but class ids must be 0..n-1 with "
                         f"every class present (missing: {missing}): map them to 0..{len(present) - 1} "
                         "(data.load_labelled does it), or pass n_classes when a class is really absent")
    return arr, n


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = as_labels(y_true, "y_true"), as_labels(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} labels but y_pred has {p.size}")
    return t, p


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of predictions equal to the labels. ``y_true``, ``y_pred``: ``(N,)`` class ids.

    Example: ``accuracy([0, 1, 1], [0, 1, 0]) == 2/3``
    """
    t, p = _pair(y_true, y_pred)
    return float(np.mean(t == p))


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int | None = None) -> np.ndarray:
    """``(C, C)`` counts: row = true class, column = predicted class.

    Example: ``confusion_matrix([0, 1, 1], [0, 1, 0])`` is ``[[1, 0], [1, 1]]``.
    """
    t, p = _pair(y_true, y_pred)
    c = int(max(t.max(), p.max()) + 1) if n_classes is None else check_int(n_classes, "n_classes", minimum=1)
    if max(t.max(), p.max()) >= c:
        raise ValueError(f"a class id is {max(t.max(), p.max())} but n_classes is {c}")
    cm = np.zeros((c, c), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def precision_recall_f1(y_true: Any, y_pred: Any, n_classes: int | None = None) -> dict[str, np.ndarray]:
    """Per-class precision, recall, F1 and support, each an array of shape ``(C,)``.

    precision_c = TP / (TP + FP): of the examples *predicted* c, the fraction that are c.
    recall_c = TP / (TP + FN): of the examples that *are* c, the fraction found.
    F1 = their harmonic mean. A ratio with a zero denominator is defined as 0 (as sklearn does).
    """
    cm = confusion_matrix(y_true, y_pred, n_classes).astype(float)
    tp = np.diag(cm)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(actual > 0, tp / actual, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": actual.astype(np.int64)}


def classification_report(y_true: Any, y_pred: Any, label_names: Sequence[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support and their macro averages, as a dict.

    Example::

        r = classification_report([0, 1, 1], [0, 1, 0], ["neg", "pos"])
        r["accuracy"], r["macro_f1"], r["per_class"]["pos"]["recall"]

    ``label_names`` is a list of one name per class (or a dict ``{id: name}``); an id at or
    beyond their number raises ``ValueError``.
    """
    label_names = as_label_names(label_names)
    n = len(label_names)
    prf = precision_recall_f1(y_true, y_pred, n)
    per_class = {name: {k: (int(v[i]) if k == "support" else float(v[i])) for k, v in prf.items()}
                 for i, name in enumerate(label_names)}
    return {
        "accuracy": accuracy(y_true, y_pred),
        "macro_precision": float(prf["precision"].mean()),
        "macro_recall": float(prf["recall"].mean()),
        "macro_f1": float(prf["f1"].mean()),
        "per_class": per_class,
        "n": int(len(as_labels(y_true, "y_true"))),
    }


def format_report(report: dict[str, Any]) -> str:
    """A ``classification_report`` as a small text table."""
    lines = [f"{'class':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    for name, m in report["per_class"].items():
        lines.append(f"{name:<12}{m['precision']:>10.3f}{m['recall']:>10.3f}{m['f1']:>10.3f}{m['support']:>10d}")
    lines.append(f"{'macro avg':<12}{report['macro_precision']:>10.3f}{report['macro_recall']:>10.3f}"
                 f"{report['macro_f1']:>10.3f}{report['n']:>10d}")
    lines.append(f"accuracy {report['accuracy']:.3f} on {report['n']} examples")
    return "\n".join(lines)


# --------------------------------------------------------------------------- calibration


def _as_probs(probs: Any) -> np.ndarray:
    arr = np.asarray(probs.detach().float().cpu() if hasattr(probs, "detach") else probs, dtype=float)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"probs must have shape (N, C) with C >= 2 classes, got {arr.shape}")
    if arr.shape[0] == 0:
        raise ValueError("probs is empty: calibration needs at least one example")
    if np.any(arr < -1e-6) or not np.allclose(arr.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("each row of probs must be a probability distribution (non-negative, sums to 1); "
                         "did you pass logits? apply softmax first")
    return arr


def reliability_bins(probs: Any, labels: Any, n_bins: int = 10) -> dict[str, np.ndarray]:
    """Group predictions by confidence (the top probability) into ``n_bins`` equal-width bins.

    ``probs``: ``(N, C)``, ``labels``: ``(N,)``. Returns arrays of shape ``(n_bins,)``:
    ``edges`` (n_bins + 1 values), ``confidence`` (mean top probability per bin),
    ``accuracy`` (fraction correct per bin) and ``count``. Empty bins hold NaN.
    A perfectly calibrated model has accuracy == confidence in every bin.
    """
    p = _as_probs(probs)
    y = as_labels(labels, "labels")
    if len(y) != len(p):
        raise ValueError(f"probs has {len(p)} rows but labels has {len(y)} entries")
    if y.max() >= p.shape[1]:
        raise ValueError(f"labels must be class ids 0..{p.shape[1] - 1} (probs has {p.shape[1]} columns), "
                         f"got {int(y.max())}")
    n_bins = check_int(n_bins, "n_bins", minimum=1)
    conf, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(float)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # bin i holds (edges[i], edges[i+1]]; a confidence of exactly 0 goes to the first bin
    idx = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(idx, minlength=n_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(idx, weights=conf, minlength=n_bins) / count
        mean_acc = np.bincount(idx, weights=correct, minlength=n_bins) / count
    return {"edges": edges, "confidence": mean_conf, "accuracy": mean_acc, "count": count}


def expected_calibration_error(probs: Any, labels: Any, n_bins: int = 10) -> float:
    """ECE = sum over bins of (bin size / N) * |accuracy(bin) - confidence(bin)|.

    0 means calibrated; a model that says "90 % sure" and is right 70 % of the time there
    adds 0.2 times the share of such predictions. Example::

        expected_calibration_error([[0.9, 0.1], [0.2, 0.8]], [0, 0])   # 0.45: (0.1 + 0.8) / 2
    """
    b = reliability_bins(probs, labels, n_bins)
    used = b["count"] > 0
    weights = b["count"][used] / b["count"].sum()
    return float(np.sum(weights * np.abs(b["accuracy"][used] - b["confidence"][used])))


def softmax(logits: Any, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``(N, C)`` logits divided by ``temperature`` (numerically stable)."""
    z = np.asarray(logits.detach().float().cpu() if hasattr(logits, "detach") else logits, dtype=float)
    if z.ndim != 2:
        raise ValueError(f"logits must have shape (N, C), got {z.shape}")
    temperature = check_number(temperature, "temperature", low=0, low_open=True)
    z = z / temperature
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: Any, labels: Any, *, low: float = 0.05, high: float = 20.0) -> float:
    """Temperature scaling: the T > 0 that minimises the cross-entropy of softmax(logits / T).

    Fit it on the *validation* split, then divide test logits by it. It changes confidences,
    never the predicted class (dividing by T > 0 keeps the argmax). Golden-section search
    over log T, which is enough for this one-dimensional, smooth problem.
    """
    y = as_labels(labels, "labels")
    z = np.asarray(logits.detach().float().cpu() if hasattr(logits, "detach") else logits, dtype=float)
    if z.ndim != 2 or len(z) != len(y):
        raise ValueError(f"logits must have shape (N, C) with N = {len(y)} labels, got {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("logits hold NaN or infinite values")
    if y.max() >= z.shape[1]:
        raise ValueError(f"labels must be class ids 0..{z.shape[1] - 1} (logits has {z.shape[1]} columns), "
                         f"got {int(y.max())}")
    low, high = check_number(low, "low", low=0, low_open=True), check_number(high, "high", low=0, low_open=True)
    if low >= high:
        raise ValueError(f"the search range needs low < high, got low={low:g}, high={high:g}")

    def nll(log_t: float) -> float:
        p = softmax(z, math.exp(log_t))
        return float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, None))))

    a, b = math.log(low), math.log(high)
    g = (math.sqrt(5) - 1) / 2
    c, d = b - g * (b - a), a + g * (b - a)
    for _ in range(60):
        if nll(c) < nll(d):
            b, d = d, c
            c = b - g * (b - a)
        else:
            a, c = c, d
            d = a + g * (b - a)
    t = math.exp((a + b) / 2)
    if t < low * 1.01 or t > high / 1.01:
        warnings.warn(f"the fitted temperature {t:.3g} lies at the end of the search range [{low:g}, {high:g}]: "
                      "pass logits (not probabilities), or widen low and high", stacklevel=2)
    return t


# --------------------------------------------------------------------------- plots


def plot_confusion_matrix(ax: Any, cm: Any, label_names: Sequence[str], *, title: str = "",
                          normalize: bool = False) -> Any:
    """Draw a ``(C, C)`` confusion matrix (rows: true class, columns: predicted) with counts."""
    label_names = as_label_names(label_names)
    m = np.asarray(cm, dtype=float)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] != len(label_names):
        raise ValueError(f"cm must be ({len(label_names)}, {len(label_names)}), got {m.shape}")
    shown = m / np.maximum(m.sum(axis=1, keepdims=True), 1) if normalize else m
    im = ax.imshow(shown, cmap="Blues", vmin=0)
    ax.set_xticks(range(len(label_names)), label_names)
    ax.set_yticks(range(len(label_names)), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = shown.max() if shown.size else 1
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            text = f"{shown[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
            ax.text(j, i, text, ha="center", va="center",
                    color="white" if shown[i, j] > 0.6 * top else "black")
    if title:
        ax.set_title(title)
    return im


def plot_reliability(ax: Any, probs: Any, labels: Any, *, n_bins: int = 10, label: str = "model") -> float:
    """Reliability diagram: accuracy per confidence bin against the diagonal; returns the ECE."""
    b = reliability_bins(probs, labels, n_bins)
    ece = expected_calibration_error(probs, labels, n_bins)
    centers = (b["edges"][:-1] + b["edges"][1:]) / 2
    used = b["count"] > 0
    ax.plot([0, 1], [0, 1], ls="--", color="gray", lw=1, label="perfect calibration")
    ax.plot(b["confidence"][used], b["accuracy"][used], marker="o", label=f"{label} (ECE {ece:.3f})")
    ax.bar(centers, b["count"] / b["count"].sum(), width=1 / n_bins, alpha=0.15, color="C0",
           label="share of predictions")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("confidence (top probability)")
    ax.set_ylabel("accuracy")
    ax.legend(loc="upper left", fontsize=8)
    return ece


# --------------------------------------------------------------------------- error analysis


def most_confident_mistakes(texts: Sequence[str], labels: Any, probs: Any, label_names: Sequence[str],
                            k: int = 5) -> list[dict[str, Any]]:
    """The ``k`` wrong predictions made with the highest confidence, most confident first.

    Each item: ``text``, ``true``, ``predicted`` (label names) and ``confidence``.
    """
    p = _as_probs(probs)
    y = as_labels(labels, "labels")
    texts, names = string_list(texts, "texts"), as_label_names(label_names)
    if not (len(texts) == len(y) == len(p)):
        raise ValueError(f"texts ({len(texts)}), labels ({len(y)}) and probs ({len(p)}) differ in length")
    if len(names) != p.shape[1] or y.max() >= p.shape[1]:
        raise ValueError(f"probs has {p.shape[1]} classes: label_names needs {p.shape[1]} names (got "
                         f"{len(names)}) and labels must lie in 0..{p.shape[1] - 1} (got up to {int(y.max())})")
    k = check_int(k, "k", minimum=1)
    pred, conf = p.argmax(axis=1), p.max(axis=1)
    wrong = np.flatnonzero(pred != y)
    order = wrong[np.argsort(-conf[wrong], kind="stable")][:k]
    return [{"text": texts[i], "true": names[y[i]], "predicted": names[pred[i]],
             "confidence": float(conf[i])} for i in order]
