"""What the GPU would run: every attention kernel and autotune config, compiled for A100 and H100.

No GPU is needed: Triton compiles to PTX and ``ptxas`` (shipped with Triton) assembles the
cubin on the CPU (see ``textft_lib/kernels/compile_report.py``). For each kernel (forward,
dK/dV, dQ), each tile configuration in the autotuner's lists (``tried`` marks those it tries
in the dtype: fp32 tries only small tiles), sm_80 and sm_90, fp16, bf16 and fp32, head dims
64 and 128, and three problems (plain, padded, causal), it records:

- shared memory per program, against the GPU's limit (a config over it is one the autotuner
  must drop);
- registers and stack bytes per thread (stack > 0: registers spilled to local memory);
- ``cp.async`` instructions (the key loop was software-pipelined) and tensor-core
  instructions (``mma.sync`` on sm_80, ``wgmma`` on sm_90);
- the seconds each compile took (an empty Triton cache is used): the autotuner pays them
  once per config on the GPU's first call.

It measures no speed: only a GPU can do that (``benchmarks/attention.py``). Usage::

    python benchmarks/kernel_compile.py                 # all: 648 compiles, ~20 min on 2 cores
    python benchmarks/kernel_compile.py --dtypes fp16   # one dtype
    python benchmarks/kernel_compile.py --jobs 4        # compile in 4 processes

Writes ``assets/benchmarks/attention_kernel_compile.json``. Run it without TRITON_INTERPRET.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from textft_lib import config
from textft_lib.kernels import compile_report as cr

KERNELS = ("fwd", "dkdv", "dq")   # the delta kernel has no tile configs and is tiny


def compile_group(job: tuple[str, int, str, int]) -> list[dict]:
    """Compile every tile config of the three big kernels for one (dtype, head_dim, case, arch)."""
    dtype, head_dim, case, arch = job
    rows = []
    for launch in cr.launches(dtype, head_dim, case):
        if launch.kernel not in KERNELS:
            continue
        for cfg in launch.configs:
            row = {"kernel": launch.kernel, "config": cr.config_name(cfg), "arch": f"sm_{arch}",
                   "gpu": cr.SHARED_LIMIT[arch][0], "dtype": dtype, "head_dim": head_dim, "case": case,
                   "tried": cfg in launch.tried}
            try:
                row.update(cr.compile_launch(launch, arch, cfg), error=None)
            except Exception as err:  # a config the compiler rejects is a result, not a crash
                row.update(error=f"{type(err).__name__}: {str(err).splitlines()[0][:200]}")
            rows.append(row)
    return rows


def summarise(rows: list[dict]) -> list[dict]:
    """Per kernel, arch, dtype, head dim and case: how many configs fit, spill, are pipelined."""
    out = []
    key = lambda r: (r["kernel"], r["arch"], r["dtype"], r["head_dim"], r["case"])  # noqa: E731
    for k, group in itertools.groupby(sorted(rows, key=key), key=key):
        group = [r for r in group if r["error"] is None]
        tried = [r for r in group if r["tried"]]
        out.append({"kernel": k[0], "arch": k[1], "dtype": k[2], "head_dim": k[3], "case": k[4],
                    "configs": len(group), "fit": sum(r["fits"] for r in group),
                    "spill": sum(r["stack"] > 0 for r in group),
                    "pipelined": sum(r["async_copies"] > 0 for r in group),
                    "tried": len(tried), "tried_spill": sum(r["stack"] > 0 for r in tried),
                    "tried_clean": [r["config"] for r in tried if r["fits"] and r["stack"] == 0]})
    return out


def ptxas_version() -> str:
    import triton

    text = subprocess.run([triton.knobs.nvidia.ptxas.path, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"release [\d.]+, V([\d.]+)", text)       # "... release 12.9, V12.9.86"
    return found.group(1) if found else "unknown"


def print_table(rows: list[dict], dtype: str, case: str) -> None:
    """Config rows x (arch, head dim) columns: shared KiB / registers / stack / cp.async."""
    cols = [(a, d) for a in sorted({r["arch"] for r in rows}) for d in sorted({r["head_dim"] for r in rows})]
    print(f"\n{dtype}, {case}: shared KiB / registers / stack bytes / cp.async "
          "(x: over the shared-memory limit, -: not tried in this dtype)")
    print(f"{'kernel':6s} {'config':14s}" + "".join(f"{a + ' D' + str(d):>22s}" for a, d in cols))
    for kernel in KERNELS:
        for cfg in dict.fromkeys(r["config"] for r in rows if r["kernel"] == kernel):
            cells = []
            for a, d in cols:
                r = next((r for r in rows if (r["kernel"], r["config"], r["arch"], r["head_dim"], r["dtype"],
                                               r["case"]) == (kernel, cfg, a, d, dtype, case)), None)
                if r is None or r["error"]:
                    cells.append("error" if r else "-")
                else:
                    mark = ("" if r["fits"] else "x") + ("" if r["tried"] else "-")
                    cells.append(f"{mark}{r['shared'] // 1024}/{r['registers']}/{r['stack']}/{r['async_copies']}")
            print(f"{kernel:6s} {cfg:14s}" + "".join(f"{c:>22s}" for c in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dtypes", nargs="+", default=list(cr.DTYPES), choices=list(cr.DTYPES))
    parser.add_argument("--head-dims", nargs="+", type=int, default=[64, 128])
    parser.add_argument("--cases", nargs="+", default=list(cr.CASES), choices=list(cr.CASES))
    parser.add_argument("--archs", nargs="+", type=int, default=list(cr.SHARED_LIMIT), choices=list(cr.SHARED_LIMIT))
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if os.environ.get("TRITON_INTERPRET", "").strip() not in ("", "0"):
        parser.error("unset TRITON_INTERPRET: the report compiles the kernels, the interpreter does not")
    if any(not 16 <= d <= 128 for d in args.head_dims):
        parser.error("head dims must be between 16 and 128")

    import triton

    jobs = list(itertools.product(args.dtypes, args.head_dims, args.cases, args.archs))
    rows: list[dict] = []
    # An empty Triton cache, so that every compile is done and its "seconds" are real.
    with tempfile.TemporaryDirectory(prefix="textft-triton-cache-") as cache:
        os.environ["TRITON_CACHE_DIR"] = cache
        with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for i, group in enumerate(pool.map(compile_group, jobs), 1):
                rows += group
                dtype, d, case, arch = jobs[i - 1]
                print(f"[{i}/{len(jobs)}] {dtype} D={d} {case} sm_{arch}: {len(group)} configs", flush=True)
    for dtype, case in itertools.product(args.dtypes, args.cases):
        print_table(rows, dtype, case)

    report = {
        "benchmark": "attention_kernel_compile",
        "triton": triton.__version__,
        "ptxas": ptxas_version(),
        "limits": {f"sm_{a}": {"gpu": name, "shared_bytes": limit, "registers_per_thread": 255}
                   for a, (name, limit) in cr.SHARED_LIMIT.items()},
        "settings": {"problem": "batch 2, heads 4, length 1024; padded: the first sequence half padding",
                     "compiled_on": "CPU (no GPU): Triton -> PTX -> ptxas -> cubin; nothing was run",
                     "dtypes": args.dtypes, "head_dims": args.head_dims, "cases": args.cases},
        "summary": summarise(rows),
        "results": rows,
    }
    out = args.out or config.assets_dir("benchmarks") / "attention_kernel_compile.json"
    config.write_benchmark(report, out)
    errors = sum(r["error"] is not None for r in rows)
    print(f"\n{len(rows)} compiles, {errors} errors; wrote {out}")


if __name__ == "__main__":
    main()
