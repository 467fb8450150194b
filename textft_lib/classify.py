"""Text classification (lesson 07): one import for the modules that now hold the API.

``from textft_lib import classify`` keeps working: every name below is re-exported here,
so ``classify.finetune``, ``classify.accuracy`` and the rest are the functions of:

* ``data``: ``load_dataset`` (a labelled dataset, training split optionally subsampled),
  ``subsample``; ``DATASETS`` is ``data.labelled_datasets()``;
* ``metrics``: ``accuracy``, ``confusion_matrix``, ``precision_recall_f1``,
  ``classification_report``, ``format_report``, calibration (``reliability_bins``,
  ``expected_calibration_error``, ``softmax``, ``fit_temperature``), the plots
  ``plot_confusion_matrix`` / ``plot_reliability``, and ``most_confident_mistakes``;
* ``baselines``: ``MajorityBaseline``, ``fit_tfidf_logreg``, ``fit_features_logreg``;
* ``encoding``: ``check_texts``, ``encode_texts``, ``TruncationWarning``,
  ``TextClassificationDataset``;
* ``classifier``: ``BertClassifier``, ``pool``, ``POOLINGS``, ``Classifier``, ``Prediction``,
  ``logits_of``, ``model_max_length``, ``CLASSIFIER_FILE``, ``WEIGHTS_FILE``;
* ``finetuning``: ``finetune``, ``HEAD_PREFIXES``, ``head_prefixes``, ``freeze_body``,
  ``classification_loss``, ``evaluate_classifier``, ``fingerprint``.

Example::

    from textft_lib import classify
    ds = classify.load_dataset("movie_reviews")           # or "sst2", "ag_news"
    base = classify.fit_tfidf_logreg(ds.train.texts, ds.train.labels,
                                     ds.validation.texts, ds.validation.labels)
    y_hat = base.predict(ds.test.texts)
    classify.classification_report(ds.test.labels, y_hat, ds.label_names)["accuracy"]
"""

from __future__ import annotations

from textft_lib import data
from textft_lib.baselines import MajorityBaseline, fit_features_logreg, fit_tfidf_logreg
from textft_lib.classifier import (CLASSIFIER_FILE, POOLINGS, WEIGHTS_FILE, BertClassifier, Classifier, Prediction,
                                   logits_of, model_max_length, pool)
from textft_lib.data import load_dataset, subsample
from textft_lib.encoding import TextClassificationDataset, TruncationWarning, check_texts, encode_texts
from textft_lib.finetuning import (HEAD_PREFIXES, classification_loss, evaluate_classifier, finetune, fingerprint,
                                   freeze_body, head_prefixes)
from textft_lib.metrics import (accuracy, classification_report, confusion_matrix, expected_calibration_error,
                                fit_temperature, format_report, most_confident_mistakes, plot_confusion_matrix,
                                plot_reliability, precision_recall_f1, reliability_bins, softmax)

#: The labelled datasets ``load_dataset`` accepts (taken from ``data``'s catalogue).
DATASETS = data.labelled_datasets()

__all__ = [
    "DATASETS", "load_dataset", "subsample",
    "accuracy", "confusion_matrix", "precision_recall_f1", "classification_report", "format_report",
    "reliability_bins", "expected_calibration_error", "softmax", "fit_temperature",
    "plot_confusion_matrix", "plot_reliability", "most_confident_mistakes",
    "MajorityBaseline", "fit_tfidf_logreg", "fit_features_logreg",
    "TruncationWarning", "check_texts", "encode_texts", "TextClassificationDataset",
    "logits_of", "Prediction", "CLASSIFIER_FILE", "WEIGHTS_FILE", "Classifier", "model_max_length",
    "POOLINGS", "pool", "BertClassifier",
    "HEAD_PREFIXES", "head_prefixes", "freeze_body", "classification_loss", "evaluate_classifier",
    "fingerprint", "finetune",
]
