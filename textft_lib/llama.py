"""From GPT-2 to the Llama family: the four changes, each small enough to read (lesson 08).

- ``RMSNorm`` (Zhang & Sennrich, 2019): scale by the root mean square, no mean, no bias;
- rotary position embeddings, ``apply_rope`` (Su et al., 2021): rotate each pair of query and
  key dimensions by an angle proportional to the position, so ``q_i . k_j`` depends on ``i - j``;
- ``SwiGLU`` (Shazeer, 2020): the feed-forward network ``down(silu(gate(x)) * up(x))``;
- grouped-query attention, ``GroupedQueryAttention`` (Ainslie et al., 2023): fewer key/value
  heads than query heads, each shared by a group of query heads (a smaller cache).

``Llama`` stacks them like ``gpt.GPT`` stacks lesson 05's blocks, and its module names are
``transformers``' own, so a Llama checkpoint's weights load by name::

    from textft_lib import gpt, llama
    model = llama.from_transformers(hf_model)              # e.g. SmolLM2-135M
    logits = model(ids)                                    # (B, L, V), equal to hf_model's
    out = gpt.generate(model, ids, 32, greedy=True)        # the same sampling and cache as the GPT's
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textft_lib.attention import attention
from textft_lib.checks import check_int, check_number
from textft_lib.gpt import KVCache, LayerCache, check_decoder_input


@dataclass(frozen=True)
class LlamaConfig:
    """The sizes of a Llama-architecture decoder. ``n_kv_heads`` divides ``n_heads`` (equal:
    ordinary multi-head attention); ``head_dim`` defaults to ``d_model // n_heads``."""

    vocab_size: int
    d_model: int = 128
    d_ff: int = 344
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 2
    head_dim: int | None = None
    max_len: int = 2048
    rope_theta: float = 10000.0
    rms_eps: float = 1e-5
    tie_weights: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "d_model", "d_ff", "n_layers", "n_heads", "n_kv_heads", "max_len"):
            check_int(getattr(self, name), name, minimum=1)
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads={self.n_kv_heads} must divide n_heads={self.n_heads}")
        if self.head_dim is None and self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}: give head_dim")
        if self.dim_per_head % 2:
            raise ValueError(f"rotary embeddings rotate pairs of dimensions: head_dim must be even, "
                             f"got {self.dim_per_head}")
        check_number(self.rope_theta, "rope_theta", low=0.0, low_open=True)
        check_number(self.rms_eps, "rms_eps", low=0.0, low_open=True)

    @property
    def dim_per_head(self) -> int:
        return self.head_dim or self.d_model // self.n_heads

    @classmethod
    def from_hf(cls, config: Any) -> "LlamaConfig":
        """The same sizes as a ``transformers.LlamaConfig``."""
        rope = getattr(config, "rope_parameters", None) or {}
        if rope.get("rope_type", "default") != "default":
            raise ValueError(f"only plain rotary embeddings are written here, not {rope['rope_type']!r}")
        theta = rope.get("rope_theta", getattr(config, "rope_theta", 10000.0))
        return cls(vocab_size=config.vocab_size, d_model=config.hidden_size, d_ff=config.intermediate_size,
                   n_layers=config.num_hidden_layers, n_heads=config.num_attention_heads,
                   n_kv_heads=config.num_key_value_heads, head_dim=getattr(config, "head_dim", None),
                   max_len=config.max_position_embeddings, rope_theta=float(theta), rms_eps=config.rms_norm_eps,
                   tie_weights=bool(config.tie_word_embeddings))


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last dimension, computed in fp32.
    Unlike LayerNorm it neither subtracts the mean nor adds a bias. (…, d) -> (…, d)."""

    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * h.to(x.dtype)


def rope_tables(head_dim: int, positions: Tensor, theta: float = 10000.0) -> tuple[Tensor, Tensor]:
    """``cos`` and ``sin`` of the rotation angles, ``(L, head_dim)`` each, for ``positions`` (L,).
    Dimension pair ``i`` turns by ``position * theta^(-2i/head_dim)``: fast near the start of
    the head, slow at its end. The two halves of the head repeat the same angles."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)     # (D/2,)
    angles = positions.float()[:, None] * inv_freq.to(positions.device)                        # (L, D/2)
    angles = torch.cat([angles, angles], dim=-1)                                               # (L, D)
    return angles.cos(), angles.sin()


def rotate_half(x: Tensor) -> Tensor:
    """``(x1, x2) -> (-x2, x1)`` on the two halves of the last dimension."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate queries or keys ``(B, H, L, D)`` by their positions' angles (``rope_tables``):
    each pair ``(x[j], x[j + D/2])`` turns as a point in the plane."""
    return (x * cos.to(x.dtype) + rotate_half(x) * sin.to(x.dtype))


class SwiGLU(nn.Module):
    """The gated feed-forward network ``down(silu(gate(x)) * up(x))``, no biases. (B, L, d) -> (B, L, d)."""

    def __init__(self, d: int, d_ff: int) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(d, d_ff, bias=False)
        self.up_proj = nn.Linear(d, d_ff, bias=False)
        self.down_proj = nn.Linear(d_ff, d, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class GroupedQueryAttention(nn.Module):
    """Causal self-attention with ``n_heads`` query heads and ``n_kv_heads`` key/value heads;
    query head ``h`` reads key/value head ``h // (n_heads // n_kv_heads)``. Rotary embeddings
    are applied to queries and keys; a ``LayerCache`` keeps the rotated keys and the values,
    ``(B, n_kv_heads, length, head_dim)``. (B, L, d) -> (B, L, d)."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        c, dh = config, config.dim_per_head
        self.n_heads, self.n_kv_heads, self.head_dim, self.theta = c.n_heads, c.n_kv_heads, dh, c.rope_theta
        self.q_proj = nn.Linear(c.d_model, c.n_heads * dh, bias=False)
        self.k_proj = nn.Linear(c.d_model, c.n_kv_heads * dh, bias=False)
        self.v_proj = nn.Linear(c.d_model, c.n_kv_heads * dh, bias=False)
        self.o_proj = nn.Linear(c.n_heads * dh, c.d_model, bias=False)

    def forward(self, x: Tensor, *, cache: LayerCache | None = None) -> Tensor:
        b, length, _ = x.shape
        past = cache.length if cache is not None else 0
        heads = lambda t, n: t.view(b, length, n, self.head_dim).transpose(1, 2)      # noqa: E731
        q = heads(self.q_proj(x), self.n_heads)                                     # (B, H, L, Dh)
        k, v = heads(self.k_proj(x), self.n_kv_heads), heads(self.v_proj(x), self.n_kv_heads)   # (B, Hkv, L, Dh)
        cos, sin = rope_tables(self.head_dim, torch.arange(past, past + length, device=x.device), self.theta)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(k, v)                                               # (B, Hkv, past + L, Dh)
        group = self.n_heads // self.n_kv_heads
        k, v = k.repeat_interleave(group, dim=1), v.repeat_interleave(group, dim=1)  # (B, H, past + L, Dh)
        out = attention(q, k, v, causal=length > 1)                                  # (B, H, L, Dh)
        return self.o_proj(out.transpose(1, 2).reshape(b, length, self.n_heads * self.head_dim))


class LlamaBlock(nn.Module):
    """``x + attn(rms(x))``, then ``x + mlp(rms(x))``: GPT-2's pre-LN block with the Llama parts."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        self.input_layernorm = RMSNorm(config.d_model, config.rms_eps)
        self.self_attn = GroupedQueryAttention(config)
        self.post_attention_layernorm = RMSNorm(config.d_model, config.rms_eps)
        self.mlp = SwiGLU(config.d_model, config.d_ff)

    def forward(self, x: Tensor, *, cache: LayerCache | None = None) -> Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cache=cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    """A Llama-architecture decoder: ``forward(ids (B, L), cache=None) -> (B, L, vocab_size)``
    logits, with the interface of ``gpt.GPT`` (``config.max_len``, ``new_cache()``), so that
    ``gpt.generate`` runs it. No positions are added to the embeddings: RoPE places the tokens."""

    def __init__(self, config: LlamaConfig) -> None:
        super().__init__()
        if not isinstance(config, LlamaConfig):
            raise TypeError(f"config must be a llama.LlamaConfig, got {type(config).__name__}")
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(LlamaBlock(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.rms_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.embed_tokens.weight

    def new_cache(self) -> KVCache:
        return KVCache(self.config.n_layers)

    def forward(self, ids: Tensor, *, cache: KVCache | None = None) -> Tensor:
        check_decoder_input(ids, self.config.vocab_size, self.config.max_len, cache)
        x = self.embed_tokens(ids)
        for i, layer in enumerate(self.layers):
            x = layer(x, cache=cache.layers[i] if cache is not None else None)
        return self.lm_head(self.norm(x))


def from_transformers(hf_model: Any) -> Llama:
    """Our ``Llama`` with the weights of a ``transformers`` ``LlamaForCausalLM`` (loaded by name:
    ``model.layers.3.self_attn.q_proj.weight`` and so on), in float32, in eval mode."""
    model = Llama(LlamaConfig.from_hf(hf_model.config))
    state = {name.removeprefix("model."): t.detach().float() for name, t in hf_model.state_dict().items()}
    if model.config.tie_weights:
        state.setdefault("lm_head.weight", state["embed_tokens.weight"])
    missing, unexpected = model.load_state_dict(state, strict=False)
    unexpected = [n for n in unexpected if "rotary_emb" not in n]
    if missing or unexpected:
        raise ValueError(f"the checkpoint does not fit: missing {missing[:5]}, unexpected {unexpected[:5]}")
    return model.eval()
