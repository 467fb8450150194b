"""The BERT model: ``BertConfig``, ``BertEmbeddings`` (token + position + segment, LayerNorm,
dropout), ``BertModel`` (embeddings + ``textft_lib.transformer``'s post-LN encoder layers) and
``BertForMLM`` (``BertModel`` + an MLM head whose decoder is the token embedding matrix, tied).

Example::

    cfg = BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                     intermediate_size=64, max_position_embeddings=16)
    model = BertForMLM(cfg)
    logits = model(torch.randint(5, 100, (2, 10)))       # (2, 10, 100)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textft_lib.transformer import TransformerEncoderLayer, attention_mask_to_bool, check_token_ids


#: The label of a position the loss ignores (PyTorch's and transformers' convention).
IGNORE_INDEX = -100


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
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
            setattr(self, name, int(value))            # a NumPy int would not survive config.json
        if not (isinstance(self.layer_norm_eps, numbers.Real) and math.isfinite(self.layer_norm_eps)
                and self.layer_norm_eps > 0):
            raise ValueError(f"layer_norm_eps must be a small positive number, got {self.layer_norm_eps!r}")
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
