"""A decoder-only Transformer (GPT) from lesson 05's blocks, its key/value cache, sampling,
and the export to ``transformers``' GPT-2 classes (lesson 08).

The model is GPT-2's: token and learned position embeddings, ``n_layers`` pre-LN blocks of
causal self-attention and a GELU feed-forward network (``transformer.TransformerEncoderLayer``
with ``causal=True``), a final LayerNorm, and an output layer tied to the token embedding::

    from textft_lib import gpt
    model = gpt.GPT(gpt.GPTConfig(vocab_size=2000, max_len=128, d_model=128, n_heads=4, n_layers=4))
    logits = model(ids)                                   # (B, L) ids -> (B, L, V) next-token logits
    loss = model.loss(ids)                                # mean cross-entropy of ids[:, 1:] given the prefix
    out = gpt.generate(model, ids, max_new_tokens=50, temperature=0.8, top_k=40, seed=0)   # (B, L + 50)
    hf = gpt.to_gpt2(model)                               # transformers.GPT2LMHeadModel, same logits

``KVCache`` holds every layer's keys and values, ``(B, H, length, head_dim)``, so that each new
token costs one position's computation instead of the whole prefix's.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textft_lib.checks import check_int, check_number
from textft_lib.train import evaluating
from textft_lib.transformer import (LearnedPositionalEmbedding, SinusoidalPositionalEncoding,
                                    TransformerEncoderLayer, check_token_ids)

POSITIONS = ("learned", "sinusoidal")


@dataclass(frozen=True)
class GPTConfig:
    """The sizes of a GPT. ``d_ff`` defaults to ``4 * d_model``; ``positions`` is ``"learned"``
    (GPT-2) or ``"sinusoidal"`` (the original Transformer); ``max_len`` is the context: the
    longest sequence the model reads."""

    vocab_size: int
    max_len: int = 256
    d_model: int = 128
    n_heads: int = 4
    n_layers: int = 4
    d_ff: int | None = None
    dropout: float = 0.0
    positions: str = "learned"
    tie_weights: bool = True

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_len", "d_model", "n_heads", "n_layers"):
            check_int(getattr(self, name), name, minimum=1)
        if self.d_ff is not None:
            check_int(self.d_ff, "d_ff", minimum=1)
        if self.d_model % self.n_heads:
            raise ValueError(f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}")
        check_number(self.dropout, "dropout", low=0.0, high=1.0, high_open=True)
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}")

    @property
    def ff_size(self) -> int:
        return self.d_ff or 4 * self.d_model


class LayerCache:
    """The keys and values one attention layer has computed so far, ``(B, H, length, head_dim)``.

    ``update(k, v)`` appends the new positions' keys and values and returns all of them; the
    attention of the new query then reads every cached position. The first update may hold a
    whole prompt; after it, one token at a time (a longer step would need a causal mask offset
    by the cached length). Example::

        cache = LayerCache()
        k_all, v_all = cache.update(k, v)        # k: (B, H, 1, Dh) -> k_all: (B, H, length + 1, Dh)
    """

    def __init__(self) -> None:
        self.k: Tensor | None = None
        self.v: Tensor | None = None

    @property
    def length(self) -> int:
        return 0 if self.k is None else self.k.shape[2]

    def update(self, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        if self.length and k.shape[2] > 1:
            raise ValueError(f"a key/value cache that already holds {self.length} positions takes one new token "
                             f"at a time, got {k.shape[2]}")
        if self.k is None:
            self.k, self.v = k, v
        else:
            self.k, self.v = torch.cat([self.k, k], dim=2), torch.cat([self.v, v], dim=2)
        return self.k, self.v


class KVCache:
    """One ``LayerCache`` per layer. ``length`` is the number of positions already processed:
    the position of the next token."""

    def __init__(self, n_layers: int) -> None:
        self.layers = [LayerCache() for _ in range(check_int(n_layers, "n_layers", minimum=1))]

    @property
    def length(self) -> int:
        return self.layers[0].length


def check_decoder_input(ids: Tensor, vocab_size: int, max_len: int, cache: KVCache | None) -> int:
    """Raise a clear error unless ``ids`` is a ``(B, L)`` tensor of ids below ``vocab_size``, with
    ``L >= 1``, that fits the context after the cached positions; return that offset."""
    check_token_ids(ids, vocab_size)
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise ValueError(f"ids must have shape (batch, length) with length >= 1, got {tuple(ids.shape)}")
    offset = cache.length if cache is not None else 0
    if offset + ids.shape[1] > max_len:
        raise ValueError(f"{offset + ids.shape[1]} positions exceed the model's context of {max_len} tokens")
    return offset


class GPT(nn.Module):
    """A decoder-only Transformer over token ids. ``forward(ids (B, L), cache=None)`` returns
    next-token logits ``(B, L, vocab_size)``: position ``t`` scores the token at ``t + 1``.
    With a ``KVCache``, ``ids`` are the positions after the cached ones.
    """

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = c = config
        self.tok = nn.Embedding(c.vocab_size, c.d_model)
        pos_class = LearnedPositionalEmbedding if c.positions == "learned" else SinusoidalPositionalEncoding
        self.pos = pos_class(c.d_model, c.max_len, dropout=c.dropout)
        self.blocks = nn.ModuleList(
            TransformerEncoderLayer(c.d_model, c.n_heads, c.ff_size, dropout=c.dropout, activation="gelu",
                                    norm_first=True) for _ in range(c.n_layers))
        self.norm = nn.LayerNorm(c.d_model)
        self.head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.apply(self._init)
        if c.tie_weights:
            self.head.weight = self.tok.weight
        for block in self.blocks:      # GPT-2: the projections into the residual stream shrink with depth
            for proj in (block.self_attn.out_proj, block.linear2):
                nn.init.normal_(proj.weight, std=0.02 / (2 * c.n_layers) ** 0.5)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)                   # GPT-2's N(0, 0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def new_cache(self) -> KVCache:
        return KVCache(self.config.n_layers)

    def forward(self, ids: Tensor, *, cache: KVCache | None = None) -> Tensor:
        offset = check_decoder_input(ids, self.config.vocab_size, self.config.max_len, cache)
        x = self.pos(self.tok(ids), offset=offset)                           # (B, L, d)
        for i, block in enumerate(self.blocks):
            x = block(x, causal=True, kv_cache=cache.layers[i] if cache is not None else None)
        return self.head(self.norm(x))                                      # (B, L, V)

    def loss(self, ids: Tensor) -> Tensor:
        """Mean cross-entropy of each next token: logits at ``0..L-2`` against ``ids[:, 1:]``."""
        if not isinstance(ids, Tensor) or ids.ndim != 2 or ids.shape[1] < 2:
            shape = tuple(ids.shape) if isinstance(ids, Tensor) else type(ids).__name__
            raise ValueError(f"loss needs ids of shape (batch, length) with length >= 2 (an input and its "
                             f"next token), got {shape}")
        logits = self(ids[:, :-1])                                          # (B, L-1, V)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1))

    def config_dict(self) -> dict[str, Any]:
        return asdict(self.config)


# --------------------------------------------------------------------------- sampling


def filter_logits(logits: Tensor, *, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """``logits`` (B, V) with every token outside the top ``k`` and outside the nucleus set to
    ``-inf``. The nucleus (Holtzman et al., 2020) is the smallest set of most likely tokens
    whose probabilities add up to at least ``top_p``; the most likely token is always kept, and
    ``top_p=1`` keeps every token (a float32 running sum can reach 1 before the last tokens).
    Ties at the ``k``-th largest logit are all kept, as in ``transformers``."""
    if top_k is not None:
        top_k = check_int(top_k, "top_k", minimum=1)
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]        # (B, 1)
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and check_number(top_p, "top_p", low=0.0, high=1.0, low_open=True) < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(dim=-1)
        before = probs.cumsum(dim=-1) - probs               # the mass of the tokens ranked above each
        drop = before >= top_p                              # the first token has 0 above it: kept
        logits = logits.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
    return logits


def sample_next(logits: Tensor, *, temperature: float = 1.0, top_k: int | None = None,
                top_p: float | None = None, generator: torch.Generator | None = None) -> Tensor:
    """Draw one token per row from ``softmax(logits / temperature)`` after ``filter_logits``:
    ``(B, V)`` logits -> ``(B,)`` ids. A temperature below 1 sharpens the distribution, above
    1 flattens it; for the most likely token use ``logits.argmax(-1)`` (greedy)."""
    temperature = check_number(temperature, "temperature", low=0.0, low_open=True)
    probs = filter_logits(logits.float() / temperature, top_k=top_k, top_p=top_p).softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


def _check_prompt(prompt: Tensor | Sequence[int], model: GPT, max_new_tokens: int) -> Tensor:
    ids = prompt if isinstance(prompt, Tensor) else torch.as_tensor(prompt)
    if ids.numel() and (ids.dtype == torch.bool or ids.is_floating_point() or ids.is_complex()):
        raise TypeError(f"the prompt must hold integer token ids, got dtype {ids.dtype} "
                        f"(a float or bool id would be cut to an int silently)")
    ids = ids.long()
    ids = ids[None] if ids.ndim == 1 else ids
    if ids.ndim != 2 or ids.shape[1] == 0:
        raise ValueError(f"the prompt must hold at least one token id, got shape {tuple(ids.shape)}")
    if ids.shape[1] + max_new_tokens > model.config.max_len:
        raise ValueError(f"a prompt of {ids.shape[1]} tokens plus {max_new_tokens} new ones exceeds the "
                         f"model's context of {model.config.max_len} tokens: shorten one or the other")
    return ids


def _check_stop_ids(stop_ids: Any, vocab_size: int) -> list[int]:
    """``stop_ids`` as a list of ids in ``0 .. vocab_size-1`` (a float id, or one the model can
    never produce, would never stop a row)."""
    if isinstance(stop_ids, Tensor):
        stop_ids = stop_ids.tolist()
    if isinstance(stop_ids, (str, bytes)) or not hasattr(stop_ids, "__iter__"):
        raise TypeError(f"stop_ids must be a list of token ids, got {type(stop_ids).__name__} {stop_ids!r:.40}")
    return [check_int(s, "each of stop_ids", minimum=0, maximum=vocab_size - 1) for s in stop_ids]


@torch.no_grad()
def generate(model: GPT, prompt: Tensor | Sequence[int], max_new_tokens: int, *, greedy: bool = False,
             temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             stop_ids: Sequence[int] = (), seed: int | None = None, use_cache: bool = True) -> Tensor:
    """Continue ``prompt`` ((L,) or (B, L) ids) by up to ``max_new_tokens`` tokens; returns
    ``(B, L + T)`` ids, prompt included. ``greedy`` takes the most likely token each step;
    otherwise ``sample_next`` draws with ``temperature``, ``top_k``, ``top_p`` from a
    generator seeded with ``seed`` (None: PyTorch's global generator, so ``torch.manual_seed``
    decides and each call draws anew). A row that produces one of ``stop_ids`` is finished: its
    later positions repeat that id, and generation ends when every row is finished.
    ``use_cache=False`` recomputes the whole prefix at every step (the same tokens, slower).

    Example::

        out = generate(model, [5, 17, 3], 20, temperature=0.8, top_p=0.9, seed=0)   # (1, 23)
    """
    max_new_tokens = check_int(max_new_tokens, "max_new_tokens", minimum=1)
    ids = _check_prompt(prompt, model, max_new_tokens).to(next(model.parameters()).device)
    if not greedy:
        check_number(temperature, "temperature", low=0.0, low_open=True)
    generator = None
    if seed is not None:
        generator = torch.Generator(device=ids.device).manual_seed(check_int(seed, "seed"))
    cache = model.new_cache() if use_cache else None
    done = torch.zeros(ids.shape[0], dtype=torch.bool, device=ids.device)
    stops = torch.tensor(_check_stop_ids(stop_ids, model.config.vocab_size), dtype=torch.long, device=ids.device)
    step_input = ids
    with evaluating(model):
        for _ in range(max_new_tokens):
            logits = model(step_input if use_cache else ids, cache=cache)[:, -1]        # (B, V)
            nxt = logits.argmax(-1) if greedy else sample_next(logits, temperature=temperature, top_k=top_k,
                                                                top_p=top_p, generator=generator)
            nxt = torch.where(done, ids[:, -1], nxt)                                   # finished rows repeat
            ids = torch.cat([ids, nxt[:, None]], dim=1)
            done |= torch.isin(nxt, stops)
            if bool(done.all()):
                break
            step_input = nxt[:, None]
    return ids


# --------------------------------------------------------------------------- transformers' GPT-2


def to_gpt2(model: GPT) -> Any:
    """A ``transformers.GPT2LMHeadModel`` with ``model``'s weights: the same logits, and
    ``generate()`` as in the ecosystem. GPT-2 stores its linear layers as ``Conv1D`` with the
    weight transposed, and the query, key and value projections as one ``c_attn``."""
    from transformers import GPT2Config, GPT2LMHeadModel

    c = model.config
    if c.positions != "learned" or not c.tie_weights:
        raise ValueError("GPT-2 has learned positions and an output layer tied to the embedding: export a "
                         "GPTConfig(positions='learned', tie_weights=True) model")
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=c.vocab_size, n_positions=c.max_len, n_embd=c.d_model,
                                    n_layer=c.n_layers, n_head=c.n_heads, n_inner=c.ff_size,
                                    activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0,
                                    attn_pdrop=0.0, layer_norm_epsilon=1e-5, tie_word_embeddings=True,
                                    bos_token_id=None, eos_token_id=None))   # GPT-2's 50256 is not ours
    t = hf.transformer
    with torch.no_grad():
        t.wte.weight.copy_(model.tok.weight)
        t.wpe.weight.copy_(model.pos.embedding.weight)
        for ours, theirs in zip(model.blocks, t.h):
            a = ours.self_attn
            theirs.ln_1.load_state_dict(ours.norm1.state_dict())
            theirs.ln_2.load_state_dict(ours.norm2.state_dict())
            theirs.attn.c_attn.weight.copy_(torch.cat([a.q_proj.weight, a.k_proj.weight, a.v_proj.weight]).T)
            theirs.attn.c_attn.bias.copy_(torch.cat([a.q_proj.bias, a.k_proj.bias, a.v_proj.bias]))
            theirs.attn.c_proj.weight.copy_(a.out_proj.weight.T)
            theirs.attn.c_proj.bias.copy_(a.out_proj.bias)
            theirs.mlp.c_fc.weight.copy_(ours.linear1.weight.T)
            theirs.mlp.c_fc.bias.copy_(ours.linear1.bias)
            theirs.mlp.c_proj.weight.copy_(ours.linear2.weight.T)
            theirs.mlp.c_proj.bias.copy_(ours.linear2.bias)
        t.ln_f.load_state_dict(model.norm.state_dict())
    return hf.eval()
