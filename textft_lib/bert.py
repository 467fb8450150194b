"""BERT: masked-language-model pretraining, and conversion to and from ``transformers`` (lesson 06).

Pieces, in the order the lesson builds them:

* **data**: ``make_blocks`` cuts tokenized articles into ``[CLS] ... [SEP]`` blocks;
* **masking**: ``mask_tokens`` and ``MLMCollator`` choose 15% of the real (non-special)
  tokens; of those 80% become ``[MASK]``, 10% a random token, 10% stay; labels are the
  original ids there and -100 (ignored by the loss) everywhere else;
* **baseline**: ``unigram_log_probs`` / ``unigram_loss``, the loss of guessing every
  masked token from word frequencies alone, the bar pretraining must clear;
* **model**: ``BertConfig``, ``BertEmbeddings`` (token + position + segment, LayerNorm,
  dropout), ``BertModel`` (embeddings + ``textft_lib.transformer`` post-LN encoder
  layers), ``BertForMLM`` (``BertModel`` + an MLM head whose decoder is the token
  embedding matrix, tied);
* **conversion**: ``hf_name`` / ``our_name`` map parameter names both ways;
  ``to_transformers`` / ``from_transformers`` and ``save_pretrained`` /
  ``load_pretrained`` move weights to and from ``transformers.BertForMaskedLM``;
* **a head start**: ``init_offset_heads`` (every attention head starts looking at a fixed
  neighbour) and ``init_output_bias`` (the output starts at the word frequencies);
  ``new_model`` applies them when ``PretrainConfig.init == "offset_heads"``;
* **training**: ``evaluate_mlm`` (with the loss split by what the input showed),
  ``pretrain`` (on ``textft_lib.train.fit``) and ``course_bert()``, the cached pretrained
  model that lesson 07 fine-tunes;
* **using it**: ``fill_mask`` (the top guesses for a blank) and ``mask_word_scores`` (a
  zero-shot probe: how likely chosen words are in the blank of a template).

Example::

    import torch
    from textft_lib import bert
    cfg = bert.BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=64, max_position_embeddings=16)
    model = bert.BertForMLM(cfg)
    ids = torch.randint(5, 100, (2, 10))                 # (B, L)
    logits = model(ids)                                  # (2, 10, 100)
    hidden = model.bert(ids)                             # (2, 10, 32): what a classifier builds on
"""

from __future__ import annotations

import copy
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textft_lib.text import pad_batch
from textft_lib.transformer import TransformerEncoderLayer, attention_mask_to_bool, check_token_ids

#: The label value that ``F.cross_entropy`` ignores: positions that were not masked.
IGNORE_INDEX = -100


# --------------------------------------------------------------------------- data


def make_blocks(texts: Iterable[str], tokenizer: Any, block_size: int = 128) -> Tensor:
    """Tokenize ``texts`` and cut each into blocks ``[CLS] t1 ... tn [SEP]`` of ``block_size`` ids.

    Each text (an article) is encoded without special tokens and cut into pieces of
    ``block_size - 2`` tokens; a block never spans two texts. The last piece of a text
    is padded with ``[PAD]``. Returns a ``(num_blocks, block_size)`` int64 tensor.

    Example::

        blocks = make_blocks(train_texts, tokenizer, block_size=128)   # (N, 128)
        attention_mask = blocks != tokenizer.pad_token_id              # True = real token
    """
    encoded = _encode_texts(texts, tokenizer, "make_blocks")
    return torch.cat([make_blocks_from_ids(ids, tokenizer, block_size) for ids in encoded if ids])


def pack_blocks(texts: Iterable[str], tokenizer: Any, block_size: int = 128) -> Tensor:
    """Tokenize short ``texts`` (sentences, reviews) and pack them end to end into full
    blocks ``[CLS] t1 ... tn [SEP]`` of ``block_size`` ids.

    ``make_blocks`` gives every text blocks of its own, which suits articles; a sentence of
    15 tokens would then fill a 128-token block with 113 ``[PAD]``, and MLM would spend
    almost all its work on padding. Here the token stream of all texts (in the given order)
    is cut every ``block_size - 2`` tokens, so a block may hold the end of one text and the
    start of the next, as in RoBERTa's pretraining. Only the last block is padded.
    Returns a ``(num_blocks, block_size)`` int64 tensor.

    Example::

        blocks = pack_blocks(["a fine film .", "dull ."], tokenizer, block_size=8)   # (1, 8)
    """
    encoded = _encode_texts(texts, tokenizer, "pack_blocks")
    return make_blocks_from_ids([i for ids in encoded for i in ids], tokenizer, block_size)


def _encode_texts(texts: Iterable[str], tokenizer: Any, caller: str) -> list[list[int]]:
    """The token ids of the non-blank ``texts`` (no special tokens); raises when nothing is left."""
    if isinstance(texts, str):
        raise TypeError(f"{caller} expects a list of texts, not one string (it would be read as characters): "
                        "wrap it as [text]")
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ValueError(f"{caller} needs at least one non-empty text")
    # verbose=False: articles are longer than model_max_length, which is fine before cutting
    encoded = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    if not any(encoded):
        raise ValueError(f"{caller}: the texts tokenized to nothing")
    return encoded


def make_blocks_from_ids(ids: Sequence[int], tokenizer: Any, block_size: int) -> Tensor:
    """Cut one token stream ``ids`` into ``[CLS] ... [SEP]`` blocks of ``block_size``, the last padded."""
    if block_size < 3:
        raise ValueError(f"block_size must be at least 3 ([CLS], one token, [SEP]), got {block_size}")
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    if None in (cls_id, sep_id, pad_id):
        raise ValueError("the tokenizer needs [CLS], [SEP] and [PAD] tokens")
    if len(ids) == 0:
        raise ValueError("no tokens to cut into blocks: the texts tokenized to nothing")
    body = block_size - 2
    rows = []
    for start in range(0, len(ids), body):
        piece = [cls_id, *ids[start:start + body], sep_id]
        rows.append(piece + [pad_id] * (block_size - len(piece)))
    return torch.tensor(rows, dtype=torch.long)


# --------------------------------------------------------------------------- masking


def mask_tokens(input_ids: Tensor, special_mask: Tensor, *, mask_token_id: int, random_ids: Tensor,
                mlm_probability: float = 0.15, mask_replace_prob: float = 0.8, random_replace_prob: float = 0.1,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """BERT's masking: returns ``(inputs, labels)``, both ``(B, L)`` like ``input_ids``.

    * each position where ``special_mask`` is False is chosen with probability
      ``mlm_probability`` (15%); special tokens and padding are never chosen;
    * a chosen position becomes ``mask_token_id`` with probability ``mask_replace_prob``
      (80%), a token drawn uniformly from ``random_ids`` with probability
      ``random_replace_prob`` (10%), and keeps its token otherwise (10%);
    * ``labels`` holds the original id at chosen positions and -100 everywhere else.

    ``input_ids`` is not modified. Example::

        special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
        inputs, labels = mask_tokens(ids, special, mask_token_id=tokenizer.mask_token_id,
                                     random_ids=torch.arange(5, len(tokenizer)))
    """
    if input_ids.dtype != torch.long:
        raise TypeError(f"input_ids must be int64, got {input_ids.dtype}")
    if special_mask.shape != input_ids.shape or special_mask.dtype != torch.bool:
        raise ValueError(f"special_mask must be a bool tensor of shape {tuple(input_ids.shape)}, "
                         f"got {special_mask.dtype} {tuple(special_mask.shape)}")
    if not 0.0 < mlm_probability < 1.0:
        raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
    if mask_replace_prob < 0 or random_replace_prob < 0 or mask_replace_prob + random_replace_prob > 1:
        raise ValueError("mask_replace_prob and random_replace_prob must be >= 0 and sum to at most 1, "
                         f"got {mask_replace_prob} and {random_replace_prob}")
    if random_ids.numel() == 0:
        raise ValueError("random_ids is empty: there is no token to draw random replacements from")
    device = input_ids.device

    def uniform() -> Tensor:
        return torch.rand(input_ids.shape, generator=generator, device=device)

    chosen = (uniform() < mlm_probability) & ~special_mask               # (B, L) the 15%
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    # one draw decides the fate of each chosen token: [0, .8) mask, [.8, .9) random, rest keep
    fate = uniform()
    to_mask = chosen & (fate < mask_replace_prob)
    to_random = chosen & (fate >= mask_replace_prob) & (fate < mask_replace_prob + random_replace_prob)
    pick = torch.randint(len(random_ids), input_ids.shape, generator=generator, device=device)
    inputs = input_ids.clone()
    inputs[to_mask] = mask_token_id
    inputs[to_random] = random_ids.to(device)[pick[to_random]]
    return inputs, labels


class MLMCollator:
    """Turn a list of equal-length id sequences into a masked batch for MLM training.

    ``__call__(examples)`` takes a list of ``(L,)`` int tensors (or lists of ints) and
    returns a dict of ``(B, L)`` tensors: ``input_ids`` (masked), ``labels`` (original ids
    at the chosen positions, -100 elsewhere) and ``attention_mask`` (bool, True = real
    token). The tokenizer's special ids (``[PAD]``, ``[CLS]``, ``[SEP]``, ``[UNK]``,
    ``[MASK]``) are never chosen; random replacements are drawn from the other ids.

    Example::

        collate = MLMCollator(tokenizer, seed=0)
        loader = torch.utils.data.DataLoader(blocks, batch_size=32, shuffle=True, collate_fn=collate)
        batch = next(iter(loader))     # batch["input_ids"], batch["labels"], batch["attention_mask"]
    """

    def __init__(self, tokenizer: Any, *, mlm_probability: float = 0.15, mask_replace_prob: float = 0.8,
                 random_replace_prob: float = 0.1, seed: int | None = None) -> None:
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs [MASK] and [PAD] tokens for masked-language modelling")
        self.mask_token_id = int(tokenizer.mask_token_id)
        self.pad_token_id = int(tokenizer.pad_token_id)
        self.vocab_size = len(tokenizer)
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        self.random_ids = torch.tensor([i for i in range(self.vocab_size) if i not in set(self.special_ids.tolist())])
        self.mlm_probability = mlm_probability
        self.mask_replace_prob = mask_replace_prob
        self.random_replace_prob = random_replace_prob
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __call__(self, examples: Sequence[Tensor | Sequence[int]]) -> dict[str, Tensor]:
        if len(examples) == 0:
            raise ValueError("MLMCollator got an empty list of examples")
        rows = [torch.as_tensor(e) for e in examples]
        if any(r.dtype == torch.bool or r.is_floating_point() or r.is_complex() for r in rows if r.numel()):
            raise TypeError("MLMCollator expects integer token ids, got "
                            f"{sorted({str(r.dtype) for r in rows})}: float ids would be truncated")
        rows = [r.long() for r in rows]
        lengths = {r.shape for r in rows}
        if len(lengths) != 1 or rows[0].dim() != 1:
            raise ValueError(f"MLMCollator expects 1-D sequences of one length (use make_blocks), got shapes {lengths}")
        ids = torch.stack(rows)                                              # (B, L)
        if int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size:
            raise IndexError(f"token ids must lie in [0, {self.vocab_size}), got {int(ids.min())}..{int(ids.max())}")
        special = torch.isin(ids, self.special_ids)
        inputs, labels = mask_tokens(ids, special, mask_token_id=self.mask_token_id, random_ids=self.random_ids,
                                     mlm_probability=self.mlm_probability, mask_replace_prob=self.mask_replace_prob,
                                     random_replace_prob=self.random_replace_prob, generator=self.generator)
        return {"input_ids": inputs, "labels": labels, "attention_mask": ids != self.pad_token_id}


# --------------------------------------------------------------------------- the unigram baseline


def unigram_log_probs(blocks: Tensor, vocab_size: int, special_ids: Iterable[int]) -> Tensor:
    """Log-frequencies of the non-special tokens in ``blocks``, with add-one smoothing.

    Returns a ``(vocab_size,)`` tensor of log-probabilities (special ids get ``-inf``):
    the best guess for a masked token when the context is ignored.
    """
    special = torch.tensor(sorted(set(special_ids)), dtype=torch.long)
    counts = torch.bincount(blocks.reshape(-1), minlength=vocab_size).double()
    if counts.numel() != vocab_size:
        raise IndexError(f"blocks hold ids >= vocab_size={vocab_size}")
    counts += 1.0
    counts[special] = 0.0
    return (counts / counts.sum()).log().float()


def unigram_loss(log_probs: Tensor, labels: Tensor) -> float:
    """Cross-entropy (nats) of predicting each labelled token from ``log_probs`` alone.

    ``labels`` is ``(B, L)`` with -100 at ignored positions, as ``MLMCollator`` makes it.
    """
    targets = labels[labels != IGNORE_INDEX]
    if targets.numel() == 0:
        raise ValueError("labels hold no masked position")
    return float(-log_probs[targets].double().mean())


# --------------------------------------------------------------------------- the model


@dataclass
class BertConfig:
    """The sizes of a BERT model. Field names follow ``transformers.BertConfig``.

    ``to_hf()`` gives the equivalent ``transformers.BertConfig``; ``from_hf(cfg)`` reads one.
    bert-base-uncased is ``BertConfig(vocab_size=30522)`` with the other defaults.
    """

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                     "intermediate_size", "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.hidden_size % self.num_attention_heads:
            raise ValueError(f"hidden_size={self.hidden_size} is not divisible by "
                             f"num_attention_heads={self.num_attention_heads}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id={self.pad_token_id} is outside the vocabulary of {self.vocab_size}")

    def to_hf(self) -> Any:
        """The same sizes as a ``transformers.BertConfig`` (dropout on attention and hidden states alike)."""
        from transformers import BertConfig as HFBertConfig

        return HFBertConfig(
            vocab_size=self.vocab_size, hidden_size=self.hidden_size, num_hidden_layers=self.num_hidden_layers,
            num_attention_heads=self.num_attention_heads, intermediate_size=self.intermediate_size,
            max_position_embeddings=self.max_position_embeddings, type_vocab_size=self.type_vocab_size,
            hidden_dropout_prob=self.hidden_dropout_prob, attention_probs_dropout_prob=self.hidden_dropout_prob,
            layer_norm_eps=self.layer_norm_eps, initializer_range=self.initializer_range,
            pad_token_id=self.pad_token_id, hidden_act="gelu", tie_word_embeddings=True)

    @classmethod
    def from_hf(cls, hf_config: Any) -> BertConfig:
        """Read a ``transformers.BertConfig``; raise if it describes a BERT this model cannot copy."""
        act = getattr(hf_config, "hidden_act", "gelu")
        if act != "gelu":
            raise ValueError(f"hidden_act={act!r} is not supported (only the exact 'gelu')")
        pos = getattr(hf_config, "position_embedding_type", "absolute")
        if pos != "absolute":
            raise ValueError(f"position_embedding_type={pos!r} is not supported (only 'absolute')")
        if hf_config.attention_probs_dropout_prob != hf_config.hidden_dropout_prob:
            raise ValueError("this model uses one dropout rate; the config has attention_probs_dropout_prob="
                             f"{hf_config.attention_probs_dropout_prob} and hidden_dropout_prob="
                             f"{hf_config.hidden_dropout_prob}")
        kwargs = {f.name: getattr(hf_config, f.name) for f in fields(cls)}
        kwargs["pad_token_id"] = kwargs["pad_token_id"] if kwargs["pad_token_id"] is not None else 0
        return cls(**kwargs)


class BertEmbeddings(nn.Module):
    """Token + position + segment embeddings, summed, then LayerNorm and dropout.

    ``forward(input_ids (B, L), token_type_ids (B, L) or None) -> (B, L, hidden_size)``.
    Position ``i`` gets the learned vector ``position_embeddings[i]``; all sentences of
    the course are segment 0 (segment 1 is the second sentence of a pair).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.word_embeddings = nn.Embedding(config.vocab_size, d, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, d)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, d)
        self.norm = nn.LayerNorm(d, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        length = input_ids.shape[1]
        positions = torch.arange(length, device=input_ids.device)                  # (L,)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions)   # (B, L, d)
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.norm(x))


class BertModel(nn.Module):
    """BERT's encoder: ``BertEmbeddings`` then ``num_hidden_layers`` post-LN encoder layers.

    ``forward(input_ids (B, L), attention_mask=None (B, L) bool/int, 1 = real token,
    token_type_ids=None (B, L)) -> hidden states (B, L, hidden_size)``. The vector at
    position 0 (the ``[CLS]`` token) is the usual summary of the whole text.

    Raises when ``L`` exceeds ``max_position_embeddings`` (truncate the text first, e.g.
    with ``tokenizer(..., truncation=True, max_length=...)``) and when an id is outside
    the vocabulary (a tokenizer that does not belong to this model).
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(config.hidden_size, config.num_attention_heads, config.intermediate_size,
                                    dropout=config.hidden_dropout_prob, activation="gelu", norm_first=False,
                                    layer_norm_eps=config.layer_norm_eps)
            for _ in range(config.num_hidden_layers))

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
        cfg = self.config
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}")
        if input_ids.shape[1] > cfg.max_position_embeddings:
            raise ValueError(f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings="
                             f"{cfg.max_position_embeddings}: truncate the text (truncation=True, "
                             f"max_length={cfg.max_position_embeddings})")
        check_token_ids(input_ids, cfg.vocab_size, "input_ids")
        if token_type_ids is not None:
            if token_type_ids.shape != input_ids.shape:
                raise ValueError(f"token_type_ids has shape {tuple(token_type_ids.shape)}, "
                                 f"input_ids {tuple(input_ids.shape)}")
            check_token_ids(token_type_ids, cfg.type_vocab_size, "token_type_ids")
        mask = None
        if attention_mask is not None:
            if attention_mask.shape != input_ids.shape:
                raise ValueError(f"attention_mask has shape {tuple(attention_mask.shape)}, "
                                 f"input_ids {tuple(input_ids.shape)}")
            mask = attention_mask_to_bool(attention_mask)
            if bool(mask.all()):
                mask = None       # no padding: the attention kernels run faster without a mask
        x = self.embeddings(input_ids, token_type_ids)                               # (B, L, d)
        for layer in self.layers:
            x = layer(x, key_padding_mask=mask)
        return x


class MLMHead(nn.Module):
    """Hidden states -> vocabulary logits: dense, GELU, LayerNorm, then the tied decoder.

    The decoder's weight is the token-embedding matrix (passed in at call time, so there
    is one tensor, not a copy); only its bias belongs to the head.
    ``forward(h (..., d), embedding_weight (V, d)) -> (..., V)``.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))

    def forward(self, h: Tensor, embedding_weight: Tensor) -> Tensor:
        return F.linear(self.norm(F.gelu(self.dense(h))), embedding_weight, self.bias)


class BertForMLM(nn.Module):
    """BERT with its masked-language-model head; weights map one-to-one onto
    ``transformers.BertForMaskedLM`` (see ``hf_name``).

    * ``model(input_ids, attention_mask=None, token_type_ids=None) -> logits (B, L, V)``
    * ``model.mlm_loss(input_ids, labels, attention_mask=None)`` -> ``(loss, logits_at_masked,
      targets)``: the head runs only at the masked positions (15% of them), which saves
      most of the decoder's work in training.
    * ``model.bert``: the ``BertModel`` encoder, ``(B, L) -> (B, L, hidden_size)``.
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.head = MLMHead(config)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        """BERT's initialisation: N(0, 0.02) weights, zero biases, LayerNorm at identity."""
        std = self.config.initializer_range
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, std=std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=std)
            if module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    @property
    def decoder_weight(self) -> Tensor:
        """The MLM decoder's weight: the token-embedding matrix itself (tied), ``(V, d)``."""
        return self.bert.embeddings.word_embeddings.weight

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None,
                token_type_ids: Tensor | None = None) -> Tensor:
        h = self.bert(input_ids, attention_mask, token_type_ids)                    # (B, L, d)
        return self.head(h, self.decoder_weight)                                    # (B, L, V)

    def mlm_loss(self, input_ids: Tensor, labels: Tensor, attention_mask: Tensor | None = None,
                 token_type_ids: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """Cross-entropy at the masked positions only.

        Returns ``(loss, logits (N, V), targets (N,))`` for the ``N`` positions whose
        label is not -100. The loss equals ``F.cross_entropy(model(ids).transpose(1, 2),
        labels)`` (which ignores -100), computed without the unused (B, L, V) logits.
        """
        if labels.shape != input_ids.shape:
            raise ValueError(f"labels has shape {tuple(labels.shape)}, input_ids {tuple(input_ids.shape)}")
        h = self.bert(input_ids, attention_mask, token_type_ids)                    # (B, L, d)
        where = labels != IGNORE_INDEX                                              # (B, L)
        if not bool(where.any()):
            raise ValueError("labels hold no masked position (all -100): nothing to predict")
        logits = self.head(h[where], self.decoder_weight)                           # (N, V)
        targets = labels[where]                                                     # (N,)
        return F.cross_entropy(logits, targets), logits, targets

    def num_parameters(self, *, exclude_embeddings: bool = False) -> int:
        """Number of parameters (the tied decoder counted once)."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            emb = self.bert.embeddings
            n -= sum(p.numel() for m in (emb.word_embeddings, emb.position_embeddings, emb.token_type_embeddings)
                     for p in m.parameters())
        return n


# --------------------------------------------------------------------------- a head start for attention


def init_offset_heads(model: BertForMLM, *, offsets: Sequence[int] = (-1, 1, -2, 2, -3, 3, -4, 4),
                      position_dims: int | None = None, max_frequency: float = 2.5, base: float = 30.0,
                      sharpness: float = 10.0, position_scale: float = 0.05,
                      freeze_positions: bool = True) -> None:
    """Start every attention head looking at one fixed neighbour (in place).

    With BERT's random start the heads learn to attend by content long before any head
    finds "the token to the left", and MLM training sits on a plateau meanwhile (lesson
    06). This start builds such heads directly, in weights that ``BertForMaskedLM``
    understands, so the model still exports unchanged:

    * the first ``position_dims`` coordinates (default: the head size, at most 32) hold
      the positions only: sin/cos pairs of
      ``F = position_dims // 2`` frequencies from ``max_frequency`` (radians per position)
      down to ``max_frequency / base``, evenly spaced in log, times ``position_scale``;
      the token and segment embeddings are zero there. High frequencies make the peak
      sharp, the low ones keep far positions from aliasing onto it;
    * head ``h`` of layer ``l`` gets offset ``k = offsets[(l * heads + h) % len(offsets)]``:
      its key reads the position pairs, its query reads them rotated by ``k`` steps and
      scaled by ``sharpness``. Since a rotation of position ``i``'s pair is position
      ``i + k``'s, the score peaks where key = query + k;
    * with ``freeze_positions`` the position table is not trained (``requires_grad=False``),
      so the offsets keep their meaning while the rest learns.

    The values, outputs and everything else keep BERT's random start: the model still has
    to learn *what* to take from each neighbour. Example::

        model = BertForMLM(cfg)
        init_offset_heads(model)          # then pretrain as usual
    """
    cfg = model.config
    head_dim = cfg.hidden_size // cfg.num_attention_heads
    position_dims = min(32, head_dim - head_dim % 2) if position_dims is None else position_dims
    if position_dims < 2 or position_dims % 2 or position_dims > head_dim:
        raise ValueError(f"position_dims must be even, at least 2 and at most the head size {head_dim}, "
                         f"got {position_dims}")
    if len(offsets) == 0:
        raise ValueError("offsets is empty: give each head an offset to look at")
    n_freq = position_dims // 2
    freq = max_frequency * base ** (-torch.arange(n_freq, dtype=torch.float64) / max(1, n_freq - 1))  # (F,)
    angle = torch.arange(cfg.max_position_embeddings, dtype=torch.float64)[:, None] * freq  # (P, F)
    emb = model.bert.embeddings
    f = torch.arange(n_freq)
    key = torch.zeros(head_dim, cfg.hidden_size, dtype=torch.float64)     # every head's key: the pairs as they are
    key[2 * f, 2 * f], key[2 * f + 1, 2 * f + 1] = 1.0, 1.0
    with torch.no_grad():
        table = torch.zeros_like(emb.position_embeddings.weight)                          # (P, d)
        table[:, 0:position_dims:2] = (position_scale * angle.sin()).to(table.dtype)
        table[:, 1:position_dims:2] = (position_scale * angle.cos()).to(table.dtype)
        emb.position_embeddings.weight.copy_(table)
        emb.word_embeddings.weight[:, :position_dims] = 0
        emb.token_type_embeddings.weight[:, :position_dims] = 0
        for li, layer in enumerate(model.bert.layers):
            attn = layer.self_attn
            for h in range(cfg.num_attention_heads):
                k = offsets[(li * cfg.num_attention_heads + h) % len(offsets)]
                cos, sin = (freq * k).cos(), (freq * k).sin()                                # (F,)
                q = torch.zeros(head_dim, cfg.hidden_size, dtype=torch.float64)
                # sin(a + b) = sin a cos b + cos a sin b;  cos(a + b) = cos a cos b - sin a sin b
                q[2 * f, 2 * f], q[2 * f, 2 * f + 1] = cos, sin
                q[2 * f + 1, 2 * f], q[2 * f + 1, 2 * f + 1] = -sin, cos
                rows = slice(h * head_dim, (h + 1) * head_dim)
                attn.q_proj.weight[rows] = (sharpness * q).to(attn.q_proj.weight.dtype)
                attn.k_proj.weight[rows] = key.to(attn.k_proj.weight.dtype)
                attn.q_proj.bias[rows] = 0
                attn.k_proj.bias[rows] = 0
    emb.position_embeddings.weight.requires_grad_(not freeze_positions)


def init_output_bias(model: BertForMLM, log_probs: Tensor, *, floor: float = -30.0) -> None:
    """Set the MLM head's output bias to ``log_probs`` (``(V,)``, e.g. ``unigram_log_probs``),
    clamped at ``floor`` for tokens that never occur: the untrained model then predicts
    the unigram distribution, and its first loss is the unigram baseline instead of ln V."""
    if log_probs.shape != model.head.bias.shape:
        raise ValueError(f"log_probs has shape {tuple(log_probs.shape)}, the output bias "
                         f"{tuple(model.head.bias.shape)}")
    with torch.no_grad():
        model.head.bias.copy_(log_probs.clamp(min=floor))


# --------------------------------------------------------------------------- names: ours <-> transformers

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

    from textft_lib.classifier import BertClassifier

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
    from textft_lib import wordpiece

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

    from textft_lib import wordpiece

    folder = Path(folder)
    if not (folder / "config.json").exists():
        raise FileNotFoundError(f"{folder} holds no config.json: not a save_pretrained folder")
    hf = AutoModelForMaskedLM.from_pretrained(str(folder), local_files_only=True)
    model = from_transformers(hf).eval()
    tokenizer = wordpiece.load_tokenizer(folder)
    check_tokenizer(model, tokenizer)
    return model, tokenizer


# --------------------------------------------------------------------------- using the model


@torch.no_grad()
def fill_mask(model: BertForMLM, tokenizer: Any, text: str, *, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """The ``top_k`` guesses (token, probability) for each ``[MASK]`` in ``text``.

    The text is truncated to ``max_position_embeddings`` tokens; a ``[MASK]`` lost to
    truncation, or a text without one, raises. Example::

        fill_mask(model, tok, "The capital of France is [MASK].")   # [[('paris', 0.41), ...]]
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("fill_mask needs a non-empty text")
    check_tokenizer(model, tokenizer)
    n_masks = text.count(tokenizer.mask_token)
    if n_masks == 0:
        raise ValueError(f"the text has no {tokenizer.mask_token} token to fill: {text!r}")
    enc = tokenizer(text, truncation=True, max_length=model.config.max_position_embeddings, return_tensors="pt")
    ids = enc["input_ids"]
    where = (ids[0] == tokenizer.mask_token_id).nonzero().flatten()
    if len(where) != n_masks:
        raise ValueError(f"{n_masks - len(where)} of the {n_masks} masks fell beyond "
                         f"max_position_embeddings={model.config.max_position_embeddings} and were truncated")
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    probs = model(ids.to(device))[0, where].softmax(-1)                            # (n_masks, V)
    model.train(was_training)
    top = probs.topk(top_k, dim=-1)
    return [[(tokenizer.convert_ids_to_tokens(int(i)), float(p)) for p, i in zip(ps, ix)]
            for ps, ix in zip(top.values, top.indices)]


@torch.no_grad()
def mask_word_scores(model: BertForMLM, tokenizer: Any, texts: Sequence[str], template: str,
                     words: Sequence[str], *, batch_size: int = 64) -> Tensor:
    """Zero-shot probe: how strongly the MLM puts each of ``words`` in the blank of a template.

    ``template`` holds ``{}`` where the text goes and one ``[MASK]`` outside it, e.g.
    ``"{} it was [MASK] ."``; keep spaces around ``{}``, since the text and the template are
    tokenized apart. Every word must be a single, ordinary token of the vocabulary. A long
    text is cut from its end so that the template (and its blank) always fits.
    Returns ``(N, K)`` log-probabilities on the CPU: row n, column k is log P(words[k]) at the
    blank of the template filled with texts[n] (normalised over the whole vocabulary). Example::

        scores = mask_word_scores(model, tok, ["a dull film"], "{} it was [MASK] .", ["bad", "good"])
        scores.argmax(1)                                  # tensor([0]) if the model knows sentiment
    """
    if isinstance(texts, str) or len(texts) == 0:
        raise ValueError("mask_word_scores needs a non-empty list of texts")
    if isinstance(words, str) or len(words) == 0:
        raise ValueError(f"words must be a non-empty list of words, got {words!r}")
    if not isinstance(template, str) or template.count("{}") != 1 or template.count(tokenizer.mask_token) != 1:
        raise ValueError(f"the template needs exactly one '{{}}' and one {tokenizer.mask_token}, got {template!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    check_tokenizer(model, tokenizer)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ValueError(f"texts at positions {bad[:5]} are empty or not strings")
    specials = set(tokenizer.all_special_ids)
    encoded = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    for i, ids in enumerate(encoded):
        if not ids or (specials - {tokenizer.unk_token_id}).intersection(ids):
            raise ValueError(f"text at position {i} ({texts[i][:40]!r}) becomes no tokens or holds a special "
                             f"token such as {tokenizer.mask_token}: only the template may hold the blank")
    word_ids = []
    for w in words:
        pieces = tokenizer.tokenize(w)
        wid = tokenizer.convert_tokens_to_ids(pieces[0]) if len(pieces) == 1 else None
        if wid is None or wid in specials:
            raise ValueError(f"{w!r} is not one ordinary token of the vocabulary (it becomes {pieces})")
        word_ids.append(wid)
    prefix, suffix = (tokenizer(part, add_special_tokens=False)["input_ids"] for part in template.split("{}"))
    room = model.config.max_position_embeddings - len(prefix) - len(suffix) - 2
    if room < 1:
        raise ValueError(f"the template takes {len(prefix) + len(suffix) + 2} of the model's "
                         f"{model.config.max_position_embeddings} positions: no room for a text")
    rows = [[tokenizer.cls_token_id, *prefix, *ids[:room], *suffix, tokenizer.sep_token_id] for ids in encoded]
    was_training, device = model.training, next(model.parameters()).device
    model.eval()
    out = []
    try:
        for start in range(0, len(rows), batch_size):
            ids, mask = pad_batch(rows[start:start + batch_size], pad_id=tokenizer.pad_token_id)   # (b, L)
            ids, mask = ids.to(device), mask.to(device)
            h = model.bert(ids, mask)[ids == tokenizer.mask_token_id]               # (b, d): one blank per row
            log_probs = model.head(h, model.decoder_weight).log_softmax(-1)         # (b, V)
            out.append(log_probs[:, word_ids].cpu())
    finally:
        model.train(was_training)
    return torch.cat(out)                                                           # (N, K)

def fixed_mask_batches(blocks: Tensor, collator: MLMCollator, *, batch_size: int = 64,
                       seed: int = 0) -> list[dict[str, Tensor]]:
    """Masked batches of ``blocks`` drawn with a generator seeded by ``seed``: the same
    blocks and seed always give the same masks (for evaluations that compare models)."""
    if blocks.dim() != 2 or len(blocks) == 0:
        raise ValueError(f"blocks must be a non-empty (N, L) tensor, got {tuple(blocks.shape)}")
    saved = collator.generator
    collator.generator = torch.Generator().manual_seed(seed)
    try:
        return [collator(list(blocks[i:i + batch_size])) for i in range(0, len(blocks), batch_size)]
    finally:
        collator.generator = saved


@torch.no_grad()
def evaluate_mlm(model: BertForMLM, blocks: Tensor, collator: MLMCollator, *, batch_size: int = 64,
                 seed: int = 0) -> dict[str, float]:
    """Mean MLM loss (nats per masked token) and masked-token accuracy on ``blocks``.

    The masks come from ``fixed_mask_batches`` (seeded), so successive evaluations
    differ only by the model. Returns ``{"loss", "accuracy", "masked_tokens"}`` plus the
    loss split by what the input showed at the chosen position: ``loss_mask`` (``[MASK]``,
    the 80%), ``loss_random`` (a random token, 10%) and ``loss_kept`` (the true token
    itself, 10%). A model that copies its input scores well on ``loss_kept`` without
    reading any context; only ``loss_mask`` says whether it uses the words around the blank.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    nll_parts, kind_parts, correct = [], [], 0
    try:
        for batch in fixed_mask_batches(blocks, collator, batch_size=batch_size, seed=seed):
            labels = batch["labels"]
            where = labels != IGNORE_INDEX                                          # (B, L)
            if not bool(where.any()):
                continue
            _, logits, targets = model.mlm_loss(batch["input_ids"].to(device), labels.to(device),
                                                batch["attention_mask"].to(device))
            nll_parts.append(F.cross_entropy(logits.float(), targets, reduction="none").cpu())   # (N,)
            shown = batch["input_ids"][where]                                       # (N,) what the model saw
            kind_parts.append(torch.where(shown == collator.mask_token_id, 0,
                                          torch.where(shown == labels[where], 2, 1)))
            correct += int((logits.argmax(-1) == targets).sum())
    finally:
        model.train(was_training)
    if not nll_parts:
        raise ValueError("no masked position in the evaluation blocks")
    nll, kind = torch.cat(nll_parts).double(), torch.cat(kind_parts)
    out = {"loss": float(nll.mean()), "accuracy": correct / len(nll), "masked_tokens": len(nll)}
    for k, name in enumerate(("loss_mask", "loss_random", "loss_kept")):
        out[name] = float(nll[kind == k].mean()) if bool((kind == k).any()) else float("nan")
    return out


def unigram_baseline(train_blocks: Tensor, held_out_blocks: Tensor, tokenizer: Any, *, seed: int = 0,
                     batch_size: int = 64) -> dict[str, float]:
    """The unigram baseline on the same held-out masks as ``evaluate_mlm``: its loss and
    the accuracy of always guessing the most frequent token. Frequencies come from
    ``train_blocks``."""
    collator = MLMCollator(tokenizer)
    log_probs = unigram_log_probs(train_blocks, len(tokenizer), tokenizer.all_special_ids)
    labels = torch.cat([b["labels"].reshape(-1) for b in
                        fixed_mask_batches(held_out_blocks, collator, batch_size=batch_size, seed=seed)])
    targets = labels[labels != IGNORE_INDEX]
    return {"loss": unigram_loss(log_probs, labels),
            "accuracy": float((targets == log_probs.argmax()).float().mean())}


# --------------------------------------------------------------------------- pretraining


@dataclass(frozen=True)
class PretrainConfig:
    """Every choice of a pretraining run: corpus, tokenizer, model sizes, optimisation, start.

    ``init`` is the starting point: ``"bert"`` is BERT's random start (N(0, 0.02) weights);
    ``"offset_heads"`` adds ``init_offset_heads`` and ``init_output_bias``, the head start
    that lets lesson 06's small model leave the plateau on a CPU budget (``new_model``).

    ``LESSON_FULL`` and ``LESSON_QUICK`` are lesson 06's two sizes; ``lesson_settings()``
    picks one by quick mode. ``model_config(vocab_size)`` gives the ``BertConfig``.
    """

    vocab_size: int = 8000
    held_out_fraction: float = 0.1
    limit_articles: int | None = None
    block_size: int = 128
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 512
    dropout: float = 0.0
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    max_steps: int = 3000
    eval_every: int = 150
    max_eval_blocks: int = 256
    seed: int = 0
    init: str = "offset_heads"

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.block_size < 3:
            raise ValueError(f"block_size must be at least 3, got {self.block_size}")
        for name in ("batch_size", "max_steps", "eval_every", "max_eval_blocks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    def model_config(self, vocab_size: int | None = None) -> BertConfig:
        return BertConfig(vocab_size=vocab_size or self.vocab_size, hidden_size=self.hidden_size,
                          num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
                          intermediate_size=self.intermediate_size, max_position_embeddings=self.block_size,
                          hidden_dropout_prob=self.dropout)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The starting points ``PretrainConfig.init`` accepts (see ``new_model``).
INITS = ("bert", "offset_heads")
#: Lesson 06 at full size (about 7 minutes on a quiet 2-core laptop CPU).
LESSON_FULL = PretrainConfig()
#: Lesson 06 in quick mode: a smoke run of a few seconds on a small model.
LESSON_QUICK = PretrainConfig(vocab_size=2000, limit_articles=24, block_size=64, hidden_size=32,
                              num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              batch_size=16, lr=2e-3, max_steps=40, eval_every=20, max_eval_blocks=32)


def lesson_settings() -> PretrainConfig:
    """``LESSON_QUICK`` in quick mode (``TEXTFT_QUICK=1``), else ``LESSON_FULL``."""
    from textft_lib import config

    return config.pick(full=LESSON_FULL, quick=LESSON_QUICK)


@dataclass
class PretrainData:
    """The tokenizer and the ``(N, block_size)`` blocks of the training and held-out articles."""

    tokenizer: Any
    train_blocks: Tensor
    held_out_blocks: Tensor


def prepare_data(settings: PretrainConfig) -> PretrainData:
    """Split the Wikipedia articles, train (or load) the WordPiece tokenizer on the training
    articles, and cut both splits into blocks. The held-out blocks are capped at
    ``settings.max_eval_blocks`` (an evenly spaced subset) to keep evaluations short."""
    from textft_lib import wordpiece

    train_texts, held_texts = wordpiece.wiki_split(settings.held_out_fraction, seed=settings.seed,
                                                   limit=settings.limit_articles)
    tokenizer = wordpiece.course_tokenizer(settings.vocab_size, held_out_fraction=settings.held_out_fraction,
                                           seed=settings.seed, limit=settings.limit_articles,
                                           model_max_length=settings.block_size)
    train_blocks = make_blocks(train_texts, tokenizer, settings.block_size)
    held = make_blocks(held_texts, tokenizer, settings.block_size)
    return PretrainData(tokenizer, train_blocks, evenly_spaced(held, settings.max_eval_blocks))


def evenly_spaced(blocks: Tensor, n: int) -> Tensor:
    """At most ``n`` rows of ``blocks (N, L)``, evenly spaced from the first to the last:
    a held-out set capped to keep evaluations short, still spread over the whole text."""
    if len(blocks) <= n:
        return blocks
    return blocks[torch.linspace(0, len(blocks) - 1, n).round().long()]


def new_model(settings: PretrainConfig, data: PretrainData) -> BertForMLM:
    """A fresh ``BertForMLM`` for ``settings``, sized to ``data.tokenizer`` and started as
    ``settings.init`` says: BERT's random start, or the head start (``init_offset_heads``,
    and the output bias at the training blocks' log-frequencies, ``init_output_bias``).
    Seed torch first for a reproducible start."""
    model = BertForMLM(settings.model_config(len(data.tokenizer)))
    if settings.init == "offset_heads":
        init_offset_heads(model)
        init_output_bias(model, unigram_log_probs(data.train_blocks, len(data.tokenizer),
                                                  data.tokenizer.all_special_ids))
    return model


def mlm_loss_fn(model: BertForMLM, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
    """``train.fit``'s loss function for MLM: the loss at the masked positions, and the
    accuracy of the top guess there."""
    loss, logits, targets = model.mlm_loss(batch["input_ids"], batch["labels"], batch["attention_mask"])
    return loss, {"accuracy": float((logits.argmax(-1) == targets).float().mean())}


def pretrain(model: BertForMLM, data: PretrainData, settings: PretrainConfig, *, device: Any = None,
             progress: bool = True, verbose: bool = True, cache: str | None = "bert_mlm",
             retrain: bool = False) -> Any:
    """Pretrain ``model`` with masked-language modelling on ``data``; return ``train.fit``'s ``History``.

    AdamW with linear warm-up and decay over ``settings.max_steps`` steps; fresh masks
    for every batch (dynamic masking); the held-out loss and accuracy measured every
    ``settings.eval_every`` steps on fixed masks (``evaluate_mlm``). With ``cache`` the
    trained weights are stored under the course cache and a second call with the same
    settings loads them instantly.

    Example::

        s = lesson_settings()
        data = prepare_data(s)
        model = new_model(s, data)
        history = pretrain(model, data, s)
        history.series("val_loss")
    """
    from torch.utils.data import DataLoader

    from textft_lib import train

    check_tokenizer(model, data.tokenizer)
    if data.train_blocks.shape[1] > model.config.max_position_embeddings:
        raise ValueError(f"blocks of {data.train_blocks.shape[1]} tokens exceed the model's "
                         f"max_position_embeddings={model.config.max_position_embeddings}")
    generator = torch.Generator().manual_seed(settings.seed)
    loader = DataLoader(list(data.train_blocks), batch_size=settings.batch_size, shuffle=True, drop_last=True,
                        generator=generator, collate_fn=MLMCollator(data.tokenizer, seed=settings.seed))
    if len(loader) == 0:
        raise ValueError(f"{len(data.train_blocks)} training blocks are fewer than one batch of "
                         f"{settings.batch_size}")
    eval_collator = MLMCollator(data.tokenizer)
    device = device if device is not None else next(model.parameters()).device
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    warmup = max(1, round(settings.warmup_fraction * settings.max_steps))
    scheduler = train.warmup_decay_schedule(optimizer, warmup, settings.max_steps, kind="linear")
    return train.fit(
        model, loader, loss_fn=mlm_loss_fn, optimizer=optimizer, scheduler=scheduler, epochs=None,
        max_steps=settings.max_steps, val_loader=data.held_out_blocks,
        evaluate_fn=lambda m, blocks: evaluate_mlm(m, blocks, eval_collator, seed=settings.seed),
        eval_every=settings.eval_every, restore_best=False, device=device, progress=progress,
        verbose=verbose, cache=cache, settings={"pretrain": settings.as_dict(), "tokenizer_size": len(data.tokenizer)},
        retrain=retrain)


def course_bert(settings: PretrainConfig | None = None, *, device: Any = None, progress: bool = True,
                verbose: bool = True) -> Path:
    """The folder of the course's pretrained BERT, in ``save_pretrained`` format.

    Taken from the cache when a model with the same settings is there; otherwise
    pretrained with lesson 06's settings (``lesson_settings()``: full size, or the quick
    size when ``TEXTFT_QUICK=1``) and saved. The folder holds ``config.json``,
    ``model.safetensors``, the tokenizer files, and ``pretraining.json`` (the settings and
    the training history).

    Example::

        folder = course_bert()
        model, tokenizer = load_pretrained(folder)             # ours
        hf = transformers.AutoModelForMaskedLM.from_pretrained(folder)   # or transformers'
    """
    import hashlib
    import json

    from textft_lib import config, wordpiece

    settings = settings or lesson_settings()
    key = hashlib.sha256(json.dumps(settings.as_dict(), sort_keys=True).encode()).hexdigest()[:12]
    folder = config.cache_dir("bert") / f"course-bert-{key}"
    if (folder / "pretraining.json").exists():
        return folder
    data = prepare_data(settings)
    torch.manual_seed(settings.seed)
    model = new_model(settings, data)
    if device is None:
        device = config.get_device()
    history = pretrain(model, data, settings, device=device, progress=progress, verbose=verbose)
    record = {"settings": settings.as_dict(), "history": history.to_dict()}

    def write(tmp: Path) -> None:
        save_pretrained(model.cpu(), data.tokenizer, tmp)
        (tmp / "pretraining.json").write_text(json.dumps(record, indent=1, default=str))

    wordpiece.atomic_folder(folder, write)
    return folder
