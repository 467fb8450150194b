"""The fused attention kernel of lesson 04 (FlashAttention-2 in Triton).

Two functions, used by ``textft_lib.attention`` as ``backend="triton"``:

- :func:`triton_status`: can the kernel run on this device, and if not, why;
- :func:`flash_attention`: softmax(Q Kᵀ · scale) V, forward and backward (autograd).

Where the kernel runs:

- CUDA GPUs of compute capability 8.0 or newer (A100, RTX 30xx/40xx, H100, L4, ...);
- the CPU, under Triton's interpreter, when ``TRITON_INTERPRET=1`` was set before
  ``triton`` (and this package's kernels) were imported. The interpreter runs each
  program of the grid one after another in NumPy: correct for fp32 and fp16 (not bf16),
  and slow, so keep the sizes tiny there.

Older GPUs (the T4 of free Colab, sm_75) lack the tensor-core ``tl.dot`` of Triton >= 3.3;
there ``textft_lib.attention`` uses PyTorch's SDPA instead.

Importing this package does not import ``triton``: it works on macOS and Windows, where
Triton is not installed, and ``triton_status`` then says so.

Example::

    import torch
    from textft_lib.kernels import triton_status, flash_attention
    ok, why = triton_status(torch.device("cuda"))
    if ok:
        q = k = v = torch.randn(2, 4, 300, 64, device="cuda", dtype=torch.float16)
        out = flash_attention(q, k, v, causal=True)       # (2, 4, 300, 64)
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import sys
from typing import Any

_MODULE = "textft_lib.kernels.flash_kernels"

#: The largest head size the kernel supports (its tiles hold one whole head: BLOCK_D <= 128).
MAX_HEAD_DIM = 128
_INTERPRET_HINT = ("set TRITON_INTERPRET=1 in the environment before importing triton "
                   "(in a notebook: os.environ['TRITON_INTERPRET'] = '1' in the first cell, then "
                   "restart the kernel); the interpreter is slow, for speed use backend='sdpa'")


@functools.lru_cache(maxsize=None)
def installed_version(package: str) -> tuple[int, ...]:
    """``(major, minor, patch)`` of an installed package, e.g. ``(3, 9, 0)`` for triton 3.9.0."""
    import importlib.metadata
    import re

    return tuple(int(n) for n in re.findall(r"\d+", importlib.metadata.version(package).split("+")[0])[:3])


def version_problem(interpreted: bool) -> str | None:
    """Why the installed Triton (and, under the interpreter, NumPy) cannot run the kernel, or
    None. ``requirements.txt`` excludes these combinations; this names them when they occur."""
    triton = installed_version("triton")
    shown = ".".join(map(str, triton))
    if triton < (3, 4):
        return f"the kernel needs Triton 3.4 or newer (triton.knobs), this is {shown}: pip install 'triton>=3.7'"
    if interpreted and triton < (3, 7) and installed_version("numpy") >= (2, 4):
        return (f"Triton {shown}'s interpreter cannot run loops with runtime bounds on NumPy 2.4 or newer "
                "(it converts a one-element array to int, which NumPy 2.4 refuses; fixed in Triton 3.7): "
                "pip install 'triton>=3.7', or 'numpy<2.4'")
    return None


def _interpret_requested() -> bool:
    """True when the environment asks Triton for its interpreter."""
    return os.environ.get("TRITON_INTERPRET", "").strip().lower() in {"1", "true", "yes", "on"}


def _interpreted() -> bool:
    """Whether this package's kernels are (or, once imported, will be) interpreted."""
    module = sys.modules.get(_MODULE)
    if module is not None:
        return bool(module.INTERPRETED)
    if "triton" in sys.modules:  # triton reads the variable when a kernel is defined
        return bool(sys.modules["triton"].knobs.runtime.interpret)
    return _interpret_requested()


def triton_status(device: Any) -> tuple[bool, str]:
    """Can the Triton kernel run on ``device``? Returns ``(ok, reason)``; never raises.

    ``device``: a ``torch.device`` or a string such as ``"cuda"``, ``"cuda:1"``, ``"cpu"``.

    Example::

        triton_status("cpu")   # (True, 'interpreter') when TRITON_INTERPRET=1 was set
    """
    import torch

    try:
        device = torch.device(device)
    except (RuntimeError, TypeError) as err:
        return False, f"not a device: {device!r} ({err})"
    if importlib.util.find_spec("triton") is None:
        return False, ("triton is not installed (it ships for Linux; on macOS and Windows use "
                       "backend='sdpa')")
    module = sys.modules.get(_MODULE)
    problem = version_problem(_interpreted())
    if problem:
        return False, problem
    if device.type == "cpu":
        if _interpreted():
            return True, "interpreter"
        if module is not None and _interpret_requested():
            return False, ("TRITON_INTERPRET=1 was set after the kernels were compiled for the GPU: "
                           "restart Python with the variable set before importing triton")
        return False, f"on CPU the Triton kernel runs only under its interpreter: {_INTERPRET_HINT}"
    if device.type != "cuda":
        return False, f"Triton does not run on {device.type} devices; use backend='sdpa'"
    if not torch.cuda.is_available():
        return False, "CUDA is not available in this PyTorch build or on this machine"
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        return False, f"there is no {device}: this machine has {torch.cuda.device_count()} CUDA device(s)"
    major, minor = torch.cuda.get_device_capability(index)
    name = torch.cuda.get_device_name(index)
    if (major, minor) < (8, 0):
        return False, (f"{name} is sm_{major}{minor}; the kernel needs sm_80 or newer (Triton >= 3.3 has no "
                       "tensor-core tl.dot below sm_80): use backend='sdpa'")
    if _interpreted():
        return True, f"{name}, sm_{major}{minor}, under the interpreter (TRITON_INTERPRET=1 is set: slow)"
    return True, f"{name}, sm_{major}{minor}"


def kernel_module() -> Any:
    """Import and return the module that holds the Triton kernels (imports triton)."""
    try:
        return importlib.import_module(_MODULE)
    except ImportError as err:
        raise RuntimeError(f"the Triton kernels cannot be imported: {err}") from err


def flash_attention(q: Any, k: Any, v: Any, key_padding_mask: Any = None, causal: bool = False,
                    scale: float | None = None) -> Any:
    """softmax(Q Kᵀ · scale) V with the fused Triton kernel; differentiable in q, k, v.

    Args:
        q: ``(B, H, Lq, D)``; k, v: ``(B, H, Lk, D)``; fp16, bf16 or fp32; ``D <= 128``.
        key_padding_mask: ``(B, Lk)`` bool, True = real token, False = padding.
        causal: query i sees keys 0..i only (top-left aligned; needs ``Lq == Lk``).
        scale: multiplies the scores; default ``1/√D``.

    Returns:
        ``(B, H, Lq, D)`` in q's dtype. A query row with no visible key is zero (and so are
        its gradients).

    Raises ``RuntimeError`` when Triton cannot run on q's device (the message says why),
    ``ValueError``/``TypeError`` for bad shapes, dtypes or devices.

    Example::

        out = flash_attention(q, k, v, key_padding_mask=lengths_mask, causal=False)
        out.sum().backward()
    """
    device = getattr(q, "device", None)
    if device is None:
        raise TypeError(f"q must be a torch.Tensor, got {type(q).__name__}")
    ok, reason = triton_status(device)
    if not ok:
        raise RuntimeError(f"the Triton attention kernel cannot run on {device}: {reason}")
    return kernel_module().flash_attention(q, k, v, key_padding_mask=key_padding_mask, causal=causal,
                                           scale=scale)


__all__ = ["MAX_HEAD_DIM", "triton_status", "flash_attention", "kernel_module"]
