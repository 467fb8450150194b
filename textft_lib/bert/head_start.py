"""A head start for a small BERT: every attention head starts looking at
a fixed neighbour (``init_offset_heads``), and the output starts at the word frequencies
(``init_output_bias``). ``pretraining.new_model`` applies both when ``init="offset_heads"``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor

from textft_lib.bert.model import BertForMLM


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
