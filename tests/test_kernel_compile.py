"""The attention kernels compile for A100 (sm_80) and H100 (sm_90) GPUs, on a CPU.

The test run uses Triton's interpreter, whose kernels cannot be compiled, so the compile
checks run ``python -m textft_lib.kernels.compile_report`` in a fresh Python without
TRITON_INTERPRET (``report_in_fresh_python``). Besides "it compiles", they check what makes
the kernel fast on a GPU: tensor-core instructions, a software-pipelined key loop
(``cp.async``), shared memory within the GPU's limit, and no registers spilled to the stack.
"""

from __future__ import annotations

import pytest

pytest.importorskip("triton")

from textft_lib.kernels import compile_report as cr  # noqa: E402


@pytest.mark.parametrize("arch, dtype, case", [(80, "fp16", "padded"), (90, "bf16", "causal"),
                                              (80, "fp32", "plain")])
def test_kernels_compile_for_gpu(arch, dtype, case):
    """fwd, delta, dK/dV and dQ compile for the GPU without spilling; the three big ones run a
    pipelined loop (a branch inside the key loop once stopped the pipelining) and, in fp16 and
    bf16, use the tensor cores. fp32 is checked with the small tiles its autotuner tries."""
    rows = cr.report_in_fresh_python(arch, dtype, case, head_dim=64, timeout=300)
    assert [r["kernel"] for r in rows] == ["fwd", "delta", "dkdv", "dq"]
    for r in rows:
        assert r["arch"] == arch and r["fits"], r
        assert r["stack"] == 0, f"{r['kernel']} spills registers to the stack: {r}"
        if r["kernel"] != "delta" and dtype != "fp32":   # exact fp32 products run on the CUDA cores
            assert r["tensor_core_ops"] > 0, f"{r['kernel']} does not use the tensor cores: {r}"
            # sm_80 has mma.sync only; on sm_90 Triton emits Hopper's wgmma instead
            assert (r["mma_sync"] > 0, r["wgmma"] > 0) == ((True, False) if arch == 80 else (False, True)), r
            assert len(r["wgmma_waits"]) >= (arch == 90), r
        if r["kernel"] != "delta":
            assert r["async_copies"] > 0, f"{r['kernel']}'s loop is not pipelined (no cp.async): {r}"


def test_ptx_counts_tell_the_instructions_apart():
    ptx = ("mma.sync.aligned.m16n8k16 a; cp.async.cg.shared.global b; cp.async.bulk.tensor.2d c;\n"
           "wgmma.mma_async.sync.aligned d; wgmma.wait_group.sync.aligned 1; wgmma.wait_group.sync.aligned 0;")
    assert cr.ptx_counts(ptx) == {"async_copies": 1, "tma_copies": 1, "mma_sync": 1, "wgmma": 1,
                                  "wgmma_waits": [1, 0], "tensor_core_ops": 2}


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="dtype must be one of"):
        cr.launches("fp64")
    with pytest.raises(ValueError, match="case must be one of"):
        cr.launches("fp16", case="sliding")
    with pytest.raises(ValueError, match="head_dim"):
        cr.launches("fp16", head_dim=0)
    launch = cr.Launch("fwd", None, (), {}, [None])
    with pytest.raises(ValueError, match="sm_80 = A100"):
        cr.compile_launch(launch, arch=75)


def test_interpreted_kernels_are_refused_with_instructions():
    """Under the interpreter (the test run on a CPU) the report says how to run it instead."""
    from textft_lib.kernels import flash_kernels

    if not flash_kernels.INTERPRETED:
        pytest.skip("the kernels are compiled in this process")
    with pytest.raises(RuntimeError, match="fresh Python without that variable"):
        cr.launches("fp16")


def test_fp32_tries_only_small_tiles():
    """fp32 products run on the CUDA cores and big tiles spill: the autotuner tries small ones."""
    from textft_lib.kernels import flash_kernels as fk

    for configs in (fk.KERNELS[name].configs for name in ("fwd", "dkdv", "dq")):
        assert fk.tried_configs(configs, "tf32") == configs
        small = fk.tried_configs(configs, "ieee")
        assert small and all(c.kwargs["BLOCK_M"] * c.kwargs["BLOCK_N"] <= fk.FP32_MAX_TILE for c in small)
        assert len(small) < len(configs)
