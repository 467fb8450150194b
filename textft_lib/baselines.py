"""Baselines a fine-tuned classifier must beat (lesson 07).

``MajorityBaseline`` (always the most frequent class), ``fit_tfidf_logreg`` (TF-IDF +
logistic regression on raw texts) and ``fit_features_logreg`` (logistic regression on
dense features such as mean-pooled GloVe), the last two with C chosen on validation.

Example::

    from textft_lib import baselines, data, metrics
    ds = data.load("movie_reviews")
    base = baselines.fit_tfidf_logreg(ds.train.texts, ds.train.labels,
                                      ds.validation.texts, ds.validation.labels)
    metrics.accuracy(ds.test.labels, base.predict(ds.test.texts))
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from textft_lib.encoding import check_texts
from textft_lib.metrics import accuracy, check_number, class_ids


# --------------------------------------------------------------------------- baselines


class MajorityBaseline:
    """Always predicts the most frequent training class; probabilities = training frequencies.

    Any classifier worth its training must beat this. Example::

        m = MajorityBaseline().fit(train_labels)
        m.predict(test_texts)          # array of the majority class id, shape (N,)
    """

    def fit(self, labels: Any, n_classes: int | None = None) -> "MajorityBaseline":
        """Count the classes of ``labels`` (ids 0..n-1, see ``metrics.class_ids``; with
        ``n_classes``, a class may be absent and gets probability 0)."""
        y, n = class_ids(labels, "labels", n_classes)
        counts = np.bincount(y, minlength=n)
        self.class_prior_ = counts / counts.sum()
        self.majority_ = int(np.argmax(counts))
        return self

    def _check(self, texts: Sequence[str]) -> int:
        if not hasattr(self, "majority_"):
            raise RuntimeError("call fit(labels) before predict")
        if isinstance(texts, str):
            raise TypeError("texts must be a list of texts, not one string: wrap it as [text]")
        if not hasattr(texts, "__len__"):
            raise TypeError(f"texts must be a list of texts, got {type(texts).__name__}")
        return len(texts)

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return np.full(self._check(texts), self.majority_, dtype=np.int64)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.tile(self.class_prior_, (self._check(texts), 1))


def check_training_data(n_train: int, train_labels: Any, val_labels: Any, n_val: int | None,
                        Cs: Sequence[float]) -> tuple[list[int], list[int] | None, list[float]]:
    """The label and ``Cs`` checks of the two logistic-regression baselines, done once.

    ``train_labels`` must be the class ids 0..n-1 (``metrics.class_ids``), at least two
    classes, one per training example; ``val_labels`` (when ``n_val`` is not None) one per
    validation example, among the training classes; ``Cs`` a non-empty list of positive
    numbers. Returns the labels as lists of ints and ``Cs`` as floats.

    Example: ``check_training_data(3, [0, 1, 1], [1, 0], 2, (1.0,))`` passes;
    ``check_training_data(2, [1, 2], None, None, (1.0,))`` raises ``ValueError``.
    """
    y, n = class_ids(train_labels, "train_labels")
    if len(y) != n_train:
        raise ValueError(f"there are {n_train} training examples but {len(y)} train_labels")
    if n < 2:
        raise ValueError(f"train_labels hold a single class ({int(y[0])}): a classifier needs at least two")
    y_val = None
    if n_val is not None:
        y_val, _ = class_ids(val_labels, "val_labels", n)
        if len(y_val) != n_val:
            raise ValueError(f"there are {n_val} validation examples but {len(y_val)} val_labels")
        y_val = y_val.tolist()
    if isinstance(Cs, (str, bytes)) or not hasattr(Cs, "__iter__"):
        raise TypeError(f"Cs must be a list of numbers, got {type(Cs).__name__}")
    Cs = [check_number(C, "each C in Cs", low=0, low_open=True) for C in Cs]
    if not Cs:
        raise ValueError("Cs is empty: give at least one regularisation strength")
    return y.tolist(), y_val, Cs


def pick_by_validation(make: Any, X_train: Any, y_train: Sequence[int], X_val: Any, y_val: Sequence[int] | None,
                       Cs: Sequence[float]) -> Any:
    """Fit ``make(C)`` for each C, keep the one with the best validation accuracy (first on ties).

    Without validation data (or with one C) it fits ``make(Cs[0])`` (``make(1.0)`` with several
    Cs and no validation data). Example::

        best = pick_by_validation(lambda C: LogisticRegression(C=C), X, y, X_val, y_val, [0.1, 1, 10])
    """
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

    The training labels must be the class ids 0..n-1, each present (``metrics.class_ids``):
    the model predicts the ids it was fit on, so one fit on labels 1/2 would be scored as all
    wrong against test labels 0/1 (an accuracy of 0.0, and no error). The check is here,
    where the ids enter the model, because ``accuracy`` cannot tell that slip from a bad
    model. Validation labels must be among the training classes. Map word labels or other
    numbers to 0..n-1 first (``data.load_labelled`` does it).

    Example::

        m = fit_tfidf_logreg(["great fun", "dull film", "great cast"], [1, 0, 1])
        m.predict(["great plot"])                        # array([1])
    """
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train_texts = check_texts(train_texts, allow_blank=True, name="train_texts")
    if (val_texts is None) != (val_labels is None):
        raise ValueError("give val_texts and val_labels together, or neither")
    if val_texts is not None:
        val_texts = check_texts(val_texts, allow_blank=True, name="val_texts")
    y, y_val, Cs = check_training_data(len(train_texts), train_labels, val_labels,
                                       None if val_texts is None else len(val_texts), Cs)
    if (not isinstance(ngram_range, (tuple, list)) or len(ngram_range) != 2
            or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) for n in ngram_range)
            or not 1 <= ngram_range[0] <= ngram_range[1]):
        raise ValueError(f"ngram_range must be two ints (low, high) with 1 <= low <= high, got {ngram_range!r}")
    ngram_range = (int(ngram_range[0]), int(ngram_range[1]))
    vectorizer = TfidfVectorizer(ngram_range=ngram_range, sublinear_tf=True, min_df=1)
    try:
        vectorizer.fit(train_texts)
    except ValueError:      # scikit-learn's "empty vocabulary"
        raise ValueError("train_texts hold no word of two or more letters or digits: TF-IDF has no "
                         "feature to learn from") from None

    def make(C: float) -> Any:
        return make_pipeline(TfidfVectorizer(ngram_range=ngram_range, sublinear_tf=True, min_df=1),
                             LogisticRegression(C=C, max_iter=2000))

    return pick_by_validation(make, train_texts, y, val_texts, y_val, Cs)


def fit_features_logreg(X_train: Any, y_train: Sequence[int], X_val: Any = None, y_val: Sequence[int] | None = None,
                        *, Cs: Sequence[float] = (0.1, 1.0, 10.0)) -> Any:
    """Standardised dense features (e.g. mean-pooled GloVe, ``(N, d)``) + logistic regression,
    with C chosen on validation. Returns a fitted scikit-learn ``Pipeline``.

    Labels are checked as in ``fit_tfidf_logreg`` (ids 0..n-1, validation among them).

    Example::

        m = fit_features_logreg(np.eye(4)[[0, 1, 2, 3] * 5], [0, 1, 0, 1] * 5)
        m.predict(np.eye(4))                              # array([0, 1, 0, 1])
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def features(X: Any, name: str, d: int | None = None) -> np.ndarray:
        try:
            arr = np.asarray(X.detach().cpu() if hasattr(X, "detach") else X, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"{name} must be an (N, d) array of numbers, got {type(X).__name__}") from None
        if arr.ndim != 2 or len(arr) == 0 or (d is not None and arr.shape[1] != d):
            want = "(N, d)" if d is None else f"(N, {d})"
            raise ValueError(f"{name} must be a non-empty {want} array, got shape {arr.shape}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} holds NaN or infinite values")
        return arr

    X = features(X_train, "X_train")
    if (X_val is None) != (y_val is None):
        raise ValueError("give X_val and y_val together, or neither")
    Xv = None if X_val is None else features(X_val, "X_val", X.shape[1])
    y, yv, Cs = check_training_data(len(X), y_train, y_val, None if Xv is None else len(Xv), Cs)

    def make(C: float) -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))

    return pick_by_validation(make, X, y, Xv, yv, Cs)
