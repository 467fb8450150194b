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

from textft_lib.metrics import accuracy, as_labels


# --------------------------------------------------------------------------- baselines


class MajorityBaseline:
    """Always predicts the most frequent training class; probabilities = training frequencies.

    Any classifier worth its training must beat this. Example::

        m = MajorityBaseline().fit(train_labels)
        m.predict(test_texts)          # array of the majority class id, shape (N,)
    """

    def fit(self, labels: Any, n_classes: int | None = None) -> "MajorityBaseline":
        y = as_labels(labels, "labels")
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
