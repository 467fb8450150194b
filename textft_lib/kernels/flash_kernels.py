"""FlashAttention-2 in Triton: a fused attention forward and backward (lesson 04).

Importing this module imports ``triton`` and defines the kernels. Triton decides *when a
kernel is defined* whether it compiles for the GPU or runs in its CPU interpreter
(``TRITON_INTERPRET=1``), so set that variable before this module is imported.
Use :func:`textft_lib.kernels.flash_attention`, which checks first that the kernel can run.

The algorithm, for one (batch, head) and one tile of ``BLOCK_M`` queries::

    m = -inf, l = 0, acc = 0                       # running max, running sum, running output
    for each tile of BLOCK_N keys/values:
        s     = (q @ kᵀ) · scale                   # (BLOCK_M, BLOCK_N) scores, masked -> -inf
        m_new = max(m, rowmax(s))                  # -inf while the row has seen no key:
        m_use = 0 if m_new == -inf else m_new      #   subtract 0 then, never -inf - (-inf) = NaN
        p     = exp(s - m_use)                     # unnormalised probabilities of this tile
        alpha = exp(m - m_use)                     # how much the old sums shrink
        l     = l · alpha + rowsum(p)
        acc   = acc · alpha + p @ v
        m     = m_new
    out = acc / l,   lse = m + log(l)              # lse saved for the backward

The N×N score matrix never exists in memory: each tile lives in registers / SRAM only.
The backward recomputes ``p = exp(s - lse)`` tile by tile and accumulates

    dV = Pᵀ dO,   dP = dO Vᵀ,   dS = P ∘ (dP - Δ) with Δ = rowsum(dO ∘ O),
    dQ = scale · dS K,   dK = scale · dSᵀ Q

in two kernels: one per key tile (dK, dV) and one per query tile (dQ), so every output
element is written by exactly one program (no atomics, deterministic).

Exponentials are computed as ``exp2`` (a native GPU instruction) on scores multiplied by
``log2(e)``; ``lse`` is stored in natural-log units, ``(B, H, Lq)`` fp32.

Masks: a ``key_padding_mask`` ``(B, Lk)`` (True = real key) and ``causal`` (query i sees
keys 0..i). A query row with no visible key gets output 0, ``lse = +inf`` and zero
gradients. Key tiles before a sequence's first real key, after its last, or entirely above
the causal diagonal are never visited. A tile of padding *between* real keys (a hole in the
mask) is visited, but its K and V loads are masked off, so it reads no K or V; it only costs
the arithmetic. A branch that skipped it inside the key loop would stop Triton from
pipelining the loads of every tile (``textft_lib.kernels.compile_report`` shows this).
Pointer offsets are int64 (``L x stride`` can pass 2**31), and launches run on the
inputs' GPU.

Tile configurations: on a GPU each kernel is autotuned over its list of configurations below
(one compile per configuration and case, minutes in all on a fresh machine). The environment
variable ``TEXTFT_KERNEL_CONFIG``, read when this module is imported, chooses:

- unset, ``""`` or ``"autotune"``: autotuning (the default);
- ``"fixed"``: no autotuning: each kernel uses the first configuration its autotuner would
  try for the launch's precision (for GPU test runs: one compile per case). Example::

      TEXTFT_KERNEL_CONFIG=fixed pytest -q tests/test_kernels.py
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any, Callable, NamedTuple

import torch
import triton
import triton.language as tl

from textft_lib.attention_checks import check_inputs as check_attention_inputs
from textft_lib.kernels import MAX_HEAD_DIM

#: True when the kernels below were defined under the Triton interpreter (fixed at import).
INTERPRETED: bool = bool(triton.knobs.runtime.interpret)

#: Tests set this to True: every output buffer is filled with NaN before a kernel writes it,
#: so an element the kernel forgets to write shows up as NaN instead of a stale zero.
POISON_OUTPUTS: bool = False

#: The one tile configuration used under the interpreter (autotuning there would only
#: multiply the, already slow, interpreted run time).
INTERPRETER_CONFIG: dict[str, int] = {"BLOCK_M": 32, "BLOCK_N": 32}

#: The largest batch x heads: the kernels' grids put it on CUDA's second axis (65535 at most).
MAX_BATCH_HEADS = 65535

LOG2E = 1.4426950408889634  # log2(e): exp(x) == exp2(x * LOG2E)


# --------------------------------------------------------------------------------------
# Forward
# --------------------------------------------------------------------------------------

@triton.jit
def _fwd_tile(acc, m_i, l_i, q, k_ptrs, v_ptrs, offs_m, offs_n, n_ok, d_ok, qk_scale,
              CAUSAL: tl.constexpr, PRECISION: tl.constexpr):
    """One key/value tile of the online softmax. Scores are in log2 units (× scale·log2 e).

    acc: (BLOCK_M, BLOCK_D) fp32, m_i / l_i: (BLOCK_M,) fp32 running max and sum.
    """
    k = tl.load(k_ptrs, mask=n_ok[:, None] & d_ok[None, :], other=0.0)         # (BLOCK_N, BLOCK_D)
    v = tl.load(v_ptrs, mask=n_ok[:, None] & d_ok[None, :], other=0.0)         # (BLOCK_N, BLOCK_D)
    s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale            # (BLOCK_M, BLOCK_N)
    visible = n_ok[None, :]
    if CAUSAL:
        visible = visible & (offs_m[:, None] >= offs_n[None, :])
    s = tl.where(visible, s, float("-inf"))
    m_new = tl.maximum(m_i, tl.max(s, axis=1))           # new running max; -inf while a row has seen no key
    m_use = tl.where(m_new == float("-inf"), 0.0, m_new)  # such a row subtracts 0: no -inf - (-inf) = NaN
    alpha = tl.exp2(m_i - m_use)                         # rescales what was summed so far
    p = tl.exp2(s - m_use[:, None])                      # this tile's unnormalised probabilities
    l_i = l_i * alpha + tl.sum(p, axis=1)
    acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION)
    return acc, m_new, l_i


@triton.jit
def _attn_fwd(Q, K, V, O, LSE, KMASK, KV_LO, KV_HI, qk_scale,
              stride_qb, stride_qh, stride_qm, stride_qd,
              stride_kb, stride_kh, stride_kn, stride_kd,
              stride_vb, stride_vh, stride_vn, stride_vd,
              stride_ob, stride_oh, stride_om, stride_od,
              stride_mb, H, LQ, LK, HEAD_DIM, SEQ_BUCKET,
              HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_D: tl.constexpr,
              PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Grid: (cdiv(LQ, BLOCK_M), B·H). Each program owns BLOCK_M query rows of one head."""
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)                       # int64: offsets of big tensors
    h = (pid_bh % H).to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)     # query rows of this program
    offs_m64 = offs_m.to(tl.int64)   # int64: L x stride can pass 2**31
    offs_d = tl.arange(0, BLOCK_D)                       # head dim, padded to a power of 2
    m_ok = offs_m < LQ
    d_ok = offs_d < HEAD_DIM

    q_ptrs = Q + b * stride_qb + h * stride_qh + offs_m64[:, None] * stride_qm + offs_d[None, :] * stride_qd
    q = tl.load(q_ptrs, mask=m_ok[:, None] & d_ok[None, :], other=0.0)         # (BLOCK_M, BLOCK_D)

    m_i = tl.full([BLOCK_M], float("-inf"), dtype=tl.float32)   # no finite sentinel: any score can be the max
    l_i = tl.zeros([BLOCK_M], dtype=tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)

    # The key range this program must visit: [lo, hi), rounded out to whole tiles.
    lo = 0
    hi = LK
    if HAS_MASK:                                         # first and last real key of this sequence
        lo = tl.load(KV_LO + b)
        hi = tl.load(KV_HI + b)
    if CAUSAL:                                           # tiles right of the diagonal are never seen
        hi = tl.minimum(hi, (pid_m + 1) * BLOCK_M)
    lo = (lo // BLOCK_N) * BLOCK_N

    offs_n0 = tl.arange(0, BLOCK_N)
    k_base = K + b * stride_kb + h * stride_kh + offs_d[None, :] * stride_kd
    v_base = V + b * stride_vb + h * stride_vh + offs_d[None, :] * stride_vd
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + offs_n0
        offs_n64 = offs_n.to(tl.int64)   # int64: L x stride can pass 2**31
        n_ok = offs_n < LK
        k_ptrs = k_base + offs_n64[:, None] * stride_kn
        v_ptrs = v_base + offs_n64[:, None] * stride_vn
        if HAS_MASK:                                     # padding keys: loads masked off, scores -inf
            real = tl.load(KMASK + b * stride_mb + offs_n, mask=n_ok, other=0)
            n_ok = n_ok & (real != 0)
        acc, m_i, l_i = _fwd_tile(acc, m_i, l_i, q, k_ptrs, v_ptrs, offs_m, offs_n, n_ok, d_ok,
                                  qk_scale, CAUSAL, PRECISION)

    empty = l_i == 0.0                                   # rows that saw no real key
    l_safe = tl.where(empty, 1.0, l_i)
    out = acc / l_safe[:, None]                          # acc is 0 on empty rows: output 0
    lse = tl.where(empty, float("inf"), (m_i + tl.log2(l_safe)) / 1.4426950408889634)
    o_ptrs = O + b * stride_ob + h * stride_oh + offs_m64[:, None] * stride_om + offs_d[None, :] * stride_od
    tl.store(o_ptrs, out.to(O.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])
    tl.store(LSE + pid_bh.to(tl.int64) * LQ + offs_m, lse, mask=m_ok)


# --------------------------------------------------------------------------------------
# Backward
# --------------------------------------------------------------------------------------

@triton.jit
def _attn_bwd_delta(O, DO, DELTA,
                    stride_ob, stride_oh, stride_om, stride_od,
                    stride_dob, stride_doh, stride_dom, stride_dod,
                    H, LQ, HEAD_DIM, BLOCK_M: tl.constexpr, BLOCK_D: tl.constexpr):
    """Δ = rowsum(dO ∘ O): (B·H, LQ) fp32. Grid: (cdiv(LQ, BLOCK_M), B·H)."""
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_m64 = offs_m.to(tl.int64)   # int64: L x stride can pass 2**31
    offs_d = tl.arange(0, BLOCK_D)
    ok = (offs_m[:, None] < LQ) & (offs_d[None, :] < HEAD_DIM)
    o = tl.load(O + b * stride_ob + h * stride_oh + offs_m64[:, None] * stride_om + offs_d[None, :] * stride_od,
                mask=ok, other=0.0).to(tl.float32)
    do = tl.load(DO + b * stride_dob + h * stride_doh + offs_m64[:, None] * stride_dom + offs_d[None, :] * stride_dod,
                 mask=ok, other=0.0).to(tl.float32)
    tl.store(DELTA + pid_bh.to(tl.int64) * LQ + offs_m, tl.sum(o * do, axis=1), mask=offs_m < LQ)


@triton.jit
def _dkdv_tile(dk, dv, k, v, q_ptrs, do_ptrs, lse_ptrs, delta_ptrs, offs_m, offs_n, n_ok, d_ok,
               LQ, qk_scale, CAUSAL: tl.constexpr, PRECISION: tl.constexpr):
    """One query tile's contribution to dK and dV of a key tile (everything transposed:
    rows are keys, columns are queries)."""
    m_ok = offs_m < LQ
    q = tl.load(q_ptrs, mask=m_ok[:, None] & d_ok[None, :], other=0.0)        # (BLOCK_M, BLOCK_D)
    do = tl.load(do_ptrs, mask=m_ok[:, None] & d_ok[None, :], other=0.0)      # (BLOCK_M, BLOCK_D)
    lse = tl.load(lse_ptrs, mask=m_ok, other=float("inf"))                    # (BLOCK_M,)
    delta = tl.load(delta_ptrs, mask=m_ok, other=0.0)                         # (BLOCK_M,)
    s_t = tl.dot(k, tl.trans(q), input_precision=PRECISION) * qk_scale        # (BLOCK_N, BLOCK_M)
    p_t = tl.exp2(s_t - lse[None, :] * 1.4426950408889634)                     # probabilities Pᵀ
    visible = n_ok[:, None]
    if CAUSAL:
        visible = visible & (offs_m[None, :] >= offs_n[:, None])
    p_t = tl.where(visible, p_t, 0.0)
    dv += tl.dot(p_t.to(do.dtype), do, input_precision=PRECISION)             # dV += Pᵀ dO
    dp_t = tl.dot(v, tl.trans(do), input_precision=PRECISION)                 # dPᵀ = V dOᵀ
    ds_t = p_t * (dp_t - delta[None, :])                                      # dSᵀ
    dk += tl.dot(ds_t.to(q.dtype), q, input_precision=PRECISION)              # dK += dSᵀ Q (× scale later)
    return dk, dv


@triton.jit
def _attn_bwd_dkdv(Q, K, V, DO, LSE, DELTA, DK, DV, KMASK, sm_scale, qk_scale,
                   stride_qb, stride_qh, stride_qm, stride_qd,
                   stride_kb, stride_kh, stride_kn, stride_kd,
                   stride_vb, stride_vh, stride_vn, stride_vd,
                   stride_dob, stride_doh, stride_dom, stride_dod,
                   stride_dkb, stride_dkh, stride_dkn, stride_dkd,
                   stride_dvb, stride_dvh, stride_dvn, stride_dvd,
                   stride_mb, H, LQ, LK, HEAD_DIM, SEQ_BUCKET,
                   HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_D: tl.constexpr,
                   PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Grid: (cdiv(LK, BLOCK_N), B·H). Each program owns BLOCK_N keys and loops over queries."""
    pid_n = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    offs_n = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    offs_n64 = offs_n.to(tl.int64)   # int64: L x stride can pass 2**31
    offs_d = tl.arange(0, BLOCK_D)
    n_ok = offs_n < LK
    d_ok = offs_d < HEAD_DIM
    if HAS_MASK:
        real = tl.load(KMASK + b * stride_mb + offs_n, mask=n_ok, other=0)
        n_ok = n_ok & (real != 0)

    dk = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    dv = tl.zeros([BLOCK_N, BLOCK_D], dtype=tl.float32)
    k = tl.load(K + b * stride_kb + h * stride_kh + offs_n64[:, None] * stride_kn + offs_d[None, :] * stride_kd,
                mask=n_ok[:, None] & d_ok[None, :], other=0.0)
    v = tl.load(V + b * stride_vb + h * stride_vh + offs_n64[:, None] * stride_vn + offs_d[None, :] * stride_vd,
                mask=n_ok[:, None] & d_ok[None, :], other=0.0)

    lo = 0
    if CAUSAL:                                           # queries above the diagonal never see these keys
        lo = (pid_n * BLOCK_N // BLOCK_M) * BLOCK_M
    offs_m0 = tl.arange(0, BLOCK_M)
    q_base = Q + b * stride_qb + h * stride_qh + offs_d[None, :] * stride_qd
    do_base = DO + b * stride_dob + h * stride_doh + offs_d[None, :] * stride_dod
    row = pid_bh.to(tl.int64) * LQ
    hi = LQ
    if HAS_MASK:                                         # a tile of padding keys: an empty loop, dK = dV = 0
        hi = tl.where(tl.max(n_ok.to(tl.int32), axis=0) > 0, LQ, lo)
    for start_m in range(lo, hi, BLOCK_M):
        offs_m = start_m + offs_m0
        offs_m64 = offs_m.to(tl.int64)   # int64: L x stride can pass 2**31
        dk, dv = _dkdv_tile(dk, dv, k, v, q_base + offs_m64[:, None] * stride_qm,
                            do_base + offs_m64[:, None] * stride_dom, LSE + row + offs_m,
                            DELTA + row + offs_m, offs_m, offs_n, n_ok, d_ok, LQ, qk_scale,
                            CAUSAL, PRECISION)

    dk = dk * sm_scale
    out_ok = (offs_n[:, None] < LK) & d_ok[None, :]
    tl.store(DK + b * stride_dkb + h * stride_dkh + offs_n64[:, None] * stride_dkn + offs_d[None, :] * stride_dkd,
             dk.to(DK.dtype.element_ty), mask=out_ok)
    tl.store(DV + b * stride_dvb + h * stride_dvh + offs_n64[:, None] * stride_dvn + offs_d[None, :] * stride_dvd,
             dv.to(DV.dtype.element_ty), mask=out_ok)


@triton.jit
def _dq_tile(dq, q, do, lse, delta, k_ptrs, v_ptrs, offs_m, offs_n, n_ok, d_ok, qk_scale,
             CAUSAL: tl.constexpr, PRECISION: tl.constexpr):
    """One key tile's contribution to dQ of a query tile."""
    k = tl.load(k_ptrs, mask=n_ok[:, None] & d_ok[None, :], other=0.0)        # (BLOCK_N, BLOCK_D)
    v = tl.load(v_ptrs, mask=n_ok[:, None] & d_ok[None, :], other=0.0)
    s = tl.dot(q, tl.trans(k), input_precision=PRECISION) * qk_scale           # (BLOCK_M, BLOCK_N)
    p = tl.exp2(s - lse[:, None] * 1.4426950408889634)
    visible = n_ok[None, :]
    if CAUSAL:
        visible = visible & (offs_m[:, None] >= offs_n[None, :])
    p = tl.where(visible, p, 0.0)
    dp = tl.dot(do, tl.trans(v), input_precision=PRECISION)                   # dP = dO Vᵀ
    ds = p * (dp - delta[:, None])                                            # dS = P ∘ (dP - Δ)
    dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION)                # dQ += dS K (× scale later)
    return dq


@triton.jit
def _attn_bwd_dq(Q, K, V, DO, LSE, DELTA, DQ, KMASK, KV_LO, KV_HI, sm_scale, qk_scale,
                 stride_qb, stride_qh, stride_qm, stride_qd,
                 stride_kb, stride_kh, stride_kn, stride_kd,
                 stride_vb, stride_vh, stride_vn, stride_vd,
                 stride_dob, stride_doh, stride_dom, stride_dod,
                 stride_dqb, stride_dqh, stride_dqm, stride_dqd,
                 stride_mb, H, LQ, LK, HEAD_DIM, SEQ_BUCKET,
                 HAS_MASK: tl.constexpr, CAUSAL: tl.constexpr, BLOCK_D: tl.constexpr,
                 PRECISION: tl.constexpr, BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr):
    """Grid: (cdiv(LQ, BLOCK_M), B·H). Each program owns BLOCK_M queries and loops over keys."""
    # The same arguments and prologue as _attn_bwd_dkdv, on purpose: FlashAttention-2's backward
    # is two kernels, one per tile owner, and a Triton kernel takes every stride as an argument.
    pid_m = tl.program_id(0)
    pid_bh = tl.program_id(1)
    b = (pid_bh // H).to(tl.int64)
    h = (pid_bh % H).to(tl.int64)
    offs_m = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_m64 = offs_m.to(tl.int64)   # int64: L x stride can pass 2**31
    offs_d = tl.arange(0, BLOCK_D)
    m_ok = offs_m < LQ
    d_ok = offs_d < HEAD_DIM
    row = pid_bh.to(tl.int64) * LQ
    q = tl.load(Q + b * stride_qb + h * stride_qh + offs_m64[:, None] * stride_qm + offs_d[None, :] * stride_qd,
                mask=m_ok[:, None] & d_ok[None, :], other=0.0)
    do = tl.load(DO + b * stride_dob + h * stride_doh + offs_m64[:, None] * stride_dom + offs_d[None, :] * stride_dod,
                 mask=m_ok[:, None] & d_ok[None, :], other=0.0)
    lse = tl.load(LSE + row + offs_m, mask=m_ok, other=float("inf"))
    delta = tl.load(DELTA + row + offs_m, mask=m_ok, other=0.0)
    dq = tl.zeros([BLOCK_M, BLOCK_D], dtype=tl.float32)

    lo = 0
    hi = LK
    if HAS_MASK:
        lo = tl.load(KV_LO + b)
        hi = tl.load(KV_HI + b)
    if CAUSAL:
        hi = tl.minimum(hi, (pid_m + 1) * BLOCK_M)
    lo = (lo // BLOCK_N) * BLOCK_N

    offs_n0 = tl.arange(0, BLOCK_N)
    k_base = K + b * stride_kb + h * stride_kh + offs_d[None, :] * stride_kd
    v_base = V + b * stride_vb + h * stride_vh + offs_d[None, :] * stride_vd
    for start_n in range(lo, hi, BLOCK_N):
        offs_n = start_n + offs_n0
        offs_n64 = offs_n.to(tl.int64)   # int64: L x stride can pass 2**31
        n_ok = offs_n < LK
        k_ptrs = k_base + offs_n64[:, None] * stride_kn
        v_ptrs = v_base + offs_n64[:, None] * stride_vn
        if HAS_MASK:
            real = tl.load(KMASK + b * stride_mb + offs_n, mask=n_ok, other=0)
            n_ok = n_ok & (real != 0)
        dq = _dq_tile(dq, q, do, lse, delta, k_ptrs, v_ptrs, offs_m, offs_n, n_ok, d_ok, qk_scale,
                      CAUSAL, PRECISION)

    dq = dq * sm_scale
    tl.store(DQ + b * stride_dqb + h * stride_dqh + offs_m64[:, None] * stride_dqm + offs_d[None, :] * stride_dqd,
             dq.to(DQ.dtype.element_ty), mask=m_ok[:, None] & d_ok[None, :])


# --------------------------------------------------------------------------------------
# Tile configurations: autotuned on the GPU, one fixed config under the interpreter
# --------------------------------------------------------------------------------------

def _configs(shapes: list[tuple[int, int, int, int]]) -> list[triton.Config]:
    """(BLOCK_M, BLOCK_N, num_warps, num_stages) -> triton.Config. The sets below suit A100
    (sm_80) and H100 (sm_90); a config that needs more shared memory than the GPU has is
    skipped by the autotuner."""
    return [triton.Config({"BLOCK_M": bm, "BLOCK_N": bn}, num_warps=w, num_stages=s) for bm, bn, w, s in shapes]


_TUNE_KEY = ["SEQ_BUCKET", "HEAD_DIM", "HAS_MASK", "CAUSAL", "BLOCK_D", "PRECISION"]
# The last config of each list is small enough to fit even fp32 with head_dim 128.
_FWD_CONFIGS = _configs([(128, 64, 4, 3), (128, 64, 8, 3), (128, 128, 8, 3), (128, 32, 4, 4),
                         (64, 64, 4, 3), (64, 32, 4, 4), (32, 32, 4, 2)])
_DKDV_CONFIGS = _configs([(32, 128, 8, 2), (64, 128, 8, 2), (32, 64, 4, 3), (64, 64, 4, 3), (16, 64, 4, 3),
                          (16, 32, 4, 2)])
_DQ_CONFIGS = _configs([(128, 32, 8, 2), (128, 64, 8, 2), (64, 64, 4, 3), (64, 32, 4, 3), (32, 32, 4, 2)])

#: The largest tile (BLOCK_M x BLOCK_N) tried in fp32. fp32 runs ``tl.dot`` on the CUDA cores
#: with exact products (``input_precision="ieee"``), and larger tiles spill kilobytes of
#: registers per thread to the stack (``benchmarks/kernel_compile.py``).
FP32_MAX_TILE = 32 * 32


def tried_configs(configs: list[triton.Config], precision: str) -> list[triton.Config]:
    """The configs the autotuner tries for one ``PRECISION``: all of them for fp16/bf16
    ("tf32"), only tiles up to ``FP32_MAX_TILE`` for fp32 ("ieee")."""
    if precision != "ieee":
        return configs
    small = [c for c in configs if c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] <= FP32_MAX_TILE]
    return small or configs[-1:]


KERNEL_CONFIG_MODES = ("autotune", "fixed")


def kernel_config_mode(value: str | None) -> str:
    """``TEXTFT_KERNEL_CONFIG``'s value -> ``"autotune"`` (unset or empty) or ``"fixed"``."""
    mode = (value or "").strip().lower() or "autotune"
    if mode not in KERNEL_CONFIG_MODES:
        raise ValueError(f"TEXTFT_KERNEL_CONFIG={value!r}: use 'autotune' (the default) or 'fixed' "
                         "(one tile configuration per kernel, no autotuning)")
    return mode


#: "autotune" or "fixed", from ``TEXTFT_KERNEL_CONFIG`` (fixed at import; see the module docstring).
KERNEL_CONFIG: str = kernel_config_mode(os.environ.get("TEXTFT_KERNEL_CONFIG"))


def _prune(configs: list[triton.Config], named_args: dict, **kwargs) -> list[triton.Config]:
    tried = tried_configs(configs, kwargs["PRECISION"])
    return tried[:1] if KERNEL_CONFIG == "fixed" else tried


if INTERPRETED:
    _fwd, _dkdv, _dq = _attn_fwd, _attn_bwd_dkdv, _attn_bwd_dq
else:
    _tune = dict(key=_TUNE_KEY, prune_configs_by={"early_config_prune": _prune})
    _fwd = triton.autotune(configs=_FWD_CONFIGS, **_tune)(_attn_fwd)
    _dkdv = triton.autotune(configs=_DKDV_CONFIGS, **_tune)(_attn_bwd_dkdv)
    _dq = triton.autotune(configs=_DQ_CONFIGS, **_tune)(_attn_bwd_dq)


class Kernel(NamedTuple):
    """One kernel of this module: the ``triton.jit`` function, the tile configurations the
    autotuner chooses from (``[None]`` for one with fixed tiles), and what the host code
    launches (the autotuned wrapper, or the function itself under the interpreter)."""

    fn: Any
    configs: list
    runner: Any


#: The four kernels of a forward and backward pass, in launch order, by name. ``forward`` and
#: ``backward`` launch them through ``launch(name, grid, *args, **kwargs)``; the compile report
#: passes its own ``launch`` to record the calls instead of running them.
KERNELS: dict[str, Kernel] = {
    "fwd": Kernel(_attn_fwd, _FWD_CONFIGS, _fwd),
    "delta": Kernel(_attn_bwd_delta, [None], _attn_bwd_delta),
    "dkdv": Kernel(_attn_bwd_dkdv, _DKDV_CONFIGS, _dkdv),
    "dq": Kernel(_attn_bwd_dq, _DQ_CONFIGS, _dq),
}


def run_kernel(name: str, grid: Any, *args: Any, **kwargs: Any) -> None:
    """Launch kernel ``name`` of ``KERNELS`` on ``grid`` (the default ``launch``)."""
    KERNELS[name].runner[grid](*args, **kwargs)


def _launch_options() -> dict[str, int]:
    """Extra launch arguments: the fixed tile sizes under the interpreter, none when autotuned."""
    return dict(INTERPRETER_CONFIG) if INTERPRETED else {}


# --------------------------------------------------------------------------------------
# Host side: checks, buffers, launches
# --------------------------------------------------------------------------------------

def output_buffer(shape: tuple[int, ...], like: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """An output buffer; NaN-filled when ``POISON_OUTPUTS`` is on (tests)."""
    dtype = dtype or like.dtype
    if POISON_OUTPUTS:
        return torch.full(shape, float("nan"), dtype=dtype, device=like.device)
    return torch.empty(shape, dtype=dtype, device=like.device)


def on_device_of(t: torch.Tensor) -> contextlib.AbstractContextManager:
    """Launch on ``t``'s GPU (Triton launches on the *current* device, which on a machine
    with several GPUs need not be the one holding the tensors); nothing to do on a CPU."""
    return torch.cuda.device(t.device) if t.is_cuda else contextlib.nullcontext()


def _strides(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(t.stride())


def check_limits(q: torch.Tensor, scale: float | None) -> float:
    """Raise a clear error for input the kernel cannot handle; return the scale to use.

    For inputs that ``textft_lib.attention_checks.check_inputs`` has passed: the kernel's own
    limits on top of those every backend shares (dtype, head size, batch x heads).
    """
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        raise TypeError(f"the Triton kernel supports fp16, bf16 and fp32; q is {q.dtype}")
    b, h, _, d = q.shape
    if b * h > MAX_BATCH_HEADS:
        raise ValueError(f"batch x heads = {b * h} exceeds {MAX_BATCH_HEADS}, the largest second grid "
                         "dimension of a CUDA launch: split the batch")
    if d > MAX_HEAD_DIM:
        raise ValueError(f"the Triton kernel supports head_dim up to {MAX_HEAD_DIM}, got {d}")
    return 1.0 / math.sqrt(d) if scale is None else float(scale)


def check_inputs(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_padding_mask: torch.Tensor | None,
                 causal: bool, scale: float | None) -> float:
    """The checks every attention backend shares, then the kernel's (``check_limits``);
    returns the scale to use."""
    for name, t in (("q", q), ("k", k), ("v", v)):
        if isinstance(t, torch.Tensor) and t.dtype not in (torch.float16, torch.bfloat16, torch.float32):
            raise TypeError(f"the Triton kernel supports fp16, bf16 and fp32; {name} is {t.dtype}")
    check_attention_inputs(q, k, v, key_padding_mask, causal, scale)
    return check_limits(q, scale)


def key_ranges(key_padding_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence, the first real key and one past the last: two ``(B,)`` int32 tensors.

    A sequence with no real key gets ``lo = Lk, hi = 0`` (an empty range). Computed on the
    device, without a host synchronisation.
    """
    lk = key_padding_mask.shape[1]
    idx = torch.arange(lk, device=key_padding_mask.device)
    lo = torch.where(key_padding_mask, idx, lk).amin(dim=1)
    hi = torch.where(key_padding_mask, idx + 1, 0).amax(dim=1)
    return lo.to(torch.int32), hi.to(torch.int32)


def _common(q: torch.Tensor, kmask: torch.Tensor | None) -> dict:
    """Launch arguments shared by the kernels."""
    d = q.shape[-1]
    return dict(BLOCK_D=max(16, triton.next_power_of_2(d)), HAS_MASK=kmask is not None,
                PRECISION="ieee" if q.dtype == torch.float32 else "tf32")


def forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kmask: torch.Tensor | None,
            kv_lo: torch.Tensor | None, kv_hi: torch.Tensor | None, causal: bool, scale: float,
            launch: Callable[..., None] = run_kernel) -> tuple[torch.Tensor, torch.Tensor]:
    """Run the forward kernel. ``kmask``: ``(B, Lk)`` uint8 (1 = real) or None.

    Returns ``out`` ``(B, H, Lq, D)`` in q's dtype and ``lse`` ``(B, H, Lq)`` fp32.
    """
    b, h, lq, d = q.shape
    lk = k.shape[2]
    out = output_buffer((b, h, lq, d), q)
    lse = output_buffer((b, h, lq), q, torch.float32)
    dummy = lse  # stands in for absent mask pointers; never read when HAS_MASK is False
    grid = lambda meta: (triton.cdiv(lq, meta["BLOCK_M"]), b * h)  # noqa: E731
    with on_device_of(q):
        launch("fwd", grid, q, k, v, out, lse,
               kmask if kmask is not None else dummy, kv_lo if kv_lo is not None else dummy,
               kv_hi if kv_hi is not None else dummy, scale * LOG2E,
               *_strides(q), *_strides(k), *_strides(v), *_strides(out),
               kmask.stride(0) if kmask is not None else 0, h, lq, lk, d,
               triton.next_power_of_2(max(lq, lk)), CAUSAL=causal, **_common(q, kmask), **_launch_options())
    return out, lse


def backward(do: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, out: torch.Tensor,
             lse: torch.Tensor, kmask: torch.Tensor | None, kv_lo: torch.Tensor | None,
             kv_hi: torch.Tensor | None, causal: bool, scale: float,
             launch: Callable[..., None] = run_kernel
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Run the three backward kernels: Δ, then dK/dV per key tile, then dQ per query tile."""
    b, h, lq, d = q.shape
    lk = k.shape[2]
    common = _common(q, kmask)
    delta = output_buffer((b, h, lq), q, torch.float32)
    block_d = common["BLOCK_D"]
    dq, dk, dv = output_buffer(q.shape, q), output_buffer(k.shape, k), output_buffer(v.shape, v)
    dummy = delta
    mask_stride = kmask.stride(0) if kmask is not None else 0
    bucket = triton.next_power_of_2(max(lq, lk))
    grid_n = lambda meta: (triton.cdiv(lk, meta["BLOCK_N"]), b * h)  # noqa: E731
    grid_m = lambda meta: (triton.cdiv(lq, meta["BLOCK_M"]), b * h)  # noqa: E731
    with on_device_of(q):
        launch("delta", (triton.cdiv(lq, 64), b * h), out, do, delta, *_strides(out), *_strides(do),
               h, lq, d, BLOCK_M=64, BLOCK_D=block_d)
        launch("dkdv", grid_n, q, k, v, do, lse, delta, dk, dv, kmask if kmask is not None else dummy,
               scale, scale * LOG2E,
               *_strides(q), *_strides(k), *_strides(v), *_strides(do), *_strides(dk), *_strides(dv),
               mask_stride, h, lq, lk, d, bucket, CAUSAL=causal, **common, **_launch_options())
        launch("dq", grid_m, q, k, v, do, lse, delta, dq, kmask if kmask is not None else dummy,
               kv_lo if kv_lo is not None else dummy, kv_hi if kv_hi is not None else dummy,
               scale, scale * LOG2E,
               *_strides(q), *_strides(k), *_strides(v), *_strides(do), *_strides(dq),
               mask_stride, h, lq, lk, d, bucket, CAUSAL=causal, **common, **_launch_options())
    return dq, dk, dv


class FlashAttentionFunction(torch.autograd.Function):
    """Autograd wrapper: the forward saves q, k, v, out and lse; the backward recomputes the
    probabilities tile by tile from lse. Double backward is not supported."""

    @staticmethod
    def forward(ctx, q, k, v, key_padding_mask, causal, scale):  # type: ignore[override]
        kmask = kv_lo = kv_hi = None
        if key_padding_mask is not None:
            kmask = key_padding_mask.contiguous().view(torch.uint8)        # (B, Lk), 1 = real
            kv_lo, kv_hi = key_ranges(key_padding_mask)
        out, lse = forward(q, k, v, kmask, kv_lo, kv_hi, causal, scale)
        ctx.save_for_backward(q, k, v, out, lse, kmask, kv_lo, kv_hi)
        ctx.causal, ctx.scale = causal, scale
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, do):  # type: ignore[override]
        q, k, v, out, lse, kmask, kv_lo, kv_hi = ctx.saved_tensors
        dq, dk, dv = backward(do, q, k, v, out, lse, kmask, kv_lo, kv_hi, ctx.causal, ctx.scale)
        return dq, dk, dv, None, None, None


def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                    key_padding_mask: torch.Tensor | None = None, causal: bool = False,
                    scale: float | None = None) -> torch.Tensor:
    """Fused attention softmax(Q Kᵀ · scale) V with the Triton kernels (no device check;
    call :func:`textft_lib.kernels.flash_attention`, which checks that Triton can run).

    q: ``(B, H, Lq, D)``, k/v: ``(B, H, Lk, D)``, D <= 128, fp16/bf16/fp32;
    key_padding_mask: ``(B, Lk)`` bool, True = real token -> ``(B, H, Lq, D)``.
    """
    scale = check_inputs(q, k, v, key_padding_mask, causal, scale)
    return FlashAttentionFunction.apply(q, k, v, key_padding_mask, bool(causal), scale)


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_padding_mask: torch.Tensor | None,
           causal: bool, scale: float | None) -> torch.Tensor:
    """``flash_attention`` for inputs ``attention_checks.check_inputs`` has passed (the path of
    ``textft_lib.attention.attention``): only the kernel's own limits are checked."""
    return FlashAttentionFunction.apply(q, k, v, key_padding_mask, bool(causal), check_limits(q, scale))


def forward_with_lse(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     key_padding_mask: torch.Tensor | None = None, causal: bool = False,
                     scale: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The forward alone, also returning the saved log-sum-exp ``(B, H, Lq)`` fp32 (natural
    log of Σ_j exp(scale · q_i·k_j) over visible keys; +inf for a row with none). No autograd.

    Example::

        out, lse = forward_with_lse(q, k, v)
        torch.testing.assert_close(lse, torch.logsumexp(q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5, -1))
    """
    scale = check_inputs(q, k, v, key_padding_mask, causal, scale)
    kmask = kv_lo = kv_hi = None
    if key_padding_mask is not None:
        kmask = key_padding_mask.contiguous().view(torch.uint8)
        kv_lo, kv_hi = key_ranges(key_padding_mask)
    with torch.no_grad():
        return forward(q, k, v, kmask, kv_lo, kv_hi, bool(causal), scale)
