"""Tests of textft_lib.attention: the reference formula against SDPA and nn.MultiheadAttention,
masks, fully masked rows, dropout, backend choice and every input error."""

from __future__ import annotations

import math
import random

import pytest
import torch
from torch import nn

from textft_lib import attention as A

# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------


def random_case(seed: int, dtype=torch.float64, cross: bool = False):
    """Random q, k, v with odd shapes and a padding mask that sometimes empties a row."""
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    b, h = rng.randint(1, 3), rng.randint(1, 4)
    lq = rng.randint(1, 13)
    lk = rng.randint(1, 13) if cross else lq
    d = rng.choice([1, 3, 8, 16, 24])
    q, k, v = (torch.randn(b, h, length, d, generator=g, dtype=dtype) for length in (lq, lk, lk))
    lengths = [rng.randint(0 if seed % 3 == 0 else 1, lk) for _ in range(b)]
    mask = A.padding_mask_from_lengths(lengths, lk)
    return q, k, v, mask


def naive(q, k, v, allowed=None, scale=None):
    """softmax(QKᵀ/√d)V with -inf masking, nothing else: the textbook line."""
    scale = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    s = q @ k.transpose(-2, -1) * scale
    if allowed is not None:
        s = s.masked_fill(~allowed, float("-inf"))
    return torch.softmax(s, -1) @ v


def grads(fn, q, k, v, **kw):
    q, k, v = (t.detach().clone().requires_grad_() for t in (q, k, v))
    out = fn(q, k, v, **kw)
    g = torch.Generator().manual_seed(1)
    (out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum().backward()
    return out.detach(), q.grad, k.grad, v.grad


# ---------------------------------------------------------------------------------------
# mask helpers
# ---------------------------------------------------------------------------------------


def test_causal_mask():
    m = A.causal_mask(4)
    assert m.dtype == torch.bool and m.shape == (4, 4)
    assert torch.equal(m, torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]).bool())
    with pytest.raises(ValueError, match="positive"):
        A.causal_mask(0)


def test_padding_mask_from_lengths():
    m = A.padding_mask_from_lengths(torch.tensor([3, 1, 0]), 4)
    assert torch.equal(m.int(), torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]], dtype=torch.int32))
    assert A.padding_mask_from_lengths([2, 5]).shape == (2, 5)
    with pytest.raises(ValueError, match="longer than max_len"):
        A.padding_mask_from_lengths([6], 5)
    with pytest.raises(ValueError, match=">= 0"):
        A.padding_mask_from_lengths([-1, 2], 3)
    with pytest.raises(TypeError, match="integers"):
        A.padding_mask_from_lengths(torch.tensor([1.5]), 3)
    with pytest.raises(ValueError, match="1-D"):
        A.padding_mask_from_lengths([], 3)


def test_combine_masks():
    pad = A.padding_mask_from_lengths([2, 3], 3)
    both = A.combine_masks(pad, causal=True, q_len=3, k_len=3)
    assert both.shape == (2, 1, 3, 3)
    assert torch.equal(both[0, 0].int(), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 0]], dtype=torch.int32))
    assert torch.equal(both[1, 0], A.causal_mask(3))
    assert A.combine_masks(None, causal=True, q_len=3, k_len=3).shape == (1, 1, 3, 3)
    assert A.combine_masks(None, q_len=3, k_len=4) is None
    assert A.combine_masks(pad, q_len=5, k_len=3).shape == (2, 1, 5, 3)
    with pytest.raises(ValueError, match="equal query and key lengths"):
        A.combine_masks(None, causal=True, q_len=3, k_len=4)


# ---------------------------------------------------------------------------------------
# reference vs SDPA vs the textbook line
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("causal", [False, True])
def test_reference_matches_sdpa_and_naive(seed, causal):
    cross = not causal and seed % 2 == 1
    q, k, v, mask = random_case(seed, cross=cross)
    use_mask = seed % 4 != 1
    mask = mask if use_mask else None
    kw = dict(key_padding_mask=mask, causal=causal)
    ref = grads(A.reference_attention, q, k, v, **kw)
    sdpa = grads(A.sdpa_attention, q, k, v, **kw)
    via = A.attention(q, k, v, backend="reference", **kw)
    for a, b in zip(ref, sdpa):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(via, ref[0])
    allowed = A.combine_masks(mask, causal=causal, q_len=q.shape[2], k_len=k.shape[2])
    has_key = torch.ones(1, dtype=torch.bool) if allowed is None else allowed.any(-1, keepdim=True)
    expected = naive(q, k, v, allowed).masked_fill(~has_key, 0.0)  # naive has NaN there
    torch.testing.assert_close(ref[0], expected)


def test_custom_scale_and_causal_first_row():
    q, k, v, _ = random_case(5)
    out = A.attention(q, k, v, scale=0.3, backend="reference")
    torch.testing.assert_close(out, naive(q, k, v, scale=0.3))
    torch.testing.assert_close(A.attention(q, k, v, scale=0.3, backend="sdpa"), out)
    causal = A.attention(q, k, v, causal=True)
    torch.testing.assert_close(causal[:, :, 0], v[:, :, 0])  # query 0 only sees key 0


def test_float32_and_half_precision():
    q, k, v, mask = random_case(7, dtype=torch.float32, cross=True)
    ref = A.attention(q, k, v, key_padding_mask=mask, backend="reference")
    assert ref.dtype == torch.float32
    torch.testing.assert_close(A.attention(q, k, v, key_padding_mask=mask, backend="sdpa"), ref,
                               rtol=1e-5, atol=1e-5)
    qh, kh, vh = q.bfloat16(), k.bfloat16(), v.bfloat16()
    out = A.attention(qh, kh, vh, key_padding_mask=mask, backend="reference")
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), ref, rtol=0.05, atol=0.05)


def test_weights_are_distributions():
    q, k, _, mask = random_case(3, cross=True)  # seed 3: some rows may be empty
    mask[0] = False  # make sure one batch element has no real key
    w = A.attention_weights(q, k, key_padding_mask=mask)
    assert w.shape == (q.shape[0], q.shape[1], q.shape[2], k.shape[2])
    assert (w >= 0).all()
    sums = w.sum(-1)
    has_key = mask.any(-1)[:, None, None].expand_as(sums)
    torch.testing.assert_close(sums[has_key], torch.ones_like(sums[has_key]))
    assert (sums[~has_key] == 0).all() and (~has_key).any()
    assert (w.masked_select(~mask[:, None, None, :].expand_as(w)) == 0).all()


# ---------------------------------------------------------------------------------------
# fully masked rows: zeros, no NaN, in values and gradients
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["reference", "sdpa", "auto"])
@pytest.mark.parametrize("causal", [False, True])
def test_fully_masked_rows_give_zeros_and_zero_grads(backend, causal):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(3, 2, 6, 8, generator=g) for _ in range(3))
    mask = A.padding_mask_from_lengths([6, 0, 2], 6)     # batch 1: every key is padding
    fn = lambda q, k, v, **kw: A.attention(q, k, v, backend=backend, **kw)  # noqa: E731
    out, gq, gk, gv = grads(fn, q, k, v, key_padding_mask=mask, causal=causal)
    for t in (out, gq, gk, gv):
        assert torch.isfinite(t).all()
    assert (out[1] == 0).all() and (gq[1] == 0).all() and (gk[1] == 0).all() and (gv[1] == 0).all()
    assert out[0].abs().sum() > 0 and out[2].abs().sum() > 0
    # padded keys get no gradient: nothing looked at them
    assert (gk[2, :, 2:] == 0).all() and (gv[2, :, 2:] == 0).all()
    # the textbook line returns NaN for the empty row: the reason for the special case
    allowed = A.combine_masks(mask, causal=causal, q_len=6, k_len=6)
    assert torch.isnan(naive(q, k, v, allowed)[1]).all()


# ---------------------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------------------


def test_dropout_reference_and_sdpa():
    q, k, v, mask = random_case(4, dtype=torch.float32)
    plain = A.attention(q, k, v, key_padding_mask=mask)
    for backend in ("reference", "sdpa", "auto"):
        torch.manual_seed(0)
        dropped = A.attention(q, k, v, key_padding_mask=mask, backend=backend, dropout_p=0.5)
        assert torch.isfinite(dropped).all() and not torch.allclose(dropped, plain)
    # averaged over many draws, dropout is unbiased: E[out] = out without dropout
    q1, k1, v1 = q[:1, :1], k[:1, :1], v[:1, :1]
    base = A.attention(q1, k1, v1)[0, 0]
    torch.manual_seed(0)
    mean = A.attention(*(t.expand(4000, 1, -1, -1) for t in (q1, k1, v1)), backend="reference",
                       dropout_p=0.3).mean(0)[0]
    torch.testing.assert_close(mean, base, rtol=0.1, atol=0.1)
    with pytest.raises(ValueError, match="dropout_p"):
        A.attention(q, k, v, dropout_p=1.0)


# ---------------------------------------------------------------------------------------
# backends
# ---------------------------------------------------------------------------------------


def test_auto_is_sdpa_on_cpu():
    assert A.resolve_backend("auto", "cpu") == "sdpa"
    assert A.resolve_backend("reference", "cpu") == "reference"


def test_triton_backend_runs_or_says_why():
    q, k, v, mask = random_case(2, dtype=torch.float32)
    ok, reason = A.triton_status("cpu")
    assert isinstance(ok, bool) and isinstance(reason, str) and reason
    if not ok:
        with pytest.raises(A.BackendUnavailableError, match="triton"):
            A.attention(q, k, v, backend="triton")
        return
    # the kernel is installed and runs here (the Triton interpreter): it must agree
    out = A.attention(q, k, v, key_padding_mask=mask, causal=True, backend="triton")
    ref = A.attention(q, k, v, key_padding_mask=mask, causal=True, backend="reference")
    torch.testing.assert_close(out, ref, rtol=2e-3, atol=2e-3)


def test_triton_refuses_dropout_and_float64():
    q, k, v, _ = random_case(2, dtype=torch.float32)
    with pytest.raises(A.BackendUnavailableError, match="dropout"):
        A.attention(q, k, v, backend="triton", dropout_p=0.1)
    with pytest.raises(A.BackendUnavailableError, match="float64"):
        A.attention(q.double(), k.double(), v.double(), backend="triton")


def test_missing_kernels_package_is_reported(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "textft_lib.kernels", None)  # import now raises ImportError
    ok, reason = A.triton_status("cpu")
    assert not ok and "could not be imported" in reason
    q = torch.randn(1, 1, 2, 4)
    with pytest.raises(A.BackendUnavailableError, match="could not be imported"):
        A.attention(q, q, q, backend="triton")
    assert A.resolve_backend("auto", "cpu") == "sdpa"


# ---------------------------------------------------------------------------------------
# input errors
# ---------------------------------------------------------------------------------------


def test_input_errors():
    q = torch.randn(2, 3, 5, 8)
    k = torch.randn(2, 3, 7, 8)
    mask = torch.ones(2, 7, dtype=torch.bool)
    cases = [
        (dict(q=q[0]), ValueError, "shape \\(batch, heads, length, head_dim\\)"),
        (dict(q=q.numpy()), TypeError, "torch.Tensor"),
        (dict(k=torch.randn(2, 3, 7, 4)), ValueError, "head_dim"),
        (dict(k=torch.randn(1, 3, 7, 8)), ValueError, "batch"),
        (dict(k=torch.randn(2, 2, 7, 8)), ValueError, "heads"),
        (dict(v=torch.randn(2, 3, 6, 8)), ValueError, "v must have the same shape"),
        (dict(v=k.double()), TypeError, "one dtype"),
        (dict(q=q.long(), k=k.long(), v=k.long()), TypeError, "floating-point"),
        (dict(q=torch.randn(2, 3, 0, 8)), ValueError, "empty"),
        (dict(key_padding_mask=mask.float()), TypeError, "bool"),
        (dict(key_padding_mask=mask[:, :5]), ValueError, "key_padding_mask must have shape"),
        (dict(key_padding_mask=mask[0]), ValueError, "key_padding_mask must have shape"),
        (dict(causal=True), ValueError, "equal query and key lengths"),
        (dict(scale=0.0), ValueError, "scale"),
        (dict(scale=float("nan")), ValueError, "scale"),
        (dict(backend="flash"), ValueError, "unknown attention backend 'flash'"),
    ]
    for change, err, pattern in cases:
        args = dict(q=q, k=k, v=k, key_padding_mask=None, causal=False, scale=None, backend="auto") | change
        with pytest.raises(err, match=pattern):
            A.attention(args.pop("q"), args.pop("k"), args.pop("v"), **args)


def test_device_mismatch_is_reported():
    q = torch.randn(1, 1, 2, 4)
    meta = torch.empty(1, 1, 2, 4, device="meta")
    with pytest.raises(ValueError, match="one device"):
        A.attention(q, meta, meta)
    with pytest.raises(ValueError, match="key_padding_mask is on meta"):
        A.attention(q, q, q, key_padding_mask=torch.ones(1, 2, dtype=torch.bool, device="meta"))


def test_triton_unavailable_on_this_device_says_why(monkeypatch):
    class FakeKernels:
        @staticmethod
        def triton_status(device):
            return False, "no CUDA GPU with sm_80+"

        @staticmethod
        def flash_attention(*args, **kwargs):
            raise AssertionError("must not be called")

    import sys

    monkeypatch.setitem(sys.modules, "textft_lib.kernels", FakeKernels)
    q = torch.randn(1, 1, 2, 4)
    with pytest.raises(A.BackendUnavailableError, match="unavailable on cpu: no CUDA GPU with sm_80"):
        A.attention(q, q, q, backend="triton")


# ---------------------------------------------------------------------------------------
# MultiHeadAttention
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_mha_matches_torch(seed):
    rng = random.Random(seed)
    torch.manual_seed(seed)
    n_heads = rng.choice([1, 2, 4])
    d_model = n_heads * rng.choice([4, 8])
    b, lq = rng.randint(1, 3), rng.randint(1, 9)
    cross, causal = seed % 3 == 2, seed % 3 == 1
    lk = rng.randint(1, 9) if cross else lq
    bias = seed != 4
    theirs = nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True).double().eval()
    ours = A.MultiHeadAttention.from_torch(theirs).eval()
    assert ours.q_proj.weight.dtype == torch.float64
    x = torch.randn(b, lq, d_model, dtype=torch.float64)
    mem = torch.randn(b, lk, d_model, dtype=torch.float64) if cross else x
    mask = A.padding_mask_from_lengths([rng.randint(1, lk) for _ in range(b)], lk)
    attn_mask = ~A.causal_mask(lq) if causal else None  # torch: True = NOT allowed
    want, want_w = theirs(x, mem, mem, key_padding_mask=~mask, attn_mask=attn_mask, average_attn_weights=False)
    for backend in ("reference", "sdpa", "auto"):
        got = ours(x, mem if cross else None, key_padding_mask=mask, causal=causal, backend=backend)
        torch.testing.assert_close(got, want)
    got, w = ours(x, mem if cross else None, key_padding_mask=mask, causal=causal, need_weights=True)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(w, want_w)
    # and back: our weights copied into a fresh torch module give the same output
    back = ours.to_torch().eval()
    torch.testing.assert_close(back(x, mem, mem, key_padding_mask=~mask, attn_mask=attn_mask)[0], want)


def test_mha_shapes_dropout_and_grads():
    torch.manual_seed(0)
    mha = A.MultiHeadAttention(32, 4, dropout=0.5)
    x = torch.randn(2, 7, 32, requires_grad=True)
    mask = A.padding_mask_from_lengths([7, 0], 7)
    mha.eval()
    y1, y2 = mha(x, key_padding_mask=mask), mha(x, key_padding_mask=mask)
    assert y1.shape == (2, 7, 32) and torch.equal(y1, y2)  # eval: no dropout
    # the empty sequence attends to nothing: its output is out_proj's bias alone
    torch.testing.assert_close(y1[1], mha.out_proj.bias.expand(7, 32))
    mha.train()
    y3 = mha(x, key_padding_mask=mask)
    assert not torch.allclose(y3, y1)
    y3.sum().backward()
    assert torch.isfinite(x.grad).all() and all(torch.isfinite(p.grad).all() for p in mha.parameters())
    _, w = mha(x, need_weights=True, causal=True)
    assert w.shape == (2, 4, 7, 7) and (w.triu(1) == 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 4, 7))


def test_mha_errors():
    with pytest.raises(ValueError, match="not divisible"):
        A.MultiHeadAttention(30, 4)
    with pytest.raises(ValueError, match="positive"):
        A.MultiHeadAttention(0, 1)
    with pytest.raises(ValueError, match="dropout"):
        A.MultiHeadAttention(8, 2, dropout=1.5)
    mha = A.MultiHeadAttention(8, 2)
    with pytest.raises(ValueError, match="d_model=8"):
        mha(torch.randn(2, 3, 6))
    with pytest.raises(ValueError, match="d_model=8"):
        mha(torch.randn(3, 8))
    with pytest.raises(ValueError, match="batch size"):
        mha(torch.randn(2, 3, 8), torch.randn(1, 3, 8))
    with pytest.raises(ValueError, match="key and value the length"):
        mha(torch.randn(2, 3, 8), torch.randn(2, 4, 8), torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="need_weights"):
        mha(torch.randn(2, 3, 8), need_weights=True, backend="sdpa")
    with pytest.raises(ValueError, match="size mismatch"):
        A.copy_weights_from_torch(mha, nn.MultiheadAttention(16, 2))
    with pytest.raises(ValueError, match="kdim"):
        A.copy_weights_from_torch(mha, nn.MultiheadAttention(8, 2, kdim=4, vdim=4))
    with pytest.raises(ValueError, match="bias"):
        A.copy_weights_from_torch(mha, nn.MultiheadAttention(8, 2, bias=False))


def test_auto_choice_on_gpus(monkeypatch):
    """'auto' on CUDA: Triton on sm_80+ when the kernel runs, SDPA on the T4 (sm_75), with dropout,
    for fp64 and for head sizes the kernel does not support. (A fake GPU: no CUDA is needed.)"""
    import sys

    class FakeKernels:
        MAX_HEAD_DIM = 128

        @staticmethod
        def triton_status(device):
            return True, "fake sm_80 GPU"

        @staticmethod
        def flash_attention(*args, **kwargs):
            raise AssertionError("must not be called")

    monkeypatch.setitem(sys.modules, "textft_lib.kernels", FakeKernels)
    capability = {"value": (8, 0)}
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability["value"])
    assert A.resolve_backend("auto", "cuda", torch.float16, head_dim=64) == "triton"
    assert A.resolve_backend("auto", "cuda", torch.bfloat16) == "triton"
    assert A.resolve_backend("auto", "cuda", torch.float16, head_dim=256) == "sdpa"
    assert A.resolve_backend("auto", "cuda", torch.float16, dropout_p=0.1) == "sdpa"
    assert A.resolve_backend("auto", "cuda", torch.float64) == "sdpa"
    assert A.resolve_backend("triton", "cuda", torch.float16) == "triton"
    capability["value"] = (7, 5)  # Colab's T4
    assert A.resolve_backend("auto", "cuda", torch.float16) == "sdpa"


def test_kernels_do_not_import_attention():
    """The checks live in a leaf module, so the kernels and attention() import no loop."""
    import subprocess
    import sys

    code = ("import sys, textft_lib.kernels.flash_kernels, textft_lib.attention_checks; "
            "print('textft_lib.attention' in sys.modules)")
    env = {**__import__("os").environ, "TRITON_INTERPRET": "1"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    if "No module named 'triton'" in done.stderr:
        pytest.skip("triton is not installed")
    assert done.returncode == 0, done.stderr[-500:]
    assert done.stdout.strip() == "False"


def test_every_backend_is_one_table_entry():
    assert A.BACKENDS == ("auto", *A.IMPLEMENTATIONS)
    q = k = v = torch.randn(1, 2, 5, 8)
    for name in ("reference", "sdpa"):
        torch.testing.assert_close(A.IMPLEMENTATIONS[name](q, k, v, None, True, None, 0.0),
                                   A.attention(q, k, v, causal=True, backend=name))
