"""Text classification: metrics, calibration, baselines, fine-tuning and a usable classifier.

Lesson 07 fine-tunes the course's pretrained BERT (lesson 06) for sentiment and measures
the result against simple baselines. This module holds the reusable pieces:

* **metrics** written out in NumPy: ``accuracy``, ``precision_recall_f1``,
  ``confusion_matrix``, ``classification_report``;
* **calibration**: ``reliability_bins``, ``expected_calibration_error``,
  ``fit_temperature``, and the plots ``plot_confusion_matrix`` / ``plot_reliability``;
* **error analysis**: ``most_confident_mistakes``;
* **baselines**: ``MajorityBaseline``, ``fit_tfidf_logreg``, ``fit_features_logreg``;
* **fine-tuning**: ``encode_texts`` (tokenize, pad, truncate with a warning),
  ``TextClassificationDataset``, ``BertClassifier`` (our encoder + a head on the [CLS]
  vector), ``freeze_body``, ``classification_loss`` and ``finetune``, which runs lesson
  05's ``train.fit`` with a small learning rate for the encoder and a larger one for the
  head (``train.param_groups``), warm-up and decay, and early stopping;
* **using the model**: ``Classifier`` with a batched ``predict(texts)``, ``save`` and ``load``.

Example::

    from textft_lib import classify, data
    ds = classify.load_dataset("movie_reviews")           # or "sst2"
    base = classify.fit_tfidf_logreg(ds.train.texts, ds.train.labels,
                                     ds.validation.texts, ds.validation.labels)
    y_hat = base.predict(ds.test.texts)
    classify.classification_report(ds.test.labels, y_hat, ds.label_names)["accuracy"]
"""

from __future__ import annotations

import json
import math
import random
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import nn

from textft_lib import config, data

#: The datasets the lesson can run on, chosen by one setting.
DATASETS = ("movie_reviews", "sst2")


# --------------------------------------------------------------------------- data


def load_dataset(name: str, *, max_train: int | None = None, seed: int = 0) -> data.TextDataset:
    """Load a labelled dataset through ``data.load`` and optionally subsample its training split.

    ``"movie_reviews"`` is bundled (200 sentences, split 140 / 30 / 30); ``"sst2"`` comes from
    ``TEXTFT_DATA_DIR/sst2`` or, online, from the hub. ``max_train`` keeps a class-balanced,
    seeded random subset of the training sentences (for CPU budgets); validation and test
    are never subsampled, so numbers stay comparable.

    Example::

        ds = load_dataset("sst2", max_train=4000)     # 4000 training sentences, full dev/test
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    ds = data.load(name)
    if max_train is not None and max_train < len(ds.train):
        ds = data.TextDataset(ds.name, subsample(ds.train, max_train, seed=seed), ds.validation,
                              ds.test, ds.label_names, source=f"{ds.source} (train subsample {max_train})")
    return ds


def subsample(split: data.Split, n: int, *, seed: int = 0) -> data.Split:
    """A seeded random subset of ``n`` examples that keeps the class proportions of ``split``."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if n >= len(split):
        return split
    rng = random.Random(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(split.labels):
        by_class.setdefault(y, []).append(i)
    chosen: list[int] = []
    for y in sorted(by_class):
        idx = by_class[y]
        rng.shuffle(idx)
        chosen.extend(idx[: max(1, round(n * len(idx) / len(split)))])
    rng.shuffle(chosen)
    chosen = chosen[:n]
    return data.Split([split.texts[i] for i in chosen], [split.labels[i] for i in chosen])


# --------------------------------------------------------------------------- metrics


def _as_labels(y: Any, name: str) -> np.ndarray:
    arr = np.asarray(y.detach().cpu() if hasattr(y, "detach") else y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of class ids, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: metrics need at least one example")
    if not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    if arr.min() < 0:
        raise ValueError(f"{name} holds a negative class id ({arr.min()})")
    return arr.astype(np.int64)


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t, p = _as_labels(y_true, "y_true"), _as_labels(y_pred, "y_pred")
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
    c = int(max(t.max(), p.max()) + 1) if n_classes is None else n_classes
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
    """
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
        "n": int(len(_as_labels(y_true, "y_true"))),
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
    y = _as_labels(labels, "labels")
    if len(y) != len(p):
        raise ValueError(f"probs has {len(p)} rows but labels has {len(y)} entries")
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
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
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
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
    y = _as_labels(labels, "labels")
    z = np.asarray(logits.detach().float().cpu() if hasattr(logits, "detach") else logits, dtype=float)
    if z.ndim != 2 or len(z) != len(y):
        raise ValueError(f"logits must have shape (N, C) with N = {len(y)} labels, got {z.shape}")

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
    return math.exp((a + b) / 2)


# --------------------------------------------------------------------------- plots


def plot_confusion_matrix(ax: Any, cm: Any, label_names: Sequence[str], *, title: str = "",
                          normalize: bool = False) -> Any:
    """Draw a ``(C, C)`` confusion matrix (rows: true class, columns: predicted) with counts."""
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
    y = _as_labels(labels, "labels")
    if not (len(texts) == len(y) == len(p)):
        raise ValueError(f"texts ({len(texts)}), labels ({len(y)}) and probs ({len(p)}) differ in length")
    pred, conf = p.argmax(axis=1), p.max(axis=1)
    wrong = np.flatnonzero(pred != y)
    order = wrong[np.argsort(-conf[wrong], kind="stable")][:k]
    return [{"text": texts[i], "true": label_names[y[i]], "predicted": label_names[pred[i]],
             "confidence": float(conf[i])} for i in order]


# --------------------------------------------------------------------------- baselines


class MajorityBaseline:
    """Always predicts the most frequent training class; probabilities = training frequencies.

    Any classifier worth its training must beat this. Example::

        m = MajorityBaseline().fit(train_labels)
        m.predict(test_texts)          # array of the majority class id, shape (N,)
    """

    def fit(self, labels: Any, n_classes: int | None = None) -> "MajorityBaseline":
        y = _as_labels(labels, "labels")
        counts = np.bincount(y, minlength=n_classes or 0)
        self.class_prior_ = counts / counts.sum()
        self.majority_ = int(np.argmax(counts))
        return self

    def _check(self, texts: Sequence[str]) -> int:
        if not hasattr(self, "majority_"):
            raise RuntimeError("call fit(labels) before predict")
        return len(texts)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.full(self._check(texts), self.majority_, dtype=np.int64)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.tile(self.class_prior_, (self._check(texts), 1))


def _pick_by_validation(make: Any, X_train: Any, y_train: Sequence[int], X_val: Any, y_val: Sequence[int] | None,
                        Cs: Sequence[float]) -> Any:
    """Fit ``make(C)`` for each C, keep the one with the best validation accuracy (first on ties)."""
    if y_val is None or X_val is None or len(Cs) == 1:
        return make(Cs[0] if len(Cs) == 1 else 1.0).fit(X_train, y_train)
    best, best_acc = None, -1.0
    for C in Cs:
        model = make(C).fit(X_train, y_train)
        acc = accuracy(y_val, model.predict(X_val))
        if acc > best_acc:
            best, best_acc = model, acc
    best.validation_accuracy_ = best_acc
    return best


def fit_tfidf_logreg(train_texts: Sequence[str], train_labels: Sequence[int],
                     val_texts: Sequence[str] | None = None, val_labels: Sequence[int] | None = None,
                     *, Cs: Sequence[float] = (0.3, 1.0, 3.0, 10.0), ngram_range: tuple[int, int] = (1, 2)) -> Any:
    """TF-IDF of word uni- and bigrams + logistic regression, with C chosen on validation.

    Returns a fitted scikit-learn ``Pipeline`` (``predict``, ``predict_proba`` take raw texts).
    The baseline every text classifier should be compared against: fast, and hard to beat
    with little data.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    if len(train_texts) == 0:
        raise ValueError("train_texts is empty")

    def make(C: float) -> Any:
        return make_pipeline(TfidfVectorizer(ngram_range=ngram_range, sublinear_tf=True, min_df=1),
                             LogisticRegression(C=C, max_iter=2000))

    return _pick_by_validation(make, list(train_texts), list(train_labels),
                               None if val_texts is None else list(val_texts), val_labels, Cs)


def fit_features_logreg(X_train: Any, y_train: Sequence[int], X_val: Any = None, y_val: Sequence[int] | None = None,
                        *, Cs: Sequence[float] = (0.1, 1.0, 10.0)) -> Any:
    """Standardised dense features (e.g. mean-pooled GloVe, ``(N, d)``) + logistic regression,
    with C chosen on validation. Returns a fitted scikit-learn ``Pipeline``."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(X_train, dtype=float)
    if X.ndim != 2 or len(X) != len(y_train):
        raise ValueError(f"X_train must be (N, d) with N = {len(y_train)} labels, got {X.shape}")

    def make(C: float) -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))

    return _pick_by_validation(make, X, list(y_train), None if X_val is None else np.asarray(X_val, float),
                               y_val, Cs)


# --------------------------------------------------------------------------- tokenizing for a model


class TruncationWarning(UserWarning):
    """Some texts were longer than the model allows and were cut to fit."""


def check_texts(texts: Any, *, allow_blank: bool = False) -> list[str]:
    """Validate a batch of texts for ``predict``: a non-empty list of non-blank strings.

    Raises ``TypeError`` for a lone string (a frequent slip: it would be read as a list of
    characters) or a non-string item, and ``ValueError`` for an empty list or (unless
    ``allow_blank``) blank texts, naming the offending positions.
    """
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string: wrap it as [text]")
    try:
        texts = list(texts)
    except TypeError:
        raise TypeError(f"texts must be a list of strings, got {type(texts).__name__}") from None
    if not texts:
        raise ValueError("texts is an empty list: there is nothing to classify")
    bad_type = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad_type:
        raise TypeError(f"texts must all be strings; item {bad_type[0]} is {type(texts[bad_type[0]]).__name__}")
    blank = [] if allow_blank else [i for i, t in enumerate(texts) if not t.strip()]
    if blank:
        raise ValueError(f"{len(blank)} text(s) are empty or only whitespace (positions {blank[:10]}): "
                         "a classifier cannot say anything about no text; drop or fill them first")
    return texts


def encode_texts(tokenizer: Any, texts: Sequence[str], max_length: int, *, warn: bool = True
                 ) -> tuple[Any, Any, list[int]]:
    """Tokenize ``texts`` with a Hugging Face tokenizer into padded tensors, truncating long ones.

    Returns ``input_ids`` and ``attention_mask`` of shape ``(N, L)`` (``L`` = the longest
    encoded text, at most ``max_length``; mask 1 = real token) and the positions of the texts
    that were truncated. A truncated text keeps its first ``max_length - 1`` tokens and its
    final [SEP], and a ``TruncationWarning`` says how many texts were cut, unless ``warn=False``.

    Example::

        ids, mask, cut = encode_texts(tok, ["a fine film", "dull"], max_length=64)
        ids.shape   # (2, 5): [CLS] a fine film [SEP] / [CLS] dull [SEP] [PAD] [PAD]
    """
    if max_length < 3:
        raise ValueError(f"max_length must leave room for [CLS], a token and [SEP]; got {max_length}")
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no padding token; set tokenizer.pad_token first")
    texts = check_texts(texts, allow_blank=True)
    encoded = tokenizer(texts, add_special_tokens=True, truncation=False, verbose=False)["input_ids"]
    truncated = [i for i, ids in enumerate(encoded) if len(ids) > max_length]
    for i in truncated:
        encoded[i] = encoded[i][: max_length - 1] + encoded[i][-1:]
    longest = max(len(ids) for ids in encoded)
    input_ids = torch.full((len(encoded), longest), tokenizer.pad_token_id, dtype=torch.long)
    attention_mask = torch.zeros((len(encoded), longest), dtype=torch.long)
    for i, ids in enumerate(encoded):
        input_ids[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        attention_mask[i, : len(ids)] = 1
    if truncated and warn:
        warnings.warn(f"{len(truncated)} of {len(encoded)} text(s) are longer than the model's limit of "
                      f"{max_length} tokens and were truncated to it (positions {truncated[:10]}); "
                      "the model did not see their ends", TruncationWarning, stacklevel=2)
    return input_ids, attention_mask, truncated


class TextClassificationDataset:
    """Pre-tokenized (text, label) pairs for a ``torch.utils.data.DataLoader``.

    Each item is a dict ``{"input_ids": (L,), "attention_mask": (L,), "labels": ()}``;
    ``collate`` pads a list of items to the longest one in the batch. Texts longer than
    ``max_length`` tokens are truncated (one ``TruncationWarning`` for the whole dataset).
    """

    def __init__(self, tokenizer: Any, texts: Sequence[str], labels: Sequence[int], max_length: int):
        texts = check_texts(texts)
        if len(texts) != len(labels):
            raise ValueError(f"{len(texts)} texts but {len(labels)} labels")
        labels = _as_labels(labels, "labels").tolist()    # whole class ids: int() would truncate 0.9 to 0
        ids, mask, self.truncated = encode_texts(tokenizer, texts, max_length)
        lengths = mask.sum(dim=1).tolist()
        self.items = [(ids[i, :n].clone(), y) for i, (n, y) in enumerate(zip(lengths, labels))]
        self.pad_id = int(tokenizer.pad_token_id)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ids, y = self.items[i]
        return {"input_ids": ids, "labels": y}

    def collate(self, batch: list[dict[str, Any]]) -> dict[str, Any]:
        longest = max(len(b["input_ids"]) for b in batch)
        input_ids = torch.full((len(batch), longest), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((len(batch), longest), dtype=torch.long)
        for i, b in enumerate(batch):
            n = len(b["input_ids"])
            input_ids[i, :n] = b["input_ids"]
            attention_mask[i, :n] = 1
        labels = torch.tensor([b["labels"] for b in batch], dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}

    def loader(self, batch_size: int, *, shuffle: bool = False, seed: int = 0) -> Any:
        """A ``DataLoader`` over this dataset (seeded shuffling, padding per batch)."""
        from torch.utils.data import DataLoader

        g = torch.Generator().manual_seed(seed)
        return DataLoader(self, batch_size=batch_size, shuffle=shuffle, collate_fn=self.collate, generator=g)


def logits_of(output: Any) -> Any:
    """The logits of a model's output: a tensor as is, or the ``.logits`` of a
    ``transformers`` output object."""
    logits = getattr(output, "logits", output)
    if not hasattr(logits, "shape") or logits.ndim != 2:
        raise TypeError(f"the model must return (B, C) logits or an object with .logits; got {type(output).__name__}")
    return logits


# --------------------------------------------------------------------------- using a trained model


@dataclass
class Prediction:
    """What ``Classifier.predict`` returns for N texts.

    ``labels``: ``(N,)`` class ids; ``probs``: ``(N, C)`` probabilities (rows sum to 1);
    ``names``: the label name of each prediction; ``truncated``: positions of texts that
    were cut to the model's length limit.
    """

    labels: np.ndarray
    probs: np.ndarray
    label_names: list[str]
    truncated: list[int] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [self.label_names[i] for i in self.labels]

    @property
    def confidence(self) -> np.ndarray:
        return self.probs.max(axis=1)

    def __len__(self) -> int:
        return len(self.labels)


CLASSIFIER_FILE = "classifier.json"
WEIGHTS_FILE = "model.safetensors"


class Classifier:
    """A trained text classifier ready to use: tokenizer + model + label names.

    ``model`` maps ``(input_ids, attention_mask)`` of shape ``(B, L)`` to ``(B, C)`` logits
    (a tensor, or a ``transformers`` output with ``.logits``): either a
    ``transformers.BertForSequenceClassification`` or this module's ``BertClassifier``.

    Example::

        clf = Classifier(model, tokenizer, ["negative", "positive"])
        pred = clf.predict(["a gripping, beautifully acted film", "two hours I will not get back"])
        pred.names, pred.probs            # ['positive', 'negative'], (2, 2) array
        clf.save("my_classifier")
        same = Classifier.load("my_classifier")
    """

    def __init__(self, model: Any, tokenizer: Any, label_names: Sequence[str], *, max_length: int | None = None):
        if not label_names or len(set(label_names)) != len(label_names):
            raise ValueError(f"label_names must be distinct names, one per class; got {list(label_names)}")
        self.model, self.tokenizer, self.label_names = model, tokenizer, list(label_names)
        limit = model_max_length(model)
        if max_length is None:
            max_length = limit
        if max_length > limit:
            raise ValueError(f"max_length={max_length} is longer than the model's {limit} positions")
        self.max_length = int(max_length)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def logits(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[Any, list[int]]:
        """``(N, C)`` float32 logits on the CPU for ``texts``, and the positions that were truncated.

        Texts are batched by length (longest first), so that each batch is padded only to
        its own longest text: the answers are those of one text at a time, about twice as
        fast as batches in the given order on short texts of mixed length."""

        texts = check_texts(texts)
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        ids, mask, truncated = encode_texts(self.tokenizer, texts, self.max_length, warn=False)
        lengths = mask.sum(dim=1)
        order = torch.argsort(lengths, descending=True, stable=True)
        out = torch.empty(len(texts), len(self.label_names))
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.inference_mode():
                for start in range(0, len(texts), batch_size):
                    rows = order[start:start + batch_size]
                    n = int(lengths[rows].max())
                    logits = logits_of(self.model(input_ids=ids[rows, :n].to(self.device),
                                                  attention_mask=mask[rows, :n].to(self.device)))
                    if logits.shape[1] != len(self.label_names):
                        raise ValueError(f"the model gives {logits.shape[1]} logits per text but there are "
                                         f"{len(self.label_names)} label names")
                    out[rows] = logits.float().cpu()
        finally:
            self.model.train(was_training)
        if truncated:
            warnings.warn(f"{len(truncated)} of {len(texts)} text(s) are longer than the model's limit of "
                          f"{self.max_length} tokens and were truncated to it (positions {truncated[:10]}); "
                          "their predictions ignore the cut-off ends", TruncationWarning, stacklevel=3)
        return out, truncated

    def predict(self, texts: Sequence[str], *, batch_size: int = 64, temperature: float = 1.0) -> Prediction:
        """Classify a list of texts in batches: labels ``(N,)`` and probabilities ``(N, C)``.

        ``temperature`` (from ``fit_temperature``) rescales the probabilities without
        changing any label. An empty list, a lone string or blank texts raise an error;
        texts longer than ``max_length`` tokens are truncated with a ``TruncationWarning``.
        """
        logits, truncated = self.logits(texts, batch_size=batch_size)
        probs = softmax(logits.numpy(), temperature)
        return Prediction(probs.argmax(axis=1).astype(np.int64), probs, self.label_names, truncated)

    def evaluate(self, texts: Sequence[str], labels: Sequence[int], *, batch_size: int = 64) -> dict[str, Any]:
        """``classification_report`` plus ``ece`` and the ``prediction`` on a labelled split."""
        pred = self.predict(texts, batch_size=batch_size)
        report = classification_report(labels, pred.labels, self.label_names)
        report["ece"] = expected_calibration_error(pred.probs, labels)
        report["prediction"] = pred
        return report

    # ------------------------------------------------------------------ save / load

    def save(self, folder: str | Path) -> Path:
        """Write the classifier to ``folder``: tokenizer files, weights (safetensors) and
        ``classifier.json`` (label names, length limit, model kind and configuration)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        meta = {"format": "textft-classifier", "version": 1, "label_names": self.label_names,
                "max_length": self.max_length}
        if isinstance(self.model, BertClassifier):
            from safetensors.torch import save_model

            meta["kind"] = "textft-bert"
            meta["model_config"] = self.model.config_dict()
            save_model(self.model, str(folder / WEIGHTS_FILE))
        elif hasattr(self.model, "save_pretrained"):
            meta["kind"] = "transformers"
            cfg = self.model.config
            cfg.id2label = dict(enumerate(self.label_names))
            cfg.label2id = {n: i for i, n in enumerate(self.label_names)}
            self.model.save_pretrained(folder)
        else:
            raise TypeError(f"cannot save a {type(self.model).__name__}: use BertClassifier or a transformers model")
        self.tokenizer.save_pretrained(folder)
        (folder / CLASSIFIER_FILE).write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, device: Any = None) -> "Classifier":
        """Load a classifier written by ``save`` (weights with safetensors, no pickles)."""
        folder = Path(folder)
        meta_path = folder / CLASSIFIER_FILE
        if not meta_path.exists():
            raise FileNotFoundError(f"{folder} holds no {CLASSIFIER_FILE}: it is not a classifier saved "
                                    "with Classifier.save")
        meta = json.loads(meta_path.read_text())
        if meta.get("format") != "textft-classifier":
            raise ValueError(f"{meta_path} is not a textft classifier description")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(folder)
        if meta["kind"] == "textft-bert":
            from safetensors.torch import load_model

            model = BertClassifier.from_config(meta["model_config"])
            load_model(model, str(folder / WEIGHTS_FILE))
        elif meta["kind"] == "transformers":
            from transformers import AutoModelForSequenceClassification

            model = AutoModelForSequenceClassification.from_pretrained(folder)
        else:
            raise ValueError(f"{meta_path}: unknown model kind {meta['kind']!r}")
        model.to(device if device is not None else config.get_device()).eval()
        return cls(model, tokenizer, meta["label_names"], max_length=meta["max_length"])


def model_max_length(model: Any) -> int:
    """How many tokens ``model`` accepts: ``config.max_position_embeddings`` (BERT, ours or
    ``transformers``'), or the ``max_len`` of a learned position table (``EncoderClassifier``)."""
    cfg = getattr(model, "config", None)
    n = getattr(cfg, "max_position_embeddings", None)
    if n is None:
        n = getattr(getattr(model, "pos", None), "max_len", None)
    if not isinstance(n, int):
        raise ValueError(f"cannot tell how many positions a {type(model).__name__} accepts; pass max_length")
    return n


# --------------------------------------------------------------------------- fine-tuning BERT

#: The ways ``BertClassifier`` turns the token vectors into one sentence vector.
POOLINGS = ("cls", "mean")


def pool(hidden: Any, attention_mask: Any = None, how: str = "cls") -> Any:
    """One vector per sentence from the token vectors ``hidden (B, L, H)`` -> ``(B, H)``.

    ``how="cls"``: the vector at position 0. ``how="mean"``: the average over the real
    tokens, where ``attention_mask (B, L)`` is 1 (all tokens when it is None).

    Example::

        h = torch.randn(2, 5, 8); mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
        pool(h, mask, "mean")[0]          # == h[0, :3].mean(0): the padding is left out
    """
    if hidden.dim() != 3:
        raise ValueError(f"hidden must be (batch, length, hidden), got shape {tuple(hidden.shape)}")
    if how == "cls":
        return hidden[:, 0]
    if how != "mean":
        raise ValueError(f"pooling must be one of {POOLINGS}, got {how!r}")
    if attention_mask is None:
        return hidden.mean(1)
    if attention_mask.shape != hidden.shape[:2]:
        raise ValueError(f"attention_mask must be (batch, length) = {tuple(hidden.shape[:2])}, "
                         f"got {tuple(attention_mask.shape)}")
    from textft_lib.transformer import attention_mask_to_bool, masked_mean

    return masked_mean(hidden, attention_mask_to_bool(attention_mask))   # lesson 05's padding-aware mean


class BertClassifier(nn.Module):
    """The course's BERT encoder with a classification head on one vector per sentence.

    ``input_ids (B, L)`` -> ``bert`` -> hidden states ``(B, L, H)`` -> pooled ``(B, H)``
    -> ``pooler`` (dense + tanh) -> dropout -> ``classifier`` (linear) -> logits ``(B, C)``.

    Pooling matters: a classifier needs *one* vector per sentence.

    * ``pooling="cls"`` (BERT's convention) takes the vector at position 0, ``[CLS]``,
      which self-attention lets gather information from every token; fine-tuning teaches
      it to carry what the task needs. The layout and parameter names then match
      ``transformers.BertForSequenceClassification`` (``bert.*``, ``pooler.dense``,
      ``classifier``), so ``from_transformers`` copies one into the other exactly.
    * ``pooling="mean"`` averages the vectors of the real tokens (padding excluded), so
      every token reaches the head directly, whatever the attention learned to look at.

    Example::

        clf, tokenizer = BertClassifier.from_pretrained(bert.course_bert(), num_classes=2, pooling="mean")
        ids = tokenizer(["a fine film"], return_tensors="pt")
        clf(ids["input_ids"], ids["attention_mask"]).shape       # (1, 2)
    """

    def __init__(self, config: Any, num_classes: int, *, dropout: float | None = None, pooling: str = "cls"):
        from textft_lib import bert

        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        if isinstance(config, dict):
            config = bert.BertConfig(**config)
        self.config, self.num_classes = config, num_classes
        self.classifier_dropout = config.hidden_dropout_prob if dropout is None else dropout
        self.bert = bert.BertModel(config)
        self.pooler = nn.Module()
        self.pooler.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.dropout = nn.Dropout(self.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, num_classes)
        for layer in (self.pooler.dense, self.classifier):       # BERT's init: N(0, 0.02), zero bias
            nn.init.normal_(layer.weight, std=config.initializer_range)
            nn.init.zeros_(layer.bias)

    def forward(self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None) -> Any:
        h = self.bert(input_ids, attention_mask, token_type_ids)              # (B, L, H)
        pooled = torch.tanh(self.pooler.dense(pool(h, attention_mask, self.pooling)))   # (B, H)
        return self.classifier(self.dropout(pooled))                          # (B, C)

    @property
    def max_position_embeddings(self) -> int:
        return self.config.max_position_embeddings

    def config_dict(self) -> dict[str, Any]:
        """Everything ``from_config`` needs to rebuild this model (weights aside)."""
        from dataclasses import asdict

        return {"bert": asdict(self.config), "num_classes": self.num_classes, "dropout": self.classifier_dropout,
                "pooling": self.pooling}

    @classmethod
    def from_config(cls, cfg: dict[str, Any]) -> "BertClassifier":
        return cls(cfg["bert"], cfg["num_classes"], dropout=cfg.get("dropout"), pooling=cfg.get("pooling", "cls"))

    @classmethod
    def from_pretrained(cls, folder: str | Path, num_classes: int, *, dropout: float | None = None,
                        pooling: str = "cls") -> tuple["BertClassifier", Any]:
        """Our encoder with the pretrained weights of a ``bert.save_pretrained`` folder, a
        freshly initialised head, and the folder's tokenizer. ``dropout`` (if given) replaces
        the pretraining dropout rate in the encoder and sets the head's."""
        from dataclasses import replace

        from textft_lib import bert

        mlm, tokenizer = bert.load_pretrained(folder)
        cfg = mlm.config if dropout is None else replace(mlm.config, hidden_dropout_prob=dropout)
        model = cls(cfg, num_classes, dropout=dropout, pooling=pooling)
        model.bert.load_state_dict(mlm.bert.state_dict())
        return model, tokenizer

    @classmethod
    def from_transformers(cls, hf_model: Any) -> "BertClassifier":
        """A copy of a ``transformers.BertForSequenceClassification`` (same logits)."""
        from textft_lib import bert

        model = cls(bert.BertConfig.from_hf(hf_model.config), hf_model.config.num_labels,
                    dropout=getattr(hf_model.config, "classifier_dropout", None))
        state = {}
        for name, value in hf_model.state_dict().items():
            if name.startswith("bert.pooler."):
                state[name[len("bert."):]] = value
            elif name.startswith("classifier."):
                state[name] = value
            elif name.endswith(("position_ids", "token_type_ids")):
                continue
            else:
                state[bert.our_name(name)] = value
        model.load_state_dict(state, strict=True)
        return model.to(next(hf_model.parameters()).device).train(hf_model.training)


#: Parameter-name prefixes of the task head, for the models this lesson trains.
HEAD_PREFIXES = ("classifier.", "pooler.", "bert.pooler.", "head.")


def head_prefixes(model: Any) -> tuple[str, ...]:
    """The prefixes (of ``HEAD_PREFIXES``) that name the head parameters of ``model``."""
    names = [n for n, _ in model.named_parameters()]
    found = tuple(p for p in HEAD_PREFIXES if any(n.startswith(p) for n in names))
    if not found:
        raise ValueError(f"cannot find a classification head among {names[-4:]}; expected names starting "
                         f"with one of {HEAD_PREFIXES}")
    return found


def freeze_body(model: Any, frozen: bool = True) -> int:
    """Freeze (or unfreeze) every parameter outside the head; return how many values stay trainable.

    With the body frozen, fine-tuning trains only the head on fixed pretrained features
    ("feature extraction"); unfrozen, every layer adapts to the task.
    """
    heads = head_prefixes(model)
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(heads) or not frozen
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def classification_loss(model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
    """``loss_fn`` for ``train.fit``: cross-entropy of the logits against ``batch["labels"]``.

    ``batch``: ``input_ids (B, L)``, ``attention_mask (B, L)``, ``labels (B,)``. Returns the
    loss and the batch accuracy (computed from the same logits, so the log shows exactly
    what the model did).
    """
    import torch.nn.functional as F

    logits = logits_of(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]))
    loss = F.cross_entropy(logits.float(), batch["labels"])
    return loss, {"accuracy": (logits.argmax(-1) == batch["labels"]).float().mean().item()}


def evaluate_classifier(model: Any, loader: Iterable) -> dict[str, float]:
    """``evaluate_fn`` for ``train.fit``: loss and accuracy over *all* examples of ``loader``
    (weighted by example, so a short last batch counts for what it holds)."""
    import torch.nn.functional as F

    device = next(model.parameters()).device
    total_loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for batch in loader:
            ids, mask, y = (batch[k].to(device) for k in ("input_ids", "attention_mask", "labels"))
            logits = logits_of(model(input_ids=ids, attention_mask=mask)).float()
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(-1) == y).sum())
            n += len(y)
    if n == 0:
        raise ValueError("the evaluation loader yielded no example")
    return {"loss": total_loss / n, "accuracy": correct / n}


def fingerprint(*parts: Any) -> str:
    """A short hash of texts, labels (lists, arrays, tensors), numbers or a model's weights, for cache keys."""
    import hashlib

    from textft_lib.train import json_default

    digest = hashlib.sha256()
    for part in parts:
        if hasattr(part, "state_dict"):
            for name, tensor in sorted(part.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().view(-1).numpy().tobytes()
                              if tensor.dtype.is_floating_point or tensor.dtype.is_signed
                              else tensor.cpu().numpy().tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=json_default).encode())
    return digest.hexdigest()[:16]


def finetune(model: Any, tokenizer: Any, train: data.Split, validation: data.Split, *,
             lr_body: float = 5e-5, lr_head: float = 1e-3, epochs: int = 4, batch_size: int = 32,
             warmup_ratio: float = 0.1, schedule: str = "linear", weight_decay: float = 0.01,
             patience: int | None = 2, frozen_body: bool | None = False, max_length: int | None = None,
             seed: int = 0, cache: str | None = None, device: Any = None, progress: bool = True,
             verbose: bool = False) -> Any:
    """Fine-tune a classifier with ``train.fit``: discriminative learning rates, warm-up then
    decay, early stopping on validation accuracy, the best weights restored at the end.

    * ``model``: ``BertClassifier``, ``transformers.BertForSequenceClassification`` or
      ``transformer.EncoderClassifier`` (anything with a head named as in ``HEAD_PREFIXES``
      whose forward takes ``input_ids`` and ``attention_mask``);
    * ``lr_body`` for the pretrained encoder (small: it already knows a lot), ``lr_head``
      for the new head (larger: it starts from random). Use equal values to train a model
      from scratch with one learning rate;
    * ``frozen_body=True`` trains the head alone; ``None`` trains what the model marks trainable
      (``requires_grad``), e.g. after ``lora.add_lora``;
    * ``cache``: a name for ``train.fit``'s checkpoint cache; the key covers every setting,
      the data and the model's initial weights, so a re-run with the same inputs is instant.

    Returns ``train.History`` (``history.best["val_accuracy"]``, ``history.seconds``).
    """
    from textft_lib import train as training

    device = device if device is not None else config.get_device()
    model.to(device)
    max_length = max_length or model_max_length(model)
    if frozen_body is not None:
        freeze_body(model, frozen_body)
    initial = fingerprint(model) if cache else None
    train_ds = TextClassificationDataset(tokenizer, train.texts, train.labels, max_length)
    val_ds = TextClassificationDataset(tokenizer, validation.texts, validation.labels, max_length)
    train_loader = train_ds.loader(batch_size, shuffle=True, seed=seed)
    val_loader = val_ds.loader(max(batch_size, 64))
    total = epochs * len(train_loader)
    groups = training.param_groups(model, lr_body=lr_body, lr_head=lr_head, head_prefix=head_prefixes(model),
                                   weight_decay=weight_decay)
    optimizer = torch.optim.AdamW(groups)
    scheduler = training.warmup_decay_schedule(optimizer, int(warmup_ratio * total), total, kind=schedule)
    settings = None
    if cache:
        settings = {"lr_body": lr_body, "lr_head": lr_head, "epochs": epochs, "batch_size": batch_size,
                    "warmup_ratio": warmup_ratio, "schedule": schedule, "weight_decay": weight_decay,
                    "patience": patience, "frozen_body": frozen_body, "max_length": max_length, "seed": seed,
                    "data": fingerprint(train.texts, train.labels, validation.texts, validation.labels),
                    "initial_weights": initial, "device": str(device)}
    torch.manual_seed(seed)   # dropout masks
    return training.fit(model, train_loader, loss_fn=classification_loss, optimizer=optimizer,
                        scheduler=scheduler, epochs=epochs, val_loader=val_loader,
                        evaluate_fn=evaluate_classifier, monitor="val_accuracy", mode="max",
                        patience=patience, restore_best=True, device=device, progress=progress,
                        verbose=verbose, cache=cache, settings=settings)
