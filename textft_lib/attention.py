"""Scaled dot-product attention, masks and multi-head attention (lesson 03).

The formula, for one head::

    Attention(Q, K, V) = softmax(Q Kᵀ / √d_k) V

    Q: (Lq, D)   K: (Lk, D)   V: (Lk, D)
    Q Kᵀ: (Lq, Lk) scores, one row per query; softmax over each row (over the keys)
    output: (Lq, D), each row a weighted average of the rows of V

Every tensor here is batched and split into heads: ``(B, H, L, D)``.

Masks are boolean and mean "may attend" (True = allowed, a real token):

- ``key_padding_mask``: ``(B, Lk)``, True where the key is a real token, False where it is
  padding (note: the opposite convention of ``torch.nn.MultiheadAttention``);
- ``causal=True``: query ``i`` may see keys ``0..i`` only (top-left aligned, ``Lq == Lk``).

A query row whose keys are all masked has nothing to average: it returns zeros (and zero
gradients), in every backend, where a naive softmax over a row of ``-inf`` returns NaN.

Backends of :func:`attention`:

- ``"reference"``: the formula as written, in plain PyTorch (can return the weights);
- ``"sdpa"``: ``torch.nn.functional.scaled_dot_product_attention``;
- ``"triton"``: the fused FlashAttention kernel of lesson 04 (``textft_lib.kernels``),
  CUDA sm_80+ (or the Triton interpreter);
- ``"auto"``: Triton on CUDA sm_80+ when the kernel can run there, else SDPA.

Example::

    import torch
    from textft_lib.attention import attention, MultiHeadAttention, padding_mask_from_lengths
    q = k = v = torch.randn(2, 4, 5, 16)                        # (B, H, L, D)
    mask = padding_mask_from_lengths(torch.tensor([5, 3]), 5)   # (B, L), True = real
    out = attention(q, k, v, key_padding_mask=mask)             # (2, 4, 5, 16)
    mha = MultiHeadAttention(d_model=64, n_heads=4)
    y = mha(torch.randn(2, 5, 64), key_padding_mask=mask)       # (2, 5, 64)
"""

from __future__ import annotations

import importlib
import math
import numbers
import operator
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from textft_lib.attention_checks import check_causal, check_dropout, check_inputs, check_key_padding_mask

_TRITON_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


class BackendUnavailableError(RuntimeError):
    """An attention backend was asked for by name but cannot run on this device."""


# --------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------

def causal_mask(q_len: int, k_len: int | None = None, *, device: Any = None) -> Tensor:
    """The causal (look-back only) mask: ``(q_len, k_len)`` bool, True where key j <= query i.

    Top-left aligned: query 0 sees key 0, query 1 sees keys 0-1, and so on.

    Example::

        >>> causal_mask(3).int()
        tensor([[1, 0, 0],
                [1, 1, 0],
                [1, 1, 1]], dtype=torch.int32)
    """
    k_len = q_len if k_len is None else k_len
    if q_len < 1 or k_len < 1:
        raise ValueError(f"causal_mask needs positive lengths, got q_len={q_len}, k_len={k_len}")
    return torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril()


def padding_mask_from_lengths(lengths: Tensor | list[int], max_len: int | None = None, *,
                              device: Any = None) -> Tensor:
    """Key padding mask from sequence lengths: ``(B, max_len)`` bool, True = a real token.

    ``lengths``: ``(B,)`` ints (a tensor or a list). ``max_len`` defaults to the longest length.

    Example::

        >>> padding_mask_from_lengths([3, 1], 4).int()
        tensor([[1, 1, 1, 0],
                [1, 0, 0, 0]], dtype=torch.int32)
    """
    if isinstance(lengths, (list, tuple)) and any(isinstance(n, bool) for n in lengths):
        raise TypeError(f"lengths must be integers, got a bool in {list(lengths)}")   # True would count as 1
    lengths = torch.as_tensor(lengths, device=device)
    if lengths.ndim != 1 or lengths.numel() == 0:
        raise ValueError(f"lengths must be a non-empty 1-D list of ints, got shape {tuple(lengths.shape)}")
    if lengths.dtype.is_floating_point or lengths.dtype == torch.bool:
        raise TypeError(f"lengths must be integers, got dtype {lengths.dtype}")
    if (lengths < 0).any():
        raise ValueError(f"lengths must be >= 0, got {lengths.tolist()}")
    longest = int(lengths.max())
    if max_len is None:
        max_len = longest
    elif isinstance(max_len, bool):
        raise TypeError(f"max_len must be an int, got a bool ({max_len})")
    else:
        try:
            max_len = operator.index(max_len)   # an int (NumPy and torch ints too), not 3.5
        except TypeError:
            raise TypeError(f"max_len must be an int, got {max_len!r} ({type(max_len).__name__})") from None
    if max_len < 1:
        raise ValueError(f"max_len must be >= 1, got {max_len}")
    if longest > max_len:
        raise ValueError(f"a length ({longest}) is longer than max_len ({max_len})")
    positions = torch.arange(max_len, device=lengths.device)
    return positions[None, :] < lengths[:, None]


def combine_masks(key_padding_mask: Tensor | None = None, *, causal: bool = False,
                  q_len: int, k_len: int, device: Any = None) -> Tensor | None:
    """The allowed-matrix that attention applies to its scores, or None when nothing is masked.

    Returns bool ``(B, 1, q_len, k_len)`` when there is a padding mask, ``(1, 1, q_len, k_len)``
    for causal alone; True = query i may attend to key j. The size-1 dimensions broadcast
    over heads (and over the batch for causal alone).

    Example::

        >>> pad = padding_mask_from_lengths([2, 3], 3)
        >>> combine_masks(pad, causal=True, q_len=3, k_len=3)[0, 0].int()
        tensor([[1, 0, 0],
                [1, 1, 0],
                [1, 1, 0]], dtype=torch.int32)
    """
    check_causal(causal, q_len, k_len)
    check_key_padding_mask(key_padding_mask, None, k_len)
    return _allowed(key_padding_mask, causal, q_len, k_len, device)


def _allowed(key_padding_mask: Tensor | None, causal: bool, q_len: int, k_len: int, device: Any) -> Tensor | None:
    """``combine_masks`` for checked arguments."""
    allowed = None
    if key_padding_mask is not None:
        allowed = key_padding_mask[:, None, None, :].expand(-1, 1, q_len, k_len)
        device = key_padding_mask.device
    if causal:
        tri = causal_mask(q_len, k_len, device=device)[None, None]
        allowed = tri if allowed is None else allowed & tri
    return allowed


# --------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------

def attention_weights(q: Tensor, k: Tensor, *, key_padding_mask: Tensor | None = None,
                      causal: bool = False, scale: float | None = None) -> Tensor:
    """softmax(Q Kᵀ · scale) with masks: ``(B, H, Lq, Lk)``, each row sums to 1 (or is all 0).

    ``q``: ``(B, H, Lq, D)``, ``k``: ``(B, H, Lk, D)``; ``scale`` defaults to ``1/√D``.
    Masked keys get weight exactly 0; a row with no allowed key is all zeros (not NaN).
    Computed in fp32 for fp16/bf16 inputs and returned in fp32 (or fp64 for fp64 inputs).

    Example::

        w = attention_weights(q, k, causal=True)   # w[..., i, j] == 0 for j > i
    """
    check_inputs(q, k, k, key_padding_mask, causal, scale)
    return _weights(q, k, key_padding_mask, causal, scale)


def _weights(q: Tensor, k: Tensor, key_padding_mask: Tensor | None, causal: bool, scale: float | None) -> Tensor:
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else float(scale)
    work = torch.float64 if q.dtype == torch.float64 else torch.float32
    scores = (q.to(work) @ k.to(work).transpose(-2, -1)) * scale          # (B, H, Lq, Lk)
    allowed = _allowed(key_padding_mask, causal, q.shape[2], k.shape[2], q.device)
    if allowed is None:
        return torch.softmax(scores, dim=-1)
    scores = scores.masked_fill(~allowed, float("-inf"))                  # exp(-inf) = 0
    has_key = allowed.any(dim=-1, keepdim=True)                            # (B|1, 1, Lq, 1)
    # A row of only -inf would give exp(-inf)/Σexp(-inf) = 0/0 = NaN: give such rows finite
    # scores first, then zero their weights, so values and gradients stay finite (zero).
    scores = scores.masked_fill(~has_key, 0.0)
    return torch.softmax(scores, dim=-1).masked_fill(~has_key, 0.0)


def reference_attention(q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Tensor | None = None,
                        causal: bool = False, scale: float | None = None, dropout_p: float = 0.0,
                        return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """The formula as written: softmax(Q Kᵀ · scale) V, in plain PyTorch.

    ``q``: ``(B, H, Lq, D)``, ``k``/``v``: ``(B, H, Lk, D)`` -> ``(B, H, Lq, D)`` in q's dtype.
    ``dropout_p`` > 0 drops attention probabilities (and rescales the rest by 1/(1-p)), as in
    training. With ``return_weights=True`` also returns the weights ``(B, H, Lq, Lk)``, before
    dropout.

    Example::

        out, w = reference_attention(q, k, v, causal=True, return_weights=True)
    """
    check_inputs(q, k, v, key_padding_mask, causal, scale)
    check_dropout(dropout_p)
    return _reference(q, k, v, key_padding_mask, causal, scale, dropout_p, return_weights)


def _reference(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None, causal: bool,
               scale: float | None, dropout_p: float, return_weights: bool = False) -> Any:
    weights = _weights(q, k, key_padding_mask, causal, scale)
    probs = F.dropout(weights, p=dropout_p, training=True) if dropout_p > 0 else weights
    out = (probs @ v.to(probs.dtype)).to(q.dtype)                          # (B, H, Lq, D)
    return (out, weights) if return_weights else out


def sdpa_attention(q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Tensor | None = None,
                   causal: bool = False, scale: float | None = None, dropout_p: float = 0.0) -> Tensor:
    """The same result through ``torch.nn.functional.scaled_dot_product_attention``.

    Shapes as in :func:`reference_attention`. For a query row whose keys are all masked, SDPA
    alone gives NaN or zeros depending on the PyTorch version and kernel; here such rows get a
    harmless all-True mask row and their output is then set to zero, so SDPA agrees with the
    reference in values and gradients on every version.
    """
    check_inputs(q, k, v, key_padding_mask, causal, scale)
    check_dropout(dropout_p)
    return _sdpa(q, k, v, key_padding_mask, causal, scale, dropout_p)


def _sdpa(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None, causal: bool,
          scale: float | None, dropout_p: float) -> Tensor:
    if key_padding_mask is None:
        # causal alone never empties a row (query i always sees key 0): use the fast path.
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=causal, scale=scale)
    allowed = _allowed(key_padding_mask, causal, q.shape[2], k.shape[2], q.device)
    has_key = allowed.any(dim=-1, keepdim=True)                            # (B, 1, Lq, 1)
    safe = allowed | ~has_key                                              # empty rows: allow all
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe, dropout_p=dropout_p, scale=scale)
    return out.masked_fill(~has_key, 0.0)


def _load_kernels() -> Any:
    """Import ``textft_lib.kernels`` (lesson 04) on first use; say clearly why it failed."""
    try:
        return importlib.import_module("textft_lib.kernels")
    except ImportError as err:
        raise BackendUnavailableError(
            f"attention backend 'triton' is unavailable: textft_lib.kernels could not be imported ({err})"
        ) from err


def _triton(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None, causal: bool,
            scale: float | None, dropout_p: float) -> Tensor:
    # resolve_backend has checked that the kernel runs here and that dropout_p is 0.
    return _load_kernels().kernel_module().attend(q, k, v, key_padding_mask, causal, scale)


#: Every backend by name: a function ``(q, k, v, key_padding_mask, causal, scale, dropout_p)``
#: for inputs ``check_inputs`` has passed. A new backend is one entry here (and, if it cannot
#: run everywhere, a condition in ``resolve_backend``).
IMPLEMENTATIONS: dict[str, Callable[..., Tensor]] = {"reference": _reference, "sdpa": _sdpa, "triton": _triton}
BACKENDS = ("auto", *IMPLEMENTATIONS)


def triton_status(device: Any) -> tuple[bool, str]:
    """Can the Triton backend run on ``device``? Returns ``(ok, reason)``, never raises.

    Delegates to ``textft_lib.kernels.triton_status`` and reports an import failure as a reason.
    """
    try:
        kernels = _load_kernels()
    except BackendUnavailableError as err:
        return False, str(err)
    return kernels.triton_status(torch.device(device))


def resolve_backend(backend: str, device: Any, dtype: torch.dtype = torch.float32, *,
                    dropout_p: float = 0.0, head_dim: int | None = None) -> str:
    """The backend that ``attention(..., backend=backend)`` will use for tensors on ``device``.

    ``"auto"`` gives ``"triton"`` on CUDA sm_80+ when the kernel can run there (fp16, bf16 or
    fp32, no dropout, a head size the kernel supports), otherwise ``"sdpa"`` (CPU, Apple MPS,
    older GPUs such as the T4, whose sm_75 lacks the tensor-core ``tl.dot`` of Triton >= 3.3).
    A backend named explicitly is returned as is if it can run, else ``BackendUnavailableError``
    says why.

    Example::

        resolve_backend("auto", torch.device("cpu"))   # 'sdpa'
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}: choose one of {', '.join(BACKENDS)}")
    device = torch.device(device)
    if backend == "triton":
        if dropout_p > 0:
            raise BackendUnavailableError("attention backend 'triton' has no attention dropout: use "
                                          "dropout_p=0, or backend='sdpa' or 'reference' for dropout")
        if dtype not in _TRITON_DTYPES:
            raise BackendUnavailableError(f"attention backend 'triton' supports fp16, bf16 and fp32, not {dtype}")
        ok, reason = triton_status(device)
        if not ok:
            raise BackendUnavailableError(f"attention backend 'triton' is unavailable on {device}: {reason}")
    if backend != "auto":
        return backend
    if device.type == "cuda" and dropout_p == 0 and dtype in _TRITON_DTYPES:
        if torch.cuda.get_device_capability(device) >= (8, 0) and triton_status(device)[0]:
            if head_dim is None or head_dim <= _load_kernels().MAX_HEAD_DIM:
                return "triton"
    return "sdpa"


def attention(q: Tensor, k: Tensor, v: Tensor, *, key_padding_mask: Tensor | None = None,
              causal: bool = False, scale: float | None = None, backend: str = "auto",
              dropout_p: float = 0.0) -> Tensor:
    """Scaled dot-product attention: softmax(Q Kᵀ · scale) V, through the chosen backend.

    Args:
        q: ``(B, H, Lq, D)`` queries; k, v: ``(B, H, Lk, D)`` keys and values (same dtype/device).
        key_padding_mask: ``(B, Lk)`` bool, True = a real token, False = padding (ignored key).
        causal: query i sees keys 0..i only (top-left aligned; needs ``Lq == Lk``).
        scale: multiplies the scores; default ``1/√D``.
        backend: ``"auto"``, ``"reference"``, ``"sdpa"`` or ``"triton"`` (see the module docstring).
        dropout_p: attention dropout (training only; the caller passes 0 in eval).
            The Triton kernel has none, so ``"auto"`` uses SDPA when ``dropout_p > 0``.

    Returns:
        ``(B, H, Lq, D)`` in q's dtype. A query row whose keys are all masked is all zeros.

    Example::

        q = k = v = torch.randn(1, 2, 4, 8)
        out = attention(q, k, v, causal=True)   # (1, 2, 4, 8); out[..., 0, :] == v[..., 0, :]
    """
    check_inputs(q, k, v, key_padding_mask, causal, scale)
    check_dropout(dropout_p)
    chosen = resolve_backend(backend, q.device, q.dtype, dropout_p=dropout_p, head_dim=q.shape[-1])
    return IMPLEMENTATIONS[chosen](q, k, v, key_padding_mask, causal, scale, dropout_p)


# --------------------------------------------------------------------------------------
# Multi-head attention
# --------------------------------------------------------------------------------------

class MultiHeadAttention(nn.Module):
    """Multi-head attention: project, split into heads, attend, merge heads, project.

    ``d_model`` is split into ``n_heads`` heads of ``d_model // n_heads`` dimensions each.
    Submodules ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``: ``nn.Linear(d_model, d_model)``.

    forward(query, key=None, value=None, *, key_padding_mask=None, causal=False,
    need_weights=False, backend="auto"):

    - query ``(B, Lq, d_model)``; key/value ``(B, Lk, d_model)``, default ``query``
      (self-attention); pass ``key`` (and ``value``) for cross-attention;
    - key_padding_mask ``(B, Lk)`` bool, True = real token;
    - returns ``(B, Lq, d_model)``, or ``(out, weights)`` with weights ``(B, H, Lq, Lk)``
      (before dropout) when ``need_weights=True`` (computed on the reference path);
    - ``kv_cache`` (a ``gpt.LayerCache``): the keys and values of earlier positions are
      kept and reused, so a decoder generating text computes each position's only once.

    Dropout (``dropout``) acts on the attention probabilities in training mode only.

    Example::

        mha = MultiHeadAttention(d_model=64, n_heads=4)
        x = torch.randn(2, 10, 64)
        y = mha(x, causal=True)                          # (2, 10, 64)
        y, w = mha(x, need_weights=True)                 # w: (2, 4, 10, 10)
    """

    def __init__(self, d_model: int, n_heads: int, *, dropout: float = 0.0, bias: bool = True) -> None:
        super().__init__()
        if not all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n > 0 for n in (d_model, n_heads)):
            raise ValueError(f"d_model and n_heads must be positive ints, got {d_model!r}, {n_heads!r}")
        d_model, n_heads = int(d_model), int(n_heads)
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        check_dropout(dropout)
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.dropout = float(dropout)
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def extra_repr(self) -> str:
        return f"d_model={self.d_model}, n_heads={self.n_heads}, dropout={self.dropout}"

    def split_heads(self, x: Tensor) -> Tensor:
        """``(B, L, d_model)`` -> ``(B, H, L, head_dim)``."""
        b, length, _ = x.shape
        return x.view(b, length, self.n_heads, self.head_dim).transpose(1, 2)

    def merge_heads(self, x: Tensor) -> Tensor:
        """``(B, H, L, head_dim)`` -> ``(B, L, d_model)``."""
        b, _, length, _ = x.shape
        return x.transpose(1, 2).reshape(b, length, self.d_model)

    def forward(self, query: Tensor, key: Tensor | None = None, value: Tensor | None = None, *,
                key_padding_mask: Tensor | None = None, causal: bool = False,
                need_weights: bool = False, backend: str = "auto",
                kv_cache: Any = None) -> Tensor | tuple[Tensor, Tensor]:
        key = query if key is None else key
        value = key if value is None else value
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor) or t.ndim != 3 or t.shape[-1] != self.d_model:
                shape = tuple(t.shape) if isinstance(t, Tensor) else type(t).__name__
                raise ValueError(f"{name} must have shape (batch, length, d_model={self.d_model}), got {shape}")
        if key.shape[:2] != value.shape[:2] or key.shape[0] != query.shape[0]:
            raise ValueError(f"query {tuple(query.shape)}, key {tuple(key.shape)} and value {tuple(value.shape)} "
                             "must share the batch size, and key and value the length")
        if need_weights and backend not in ("auto", "reference"):
            raise ValueError(f"need_weights=True computes the weights on the reference path; "
                             f"backend={backend!r} cannot return them (use 'auto' or 'reference')")
        p = self.dropout if self.training else 0.0
        q = self.split_heads(self.q_proj(query))                          # (B, H, Lq, Dh)
        k = self.split_heads(self.k_proj(key))                            # (B, H, Lk, Dh)
        v = self.split_heads(self.v_proj(value))                          # (B, H, Lk, Dh)
        if kv_cache is not None:                  # self-attention while generating (gpt.LayerCache)
            k, v = kv_cache.update(k, v)                                  # (B, H, past + Lk, Dh)
            causal = causal and q.shape[2] > 1    # one new token may see every cached position
        weights = None
        if need_weights:
            out, weights = reference_attention(q, k, v, key_padding_mask=key_padding_mask, causal=causal,
                                               dropout_p=p, return_weights=True)
        else:
            out = attention(q, k, v, key_padding_mask=key_padding_mask, causal=causal, backend=backend,
                            dropout_p=p)
        out = self.out_proj(self.merge_heads(out))                        # (B, Lq, d_model)
        return (out, weights) if need_weights else out

    # -- interoperability with torch.nn.MultiheadAttention ------------------------------

    @classmethod
    def from_torch(cls, torch_mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """A ``MultiHeadAttention`` with the same weights as ``torch_mha``.

        Mind the masks: torch's ``key_padding_mask`` is True for *padding*, ours for *real*
        tokens, so pass ``~our_mask`` to torch. Example::

            ours = MultiHeadAttention.from_torch(nn.MultiheadAttention(64, 4, batch_first=True))
        """
        bias = torch_mha.in_proj_bias is not None
        ours = cls(torch_mha.embed_dim, torch_mha.num_heads, dropout=torch_mha.dropout, bias=bias)
        copy_weights_from_torch(ours, torch_mha)
        return ours.to(device=torch_mha.out_proj.weight.device, dtype=torch_mha.out_proj.weight.dtype)

    def to_torch(self) -> nn.MultiheadAttention:
        """A ``torch.nn.MultiheadAttention(batch_first=True)`` with the same weights."""
        bias = self.q_proj.bias is not None
        w = self.q_proj.weight
        theirs = nn.MultiheadAttention(self.d_model, self.n_heads, dropout=self.dropout, bias=bias,
                                       batch_first=True, device=w.device, dtype=w.dtype)
        copy_weights_to_torch(self, theirs)
        return theirs


def _check_compatible(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    if not isinstance(theirs, nn.MultiheadAttention):
        raise TypeError(f"expected torch.nn.MultiheadAttention, got {type(theirs).__name__}")
    if (theirs.embed_dim, theirs.num_heads) != (ours.d_model, ours.n_heads):
        raise ValueError(f"size mismatch: torch has embed_dim={theirs.embed_dim}, num_heads={theirs.num_heads}; "
                         f"ours has d_model={ours.d_model}, n_heads={ours.n_heads}")
    if theirs.kdim != theirs.embed_dim or theirs.vdim != theirs.embed_dim or theirs.bias_k is not None:
        raise ValueError("only nn.MultiheadAttention with kdim = vdim = embed_dim and add_bias_kv=False maps "
                         "onto MultiHeadAttention")
    if (theirs.in_proj_bias is not None) != (ours.q_proj.bias is not None):
        raise ValueError("one module has biases and the other has not (bias=True/False must match)")


@torch.no_grad()
def copy_weights_from_torch(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    """Copy ``theirs`` (torch.nn.MultiheadAttention) into ``ours`` in place.

    torch stores the three input projections stacked in ``in_proj_weight`` ``(3·d, d)``
    in the order q, k, v; ``out_proj`` is an ``nn.Linear`` in both.
    """
    _check_compatible(ours, theirs)
    for i, proj in enumerate((ours.q_proj, ours.k_proj, ours.v_proj)):
        proj.weight.copy_(theirs.in_proj_weight.chunk(3)[i])
        if proj.bias is not None:
            proj.bias.copy_(theirs.in_proj_bias.chunk(3)[i])
    ours.out_proj.weight.copy_(theirs.out_proj.weight)
    if ours.out_proj.bias is not None:
        ours.out_proj.bias.copy_(theirs.out_proj.bias)


@torch.no_grad()
def copy_weights_to_torch(ours: MultiHeadAttention, theirs: nn.MultiheadAttention) -> None:
    """Copy ``ours`` into ``theirs`` (torch.nn.MultiheadAttention) in place."""
    _check_compatible(ours, theirs)
    theirs.in_proj_weight.copy_(torch.cat([ours.q_proj.weight, ours.k_proj.weight, ours.v_proj.weight]))
    if theirs.in_proj_bias is not None:
        theirs.in_proj_bias.copy_(torch.cat([ours.q_proj.bias, ours.k_proj.bias, ours.v_proj.bias]))
    theirs.out_proj.weight.copy_(ours.out_proj.weight)
    if theirs.out_proj.bias is not None:
        theirs.out_proj.bias.copy_(ours.out_proj.bias)
