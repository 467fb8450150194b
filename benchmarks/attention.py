"""Speed and memory of attention: the reference formula, each SDPA backend, and our Triton kernel.

For every backend, forward and forward+backward are timed and their throughput reported in
TFLOP/s, with the FLOPs of attention counted as in the FlashAttention papers:

    forward        4 · B · H · N² · D        (two matmuls, Q Kᵀ and P V, of 2·N²·D each)
    causal         half of that              (only the lower triangle is needed)
    backward       2.5 × the forward         (five matmuls instead of two)

plus the peak memory each call needs beyond its inputs (GPU only), and the largest error
against the reference on the smallest size. Two kinds of problem:

- square: batch·N = 16k tokens (GPU) with 2048/D heads, N from 512 to 16k, D 64 and 128,
  causal or not;
- padded: a BERT-like batch whose sequence lengths are the lengths, in word and punctuation
  tokens, of articles of the Lee news corpus shipped with gensim (capped at 512), padded to
  the longest; throughput there counts only the useful work, Σ_b L_b², not the padding.

A large fp16 matrix product gives the physical limit of the GPU's tensor cores.

On a CPU (no CUDA) the script runs a small set of sizes with the reference and SDPA only:
the Triton kernel runs on a CPU only in its interpreter, whose speed says nothing about a
GPU. Usage::

    python benchmarks/attention.py            # on a GPU: writes assets/benchmarks/attention_kernels_<gpu>.json
    python benchmarks/attention.py --quick    # fewer sizes
    python benchmarks/attention.py --device cpu   # the CPU set: assets/benchmarks/attention_kernels_cpu.json
"""

from __future__ import annotations

import argparse
import platform
import re
import time
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from textft_lib import config, data, kernels
from textft_lib.attention import attention

try:
    from torch.nn.attention import SDPBackend, sdpa_kernel
except ImportError:  # very old torch: only the default SDPA
    SDPBackend = sdpa_kernel = None

SDPA_BACKENDS = {"sdpa_math": "MATH", "sdpa_flash": "FLASH_ATTENTION",
                 "sdpa_efficient": "EFFICIENT_ATTENTION", "sdpa_cudnn": "CUDNN_ATTENTION"}


# ------------------------------------------------------------------------ measuring

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], None], device: torch.device, *, min_time: float, max_reps: int = 200) -> float:
    """Time of ``fn`` in ms after warm-up (the first call also autotunes Triton): the median
    on a GPU; on a CPU, which other processes share, the fastest run (the least disturbed)."""
    for _ in range(2):
        fn()
    sync(device)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < min_time and len(times) < max_reps):
        if device.type == "cuda":
            begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            begin.record()
            fn()
            end.record()
            end.synchronize()
            times.append(begin.elapsed_time(end))
        else:
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return times[len(times) // 2] if device.type == "cuda" else times[0]


def peak_mib(fn: Callable[[], None], device: torch.device) -> float | None:
    """Memory that one call of ``fn`` needs beyond what was allocated before (GPU only)."""
    if device.type != "cuda":
        return None
    sync(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    fn()
    sync(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2**20


def attention_flops(b: int, h: int, n: int, d: int, causal: bool, backward: bool) -> float:
    flops = 4.0 * b * h * n * n * d * (0.5 if causal else 1.0)
    return flops * 3.5 if backward else flops  # forward + backward = 1 + 2.5


# ------------------------------------------------------------------------ backends

def make_backend(name: str, mask: torch.Tensor | None, causal: bool) -> Callable:
    """``fn(q, k, v) -> out`` for a backend name."""
    if name == "reference":
        return lambda q, k, v: attention(q, k, v, key_padding_mask=mask, causal=causal, backend="reference")
    if name == "triton":
        return lambda q, k, v: kernels.flash_attention(q, k, v, key_padding_mask=mask, causal=causal)
    if name == "sdpa":
        return lambda q, k, v: attention(q, k, v, key_padding_mask=mask, causal=causal, backend="sdpa")
    if causal and mask is not None:
        raise ValueError("the benchmark's padded batches are not causal")
    attn_mask = None if mask is None else mask[:, None, None, :]          # (B, 1, 1, Lk), True = attend
    backend = getattr(SDPBackend, SDPA_BACKENDS[name])

    def run(q, k, v):
        with sdpa_kernel([backend]):
            return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=causal)

    return run


def backend_names(device: torch.device) -> list[str]:
    names = ["reference"]
    if sdpa_kernel is None:
        names.append("sdpa")
    elif device.type == "cuda":
        names += list(SDPA_BACKENDS)
    else:  # PyTorch's CPU SDPA has a math and a flash implementation
        names += ["sdpa_math", "sdpa_flash"]
    if device.type == "cuda" and kernels.triton_status(device)[0]:
        names.append("triton")
    return names


def measure(name: str, fn: Callable, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *, backward: bool,
            device: torch.device, min_time: float) -> dict:
    """Time one backend on one problem; out-of-memory and unsupported configurations are recorded."""
    if backward:
        q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
        do = torch.randn_like(q)

        def call() -> None:
            q.grad = k.grad = v.grad = None
            fn(q, k, v).backward(do)
    else:
        def call() -> None:
            with torch.no_grad():
                fn(q, k, v)
    try:
        ms = time_ms(call, device, min_time=min_time)
        mem = peak_mib(call, device)
    except torch.cuda.OutOfMemoryError:
        status, ms, mem = "out of memory", None, None
    except RuntimeError as err:  # an SDPA backend that does not support this case says so
        status, ms, mem = f"unsupported: {str(err).splitlines()[0][:160]}", None, None
    else:
        status = "ok"
    finally:
        q.grad = k.grad = v.grad = None
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {"backend": name, "pass": "fwd+bwd" if backward else "fwd", "status": status,
            "ms": ms, "peak_mib": mem}


def max_error(fn: Callable, ref: Callable, q, k, v) -> float | None:
    """Largest absolute difference from the reference output (None if the backend failed)."""
    try:
        with torch.no_grad():
            return (fn(q, k, v).float() - ref(q, k, v).float()).abs().max().item()
    except RuntimeError:
        return None


# ------------------------------------------------------------------------ problems

def corpus_lengths() -> list[int]:
    """Lengths, in word and punctuation tokens, of the Lee news articles (real text)."""
    return [len(re.findall(r"\w+|[^\w\s]", text)) for text in data.load("lee")]


def padded_batch(batch: int, cap: int, seed: int = 0) -> torch.Tensor:
    """``(batch,)`` lengths drawn from the corpus distribution, capped at ``cap``."""
    lengths = torch.tensor(corpus_lengths())
    g = torch.Generator().manual_seed(seed)
    return lengths[torch.randint(len(lengths), (batch,), generator=g)].clamp(max=cap)


def matmul_tflops(device: torch.device, dtype: torch.dtype, n: int, min_time: float) -> dict:
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    ms = time_ms(lambda: a @ b, device, min_time=min_time)
    return {"n": n, "dtype": str(dtype).replace("torch.", ""), "ms": ms, "tflops": 2 * n**3 / (ms * 1e-3) / 1e12}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ------------------------------------------------------------------------ main

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"],
                        help="GPU dtype (the CPU set always uses float32)")
    parser.add_argument("--quick", action="store_true", help="fewer sizes (also on with TEXTFT_QUICK=1)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default: assets/benchmarks/attention_kernels_<device>.json)")
    args = parser.parse_args()
    quick = args.quick or config.is_quick()

    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    gpu = device.type == "cuda"
    dtype = getattr(torch, args.dtype) if gpu else torch.float32
    if gpu:
        tokens, hidden, min_time = 16384, 2048, 0.25
        lengths = [512, 2048, 8192] if quick else [512, 1024, 2048, 4096, 8192, 16384]
        head_dims = [64, 128]
        padded_b, cap = 32, 512
    else:
        tokens, hidden, min_time = 1024, 256, 0.3
        lengths = [128, 512] if quick else [128, 256, 512, 1024]
        head_dims = [64]
        padded_b, cap = 8, 512
    torch.manual_seed(0)
    names = backend_names(device)
    print(f"device: {device_name(device)} ({device.type}), dtype {str(dtype)[6:]}, backends: {', '.join(names)}")

    results: list[dict] = []
    errors: list[dict] = []
    for d in head_dims:
        h = hidden // d
        for causal in (False, True):
            for n in lengths:
                b = max(1, tokens // n)
                q, k, v = (torch.randn(b, h, n, d, device=device, dtype=dtype) for _ in range(3))
                ref = make_backend("reference", None, causal)
                for name in names:
                    fn = make_backend(name, None, causal)
                    if n == lengths[0]:
                        errors.append({"case": "square", "backend": name, "D": d, "causal": causal,
                                       "max_abs_error": max_error(fn, ref, q, k, v)})
                    for backward in (False, True):
                        row = measure(name, fn, q, k, v, backward=backward, device=device, min_time=min_time)
                        flops = attention_flops(b, h, n, d, causal, backward)
                        row.update(case="square", N=n, D=d, B=b, H=h, causal=causal, flops=flops,
                                   tflops=flops / (row["ms"] * 1e-3) / 1e12 if row["ms"] else None)
                        results.append(row)
                        print(format_row(row))
                del q, k, v

    # A BERT-like padded batch: real lengths, right padding, no causal mask.
    d = 64
    h = hidden // d
    lens = padded_batch(padded_b, cap)
    n = int(lens.max())
    mask = torch.arange(n)[None, :] < lens[:, None]                      # (B, N), True = real token
    mask = mask.to(device)
    q, k, v = (torch.randn(padded_b, h, n, d, device=device, dtype=dtype) for _ in range(3))
    useful = 4.0 * h * d * float((lens.double() ** 2).sum())
    ref = make_backend("reference", mask, False)
    for name in names:
        fn = make_backend(name, mask, False)
        err = max_error(fn, ref, q, k, v)
        errors.append({"case": "padded", "backend": name, "D": d, "causal": False, "max_abs_error": err})
        for backward in (False, True):
            row = measure(name, fn, q, k, v, backward=backward, device=device, min_time=min_time)
            flops = useful * (3.5 if backward else 1.0)
            row.update(case="padded", N=n, D=d, B=padded_b, H=h, causal=False, flops=flops,
                       tflops=flops / (row["ms"] * 1e-3) / 1e12 if row["ms"] else None)
            results.append(row)
            print(format_row(row))

    matmul = matmul_tflops(device, torch.float16 if gpu else torch.float32, 8192 if gpu else 2048, min_time)
    print(f"matmul {matmul['n']}x{matmul['n']} {matmul['dtype']}: {matmul['tflops']:.3g} TFLOP/s (the physical limit)")

    report = {
        "benchmark": "attention",
        "device": device_name(device),
        "device_type": device.type,
        "capability": "sm_%d%d" % torch.cuda.get_device_capability(device) if gpu else None,
        "triton": kernels.triton_status(device)[1],
        "settings": {"dtype": str(dtype).replace("torch.", ""), "tokens_per_batch": tokens, "hidden": hidden,
                     "lengths": lengths, "head_dims": head_dims, "quick": quick,
                     "padded_batch": {"batch": padded_b, "cap": cap, "lengths": lens.tolist(),
                                      "source": "Lee news corpus (gensim), word+punctuation tokens"},
                     "flops": "fwd 4·B·H·N²·D, halved when causal, ×3.5 for fwd+bwd; padded: Σ L_b² instead of B·N²",
                     "notes": "" if gpu else "CPU run: reference and SDPA only; the Triton kernel runs on CPU "
                                              "only in its interpreter, which says nothing about GPU speed"},
        "results": results,
        "errors_vs_reference": errors,
        "matmul": matmul,
    }
    out = args.out or config.assets_dir("benchmarks") / f"attention_kernels_{slug(device_name(device)) if gpu else 'cpu'}.json"
    config.write_benchmark(report, out)
    print(f"wrote {out}")


def format_row(row: dict) -> str:
    speed = f"{row['ms']:9.3f} ms {row['tflops']:9.3g} TFLOP/s" if row["ms"] else f"{row['status']}"
    mem = f"{row['peak_mib']:9.1f} MiB" if row.get("peak_mib") is not None else ""
    return (f"{row['case']:7s} N={row['N']:5d} D={row['D']:3d} {'causal' if row['causal'] else 'full  '} "
            f"{row['pass']:7s} {row['backend']:15s} {speed} {mem}")


if __name__ == "__main__":
    main()
