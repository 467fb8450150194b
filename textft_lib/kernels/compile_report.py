"""Compile the attention kernels for a GPU that is not here, and report what the compiler made.

Triton turns a ``@triton.jit`` function into GPU code in stages, all on the CPU::

    Python -> TTIR -> TTGIR (GPU layouts, software pipelining) -> LLVM IR -> PTX -> cubin

The last step runs NVIDIA's ``ptxas``, which ships inside the ``triton`` wheel. Only
*running* the cubin needs the GPU. So on a laptop we can compile the lesson's kernels for an
A100 (sm_80) or an H100 (sm_90) and read off what a GPU would get:

- ``shared``: bytes of shared memory per program (a GPU has at most ``SHARED_LIMIT[arch]``);
- ``registers`` per thread (at most 255) and ``stack`` bytes per thread, where registers
  that did not fit are *spilled* to slow local memory (0 is what we want);
- ``async_copies``: ``cp.async`` instructions in the PTX, the sign that Triton *pipelined*
  the loop (the loads of the next tiles are issued while this tile computes);
- ``mma_sync`` and ``wgmma``: the tensor-core instructions, counted apart: ``mma.sync``
  (sm_80, one warp, synchronous) and ``wgmma.mma_async`` (sm_90, a warp group of four warps,
  asynchronous); ``tensor_core_ops`` is their sum;
- ``wgmma_waits``: the argument of each ``wgmma.wait_group N`` (how many multiplies may still
  be in flight; all 0 means each one is waited for at once, with no overlap);
- ``tma_copies``: ``cp.async.bulk.tensor`` instructions, the Hopper Tensor Memory
  Accelerator's bulk loads (0: the loads are the older per-thread ``cp.async``).

The arguments are the ones the library would really pass: :func:`launches` runs the host code
of ``flash_kernels`` (``forward`` and ``backward``) on CPU tensors with a recorder in place of
each kernel, and Triton's own argument binder turns them into the same specialisation
(dtypes, ``stride == 1`` constants, multiple-of-16 hints) a GPU launch would compile.

This needs compiled kernels, so it refuses to run where ``TRITON_INTERPRET=1`` was set. From a
notebook that uses the interpreter, run it in a fresh Python, from the shell or with
:func:`report_in_fresh_python`::

    python -m textft_lib.kernels.compile_report --arch 80 --dtype fp16 --head-dim 64 --case padded

Example (in a Python without ``TRITON_INTERPRET``)::

    from textft_lib.kernels import compile_report as cr
    for launch in cr.launches("fp16", head_dim=64, case="padded"):
        print(launch.kernel, cr.compile_launch(launch, arch=90, config=launch.tried[0]))
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any, NamedTuple

import torch

#: The GPUs the report compiles for: compute capability -> (name, shared memory one program may
#: use, bytes). Source: CUDA C++ Programming Guide, "Technical Specifications per Compute
#: Capability" (163 KB on 8.0, 227 KB on 9.0).
SHARED_LIMIT: dict[int, tuple[str, int]] = {80: ("A100", 163 * 1024), 90: ("H100", 227 * 1024)}

#: The problems the report compiles: key padding mask, causal.
CASES: dict[str, tuple[bool, bool]] = {"plain": (False, False), "padded": (True, False), "causal": (False, True)}

DTYPES: dict[str, torch.dtype] = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}


class Launch(NamedTuple):
    """One kernel launch the host code makes: the kernel, its arguments, its tile configs."""

    kernel: str            # "fwd", "delta", "dkdv" or "dq"
    fn: Any                # the triton.JITFunction
    args: tuple
    kwargs: dict
    configs: list          # the autotuner's triton.Config list ([None] for a kernel without one)

    @property
    def tried(self) -> list:
        """The configs the autotuner tries for this launch's precision (fp32: only small tiles)."""
        if self.configs == [None]:
            return self.configs
        return kernel_module().tried_configs(self.configs, self.kwargs["PRECISION"])


def kernel_module() -> Any:
    """The compiled (not interpreted) kernel module, or a clear error."""
    from textft_lib.kernels import flash_kernels

    if flash_kernels.INTERPRETED:
        raise RuntimeError("the compile report needs compiled kernels, but TRITON_INTERPRET=1 was set before "
                           "triton was imported: run `python -m textft_lib.kernels.compile_report` in a fresh "
                           "Python without that variable")
    return flash_kernels


def launches(dtype: str, head_dim: int = 64, case: str = "plain", length: int = 1024, batch: int = 2,
             heads: int = 4) -> list[Launch]:
    """The four launches of one forward + backward: fwd, delta, dkdv, dq.

    Runs ``flash_kernels.forward`` and ``backward`` on CPU tensors ``(batch, heads, length,
    head_dim)`` with a ``launch`` that records each call instead of running it; nothing is
    computed.
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    if case not in CASES:
        raise ValueError(f"case must be one of {sorted(CASES)}, got {case!r}")
    if not 1 <= head_dim <= 128 or length < 1 or batch < 1 or heads < 1:
        raise ValueError(f"need 1 <= head_dim <= 128 and positive sizes, got head_dim={head_dim}, "
                         f"length={length}, batch={batch}, heads={heads}")
    fk = kernel_module()
    has_mask, causal = CASES[case]
    q, k, v, do = (torch.zeros(batch, heads, length, head_dim, dtype=DTYPES[dtype]) for _ in range(4))
    kmask = kv_lo = kv_hi = None
    if has_mask:
        mask = torch.ones(batch, length, dtype=torch.bool)
        mask[0, length // 2:] = False
        kmask, (kv_lo, kv_hi) = mask.view(torch.uint8), fk.key_ranges(mask)
    log: list[Launch] = []

    def record(name: str, grid: Any, *args: Any, **kwargs: Any) -> None:
        log.append(Launch(name, fk.KERNELS[name].fn, args, kwargs, fk.KERNELS[name].configs))

    scale = head_dim ** -0.5
    out, lse = fk.forward(q, k, v, kmask, kv_lo, kv_hi, causal, scale, launch=record)
    fk.backward(do, q, k, v, out, lse, kmask, kv_lo, kv_hi, causal, scale, launch=record)
    return log


def _compile(launch: Launch, arch: int, config: Any) -> Any:
    """triton.compile for GPUTarget("cuda", arch), with the specialisation a launch would get."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    try:
        from triton.runtime.jit import create_function_from_signature
        pack_args = launch.fn._pack_args
    except (ImportError, AttributeError) as err:
        raise RuntimeError(f"this Triton ({triton.__version__}) lacks the argument binder the report uses: "
                           f"{err}") from err
    target = GPUTarget("cuda", arch, 32)
    backend = triton.compiler.make_backend(target)
    kwargs = dict(launch.kwargs, enable_fp_fusion=True)
    if config is not None:
        kwargs.update(config.kwargs, num_warps=config.num_warps, num_stages=config.num_stages)
    binder = create_function_from_signature(launch.fn.signature, launch.fn.params, backend)
    bound, specialization, options = binder(*launch.args, **kwargs)
    options, signature, constexprs, attrs = pack_args(backend, kwargs, bound, specialization, options)
    return triton.compile(ASTSource(launch.fn, signature, constexprs, attrs), target=target,
                          options=options.__dict__)


def resource_usage(cubin: bytes) -> dict[str, int]:
    """Registers and stack bytes per thread of a cubin, read with ``cuobjdump`` (ships with Triton)."""
    import triton

    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run([triton.knobs.nvidia.cuobjdump.path, "--dump-resource-usage", f.name],
                              capture_output=True, text=True, check=True).stdout
    found = re.search(r"REG:(\d+) STACK:(\d+)", text)
    if found is None:
        raise RuntimeError(f"cannot read the resource usage from cuobjdump's output:\n{text}")
    return {"registers": int(found.group(1)), "stack": int(found.group(2))}


def compile_launch(launch: Launch, arch: int, config: Any = None) -> dict[str, Any]:
    """Compile one launch for sm_``arch`` with one tile ``config``; return what the compiler made.

    Keys: ``shared`` (bytes), ``fits`` (shared <= the GPU's limit), ``registers``, ``stack``
    (bytes per thread; > 0 means spills), the counts of :func:`ptx_counts`, ``seconds``.
    """
    if arch not in SHARED_LIMIT:
        raise ValueError(f"arch must be one of {sorted(SHARED_LIMIT)} (sm_80 = A100, sm_90 = H100), got {arch}")
    start = time.perf_counter()
    compiled = _compile(launch, arch, config)
    seconds = time.perf_counter() - start
    return {**ptx_counts(compiled.asm["ptx"]), **resource_usage(compiled.asm["cubin"]),
            "shared": int(compiled.metadata.shared), "fits": int(compiled.metadata.shared) <= SHARED_LIMIT[arch][1],
            "seconds": round(seconds, 2)}


def ptx_counts(ptx: str) -> dict[str, Any]:
    """What the PTX of one kernel does with memory and tensor cores (see the module docstring).

    Example::

        ptx_counts("wgmma.mma_async.sync.aligned ...; wgmma.wait_group.sync.aligned 0;")
        # {'async_copies': 0, 'tma_copies': 0, 'mma_sync': 0, 'wgmma': 1, 'wgmma_waits': [0], 'tensor_core_ops': 1}
    """
    mma, wgmma = len(re.findall(r"\bmma\.sync\b", ptx)), len(re.findall(r"\bwgmma\.mma_async\b", ptx))
    return {"async_copies": len(re.findall(r"\bcp\.async\.c[ag]\b", ptx)),
            "tma_copies": len(re.findall(r"\bcp\.async\.bulk\.tensor\b", ptx)),
            "mma_sync": mma, "wgmma": wgmma,
            "wgmma_waits": [int(n) for n in re.findall(r"\bwgmma\.wait_group\.sync\.aligned\s+(\d+)", ptx)],
            "tensor_core_ops": mma + wgmma}


def config_name(config: Any) -> str:
    """'128x64 w4 s3' for BLOCK_M x BLOCK_N, warps, stages; '-' for a kernel without configs."""
    if config is None:
        return "-"
    return f"{config.kwargs['BLOCK_M']}x{config.kwargs['BLOCK_N']} w{config.num_warps} s{config.num_stages}"


def report_in_fresh_python(arch: int = 90, dtype: str = "fp16", case: str = "padded", head_dim: int = 64,
                           timeout: float = 600) -> list[dict[str, Any]]:
    """Run :func:`main` in a new Python without ``TRITON_INTERPRET`` and return its rows, one
    dict per kernel. For notebooks and tests, whose own Python runs the interpreter.

    Example::

        rows = report_in_fresh_python(arch=80, case="padded")   # fwd, delta, dkdv, dq
    """
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    args = ["--arch", str(arch), "--dtype", dtype, "--case", case, "--head-dim", str(head_dim)]
    run = subprocess.run([sys.executable, "-m", "textft_lib.kernels.compile_report", *args], env=env, capture_output=True, text=True,
                         timeout=timeout)
    if run.returncode != 0:
        raise RuntimeError(f"the compile report failed:\n{run.stderr[-3000:]}")
    return [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]


def main(argv: list[str] | None = None) -> int:
    """Compile one problem's launches (the first tile config tried) and print JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arch", type=int, default=90, choices=sorted(SHARED_LIMIT))
    parser.add_argument("--dtype", default="fp16", choices=sorted(DTYPES))
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--case", default="padded", choices=sorted(CASES))
    parser.add_argument("--all-configs", action="store_true",
                        help="every autotune config, not only the first one tried")
    args = parser.parse_args(argv)
    for launch in launches(args.dtype, args.head_dim, args.case):
        for config in launch.configs if args.all_configs else launch.tried[:1]:
            row = {"kernel": launch.kernel, "config": config_name(config), "arch": args.arch,
                   **compile_launch(launch, args.arch, config)}
            print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
