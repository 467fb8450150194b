"""CPU cost of attention: the reference formula against PyTorch's SDPA, as the length grows.

    python benchmarks/attention_cpu.py                 # lengths 128..2048, 4 heads of 64
    python benchmarks/attention_cpu.py --lengths 256 512 --threads 2

For each length L it times, on the CPU, the forward pass and the forward + backward pass of
``textft_lib.attention.attention`` with ``backend="reference"`` (which builds the L x L
weights) and ``backend="sdpa"``, checks that both give the same output, prints a table and
writes ``assets/benchmarks/attention_cpu.json`` (device, versions, date, settings, results).
The GPU kernel has its own benchmark, ``benchmarks/attention.py``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch

from textft_lib import config
from textft_lib.attention import attention


def median_seconds(fn, repeats: int) -> float:
    """Median wall time of ``repeats`` calls of ``fn`` after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(lengths: list[int], heads: int, head_dim: int, batch: int, repeats: int, causal: bool) -> list[dict]:
    rows = []
    for length in lengths:
        q, k, v = (torch.randn(batch, heads, length, head_dim, requires_grad=True) for _ in range(3))
        mask = torch.ones(batch, length, dtype=torch.bool)
        mask[0, length // 2:] = False                     # one half-padded sequence
        kw = dict(key_padding_mask=mask, causal=causal)
        ref = attention(q, k, v, backend="reference", **kw)
        sdpa = attention(q, k, v, backend="sdpa", **kw)
        max_diff = (ref - sdpa).abs().max().item()
        if max_diff > 1e-4:
            raise RuntimeError(f"reference and SDPA disagree at L={length}: max |diff| = {max_diff:.2e}")
        row = {"length": length, "max_abs_diff": max_diff,
               "weights_mib": batch * heads * length * length * 4 / 2**20}
        for backend in ("reference", "sdpa"):
            def forward(backend=backend):
                with torch.no_grad():
                    attention(q, k, v, backend=backend, **kw)

            def forward_backward(backend=backend):
                attention(q, k, v, backend=backend, **kw).sum().backward()

            row[f"{backend}_fwd_ms"] = 1e3 * median_seconds(forward, repeats)
            row[f"{backend}_fwd_bwd_ms"] = 1e3 * median_seconds(forward_backward, repeats)
        rows.append(row)
        print(f"{length:6d} {row['reference_fwd_ms']:10.2f} {row['sdpa_fwd_ms']:10.2f} "
              f"{row['reference_fwd_bwd_ms']:12.2f} {row['sdpa_fwd_bwd_ms']:12.2f} {row['weights_mib']:10.1f}",
              flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 256, 512, 1024, 2048])
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--head-dim", type=int, default=64)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: least noise)")
    parser.add_argument("--causal", action="store_true")
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    print(f"CPU attention, batch {args.batch}, {args.heads} heads of {args.head_dim}, fp32, "
          f"{args.threads} thread(s), causal={args.causal}, half of the batch padded")
    print(f"{'L':>6} {'ref fwd ms':>10} {'sdpa fwd':>10} {'ref fwd+bwd':>12} {'sdpa fwd+bwd':>12} "
          f"{'weights MiB':>10}")
    rows = run(args.lengths, args.heads, args.head_dim, args.batch, args.repeats, args.causal)
    result = {
        "benchmark": "attention_cpu",
        "device": f"cpu: {platform.processor() or platform.machine()}",
        "settings": vars(args),
        "results": rows,
    }
    path = config.assets_dir("benchmarks") / "attention_cpu.json"
    config.write_benchmark(result, path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
