"""The input checks of attention, in one leaf module (it imports only torch).

``textft_lib.attention`` and the Triton kernels of ``textft_lib.kernels`` both import these,
so neither imports the other for its checks. Each public entry point calls ``check_inputs``
once; the functions behind it trust their arguments.

Each check raises ``TypeError`` for a value of the wrong kind and ``ValueError`` for a wrong
shape, device or range, with a message that names the argument and what it needs.

Example::

    from textft_lib.attention_checks import check_inputs
    check_inputs(q, k, v, key_padding_mask=None, causal=True, scale=None)   # or raises
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch import Tensor

#: The dtypes every backend accepts (the Triton kernel: all but float64).
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def check_key_padding_mask(mask: Any, batch: int | None, k_len: int, device: Any = None) -> None:
    """``mask`` is None or a bool ``(batch, k_len)`` tensor (True = real token) on ``device``.
    ``batch=None`` accepts any batch size; ``device=None`` any device."""
    if mask is None:
        return
    if not isinstance(mask, Tensor):
        raise TypeError(f"key_padding_mask must be a bool tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(f"key_padding_mask must be bool (True = real token), got {mask.dtype}")
    if mask.ndim != 2 or mask.shape[1] != k_len or (batch is not None and mask.shape[0] != batch):
        want = f"(B, Lk) = {(batch, k_len)}" if batch is not None else f"(B, Lk={k_len})"
        raise ValueError(f"key_padding_mask must have shape {want}, got {tuple(mask.shape)}")
    if device is not None and mask.device != device:
        raise ValueError(f"key_padding_mask is on {mask.device} but q is on {device}")


def check_causal(causal: bool, q_len: int, k_len: int) -> None:
    """``causal=True`` needs ``q_len == k_len`` (the mask is top-left aligned)."""
    if causal and q_len != k_len:
        raise ValueError(f"causal=True needs equal query and key lengths (top-left aligned), "
                         f"got Lq={q_len}, Lk={k_len}")


def check_scale(scale: Any) -> None:
    """``scale`` is None (meaning ``1/sqrt(head_dim)``) or a positive finite number."""
    if scale is not None and (isinstance(scale, bool) or not isinstance(scale, numbers.Real)
                              or not math.isfinite(scale) or scale <= 0):
        raise ValueError(f"scale must be a positive finite number or None (= 1/sqrt(head_dim)), got {scale!r}")


def check_dropout(dropout_p: Any) -> None:
    """``dropout_p`` is a probability in ``[0, 1)``."""
    if isinstance(dropout_p, bool) or not (isinstance(dropout_p, numbers.Real) and 0.0 <= dropout_p < 1.0):
        raise ValueError(f"dropout_p must be in [0, 1), got {dropout_p!r}")


def check_inputs(q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None,
                 causal: bool, scale: float | None) -> None:
    """Raise a clear error for anything attention cannot compute correctly.

    ``q``: ``(B, H, Lq, D)``; ``k``, ``v``: ``(B, H, Lk, D)``, one floating dtype and device;
    ``key_padding_mask``: None or bool ``(B, Lk)``; ``causal`` needs ``Lq == Lk``; ``scale``
    None or positive. The Triton kernel adds its own limits on top.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{name} must have shape (batch, heads, length, head_dim), got {tuple(t.shape)}")
        if t.numel() == 0:
            raise ValueError(f"{name} has an empty dimension: shape {tuple(t.shape)}")
        if t.dtype not in FLOAT_DTYPES:
            raise TypeError(f"{name} must be a floating-point tensor (fp16, bf16, fp32, fp64), got {t.dtype}")
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k, v must share one dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if not (q.device == k.device == v.device):
        raise ValueError(f"q, k, v must be on one device, got {q.device}, {k.device}, {v.device}")
    (b, h, _, d), (bk, hk, lk, dk) = q.shape, k.shape
    if (bk, hk, dk) != (b, h, d):
        raise ValueError(f"q {tuple(q.shape)} and k {tuple(k.shape)} must agree on batch, heads and head_dim")
    if v.shape != k.shape:
        raise ValueError(f"v must have the same shape as k {tuple(k.shape)}, got {tuple(v.shape)}")
    check_key_padding_mask(key_padding_mask, b, lk, q.device)
    check_causal(causal, q.shape[2], lk)
    check_scale(scale)
