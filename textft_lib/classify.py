"""Text classification (lesson 07): one import for the modules that now hold the API.

``from textft_lib import classify`` keeps working: every name below is re-exported here,
so ``classify.finetune``, ``classify.accuracy`` and the rest are the functions of:

* ``data``: ``load_dataset`` (a labelled dataset, training split optionally subsampled),
  ``subsample``, ``load_labelled`` (your own labelled texts: a file, a DataFrame or
  ``(texts, labels)``) and its steps ``read_table``, ``labels_to_ids``, ``stratified_split``,
  ``split_report``; ``Split``, ``TextDataset``; ``DATASETS`` is ``data.labelled_datasets()``;
* ``metrics``: ``accuracy``, ``confusion_matrix``, ``precision_recall_f1``,
  ``classification_report``, ``format_report``, the checks ``as_labels``, ``class_ids``,
  ``as_label_names``, ``check_int``, ``check_number``, calibration (``reliability_bins``,
  ``expected_calibration_error``, ``softmax``, ``fit_temperature``), the plots
  ``plot_confusion_matrix`` / ``plot_reliability``, and ``most_confident_mistakes``;
* ``baselines``: ``MajorityBaseline``, ``fit_tfidf_logreg``, ``fit_features_logreg``,
  ``check_training_data``, ``pick_by_validation``;
* ``encoding``: ``check_texts``, ``encode_texts``, ``TruncationWarning``,
  ``TextClassificationDataset``;
* ``classifier``: ``BertClassifier``, ``pool``, ``POOLINGS``, ``Classifier``, ``Prediction``,
  ``logits_of``, ``model_max_length``, ``model_classes``, ``CLASSIFIER_FILE``, ``WEIGHTS_FILE``,
  ``TRANSFORMERS_CONFIG_FILE``, ``TransformersExportWarning``, ``MEAN_POOLING_NOT_IN_TRANSFORMERS``,
  ``no_progress_bars``;
* ``finetuning``: ``finetune``, ``HEAD_PREFIXES``, ``head_prefixes``, ``freeze_body``,
  ``classification_loss``, ``evaluate_classifier``, ``fingerprint``, ``check_labels_fit``,
  ``FINETUNE``, ``check_max_length``.

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
from textft_lib.baselines import (MajorityBaseline, check_training_data, fit_features_logreg, fit_tfidf_logreg,
                                  pick_by_validation)
from textft_lib.classifier import (CLASSIFIER_FILE, MEAN_POOLING_NOT_IN_TRANSFORMERS, POOLINGS,
                                   TRANSFORMERS_CONFIG_FILE, WEIGHTS_FILE, BertClassifier, Classifier, Prediction,
                                   TransformersExportWarning, logits_of, model_classes, model_max_length,
                                   no_progress_bars, pool)
from textft_lib.data import (Split, TextDataset, labels_to_ids, load_dataset, load_labelled, read_table,
                             split_report, stratified_split, subsample)
from textft_lib.encoding import TextClassificationDataset, TruncationWarning, check_texts, encode_texts
from textft_lib.finetuning import (HEAD_PREFIXES, FINETUNE, check_labels_fit, check_max_length, classification_loss,
                                   evaluate_classifier, finetune, fingerprint, freeze_body, head_prefixes)
from textft_lib.metrics import (accuracy, as_label_names, as_labels, check_int, check_number, class_ids,
                                classification_report, confusion_matrix, expected_calibration_error,
                                fit_temperature, format_report, most_confident_mistakes, plot_confusion_matrix,
                                plot_reliability, precision_recall_f1, reliability_bins, softmax)

#: The labelled datasets ``load_dataset`` accepts (taken from ``data``'s catalogue).
DATASETS = data.labelled_datasets()

__all__ = [
    "DATASETS", "load_dataset", "subsample", "load_labelled", "Split", "TextDataset", "read_table",
    "labels_to_ids", "stratified_split", "split_report",
    "accuracy", "confusion_matrix", "precision_recall_f1", "classification_report", "format_report",
    "as_labels", "class_ids", "as_label_names", "check_int", "check_number",
    "reliability_bins", "expected_calibration_error", "softmax", "fit_temperature",
    "plot_confusion_matrix", "plot_reliability", "most_confident_mistakes",
    "MajorityBaseline", "fit_tfidf_logreg", "fit_features_logreg", "check_training_data", "pick_by_validation",
    "TruncationWarning", "check_texts", "encode_texts", "TextClassificationDataset",
    "logits_of", "Prediction", "CLASSIFIER_FILE", "WEIGHTS_FILE", "Classifier", "model_max_length",
    "model_classes", "TRANSFORMERS_CONFIG_FILE", "TransformersExportWarning", "MEAN_POOLING_NOT_IN_TRANSFORMERS",
    "no_progress_bars",
    "POOLINGS", "pool", "BertClassifier",
    "HEAD_PREFIXES", "head_prefixes", "freeze_body", "classification_loss", "evaluate_classifier",
    "fingerprint", "finetune", "FINETUNE", "check_labels_fit", "check_max_length",
]
