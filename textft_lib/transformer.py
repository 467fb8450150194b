"""The Transformer of "Attention Is All You Need", written out layer by layer.

Building blocks, each a small ``nn.Module``:

* ``TokenEmbedding``: token ids -> vectors, scaled by sqrt(d_model)
* ``SinusoidalPositionalEncoding`` / ``LearnedPositionalEmbedding``: position vectors
  *added* to the token vectors (never concatenated, never a shift of the vector)
* ``TransformerEncoderLayer`` / ``TransformerDecoderLayer``: attention + feed-forward with
  residual connections and LayerNorm, post-LN (the paper) or pre-LN (``norm_first=True``)
* ``TransformerEncoder`` / ``TransformerDecoder``: stacks of layers
* ``Seq2SeqTransformer``: the full encoder-decoder with greedy decoding
* ``EncoderClassifier``: an encoder, masked mean pooling over the real tokens, a linear head

Attention comes from ``textft_lib.attention.MultiHeadAttention``, so its backends
(the Triton kernel on recent GPUs, SDPA elsewhere) apply here too.

Masks follow the course's convention everywhere: ``key_padding_mask`` is a ``(B, L)``
bool tensor with True for a real token and False for padding. (``torch.nn`` uses the
opposite convention; ``to_torch`` handles the conversion when comparing.)

Example::

    import torch
    from textft_lib.transformer import TransformerEncoder
    enc = TransformerEncoder(2, d_model=64, n_heads=4, d_ff=256)
    x = torch.randn(3, 10, 64)                      # (B, L, d_model)
    mask = torch.ones(3, 10, dtype=torch.bool)      # True = real token
    mask[0, 7:] = False                             # the first sequence has 7 tokens
    y = enc(x, key_padding_mask=mask)               # (3, 10, 64)
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textft_lib.attention import MultiHeadAttention, copy_weights_to_torch
from textft_lib.checks import check_int, check_number
from textft_lib.train import evaluating

Activation = Literal["relu", "gelu"]
_ACTIVATIONS = {"relu": F.relu, "gelu": F.gelu}


# --------------------------------------------------------------------------- input checks


def check_token_ids(ids: Tensor, vocab_size: int, name: str = "token ids") -> None:
    """Raise a clear error unless ``ids`` is an integer tensor with values in [0, vocab_size)."""
    if not isinstance(ids, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(ids).__name__}")
    if ids.dtype not in (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8):
        raise TypeError(f"{name} must be an integer tensor, got dtype {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise IndexError(
            f"{name} must lie in [0, {vocab_size}) for a vocabulary of {vocab_size}, "
            f"got values from {int(ids.min())} to {int(ids.max())}: was the text encoded "
            f"with a different vocabulary?")


def attention_mask_to_bool(mask: Tensor, name: str = "attention_mask") -> Tensor:
    """``mask`` as a bool tensor (True = real token), accepting only a bool mask or an
    integer mask of 0/1 (the Hugging Face ``attention_mask`` convention: 1 = real token,
    0 = padding). Anything else raises: a float mask is often an *additive* mask
    (0 = real token, -inf = padding), which ``.bool()`` would silently invert.
    """
    if not isinstance(mask, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype == torch.bool:
        return mask
    if mask.dtype.is_floating_point or mask.dtype.is_complex:
        raise TypeError(f"{name} must be a bool or integer tensor of 0/1 (True/1 = real token, False/0 = padding), "
                        f"got dtype {mask.dtype}; an additive float mask (0 = real, -inf = padding) "
                        f"converts as (mask == 0)")
    if mask.numel() and bool(((mask != 0) & (mask != 1)).any()):
        raise ValueError(f"{name} must hold only 0 and 1 (1 = real token, 0 = padding), "
                         f"got values from {int(mask.min())} to {int(mask.max())}")
    return mask.bool()


def _check_mask(mask: Tensor | None, batch: int, length: int, name: str) -> None:
    if mask is None:
        return
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor (True = real token), got dtype {mask.dtype}")
    if tuple(mask.shape) != (batch, length):
        raise ValueError(f"{name} must have shape (batch, length) = ({batch}, {length}), "
                         f"got {tuple(mask.shape)}")


def _check_input(x: Tensor, d_model: int, name: str = "x") -> None:
    if x.dim() != 3 or x.shape[-1] != d_model:
        raise ValueError(f"{name} must have shape (batch, length, d_model={d_model}), got {tuple(x.shape)}")


# --------------------------------------------------------------------------- embeddings


class TokenEmbedding(nn.Module):
    """Token ids -> vectors, multiplied by sqrt(d_model) as in the paper (section 3.4).

    The scaling keeps the token vectors on the same scale as the positional encoding,
    whose entries lie in [-1, 1]: an embedding initialised with std 1/sqrt(d_model) (as
    when its weights are tied to the output layer) would otherwise be drowned out.

    ``ids`` (B, L) int -> (B, L, d_model). Example::

        emb = TokenEmbedding(1000, 64, padding_idx=0)
        emb(torch.tensor([[5, 6, 0]])).shape        # torch.Size([1, 3, 64])
    """

    def __init__(self, vocab_size: int, d_model: int, *, padding_idx: int | None = None, scale: bool = True):
        super().__init__()
        vocab_size, d_model = check_int(vocab_size, "vocab_size", minimum=1), check_int(d_model, "d_model", minimum=1)
        if padding_idx is not None:                 # torch reads -1 as the last id: refuse it here
            padding_idx = check_int(padding_idx, "padding_idx", minimum=0, maximum=vocab_size - 1)
        self.vocab_size, self.d_model = vocab_size, d_model
        self.embedding = nn.Embedding(vocab_size, d_model, padding_idx=padding_idx)
        nn.init.normal_(self.embedding.weight, std=d_model ** -0.5)
        if padding_idx is not None:
            with torch.no_grad():
                self.embedding.weight[padding_idx].zero_()
        self.scale = math.sqrt(d_model) if scale else 1.0

    def forward(self, ids: Tensor) -> Tensor:
        check_token_ids(ids, self.vocab_size)
        return self.embedding(ids) * self.scale


def sinusoidal_table(max_len: int, d_model: int, base: float = 10000.0) -> Tensor:
    """The paper's table: PE[pos, 2i] = sin(pos / base^(2i/d)), PE[pos, 2i+1] = cos(...).

    Returns a ``(max_len, d_model)`` float32 tensor. Example::

        pe = sinusoidal_table(50, 16)
        pe[0, 1::2]                                   # cos(0) = 1 in every odd column
    """
    max_len, d_model = check_int(max_len, "max_len", minimum=1), check_int(d_model, "d_model", minimum=2)
    if d_model % 2:
        raise ValueError(f"the sinusoidal encoding pairs sin and cos, so d_model must be even, got {d_model}")
    base = check_number(base, "base", low=0, low_open=True)
    pos = torch.arange(max_len, dtype=torch.float64).unsqueeze(1)          # (max_len, 1)
    freq = base ** (-torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)  # (d/2,)
    table = torch.zeros(max_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table.float()


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal position vectors to ``x``, then applies dropout.

    ``x`` (B, L, d_model) -> (B, L, d_model). The table is a non-persistent buffer (it is
    recomputed, not stored in checkpoints). A sequence longer than ``max_len`` raises.
    Example::

        pos = SinusoidalPositionalEncoding(64, max_len=128)
        y = pos(torch.zeros(2, 10, 64))               # y[b] == the first 10 rows of the table
    """

    def __init__(self, d_model: int, max_len: int = 512, *, dropout: float = 0.0):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.register_buffer("pe", sinusoidal_table(max_len, d_model), persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        _check_input(x, self.d_model)
        length = x.shape[1]
        if offset + length > self.max_len:
            raise ValueError(f"sequence of length {length} (offset {offset}) is longer than the positional "
                             f"table (max_len={self.max_len}); build the model with a larger max_len")
        return self.dropout(x + self.pe[offset:offset + length].to(x.dtype))


class LearnedPositionalEmbedding(nn.Module):
    """Adds a trained vector per position (as BERT and GPT do), then applies dropout.

    ``x`` (B, L, d_model) -> (B, L, d_model). A learned table knows only the positions it
    has rows for: a sequence longer than ``max_len`` raises. Example::

        pos = LearnedPositionalEmbedding(64, max_len=128)
        y = pos(torch.zeros(2, 10, 64))
    """

    def __init__(self, d_model: int, max_len: int = 512, *, dropout: float = 0.0):
        super().__init__()
        self.d_model, self.max_len = d_model, max_len
        self.embedding = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        _check_input(x, self.d_model)
        length = x.shape[1]
        if offset + length > self.max_len:
            raise ValueError(f"sequence of length {length} (offset {offset}) is longer than the learned "
                             f"position table (max_len={self.max_len}); build the model with a larger max_len")
        positions = torch.arange(offset, offset + length, device=x.device)
        return self.dropout(x + self.embedding(positions).to(x.dtype))


# --------------------------------------------------------------------------- layers


class TransformerEncoderLayer(nn.Module):
    """One encoder layer: self-attention, then a feed-forward network, each wrapped in a
    residual connection and a LayerNorm.

    Post-LN (the paper, ``norm_first=False``)::

        x = norm1(x + dropout(self_attn(x)))
        x = norm2(x + dropout(ffn(x)))

    Pre-LN (``norm_first=True``, GPT-2 and most modern models)::

        x = x + dropout(self_attn(norm1(x)))
        x = x + dropout(ffn(norm2(x)))

    Pre-LN keeps an un-normalised identity path from the input to the output, so the
    gradients reach early layers undamped and training needs less learning-rate warm-up.

    Submodules (names match ``torch.nn.TransformerEncoderLayer`` where it has them):
    ``self_attn`` (``textft_lib.attention.MultiHeadAttention``), ``linear1``, ``linear2``,
    ``norm1``, ``norm2``, ``dropout``, ``dropout1``, ``dropout2``.

    ``forward(x (B, L, d_model), *, key_padding_mask=None (B, L) bool True = real,
    causal=False, kv_cache=None) -> (B, L, d_model)``; ``kv_cache`` is passed on to
    ``self_attn`` (a decoder-only model generating text, lesson 08). Example::

        layer = TransformerEncoderLayer(64, 4, 256, dropout=0.0)
        y = layer(torch.randn(2, 5, 64))            # (2, 5, 64)
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, *, dropout: float = 0.1,
                 activation: Activation = "relu", norm_first: bool = False, layer_norm_eps: float = 1e-5,
                 bias: bool = True):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        d_ff = check_int(d_ff, "d_ff", minimum=1)
        self.d_model, self.n_heads, self.d_ff = d_model, n_heads, d_ff
        self.activation, self.norm_first = activation, norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias)
        self.linear1 = nn.Linear(d_model, d_ff, bias=bias)
        self.linear2 = nn.Linear(d_ff, d_model, bias=bias)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout = nn.Dropout(dropout)    # inside the feed-forward network
        self.dropout1 = nn.Dropout(dropout)   # on the attention sub-layer's output
        self.dropout2 = nn.Dropout(dropout)   # on the feed-forward sub-layer's output

    def _sa(self, x: Tensor, key_padding_mask: Tensor | None, causal: bool, kv_cache: Any = None) -> Tensor:
        return self.dropout1(self.self_attn(x, key_padding_mask=key_padding_mask, causal=causal, kv_cache=kv_cache))

    def _ff(self, x: Tensor) -> Tensor:
        act = _ACTIVATIONS[self.activation]
        return self.dropout2(self.linear2(self.dropout(act(self.linear1(x)))))

    def forward(self, x: Tensor, *, key_padding_mask: Tensor | None = None, causal: bool = False,
                kv_cache: Any = None) -> Tensor:
        _check_input(x, self.d_model)
        _check_mask(key_padding_mask, x.shape[0], x.shape[1], "key_padding_mask")
        if self.norm_first:
            x = x + self._sa(self.norm1(x), key_padding_mask, causal, kv_cache)
            x = x + self._ff(self.norm2(x))
        else:
            x = self.norm1(x + self._sa(x, key_padding_mask, causal, kv_cache))
            x = self.norm2(x + self._ff(x))
        return x


class TransformerDecoderLayer(nn.Module):
    """One decoder layer: masked self-attention, cross-attention to the encoder's output
    (``memory``), and a feed-forward network, each with a residual connection and LayerNorm.

    Post-LN (``norm_first=False``)::

        x = norm1(x + dropout1(self_attn(x, causal)))
        x = norm2(x + dropout2(cross_attn(query=x, key=value=memory)))
        x = norm3(x + dropout3(ffn(x)))

    Pre-LN (``norm_first=True``) normalises the input of each sub-layer instead.

    Submodules: ``self_attn``, ``cross_attn`` (both ``MultiHeadAttention``; torch calls
    the second ``multihead_attn``), ``linear1``, ``linear2``, ``norm1``, ``norm2``, ``norm3``.

    ``forward(x (B, Lt, d), memory (B, Ls, d), *, tgt_key_padding_mask (B, Lt) bool,
    memory_key_padding_mask (B, Ls) bool, causal=True, need_weights=False)`` returns
    ``(B, Lt, d)``, or ``(out, cross_weights (B, H, Lt, Ls))`` with ``need_weights=True``.
    Example::

        layer = TransformerDecoderLayer(64, 4, 256, dropout=0.0)
        y = layer(torch.randn(2, 7, 64), torch.randn(2, 9, 64))   # (2, 7, 64)
    """

    def __init__(self, d_model: int, n_heads: int, d_ff: int, *, dropout: float = 0.1,
                 activation: Activation = "relu", norm_first: bool = False, layer_norm_eps: float = 1e-5,
                 bias: bool = True):
        super().__init__()
        # Written out like the encoder layer's, on purpose: lesson 05 reads each layer beside
        # torch.nn's, line for line, and the two share no hidden base class.
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        d_ff = check_int(d_ff, "d_ff", minimum=1)
        self.d_model, self.n_heads, self.d_ff = d_model, n_heads, d_ff
        self.activation, self.norm_first = activation, norm_first
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias)
        self.linear1 = nn.Linear(d_model, d_ff, bias=bias)
        self.linear2 = nn.Linear(d_ff, d_model, bias=bias)
        self.norm1 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm2 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.norm3 = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)
        self.dropout3 = nn.Dropout(dropout)

    def _ca(self, x: Tensor, memory: Tensor, memory_key_padding_mask: Tensor | None, need_weights: bool):
        if need_weights:
            out, weights = self.cross_attn(x, memory, memory, key_padding_mask=memory_key_padding_mask,
                                           need_weights=True)
            return self.dropout2(out), weights
        out = self.cross_attn(x, memory, memory, key_padding_mask=memory_key_padding_mask)
        return self.dropout2(out), None

    def _ff(self, x: Tensor) -> Tensor:
        act = _ACTIVATIONS[self.activation]
        return self.dropout3(self.linear2(self.dropout(act(self.linear1(x)))))

    def forward(self, x: Tensor, memory: Tensor, *, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None, causal: bool = True,
                need_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        _check_input(x, self.d_model, "x (the decoder input)")
        _check_input(memory, self.d_model, "memory (the encoder output)")
        if memory.shape[0] != x.shape[0]:
            raise ValueError(f"x has batch size {x.shape[0]} but memory has {memory.shape[0]}")
        _check_mask(tgt_key_padding_mask, x.shape[0], x.shape[1], "tgt_key_padding_mask")
        _check_mask(memory_key_padding_mask, memory.shape[0], memory.shape[1], "memory_key_padding_mask")
        sa = lambda h: self.dropout1(self.self_attn(h, key_padding_mask=tgt_key_padding_mask, causal=causal))
        if self.norm_first:
            x = x + sa(self.norm1(x))
            ca, weights = self._ca(self.norm2(x), memory, memory_key_padding_mask, need_weights)
            x = x + ca
            x = x + self._ff(self.norm3(x))
        else:
            x = self.norm1(x + sa(x))
            ca, weights = self._ca(x, memory, memory_key_padding_mask, need_weights)
            x = self.norm2(x + ca)
            x = self.norm3(x + self._ff(x))
        return (x, weights) if need_weights else x


# --------------------------------------------------------------------------- stacks


def _layer_stack(layer_class: type, num_layers: int, d_model: int, n_heads: int, d_ff: int, *,
                 norm_first: bool, layer_norm_eps: float, bias: bool, final_norm: bool | None,
                 **layer_kwargs: Any) -> tuple[nn.ModuleList, nn.LayerNorm | None]:
    """``num_layers`` fresh layers of ``layer_class`` and the stack's final LayerNorm (or None).

    ``final_norm=None`` means "exactly when ``norm_first``" (see ``TransformerEncoder``).
    """
    if num_layers < 1:
        raise ValueError(f"num_layers must be at least 1, got {num_layers}")
    layers = nn.ModuleList(
        layer_class(d_model, n_heads, d_ff, norm_first=norm_first, layer_norm_eps=layer_norm_eps, bias=bias,
                    **layer_kwargs)
        for _ in range(num_layers))
    final_norm = norm_first if final_norm is None else final_norm
    norm = nn.LayerNorm(d_model, eps=layer_norm_eps, bias=bias) if final_norm else None
    return layers, norm


class TransformerEncoder(nn.Module):
    """``num_layers`` encoder layers, optionally followed by a final LayerNorm.

    ``final_norm=None`` (the default) adds the final norm exactly when ``norm_first`` is
    True: a pre-LN stack ends with an un-normalised residual stream that needs one, a
    post-LN stack is already normalised. Attributes: ``layers`` (``nn.ModuleList``) and
    ``norm`` (``nn.LayerNorm`` or None).

    ``forward(x (B, L, d), *, key_padding_mask=None, causal=False) -> (B, L, d)``. Example::

        enc = TransformerEncoder(2, 64, 4, 256, norm_first=True)
        y = enc(torch.randn(2, 5, 64))
    """

    def __init__(self, num_layers: int, d_model: int, n_heads: int, d_ff: int, *, dropout: float = 0.1,
                 activation: Activation = "relu", norm_first: bool = False, layer_norm_eps: float = 1e-5,
                 bias: bool = True, final_norm: bool | None = None):
        super().__init__()
        self.layers, self.norm = _layer_stack(TransformerEncoderLayer, num_layers, d_model, n_heads, d_ff,
                                              dropout=dropout, activation=activation, norm_first=norm_first,
                                              layer_norm_eps=layer_norm_eps, bias=bias, final_norm=final_norm)

    def forward(self, x: Tensor, *, key_padding_mask: Tensor | None = None, causal: bool = False) -> Tensor:
        for layer in self.layers:
            x = layer(x, key_padding_mask=key_padding_mask, causal=causal)
        return self.norm(x) if self.norm is not None else x


class TransformerDecoder(nn.Module):
    """``num_layers`` decoder layers, optionally followed by a final LayerNorm (see
    ``TransformerEncoder`` for ``final_norm``). Attributes: ``layers``, ``norm``.

    ``forward(x (B, Lt, d), memory (B, Ls, d), *, tgt_key_padding_mask,
    memory_key_padding_mask, causal=True) -> (B, Lt, d)``.
    """

    def __init__(self, num_layers: int, d_model: int, n_heads: int, d_ff: int, *, dropout: float = 0.1,
                 activation: Activation = "relu", norm_first: bool = False, layer_norm_eps: float = 1e-5,
                 bias: bool = True, final_norm: bool | None = None):
        super().__init__()
        self.layers, self.norm = _layer_stack(TransformerDecoderLayer, num_layers, d_model, n_heads, d_ff,
                                              dropout=dropout, activation=activation, norm_first=norm_first,
                                              layer_norm_eps=layer_norm_eps, bias=bias, final_norm=final_norm)

    def forward(self, x: Tensor, memory: Tensor, *, tgt_key_padding_mask: Tensor | None = None,
                memory_key_padding_mask: Tensor | None = None, causal: bool = True) -> Tensor:
        for layer in self.layers:
            x = layer(x, memory, tgt_key_padding_mask=tgt_key_padding_mask,
                      memory_key_padding_mask=memory_key_padding_mask, causal=causal)
        return self.norm(x) if self.norm is not None else x


# --------------------------------------------------------------------------- models


class Seq2SeqTransformer(nn.Module):
    """The encoder-decoder Transformer: source ids -> target logits.

    ``forward(src (B, Ls), tgt_in (B, Lt)) -> logits (B, Lt, tgt_vocab_size)``, where
    ``tgt_in`` is the target shifted right (it starts with ``bos_id``) and position t of the
    logits predicts target token t+1 of ``tgt_in``'s sequence ("teacher forcing"). Padding
    masks are built from ``pad_id`` (True = real token) unless passed in.

    Positions are sinusoidal (the paper's choice); token embeddings are scaled by
    sqrt(d_model). With ``tie_embeddings`` the output projection shares the target
    embedding matrix (the paper does this too).

    Example::

        model = Seq2SeqTransformer(40, 16, d_model=64, n_heads=4, num_encoder_layers=2,
                                   num_decoder_layers=2, d_ff=256, pad_id=0)
        src = torch.randint(3, 40, (8, 12)); tgt_in = torch.randint(3, 16, (8, 11))
        model(src, tgt_in).shape                     # torch.Size([8, 11, 16])
        model.greedy_decode(src, bos_id=1, eos_id=2, max_len=11)   # (8, <=11) ids
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, *, d_model: int = 128, n_heads: int = 4,
                 num_encoder_layers: int = 2, num_decoder_layers: int = 2, d_ff: int = 512,
                 dropout: float = 0.1, activation: Activation = "relu", norm_first: bool = False,
                 max_len: int = 256, pad_id: int = 0, tie_embeddings: bool = True):
        super().__init__()
        self.pad_id, self.d_model = pad_id, d_model
        self.src_vocab_size, self.tgt_vocab_size = src_vocab_size, tgt_vocab_size
        self.src_embed = TokenEmbedding(src_vocab_size, d_model, padding_idx=pad_id)
        self.tgt_embed = TokenEmbedding(tgt_vocab_size, d_model, padding_idx=pad_id)
        self.pos = SinusoidalPositionalEncoding(d_model, max_len, dropout=dropout)
        kw = dict(dropout=dropout, activation=activation, norm_first=norm_first)
        self.encoder = TransformerEncoder(num_encoder_layers, d_model, n_heads, d_ff, **kw)
        self.decoder = TransformerDecoder(num_decoder_layers, d_model, n_heads, d_ff, **kw)
        self.generator = nn.Linear(d_model, tgt_vocab_size, bias=False)
        if tie_embeddings:
            self.generator.weight = self.tgt_embed.embedding.weight

    def encode(self, src: Tensor, src_key_padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``src`` (B, Ls) -> (memory (B, Ls, d), src_key_padding_mask (B, Ls) bool)."""
        check_token_ids(src, self.src_vocab_size, "source ids")
        if src_key_padding_mask is None:
            src_key_padding_mask = src != self.pad_id
        memory = self.encoder(self.pos(self.src_embed(src)), key_padding_mask=src_key_padding_mask)
        return memory, src_key_padding_mask

    def decode(self, tgt_in: Tensor, memory: Tensor, src_key_padding_mask: Tensor | None,
               tgt_key_padding_mask: Tensor | None = None) -> Tensor:
        """``tgt_in`` (B, Lt) and the encoder's ``memory`` -> logits (B, Lt, tgt_vocab_size)."""
        check_token_ids(tgt_in, self.tgt_vocab_size, "target ids")
        if tgt_key_padding_mask is None:
            tgt_key_padding_mask = tgt_in != self.pad_id
        h = self.decoder(self.pos(self.tgt_embed(tgt_in)), memory, tgt_key_padding_mask=tgt_key_padding_mask,
                         memory_key_padding_mask=src_key_padding_mask, causal=True)
        return self.generator(h)

    def forward(self, src: Tensor, tgt_in: Tensor, *, src_key_padding_mask: Tensor | None = None,
                tgt_key_padding_mask: Tensor | None = None) -> Tensor:
        memory, src_mask = self.encode(src, src_key_padding_mask)
        return self.decode(tgt_in, memory, src_mask, tgt_key_padding_mask)

    @torch.no_grad()
    def greedy_decode(self, src: Tensor, *, bos_id: int, eos_id: int, max_len: int,
                      src_key_padding_mask: Tensor | None = None) -> Tensor:
        """Generate one token at a time, always taking the most likely next token.

        Returns ``(B, T)`` ids without the leading ``bos_id``; T <= ``max_len``. Once a
        sequence has produced ``eos_id``, its later positions are filled with ``pad_id``.
        The decoder is re-run on the whole prefix each step (simple, O(T^2); a key/value
        cache would avoid the recomputation).
        """
        with evaluating(self):
            memory, src_mask = self.encode(src, src_key_padding_mask)
            batch = src.shape[0]
            out = torch.full((batch, 1), bos_id, dtype=torch.long, device=src.device)
            done = torch.zeros(batch, dtype=torch.bool, device=src.device)
            for _ in range(max_len):
                logits = self.decode(out, memory, src_mask, torch.ones_like(out, dtype=torch.bool))
                nxt = logits[:, -1].argmax(-1)
                nxt = torch.where(done, torch.full_like(nxt, self.pad_id), nxt)
                out = torch.cat([out, nxt[:, None]], dim=1)
                done |= nxt == eos_id
                if bool(done.all()):
                    break
        return out[:, 1:]

    @torch.no_grad()
    def cross_attention(self, src: Tensor, tgt_in: Tensor) -> list[Tensor]:
        """The cross-attention weights of every decoder layer, ``(B, H, Lt, Ls)`` each:
        row t says which source positions target position t looked at."""
        weights = []
        with evaluating(self):
            memory, src_mask = self.encode(src)
            tgt_mask = tgt_in != self.pad_id
            h = self.pos(self.tgt_embed(tgt_in))
            for layer in self.decoder.layers:
                h, w = layer(h, memory, tgt_key_padding_mask=tgt_mask, memory_key_padding_mask=src_mask,
                             causal=True, need_weights=True)
                weights.append(w)
        return weights


def masked_mean(x: Tensor, mask: Tensor) -> Tensor:
    """Average ``x`` (B, L, d) over the real positions of ``mask`` (B, L) bool -> (B, d).

    Padding positions do not count, so a sentence's vector does not depend on how much
    padding its batch needed. A row with no real token raises (its mean is undefined).
    """
    if mask.dtype != torch.bool or mask.shape != x.shape[:2]:
        raise ValueError(f"mask must be bool with shape {tuple(x.shape[:2])}, got {mask.dtype} {tuple(mask.shape)}")
    counts = mask.sum(dim=1, keepdim=True)                                   # (B, 1)
    if bool((counts == 0).any()):
        raise ValueError("a sequence in the batch has no real token (its mask is all False)")
    summed = (x * mask.unsqueeze(-1).to(x.dtype)).sum(dim=1)                   # (B, d)
    return summed / counts.to(x.dtype)


class EncoderClassifier(nn.Module):
    """A Transformer encoder trained from scratch for text classification.

    token ids -> embeddings (scaled) + positions -> encoder -> masked mean pooling over the
    real tokens -> dropout -> linear head -> logits. Pooling is the step that turns a
    sequence of token vectors into one sentence vector (the same averaging lesson 02 used
    for word vectors). Lesson 07 uses this model as the "no pretraining" baseline.

    ``forward(input_ids (B, L), attention_mask=None (B, L) bool/int, 1 = real) ->
    logits (B, num_classes)``; without a mask, ``pad_id`` marks the padding. Example::

        clf = EncoderClassifier(5000, 2, d_model=64, n_heads=4, num_layers=2, d_ff=128)
        clf(torch.randint(1, 5000, (4, 20))).shape   # torch.Size([4, 2])
    """

    def __init__(self, vocab_size: int, num_classes: int, *, d_model: int = 128, n_heads: int = 4,
                 num_layers: int = 2, d_ff: int = 256, dropout: float = 0.1, activation: Activation = "gelu",
                 norm_first: bool = True, max_len: int = 256, pad_id: int = 0,
                 positional: Literal["learned", "sinusoidal"] = "learned"):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
        self.pad_id, self.vocab_size, self.num_classes = pad_id, vocab_size, num_classes
        self.embed = TokenEmbedding(vocab_size, d_model, padding_idx=pad_id)
        if positional == "learned":
            self.pos = LearnedPositionalEmbedding(d_model, max_len, dropout=dropout)
        elif positional == "sinusoidal":
            self.pos = SinusoidalPositionalEncoding(d_model, max_len, dropout=dropout)
        else:
            raise ValueError(f"positional must be 'learned' or 'sinusoidal', got {positional!r}")
        self.encoder = TransformerEncoder(num_layers, d_model, n_heads, d_ff, dropout=dropout,
                                          activation=activation, norm_first=norm_first)
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(d_model, num_classes)

    def encode(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """-> (token vectors (B, L, d), mask (B, L) bool)."""
        check_token_ids(input_ids, self.vocab_size, "input_ids")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, length), got {tuple(input_ids.shape)}")
        mask = (input_ids != self.pad_id) if attention_mask is None else attention_mask_to_bool(attention_mask)
        if mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask has shape {tuple(mask.shape)}, input_ids {tuple(input_ids.shape)}")
        h = self.encoder(self.pos(self.embed(input_ids)), key_padding_mask=mask)
        return h, mask

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        h, mask = self.encode(input_ids, attention_mask)
        return self.head(self.dropout(masked_mean(h, mask)))


# --------------------------------------------------------------------------- counting, torch.nn


def count_parameters(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of distinct parameters (a tied matrix counts once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def encoder_layer_flops(d_model: int, d_ff: int, seq_len: int) -> int:
    """Forward FLOPs per token of one encoder layer's matrix products (2 FLOPs per
    multiply-add; LayerNorm, softmax and activations are ignored, they are O(d) per token).

    * Q, K, V and output projections: 4 * d^2 multiply-adds
    * scores QK^T and the weighted sum of V: 2 * L * d multiply-adds
    * feed-forward: 2 * d * d_ff multiply-adds
    """
    return 2 * (4 * d_model * d_model + 2 * seq_len * d_model + 2 * d_model * d_ff)


def _copy_params(pairs: list[tuple[nn.Module, nn.Module]]) -> None:
    with torch.no_grad():
        for src, dst in pairs:
            dst.weight.copy_(src.weight)
            if getattr(src, "bias", None) is not None:
                dst.bias.copy_(src.bias)


def to_torch(layer: TransformerEncoderLayer | TransformerDecoderLayer) -> nn.Module:
    """A ``torch.nn.TransformerEncoderLayer`` / ``TransformerDecoderLayer`` (``batch_first``)
    with the same configuration and a copy of ``layer``'s weights.

    Used to verify our layers: on the same input the two give the same output. Remember that
    torch's masks use the opposite convention (True = padding): pass ``~key_padding_mask``.
    Example::

        ours = TransformerEncoderLayer(64, 4, 256, dropout=0.0).eval()
        ref = to_torch(ours).eval()
        x = torch.randn(2, 5, 64)
        torch.testing.assert_close(ours(x), ref(x))
    """
    dropout = layer.dropout.p
    bias = layer.linear1.bias is not None
    kw = dict(dim_feedforward=layer.d_ff, dropout=dropout, activation=layer.activation,
              layer_norm_eps=layer.norm1.eps, batch_first=True, norm_first=layer.norm_first, bias=bias)
    device, dtype = layer.linear1.weight.device, layer.linear1.weight.dtype
    if isinstance(layer, TransformerEncoderLayer):
        ref = nn.TransformerEncoderLayer(layer.d_model, layer.n_heads, **kw).to(device, dtype)
        copy_weights_to_torch(layer.self_attn, ref.self_attn)
        _copy_params([(layer.linear1, ref.linear1), (layer.linear2, ref.linear2),
                      (layer.norm1, ref.norm1), (layer.norm2, ref.norm2)])
    elif isinstance(layer, TransformerDecoderLayer):
        ref = nn.TransformerDecoderLayer(layer.d_model, layer.n_heads, **kw).to(device, dtype)
        copy_weights_to_torch(layer.self_attn, ref.self_attn)
        copy_weights_to_torch(layer.cross_attn, ref.multihead_attn)
        _copy_params([(layer.linear1, ref.linear1), (layer.linear2, ref.linear2),
                      (layer.norm1, ref.norm1), (layer.norm2, ref.norm2), (layer.norm3, ref.norm3)])
    else:
        raise TypeError(f"to_torch takes a TransformerEncoderLayer or TransformerDecoderLayer, "
                        f"got {type(layer).__name__}")
    return ref
