"""Our BERT and ``transformers``' ``BertForMaskedLM``: parameter names both ways (``hf_name``,
``our_name``, ``NAME_MAP``), weights both ways (``to_transformers``, ``from_transformers``),
and folders in ``save_pretrained`` format (``save_pretrained``, ``load_pretrained``).

Example::

    hf = to_transformers(model)                  # a BertForMaskedLM with the same logits
    save_pretrained(model, tok, "my-bert")       # AutoModelForMaskedLM.from_pretrained("my-bert") loads it
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from textft_lib import wordpiece
from textft_lib.bert.model import BertConfig, BertForMLM


#: (our name, transformers' name) as regular expressions; ``{i}`` is the layer index.
NAME_MAP: list[tuple[str, str]] = [
    ("bert.embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight"),
    ("bert.embeddings.position_embeddings.weight", "bert.embeddings.position_embeddings.weight"),
    ("bert.embeddings.token_type_embeddings.weight", "bert.embeddings.token_type_embeddings.weight"),
    ("bert.embeddings.norm.{p}", "bert.embeddings.LayerNorm.{p}"),
    ("bert.layers.{i}.self_attn.q_proj.{p}", "bert.encoder.layer.{i}.attention.self.query.{p}"),
    ("bert.layers.{i}.self_attn.k_proj.{p}", "bert.encoder.layer.{i}.attention.self.key.{p}"),
    ("bert.layers.{i}.self_attn.v_proj.{p}", "bert.encoder.layer.{i}.attention.self.value.{p}"),
    ("bert.layers.{i}.self_attn.out_proj.{p}", "bert.encoder.layer.{i}.attention.output.dense.{p}"),
    ("bert.layers.{i}.norm1.{p}", "bert.encoder.layer.{i}.attention.output.LayerNorm.{p}"),
    ("bert.layers.{i}.linear1.{p}", "bert.encoder.layer.{i}.intermediate.dense.{p}"),
    ("bert.layers.{i}.linear2.{p}", "bert.encoder.layer.{i}.output.dense.{p}"),
    ("bert.layers.{i}.norm2.{p}", "bert.encoder.layer.{i}.output.LayerNorm.{p}"),
    ("head.dense.{p}", "cls.predictions.transform.dense.{p}"),
    ("head.norm.{p}", "cls.predictions.transform.LayerNorm.{p}"),
    ("head.bias", "cls.predictions.bias"),
]

#: transformers' names that hold a tied copy (the same tensor as another entry).
HF_TIED = {"cls.predictions.decoder.weight": "bert.embeddings.word_embeddings.weight",
           "cls.predictions.decoder.bias": "cls.predictions.bias"}


def _pattern(template: str) -> re.Pattern[str]:
    regex = re.escape(template).replace(r"\{i\}", r"(?P<i>\d+)").replace(r"\{p\}", r"(?P<p>weight|bias)")
    return re.compile(regex + "$")


_OURS_TO_HF = [(_pattern(a), b) for a, b in NAME_MAP]
_HF_TO_OURS = [(_pattern(b), a) for a, b in NAME_MAP]


def _translate(name: str, table: list[tuple[re.Pattern[str], str]], direction: str) -> str:
    for pattern, template in table:
        m = pattern.match(name)
        if m:
            return template.format(**m.groupdict())
    raise KeyError(f"no {direction} name for parameter {name!r}")


def hf_name(name: str) -> str:
    """Our parameter name -> ``BertForMaskedLM``'s: ``bert.layers.0.linear1.weight`` ->
    ``bert.encoder.layer.0.intermediate.dense.weight``."""
    return _translate(name, _OURS_TO_HF, "transformers")


def our_name(name: str) -> str:
    """``BertForMaskedLM``'s parameter name -> ours (the inverse of ``hf_name``)."""
    return _translate(name, _HF_TO_OURS, "textft")


def to_hf_state_dict(model: BertForMLM) -> dict[str, Tensor]:
    """Our weights under ``BertForMaskedLM``'s names, tied entries included."""
    out = {hf_name(k): v for k, v in model.state_dict().items()}
    for tied, source in HF_TIED.items():
        out[tied] = out[source]
    return out


def from_hf_state_dict(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """``BertForMaskedLM`` weights under our names. Raises if a tied decoder differs from
    the embeddings (an untied checkpoint cannot be represented by this model)."""
    for tied, source in HF_TIED.items():
        if tied in state and source in state and not torch.equal(state[tied], state[source]):
            raise ValueError(f"{tied} differs from {source}: this model ties them, so it cannot hold "
                             "an untied checkpoint")
    skip = set(HF_TIED) | {"bert.embeddings.position_ids", "bert.embeddings.token_type_ids"}
    return {our_name(k): v for k, v in state.items() if k not in skip}


def to_transformers(model: Any, attn_implementation: str = "sdpa") -> Any:
    """A ``transformers.BertForMaskedLM`` holding a copy of ``model``'s weights (same logits).

    ``attn_implementation``: ``"sdpa"`` (transformers' default) or ``"eager"`` (the
    attention formula written out). The copy is on ``model``'s device and in its mode.

    A ``classifier.BertClassifier`` becomes a ``BertForSequenceClassification`` instead
    (``BertClassifier.to_transformers``): with ``pooling="cls"`` only, since transformers
    has no mean-pooling classifier (``ValueError`` says so). Other models raise ``TypeError``.

    Example::

        hf = to_transformers(BertForMLM(cfg)).eval()      # transformers.BertForMaskedLM
    """
    from transformers import BertForMaskedLM

    from textft_lib.classifier import BertClassifier   # here, not at the top: classifier imports bert

    if isinstance(model, BertClassifier):
        return model.to_transformers(attn_implementation)
    if not isinstance(model, BertForMLM):
        raise TypeError(f"to_transformers converts a BertForMLM (or a classifier.BertClassifier), "
                        f"got {type(model).__name__}")

    hf_config = model.config.to_hf()
    hf_config._attn_implementation = attn_implementation
    hf = BertForMaskedLM(hf_config)
    missing, unexpected = hf.load_state_dict(to_hf_state_dict(model), strict=False)
    missing = [k for k in missing if k not in HF_TIED and not k.endswith(("position_ids", "token_type_ids"))]
    if missing or unexpected:
        raise RuntimeError(f"weight mapping incomplete: missing {missing}, unexpected {unexpected}")
    if hf.cls.predictions.decoder.weight.data_ptr() != hf.bert.embeddings.word_embeddings.weight.data_ptr():
        raise RuntimeError("the transformers model did not tie its decoder to the word embeddings")
    return hf.to(next(model.parameters()).device).train(model.training)


def from_transformers(hf_model: Any) -> BertForMLM:
    """Our ``BertForMLM`` with the weights of a ``transformers.BertForMaskedLM`` (same logits).

    Example (with the network)::

        hf = transformers.AutoModelForMaskedLM.from_pretrained("bert-base-uncased")
        model = from_transformers(hf)
    """
    model = BertForMLM(BertConfig.from_hf(hf_model.config))
    state = from_hf_state_dict(hf_model.state_dict())
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise RuntimeError(f"weight mapping incomplete: missing {missing}, unexpected {unexpected}")
    return model.train(hf_model.training)


def check_tokenizer(model: BertForMLM, tokenizer: Any) -> None:
    """Raise unless ``tokenizer`` fits ``model``: same vocabulary size, same padding id."""
    if len(tokenizer) != model.config.vocab_size:
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model's vocabulary has "
                         f"{model.config.vocab_size}: they do not belong together")
    if tokenizer.pad_token_id != model.config.pad_token_id:
        raise ValueError(f"the tokenizer pads with id {tokenizer.pad_token_id}, the model expects "
                         f"{model.config.pad_token_id}")


def save_pretrained(model: BertForMLM, tokenizer: Any, folder: str | Path) -> Path:
    """Write ``model`` and ``tokenizer`` in ``transformers``' format (``config.json``,
    ``model.safetensors``, tokenizer files), so that
    ``AutoModelForMaskedLM.from_pretrained(folder)`` and ``AutoTokenizer.from_pretrained(folder)``
    load them."""
    check_tokenizer(model, tokenizer)
    folder = Path(folder)
    to_transformers(model).cpu().save_pretrained(folder)
    tokenizer = copy.deepcopy(tokenizer)          # the caller's tokenizer stays as it was
    tokenizer.model_max_length = model.config.max_position_embeddings   # truncation=True cuts here
    wordpiece.save_tokenizer(tokenizer, folder)
    return folder


def load_pretrained(folder: str | Path) -> tuple[BertForMLM, Any]:
    """Read a folder written by ``save_pretrained`` (or any local BERT MLM checkpoint) into
    ``(BertForMLM, tokenizer)``, offline."""
    from transformers import AutoModelForMaskedLM

    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"{folder} holds no config.json: not a save_pretrained folder")
    hf = AutoModelForMaskedLM.from_pretrained(str(folder), local_files_only=True)
    model = from_transformers(hf).eval()
    tokenizer = wordpiece.load_tokenizer(folder)
    check_tokenizer(model, tokenizer)
    return model, tokenizer
