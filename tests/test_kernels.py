"""The Triton FlashAttention kernel (textft_lib.kernels) against the attention formula.

On a machine without a GPU these tests run under Triton's interpreter, which the test run
switches on with TRITON_INTERPRET=1 (set before triton is imported). The interpreter runs
every program of the grid one after another in NumPy, so the shapes here are small; small
tiles (16 × 16) make even short sequences span several tiles. Every output buffer is
filled with NaN before a kernel runs, so an element the kernel fails to write is caught.
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys

import pytest
import torch

from textft_lib import kernels

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
OK, REASON = kernels.triton_status(DEVICE)
pytestmark = pytest.mark.skipif(not OK, reason=f"the Triton kernel cannot run here: {REASON}")

TOL = {torch.float32: dict(atol=2e-5, rtol=2e-5),
       torch.float16: dict(atol=6e-3, rtol=6e-3),
       torch.bfloat16: dict(atol=4e-2, rtol=4e-2)}


@pytest.fixture(autouse=True)
def kernel_module(monkeypatch):
    """The kernel module with NaN-poisoned outputs and 16 × 16 tiles (under the interpreter)."""
    if not OK:
        pytest.skip(REASON)
    fk = kernels.kernel_module()
    monkeypatch.setattr(fk, "POISON_OUTPUTS", True)
    monkeypatch.setattr(fk, "INTERPRETER_CONFIG", {"BLOCK_M": 16, "BLOCK_N": 16})
    return fk


def reference(q, k, v, mask=None, causal=False, scale=None):
    """softmax(Q Kᵀ · scale) V in float64, with masks; rows with no visible key are 0."""
    q, k, v = q.double(), k.double(), v.double()
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-2, -1) * scale                                    # (B, H, Lq, Lk)
    allowed = torch.ones(s.shape, dtype=torch.bool, device=s.device)
    if mask is not None:
        allowed &= mask[:, None, None, :]
    if causal:
        allowed &= torch.ones(s.shape[-2:], dtype=torch.bool, device=s.device).tril()
    has_key = allowed.any(-1, keepdim=True)
    s = s.masked_fill(~allowed, float("-inf")).masked_fill(~has_key, 0.0)
    return torch.softmax(s, dim=-1).masked_fill(~has_key, 0.0) @ v


def run_both(b, h, lq, lk, d, dtype, mask=None, causal=False, scale=None, seed=0):
    """Kernel and reference outputs and gradients (dq, dk, dv) for one random problem."""
    g = torch.Generator().manual_seed(seed)
    q, k, v = (torch.randn(b, h, n, d, generator=g).to(DEVICE, dtype).requires_grad_()
               for n in (lq, lk, lk))
    do = torch.randn(b, h, lq, d, generator=g).to(DEVICE, dtype)
    mask = None if mask is None else mask.to(DEVICE)
    out = kernels.flash_attention(q, k, v, key_padding_mask=mask, causal=causal, scale=scale)
    grads = torch.autograd.grad(out, (q, k, v), do)
    q64, k64, v64 = (t.detach().double().requires_grad_() for t in (q, k, v))
    ref = reference(q64, k64, v64, mask, causal, scale)
    ref_grads = torch.autograd.grad(ref, (q64, k64, v64), do.double())
    return (out, *grads), (ref, *ref_grads)


def assert_matches(got, want, dtype):
    for name, a, b in zip(("out", "dq", "dk", "dv"), got, want):
        assert a.dtype == dtype, f"{name} has dtype {a.dtype}, expected {dtype}"
        assert not torch.isnan(a).any(), f"{name} has NaN: an element was never written"
        torch.testing.assert_close(a.double(), b, **TOL[dtype], msg=lambda m: f"{name}: {m}")


# ------------------------------------------------------------------------ shapes and dtypes

SHAPES = [  # (batch, heads, Lq, Lk, head_dim)
    (1, 1, 1, 1, 16),        # length 1
    (2, 3, 37, 29, 32),      # odd lengths, several tiles, batch and heads > 1
    (1, 2, 17, 50, 80),      # head_dim 80 (padded to 128 inside the kernel)
    (2, 1, 33, 33, 128),     # largest head_dim
    (1, 1, 5, 70, 64),       # fewer queries than one tile, many key tiles
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_matches_reference_fp32(shape):
    assert_matches(*run_both(*shape, torch.float32), torch.float32)


@pytest.mark.parametrize("shape", [(1, 2, 19, 23, 16), (2, 2, 40, 40, 64), (1, 1, 1, 9, 128)],
                         ids=lambda s: "x".join(map(str, s)))
def test_matches_reference_fp16(shape):
    assert_matches(*run_both(*shape, torch.float16), torch.float16)


@pytest.mark.parametrize("seed", range(3))
def test_random_shapes(seed):
    """Shapes drawn at random (fixed seeds): any lengths, not only multiples of a tile."""
    rng = torch.Generator().manual_seed(100 + seed)
    pick = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=rng))  # noqa: E731
    b, h, lq, lk = pick(1, 2), pick(1, 3), pick(1, 40), pick(1, 40)
    d = [16, 32, 64, 80, 128][pick(0, 4)]
    dtype = [torch.float32, torch.float16][seed % 2]
    causal = seed == 2
    if causal:
        lk = lq
    mask = torch.rand(b, lk, generator=rng) < 0.7
    assert_matches(*run_both(b, h, lq, lk, d, dtype, mask=mask, causal=causal, seed=seed), dtype)


def test_custom_scale():
    assert_matches(*run_both(1, 2, 20, 24, 32, torch.float32, scale=0.3), torch.float32)


def test_long_sequence_forward(kernel_module, monkeypatch):
    """A sequence over 1000 tokens (forward only, larger tiles to keep the interpreter quick);
    the saved log-sum-exp is the textbook one."""
    monkeypatch.setattr(kernel_module, "INTERPRETER_CONFIG", {"BLOCK_M": 64, "BLOCK_N": 64})
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(1, 1, 1031, 16, generator=g).to(DEVICE) for _ in range(3))
    out, lse = kernel_module.forward_with_lse(q, k, v, causal=True)
    torch.testing.assert_close(out.double(), reference(q, k, v, causal=True), **TOL[torch.float32])
    scores = (q.double() @ k.double().transpose(-2, -1)) / 4.0
    scores = scores.masked_fill(~torch.ones(1031, 1031, dtype=torch.bool, device=DEVICE).tril(), float("-inf"))
    torch.testing.assert_close(lse.double(), torch.logsumexp(scores, dim=-1), atol=1e-4, rtol=1e-5)


@pytest.mark.skipif(DEVICE.type != "cuda" or kernels.kernel_module().INTERPRETED,
                    reason="bf16 runs on a GPU only: Triton's CPU interpreter computes bf16 wrongly")
@pytest.mark.parametrize("causal", [False, True])
def test_matches_reference_bf16(causal):
    mask = torch.ones(2, 150, dtype=torch.bool)
    mask[1, 100:] = False
    assert_matches(*run_both(2, 2, 150, 150, 64, torch.bfloat16, mask=mask, causal=causal), torch.bfloat16)


# ------------------------------------------------------------------------ masks

def padding_cases(lk):
    """(name, mask (3, lk)): right padding, a fully padded sequence, left padding with a hole."""
    mask = torch.ones(3, lk, dtype=torch.bool)
    mask[0, lk // 2:] = False          # right padding (BERT batches)
    mask[1, :] = False                 # no real token at all
    mask[2, :lk // 3] = False          # left padding ...
    mask[2, lk // 2: lk // 2 + 17] = False  # ... and a hole wider than a tile
    return mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16], ids=str)
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_padding(dtype, causal):
    lk = 61
    lq = lk if causal else 23
    assert_matches(*run_both(3, 2, lq, lk, 32, dtype, mask=padding_cases(lk), causal=causal), dtype)


def test_fully_padded_rows_give_zeros_and_zero_gradients():
    mask = padding_cases(40)
    (out, dq, dk, dv), _ = run_both(3, 2, 40, 40, 16, torch.float32, mask=mask, causal=True)
    assert torch.all(out[1] == 0) and torch.all(dq[1] == 0), "a sequence with no real key must give zeros"
    assert torch.all(out[2, :, :40 // 3] == 0), "causal rows whose visible keys are all padding must be zero"
    padding = ~mask.to(DEVICE)[:, None, :].expand(3, 2, 40)                 # (B, H, Lk)
    assert torch.all(dk[padding] == 0) and torch.all(dv[padding] == 0), "padding keys must get zero gradients"


def test_scores_below_any_finite_sentinel_still_count():
    """Every score about -1.6e30 (-2.3e30 in log2 units): a running max started at a finite
    -1e30 would win over all of them and give the row zeros. The true answer is the mean of v."""
    q = torch.ones(1, 1, 4, 16, device=DEVICE)
    v = torch.randn(1, 1, 4, 16, device=DEVICE)
    out = kernels.flash_attention(q, -q, v, scale=1e29)
    torch.testing.assert_close(out, v.mean(dim=2, keepdim=True).expand_as(v))


def test_causal_first_row_copies_first_value():
    q, k, v = (torch.randn(1, 1, 20, 16, device=DEVICE) for _ in range(3))
    out = kernels.flash_attention(q, k, v, causal=True)
    torch.testing.assert_close(out[0, 0, 0], v[0, 0, 0])


def test_non_contiguous_inputs():
    """Heads split from a (B, L, H, D) tensor by transpose: strided, not contiguous."""
    x = torch.randn(2, 21, 3, 32, device=DEVICE)
    q = k = v = x.transpose(1, 2)
    assert not q.is_contiguous()
    out = kernels.flash_attention(q, k, v)
    torch.testing.assert_close(out.double(), reference(q, k, v), **TOL[torch.float32])


BIG_OFFSETS = """
import sys, torch
from textft_lib import attention, kernels
dev, step, L, D = sys.argv[1], 2 ** 30, 3, 16          # row i of a head starts at element i * 2**30
try:    # 4 GiB of fp16 reserved; only the few pages written below are touched (on a CPU)
    store = torch.empty(step * (L - 1) + 4 * D, dtype=torch.float16, device=dev)
except (RuntimeError, MemoryError) as e:
    print("no memory:", e); sys.exit(3)
g = torch.Generator().manual_seed(0)
def strided(i):          # a (1, 1, L, D) view whose row stride is 2**30 elements
    x = store[i * D:].as_strided((1, 1, L, D), (0, 0, step, 1))
    return x.copy_(torch.randn(1, 1, L, D, generator=g).half())
q, k, v, do = (strided(i) for i in range(4))
leaf = [t.detach().requires_grad_() for t in (q, k, v)]
out = kernels.flash_attention(*leaf, causal=True)
grads = torch.autograd.grad(out, leaf, do)
dense = [t.contiguous().float().requires_grad_() for t in (q, k, v)]
ref = attention.attention(*dense, causal=True, backend="reference")
want = (ref, *torch.autograd.grad(ref, dense, do.float()))
print(max(float((a.float() - b).abs().max()) for a, b in zip((out, *grads), want)))
"""


def test_offsets_past_2_to_the_31():
    """Row i of a view at element i * 2**30: int32 offsets would wrap past 2**31 (and read far
    outside the tensor). Run in a fresh Python, so a crash is a failure, not the end of the run."""
    env = {**os.environ, "TEXTFT_KERNEL_CONFIG": "fixed"}
    result = subprocess.run([sys.executable, "-c", BIG_OFFSETS, DEVICE.type], env=env,
                            capture_output=True, text=True, timeout=300)
    if result.returncode == 3:
        pytest.skip(result.stdout.strip())
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr[-2000:]}"
    assert float(result.stdout.split()[-1]) < TOL[torch.float16]["atol"]


def test_poison_fills_buffers_with_nan(kernel_module):
    buf = kernel_module.output_buffer((2, 3), torch.zeros(1, device=DEVICE))
    assert torch.isnan(buf).all()


def test_dispatch_through_attention():
    attention = pytest.importorskip("textft_lib.attention")
    q, k, v = (torch.randn(2, 2, 19, 32, device=DEVICE) for _ in range(3))
    mask = torch.tensor([[True] * 19, [True] * 7 + [False] * 12], device=DEVICE)
    got = attention.attention(q, k, v, key_padding_mask=mask, backend="triton")
    want = attention.attention(q, k, v, key_padding_mask=mask, backend="reference")
    torch.testing.assert_close(got, want, **TOL[torch.float32])


# ------------------------------------------------------------------------ errors and status

@pytest.mark.parametrize("bad, error, words", [
    (dict(q=torch.randn(1, 2, 3, 256), k=torch.randn(1, 2, 3, 256)), ValueError, "head_dim up to 128"),
    (dict(q=torch.randn(2, 3, 16)), ValueError, "(batch, heads, length, head_dim)"),
    (dict(q=torch.randn(1, 2, 3, 16, dtype=torch.float64)), TypeError, "fp16, bf16 and fp32"),
    (dict(q=torch.randn(1, 2, 5, 16), causal=True), ValueError, "causal=True needs equal"),
    (dict(key_padding_mask=torch.ones(1, 3)), TypeError, "bool"),
    (dict(key_padding_mask=torch.ones(1, 4, dtype=torch.bool)), ValueError, "(B, Lk)"),
    (dict(scale=-1.0), ValueError, "positive finite"),
    (dict(k=torch.randn(1, 2, 3, 32)), ValueError, "must agree"),
    (dict(q=torch.randn(65536, 1, 1, 16), k=torch.randn(65536, 1, 1, 16), v=torch.randn(65536, 1, 1, 16)),
     ValueError, "batch x heads"),
])
def test_bad_input_raises_clear_errors(bad, error, words):
    args = dict(q=torch.randn(1, 2, 3, 16), k=torch.randn(1, 2, 3, 16), v=torch.randn(1, 2, 3, 16))
    args.update(bad)
    if args["k"].shape[-1] != args["v"].shape[-1]:
        args["v"] = torch.randn_like(args["k"])
    args = {n: t.to(DEVICE) if isinstance(t, torch.Tensor) else t for n, t in args.items()}
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        kernels.flash_attention(**args)


def test_every_launch_runs_on_the_inputs_device(kernel_module, monkeypatch):
    """Triton launches on the *current* CUDA device: forward and backward wrap each launch in
    ``on_device_of(q)``, which enters ``torch.cuda.device(q.device)`` for a CUDA tensor."""
    fk = kernel_module
    entered, launches = [], []

    class Guard:                                   # records the device each launch runs under
        def __init__(self, t):
            self.device = t.device

        def __enter__(self):
            entered.append(self.device)

        def __exit__(self, *exc):
            entered.pop()

    record = lambda name, *args, **kwargs: launches.append((name, list(entered)))  # noqa: E731
    q = k = v = torch.randn(1, 2, 20, 16)
    with monkeypatch.context() as patch:
        patch.setattr(fk, "on_device_of", Guard)
        out, lse = fk.forward(q, k, v, None, None, None, False, 0.25, launch=record)
        fk.backward(out, q, k, v, out, lse, None, None, None, False, 0.25, launch=record)
    assert [name for name, _ in launches] == ["fwd", "delta", "dkdv", "dq"]
    assert all(devices == [q.device] for _, devices in launches)

    chosen = []
    monkeypatch.setattr(torch.cuda, "device", lambda d: chosen.append(d) or contextlib.nullcontext())
    with fk.on_device_of(torch.zeros(1)):          # a CPU tensor: no device to select
        pass
    with fk.on_device_of(type("OnGPU1", (), {"is_cuda": True, "device": torch.device("cuda", 1)})()):
        pass
    assert chosen == [torch.device("cuda", 1)]


def test_status_names_the_reason():
    ok, reason = kernels.triton_status("mps")
    assert not ok and "sdpa" in reason
    ok, reason = kernels.triton_status(torch.device("cpu"))
    assert ok == kernels.kernel_module().INTERPRETED
    if ok:
        assert reason == "interpreter"


def test_cpu_without_interpreter_says_how_to_enable_it():
    """In a fresh Python without TRITON_INTERPRET, the CPU is refused with instructions."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    code = ("import torch; from textft_lib import kernels; ok, why = kernels.triton_status('cpu'); "
            "print(ok); print(why)\n"
            "try:\n    kernels.flash_attention(*(torch.randn(1, 1, 4, 16),) * 3)\n"
            "except RuntimeError as e:\n    print('raised', e)")
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "False"
    assert "TRITON_INTERPRET=1" in lines[1] and "before importing triton" in lines[1]
    assert lines[2].startswith("raised") and "TRITON_INTERPRET=1" in lines[2]


def test_known_bad_versions_are_named(monkeypatch):
    from textft_lib import kernels

    versions = {"triton": (3, 6, 0), "numpy": (2, 4, 6)}
    monkeypatch.setattr(kernels, "installed_version", lambda name: versions[name])
    assert "NumPy 2.4" in kernels.version_problem(interpreted=True)
    assert kernels.version_problem(interpreted=False) is None     # compiled for a GPU: fine
    ok, why = kernels.triton_status("cpu")
    assert not ok and "triton>=3.7" in why
    versions["numpy"] = (2, 2, 6)
    assert kernels.version_problem(interpreted=True) is None
    versions["triton"] = (3, 3, 1)
    assert "Triton 3.4 or newer" in kernels.version_problem(interpreted=False)
    versions["triton"] = (3, 9, 0)
    assert kernels.version_problem(interpreted=True) is None


@pytest.mark.skipif(DEVICE.type != "cuda" or kernels.kernel_module().INTERPRETED,
                    reason="bf16 runs on a GPU only (the CPU interpreter computes bf16 wrongly), and so "
                           "does SDPA's FlashAttention backend")
@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
@pytest.mark.parametrize("shape", [(2, 3, 200, 64), (1, 2, 130, 128)], ids=lambda s: "x".join(map(str, s)))
def test_bf16_matches_sdpa_flash(shape, causal):
    """bf16 forward and gradients against SDPA's FlashAttention backend: close to it element
    by element, and no further from the fp64 reference than about twice its own error."""
    from torch.nn.attention import SDPBackend, sdpa_kernel

    b, h, n, d = shape
    g = torch.Generator().manual_seed(7 + n + causal)
    q, k, v, do = (torch.randn(b, h, n, d, generator=g).to(DEVICE, torch.bfloat16) for _ in range(4))

    def out_and_grads(fn, dtype):
        leaves = [t.detach().to(dtype).requires_grad_() for t in (q, k, v)]
        out = fn(*leaves)
        return [out, *torch.autograd.grad(out, leaves, do.to(dtype))]

    ours = out_and_grads(lambda q, k, v: kernels.flash_attention(q, k, v, causal=causal), torch.bfloat16)
    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
        flash = out_and_grads(lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(
            q, k, v, is_causal=causal), torch.bfloat16)
    exact = out_and_grads(lambda q, k, v: reference(q, k, v, causal=causal), torch.float64)
    for name, a, f, r in zip(("out", "dq", "dk", "dv"), ours, flash, exact):
        assert a.dtype == torch.bfloat16 and not torch.isnan(a).any(), f"{name}: {a.dtype}, or NaN"
        torch.testing.assert_close(a.float(), f.float(), **TOL[torch.bfloat16], msg=lambda m: f"{name}: {m}")
        ours_err, flash_err = ((x.double() - r).norm().item() / r.norm().item() for x in (a, f))
        assert ours_err <= 2 * flash_err + 2e-3, \
            f"{name}: relative error {ours_err:.2e} against fp64, SDPA flash's is {flash_err:.2e}"
