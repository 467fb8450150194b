"""Classifier models and using them (lesson 07).

* ``BertClassifier``: the course's BERT encoder + a head on one vector per sentence
  (``pool``: the [CLS] vector or the mean over real tokens);
* ``Classifier``: tokenizer + model + label names, with a batched ``predict(texts)``
  returning a ``Prediction``, ``evaluate``, ``save`` and ``load`` (safetensors); a saved
  folder also loads with ``transformers.AutoModelForSequenceClassification`` whenever
  ``transformers`` has the model (not for mean pooling: ``TransformersExportWarning``);
* ``logits_of`` (the logits of a model's output), ``model_max_length`` (how many
  tokens a model accepts) and ``model_classes`` (how many classes its head outputs),
  which fine-tuning uses too.

Example::

    from textft_lib import classifier
    clf = classifier.Classifier(model, tokenizer, ["negative", "positive"])
    clf.predict(["a gripping, beautifully acted film"]).names      # ['positive']
"""

from __future__ import annotations

import contextlib
import functools
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from safetensors.torch import load_model, save_model
from torch import nn

from textft_lib import bert, config
from textft_lib.encoding import TruncationWarning, check_texts, encode_texts
from textft_lib.train import evaluating
from textft_lib.transformer import attention_mask_to_bool, masked_mean
from textft_lib.metrics import (as_label_names, check_int, check_number, classification_report,
                                expected_calibration_error, softmax)


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
#: The file of ``transformers``' configuration: ``Classifier.save`` writes it only where
#: ``AutoModelForSequenceClassification`` can load the folder.
TRANSFORMERS_CONFIG_FILE = "config.json"
#: Why a mean-pooled ``BertClassifier`` has no ``transformers`` form.
MEAN_POOLING_NOT_IN_TRANSFORMERS = (
    "transformers' BertForSequenceClassification always classifies the [CLS] vector (through its "
    "pooler); it has no mean-pooling option, so a model that averages the token vectors would load "
    "there with the same weights and give different answers")


class TransformersExportWarning(UserWarning):
    """A classifier was saved in a form that only ``Classifier.load`` reads, because
    ``transformers`` has no model that computes the same thing."""


@contextlib.contextmanager
def no_progress_bars() -> Iterator[None]:
    """Hide ``transformers``' progress bars (one per file it writes or reads) inside the block,
    restoring the setting after. Example: ``with no_progress_bars(): hf.save_pretrained(folder)``."""
    from transformers.utils import logging as hf_logging

    try:   # the GGUF reader draws its own tqdm bar, outside the switch above
        from transformers import modeling_gguf_pytorch_utils as gguf_reader
    except ImportError:
        gguf_reader = None
    bar = getattr(gguf_reader, "tqdm", None)
    shown = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    if bar is not None:
        gguf_reader.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        if shown:
            hf_logging.enable_progress_bar()
        if bar is not None:
            gguf_reader.tqdm = bar


def model_classes(model: Any) -> int | None:
    """How many classes ``model``'s head outputs: ``num_classes`` (the course's classifiers) or
    ``config.num_labels`` (``transformers``' models); None when the model does not say.

    Example: ``model_classes(BertClassifier(cfg, 3))`` is ``3``.
    """
    n = getattr(model, "num_classes", None)
    if n is None:
        n = getattr(getattr(model, "config", None), "num_labels", None)
    return n if isinstance(n, int) else None


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

    def __init__(self, model: Any, tokenizer: Any, label_names: Sequence[str] | dict[int, str], *,
                 max_length: int | None = None):
        """``label_names``: one name per class, as a list (``label_names[i]`` names class i) or
        a dict ``{id: name}`` with ids 0..n-1 (as ``id2label``), converted to the list. A lone
        string, repeated names or a number of names other than the model's classes raise."""
        self.label_names = as_label_names(label_names)
        n = model_classes(model)
        if n is not None and n != len(self.label_names):
            raise ValueError(f"the model has {n} classes but label_names has {len(self.label_names)} names "
                             f"({self.label_names[:10]}): give one name per class")
        self.model, self.tokenizer = model, tokenizer
        limit = model_max_length(model)
        if max_length is None:
            max_length = limit
        max_length = check_int(max_length, "max_length", minimum=3)
        if max_length > limit:
            raise ValueError(f"max_length={max_length} is longer than the model's {limit} positions")
        self.max_length = max_length

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    def logits(self, texts: Sequence[str], *, batch_size: int = 64) -> tuple[Any, list[int]]:
        """``(N, C)`` float32 logits on the CPU for ``texts``, and the positions that were truncated.

        Texts are batched by length (longest first), so that each batch is padded only to
        its own longest text: the answers are those of one text at a time, about twice as
        fast as batches in the given order on short texts of mixed length."""

        texts = check_texts(texts)
        batch_size = check_int(batch_size, "batch_size", minimum=1)
        ids, mask, truncated = encode_texts(self.tokenizer, texts, self.max_length, warn=False)
        lengths = mask.sum(dim=1)
        order = torch.argsort(lengths, descending=True, stable=True)
        out = torch.empty(len(texts), len(self.label_names))
        with evaluating(self.model), torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                rows = order[start:start + batch_size]
                n = int(lengths[rows].max())
                logits = logits_of(self.model(input_ids=ids[rows, :n].to(self.device),
                                              attention_mask=mask[rows, :n].to(self.device)))
                if logits.shape[1] != len(self.label_names):
                    raise ValueError(f"the model gives {logits.shape[1]} logits per text but there are "
                                     f"{len(self.label_names)} label names")
                out[rows] = logits.float().cpu()
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
        temperature = check_number(temperature, "temperature", low=0, low_open=True)
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
        ``classifier.json`` (label names, length limit, model kind and configuration), which
        ``Classifier.load`` reads back. Returns the folder.

        Where ``transformers`` has the same model, the folder is also a ``transformers``
        checkpoint (``config.json`` with ``id2label``, weights under its names), so that
        ``AutoModelForSequenceClassification.from_pretrained(folder)`` and
        ``AutoTokenizer.from_pretrained(folder)`` load it: a ``transformers`` model, and a
        ``BertClassifier`` with ``pooling="cls"`` (saved as ``BertForSequenceClassification``).

        A ``BertClassifier`` with ``pooling="mean"`` has no ``transformers`` equivalent
        (``MEAN_POOLING_NOT_IN_TRANSFORMERS``): it is saved for ``Classifier.load`` only, with
        no ``config.json`` (a stale one in ``folder`` is removed, since it would describe
        another model), ``classifier.json`` says so under ``"transformers"``, and a
        ``TransformersExportWarning`` tells the caller.

        Example::

            clf.save("my_classifier")
            Classifier.load("my_classifier").predict(["a fine film"]).names
        """
        folder = Path(folder)
        meta: dict[str, Any] = {"format": "textft-classifier", "version": 1, "label_names": self.label_names,
                                "max_length": self.max_length}
        if isinstance(self.model, BertClassifier):
            meta["kind"] = "textft-bert"
            meta["model_config"] = self.model.config_dict()
            if self.model.pooling == "cls":
                hf = self.model.to_transformers()
            else:
                hf = None
        elif hasattr(self.model, "save_pretrained"):
            meta["kind"] = "transformers"
            hf = self.model
        else:
            raise TypeError(f"cannot save a {type(self.model).__name__}: use BertClassifier or a transformers model")
        folder.mkdir(parents=True, exist_ok=True)
        if hf is not None:
            hf.config.id2label = dict(enumerate(self.label_names))
            hf.config.label2id = {n: i for i, n in enumerate(self.label_names)}
            with no_progress_bars():
                hf.save_pretrained(folder)
            meta["weights"] = "transformers"
            meta["transformers"] = {"loads": True, "class": type(hf).__name__}
        else:
            (folder / TRANSFORMERS_CONFIG_FILE).unlink(missing_ok=True)
            save_model(self.model, str(folder / WEIGHTS_FILE))
            meta["weights"] = "textft"
            meta["transformers"] = {"loads": False, "why": MEAN_POOLING_NOT_IN_TRANSFORMERS}
            warnings.warn(f"{folder} holds a mean-pooled BertClassifier: Classifier.load reads it, but "
                          f"transformers cannot: {MEAN_POOLING_NOT_IN_TRANSFORMERS}. Train with pooling='cls' "
                          "for a folder that transformers loads too", TransformersExportWarning, stacklevel=2)
        self.tokenizer.save_pretrained(folder)
        (folder / CLASSIFIER_FILE).write_text(json.dumps(meta, indent=2))
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, device: Any = None) -> "Classifier":
        """Load a classifier written by ``save`` (weights with safetensors, no pickles): a
        ``BertClassifier`` comes back as one, whichever form its weights were saved in.

        Example: ``Classifier.load("my_classifier", device="cpu")``."""
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
        if meta["kind"] == "textft-bert" and meta.get("weights") == "transformers":
            from transformers import AutoModelForSequenceClassification

            with no_progress_bars():
                hf = AutoModelForSequenceClassification.from_pretrained(folder)
            model = BertClassifier.from_transformers(hf)
            if model.config_dict() != meta["model_config"]:
                raise ValueError(f"{folder}: the transformers weights do not match the BertClassifier "
                                 f"described in {CLASSIFIER_FILE}")
        elif meta["kind"] == "textft-bert":       # our parameter names (mean pooling, or an older save)
            model = BertClassifier.from_config(meta["model_config"])
            load_model(model, str(folder / WEIGHTS_FILE))
        elif meta["kind"] == "transformers":
            from transformers import AutoModelForSequenceClassification

            with no_progress_bars():
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


# --------------------------------------------------------------------------- BERT with a classification head

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
        super().__init__()
        num_classes = check_int(num_classes, "num_classes")
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

        mlm, tokenizer = bert.load_pretrained(folder)
        cfg = mlm.config if dropout is None else replace(mlm.config, hidden_dropout_prob=dropout)
        model = cls(cfg, num_classes, dropout=dropout, pooling=pooling)
        model.bert.load_state_dict(mlm.bert.state_dict())
        return model, tokenizer

    def to_transformers(self, attn_implementation: str = "sdpa") -> Any:
        """A ``transformers.BertForSequenceClassification`` holding a copy of this model's
        weights (same logits), on this model's device and in its mode; the inverse of
        ``from_transformers``.

        Only ``pooling="cls"`` has one: with ``pooling="mean"`` it raises ``ValueError``
        (``MEAN_POOLING_NOT_IN_TRANSFORMERS``); save such a model with ``Classifier.save``.

        Example::

            hf = BertClassifier(cfg, 2).to_transformers()
            hf.save_pretrained("folder")          # AutoModelForSequenceClassification loads it
        """
        from transformers import BertForSequenceClassification

        if self.pooling != "cls":
            raise ValueError(f"a BertClassifier with pooling={self.pooling!r} cannot become a transformers model: "
                             f"{MEAN_POOLING_NOT_IN_TRANSFORMERS}. Classifier.save still saves it for "
                             "Classifier.load")
        hf_config = self.config.to_hf()
        hf_config.num_labels = self.num_classes
        hf_config.classifier_dropout = self.classifier_dropout
        hf_config._attn_implementation = attn_implementation
        hf = BertForSequenceClassification(hf_config)
        state = {}
        for name, value in self.state_dict().items():
            if name.startswith("pooler."):
                state["bert." + name] = value
            elif name.startswith("classifier."):
                state[name] = value
            else:
                state[bert.hf_name(name)] = value
        missing, unexpected = hf.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.endswith(("position_ids", "token_type_ids"))]
        if missing or unexpected:
            raise RuntimeError(f"weight mapping incomplete: missing {missing}, unexpected {unexpected}")
        return hf.to(next(self.parameters()).device).train(self.training)

    @classmethod
    def from_transformers(cls, hf_model: Any) -> "BertClassifier":
        """A copy of a ``transformers.BertForSequenceClassification`` (same logits)."""
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
