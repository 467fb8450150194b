"""Speed and memory of attention: the reference formula, each SDPA backend, and our Triton kernel.

For every backend, forward and forward+backward are timed and their throughput reported in
TFLOP/s, with the FLOPs of attention counted as in the FlashAttention papers:

    forward        4 · B · H · N² · D        (two matmuls, Q Kᵀ and P V, of 2·N²·D each)
    causal         half of that              (only the lower triangle is needed)
    backward       2.5 × the forward         (five matmuls instead of two)

plus the peak memory each call needs beyond its inputs (GPU only), and the largest error
against an fp32 reference on the smallest size. Sections, in the order they run (the most
useful first, for a run cut short by ``--time-budget``):

- matmul: a large fp16/bf16 matrix product, the physical limit of the GPU's tensor cores;
- correctness: the kernel's forward and gradients (dQ, dK, dV) in the benchmark's dtype
  against SDPA's FlashAttention backend and an fp32 reference (relative errors); on a
  padded batch, against SDPA on nested (jagged) tensors;
- padded: a BERT-like batch whose sequence lengths are the lengths, in word and punctuation
  tokens, of articles of the Lee news corpus (capped at 512), padded to the longest;
  throughput there counts only the useful work, Σ_b L_b², not the padding. Besides the
  dense backends with a padding mask: SDPA on nested (jagged) tensors, which skips the
  padding, and FlashAttention's ``flash_attn_varlen_func`` when ``flash_attn`` is installed;
- square: batch·N = 16k tokens (GPU) with 2048/D heads, N from 512 to 16k, D 64 and 128,
  causal or not.

The padded lengths are read from ``benchmarks/padded_lengths.json`` (committed: no gensim
needed). They were derived from the Lee corpus shipped with gensim; to derive them again::

    python benchmarks/attention.py --write-lengths

Robustness: the report is rewritten (atomically) after every row, so a crash loses nothing
measured; an error in one measurement (out of memory, a backend that does not support the
case, a Triton compile error) is recorded in that row's ``status`` and the run goes on;
``reference`` and SDPA's math backend, which build the full score tensor, are skipped above
``--max-score-gib``; after ``--time-budget`` seconds no new measurement starts, the rows left
are recorded as not run and the report is marked ``"partial": true``.

Timing on a GPU: CUDA events around a group of calls (enough calls for the group to last
``--group-ms``, so launch overhead does not count), the median of several groups, per call.
On a CPU: ``time.perf_counter`` around each call, the fastest (the least disturbed).

On a CPU (no CUDA) the script runs a small set of sizes with the reference and SDPA only:
the Triton kernel runs on a CPU only in its interpreter, whose speed says nothing about a
GPU; ``--tiny`` (sizes of seconds, for checking the script end to end) includes it when
``TRITON_INTERPRET=1`` is set. Usage::

    python benchmarks/attention.py            # on a GPU: writes assets/benchmarks/attention_kernels_<gpu>.json
    python benchmarks/attention.py --quick    # fewer sizes
    python benchmarks/attention.py --time-budget 240 --out-dir /tmp/bench
    python benchmarks/attention.py --device cpu   # the CPU set: assets/benchmarks/attention_kernels_cpu.json
    TRITON_INTERPRET=1 python benchmarks/attention.py --device cpu --tiny --out-dir /tmp/bench

``TEXTFT_KERNEL_CONFIG=fixed`` (read by ``textft_lib.kernels.flash_kernels``) pins one tile
configuration per kernel instead of autotuning; the report's settings say which was used.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import math
import platform
import re
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F

from textft_lib import cache, config, data, kernels
from textft_lib.attention import attention, reference_attention

try:
    from torch.nn.attention import SDPBackend, sdpa_kernel
except ImportError:  # very old torch: only the default SDPA
    SDPBackend = sdpa_kernel = None

SDPA_BACKENDS = {"sdpa_math": "MATH", "sdpa_flash": "FLASH_ATTENTION",
                 "sdpa_efficient": "EFFICIENT_ATTENTION", "sdpa_cudnn": "CUDNN_ATTENTION"}
#: Backends that build the full (B, H, Lq, Lk) score tensor, in fp32 (capped by --max-score-gib).
SCORE_BACKENDS = ("reference", "sdpa_math", "sdpa")
#: Backends of the padded batch that take the sequences packed, without padding.
PACKED_BACKENDS = ("sdpa_nested", "flash_varlen")

LENGTHS_FILE = Path(__file__).with_name("padded_lengths.json")
TOKEN_PATTERN = r"\w+|[^\w\s]"
#: Relative errors (‖a − b‖ / ‖b‖) under which the kernel passes whatever SDPA flash's own error.
ERROR_FLOOR = {torch.bfloat16: 1e-2, torch.float16: 2e-3, torch.float32: 1e-5}


# ------------------------------------------------------------------------ sizes

@dataclass
class Sizes:
    """Problem sizes of one run."""
    tokens: int              # batch · N of each square problem
    hidden: int              # heads · D
    lengths: list[int]       # N of the square problems
    head_dims: list[int]
    padded_batch: int
    cap: int                 # padded lengths are capped here
    min_time: float          # seconds of timing per measurement (at least 3 groups)
    matmul_n: int
    check: tuple[int, int, int]  # correctness problems: batch, heads, N


def choose_sizes(gpu: bool, quick: bool, tiny: bool) -> Sizes:
    """The sizes for a GPU, a CPU, or ``tiny`` ones (seconds, for checking the script)."""
    if tiny:
        return Sizes(tokens=96, hidden=32, lengths=[16, 48], head_dims=[16], padded_batch=4, cap=40,
                     min_time=0.005, matmul_n=64, check=(1, 2, 24))
    if gpu:
        return Sizes(tokens=16384, hidden=2048, head_dims=[64, 128], padded_batch=32, cap=512,
                     lengths=[512, 2048, 8192] if quick else [512, 1024, 2048, 4096, 8192, 16384],
                     min_time=0.1, matmul_n=8192, check=(2, 4, 1000))
    return Sizes(tokens=1024, hidden=256, head_dims=[64], padded_batch=8, cap=512,
                 lengths=[128, 512] if quick else [128, 256, 512, 1024], min_time=0.3, matmul_n=2048,
                 check=(1, 2, 256))


# ------------------------------------------------------------------------ the report

class Report:
    """The benchmark's JSON, rewritten atomically at ``path`` after every change.

    Example::

        report = Report(Path("/tmp/a.json"), {"benchmark": "attention"})
        report.add("results", {"backend": "sdpa", "status": "ok"})   # the file now holds the row
        report.finish("complete")
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = Path(path)
        self.started = time.perf_counter()
        self.data: dict[str, Any] = {
            "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "versions": config.versions("flash_attn"),
            **header, "status": "running", "partial": True, "elapsed_s": 0.0,
            "matmul": None, "correctness": [], "errors_vs_reference": [], "results": [], "section_errors": []}
        self.write()

    def add(self, section: str, row: dict[str, Any]) -> None:
        """Append ``row`` to the list ``section`` and rewrite the file."""
        self.data[section].append(row)
        self.write()

    def set(self, key: str, value: Any) -> None:
        """Set one top-level entry and rewrite the file."""
        self.data[key] = value
        self.write()

    def finish(self, status: str, partial: bool = False) -> None:
        """Mark the report done (``partial``: some measurements were not run)."""
        self.data.update(status=status, partial=partial)
        self.write()

    def write(self) -> None:
        self.data["elapsed_s"] = round(time.perf_counter() - self.started, 2)
        payload = json.dumps(self.data, indent=2, default=str) + "\n"
        cache.atomic_write_bytes(self.path, payload.encode("utf-8"))


class Runner:
    """What every measurement shares: the device, the timing settings, the time budget."""

    def __init__(self, device: torch.device, *, min_time: float, group_ms: float,
                 budget_s: float | None, max_score_gib: float) -> None:
        self.device, self.min_time, self.group_ms = device, min_time, group_ms
        self.max_score_gib = max_score_gib
        self.deadline = None if budget_s is None else time.perf_counter() + budget_s
        self.budget_s = budget_s
        self.broken: str | None = None     # why the CUDA context is unusable, once it is
        self.not_run = 0

    def why_not(self) -> str | None:
        """Why no new measurement may start (budget spent, CUDA broken), or None."""
        if self.broken:
            return f"not run: the CUDA context broke earlier ({self.broken})"
        if self.deadline is not None and time.perf_counter() >= self.deadline:
            return f"not run: time budget of {self.budget_s:g} s spent"
        return None

    def skipped(self) -> str | None:
        """Like ``why_not``, counting the measurement as not run."""
        why = self.why_not()
        if why:
            self.not_run += 1
        return why

    def after_error(self) -> None:
        """Free what a failed call left behind; note when the CUDA context no longer works."""
        if self.device.type != "cuda":
            return
        gc.collect()
        try:
            torch.cuda.empty_cache()
            torch.ones(1, device=self.device).add_(1).item()
        except Exception as err:  # an illegal memory access poisons the context for good
            self.broken = first_line(err)


# ------------------------------------------------------------------------ measuring

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def first_line(err: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an error's text, shortened."""
    lines = [line for line in str(err).splitlines() if line.strip()]
    return (lines[0].strip() if lines else type(err).__name__)[:limit]


def error_status(err: BaseException) -> str:
    """A row's status for a failed measurement: out of memory, unsupported, or the error."""
    if isinstance(err, torch.cuda.OutOfMemoryError):
        return f"out of memory: {first_line(err)}"
    text = str(err)
    if isinstance(err, RuntimeError) and ("No available kernel" in text or "not supported" in text.lower()):
        return f"unsupported: {first_line(err, 160)}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    last = f" ... {lines[-1][:200]}" if len(lines) > 1 else ""   # a Triton compile error ends with its cause
    return f"error: {type(err).__name__}: {first_line(err)}{last}"


def calls_per_group(call_ms: float, group_ms: float, max_reps: int = 1000) -> int:
    """How many calls of ``call_ms`` each make one timed group last ``group_ms`` or more."""
    return max(1, min(max_reps, math.ceil(group_ms / max(call_ms, 1e-4))))


def cuda_group_ms(fn: Callable[[], None], reps: int) -> float:
    """Milliseconds of ``reps`` calls of ``fn`` between one pair of CUDA events."""
    begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    begin.record()
    for _ in range(reps):
        fn()
    end.record()
    end.synchronize()
    return begin.elapsed_time(end)


def time_ms(fn: Callable[[], None], device: torch.device, *, min_time: float, group_ms: float = 5.0,
            max_groups: int = 50) -> tuple[float, int]:
    """``(ms per call, calls per timed group)`` of ``fn`` after warm-up (the first call also
    compiles or autotunes Triton). GPU: groups of calls that last ``group_ms`` or more, the
    median group over at least 3 and ``min_time`` seconds. CPU, which other processes share:
    single calls, the fastest (the least disturbed)."""
    for _ in range(2):
        fn()
    sync(device)
    start = time.perf_counter()
    times: list[float] = []
    if device.type != "cuda":
        while len(times) < 3 or (time.perf_counter() - start < min_time and len(times) < 200):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1000)
        return min(times), 1
    reps = calls_per_group(cuda_group_ms(fn, 3) / 3, group_ms)
    while len(times) < 3 or (time.perf_counter() - start < min_time and len(times) < max_groups):
        times.append(cuda_group_ms(fn, reps) / reps)
    return statistics.median(times), reps


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


def score_gib(b: int, h: int, lq: int, lk: int) -> float:
    """GiB of an fp32 ``(B, H, Lq, Lk)`` score tensor."""
    return b * h * lq * lk * 4 / 2**30


def measure(runner: Runner, name: str, fn: Callable, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, *,
            backward: bool) -> dict:
    """Time one backend on one problem. Any error is caught and recorded in ``status``."""
    row: dict[str, Any] = {"backend": name, "pass": "fwd+bwd" if backward else "fwd", "status": "ok",
                           "ms": None, "peak_mib": None, "reps": None}
    why = runner.skipped()
    if why:
        row["status"] = why
        return row
    try:
        call = make_call(fn, q, k, v, backward)
        row["ms"], row["reps"] = time_ms(call, runner.device, min_time=runner.min_time, group_ms=runner.group_ms)
        row["peak_mib"] = peak_mib(call, runner.device)
    except Exception as err:  # out of memory, unsupported case, compile error: recorded, not fatal
        row.update(status=error_status(err), ms=None, peak_mib=None)
    finally:
        for t in (q, k, v):
            t.grad = None
    if row["status"] != "ok":
        runner.after_error()
    elif runner.device.type == "cuda":
        torch.cuda.empty_cache()
    return row


def make_call(fn: Callable, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, backward: bool) -> Callable[[], None]:
    """A no-argument call of ``fn(q, k, v)``: forward only, or forward and backward."""
    if not backward:
        def forward() -> None:
            with torch.no_grad():
                fn(q, k, v)
        return forward
    for t in (q, k, v):
        t.requires_grad_()
    do = torch.randn_like(q)

    def forward_backward() -> None:
        q.grad = k.grad = v.grad = None
        fn(q, k, v).backward(do)
    return forward_backward


# ------------------------------------------------------------------------ backends

def make_backend(name: str, mask: torch.Tensor | None, causal: bool) -> Callable:
    """``fn(q, k, v) -> out`` for a dense backend name (q, k, v: ``(B, H, N, D)``)."""
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


def make_packed_backend(name: str, lengths: torch.Tensor) -> Callable:
    """``fn(q, k, v) -> out`` on packed sequences ``(Σ L_b, H, D)``, without padding.

    ``sdpa_nested``: SDPA on nested (jagged) tensors ``(B, H, j, D)``, views of the packed
    tensors; ``flash_varlen``: ``flash_attn.flash_attn_varlen_func`` (raises ImportError
    when ``flash_attn`` is not installed).
    """
    offsets = torch.cat([lengths.new_zeros(1), lengths.cumsum(0)])
    min_len, max_len = int(lengths.min()), int(lengths.max())   # given: no device sync per call
    if name == "sdpa_nested":
        def nested(q, k, v):
            q, k, v = (torch.nested.nested_tensor_from_jagged(t, offsets, min_seqlen=min_len, max_seqlen=max_len)
                       .transpose(1, 2) for t in (q, k, v))
            return F.scaled_dot_product_attention(q, k, v).transpose(1, 2).values()
        return nested
    if name == "flash_varlen":
        from flash_attn import flash_attn_varlen_func  # optional: recorded as unavailable when missing

        cu = offsets.to(torch.int32)
        return lambda q, k, v: flash_attn_varlen_func(q, k, v, cu, cu, max_len, max_len, causal=False)
    raise ValueError(f"unknown packed backend {name!r}: choose one of {', '.join(PACKED_BACKENDS)}")


def backend_or_error(name: str, mask: torch.Tensor | None, causal: bool, lengths: torch.Tensor | None = None
                     ) -> tuple[Callable | None, str | None]:
    """``(fn, None)``, or ``(None, status)`` when the backend cannot be made here (e.g. a
    missing package). ``lengths`` given: a packed backend (see ``make_packed_backend``)."""
    try:
        if lengths is not None:
            return make_packed_backend(name, lengths), None
        return make_backend(name, mask, causal), None
    except ImportError as err:
        return None, f"unavailable: {first_line(err)}"
    except Exception as err:
        return None, error_status(err)


def backend_names(device: torch.device, tiny: bool) -> list[str]:
    """The dense backends to run: the reference, SDPA's backends, and the Triton kernel
    where it runs compiled (a GPU) or, for ``tiny`` runs, in its interpreter."""
    names = ["reference"]
    if sdpa_kernel is None:
        names.append("sdpa")
    elif device.type == "cuda":
        names += list(SDPA_BACKENDS)
    else:  # PyTorch's CPU SDPA has a math and a flash implementation
        names += ["sdpa_math", "sdpa_flash"]
    if (device.type == "cuda" or tiny) and kernels.triton_status(device)[0]:
        names.append("triton")
    return names


def kernel_config(device: torch.device) -> str:
    """How the Triton kernel picks its tiles here: "autotune", "fixed" or why it cannot run."""
    if not kernels.triton_status(device)[0]:
        return "n/a: the Triton kernel does not run here (see the report's 'triton')"
    try:
        return str(getattr(kernels.kernel_module(), "KERNEL_CONFIG", "autotune"))
    except Exception as err:
        return f"unavailable: {first_line(err)}"


# ------------------------------------------------------------------------ problems

def corpus_lengths() -> list[int]:
    """Lengths, in word and punctuation tokens, of the Lee news articles (needs gensim)."""
    return [len(re.findall(TOKEN_PATTERN, text)) for text in data.load("lee")]


def write_lengths(path: Path = LENGTHS_FILE) -> Path:
    """Derive the article lengths from the Lee corpus (gensim) and write them to ``path``."""
    record = {"source": "Lee news corpus (lee_background.cor, shipped with gensim), one article a line",
              "tokens": f"word and punctuation tokens, regex {TOKEN_PATTERN}",
              "regenerate": "python benchmarks/attention.py --write-lengths",
              "lengths": corpus_lengths()}
    text = json.dumps({**record, "lengths": "LENGTHS"}, indent=1).replace('"LENGTHS"', json.dumps(record["lengths"]))
    return cache.atomic_write_bytes(path, (text + "\n").encode("utf-8"))


def load_lengths(path: Path = LENGTHS_FILE) -> list[int]:
    """The committed article lengths (no gensim needed)."""
    try:
        lengths = json.loads(Path(path).read_text(encoding="utf-8"))["lengths"]
    except (OSError, ValueError, KeyError) as err:
        raise RuntimeError(f"cannot read the padded-batch lengths from {path} ({err}); derive them again "
                           "with: python benchmarks/attention.py --write-lengths (needs gensim)") from err
    if not lengths or not all(isinstance(n, int) and n > 0 for n in lengths):
        raise RuntimeError(f"{path}: 'lengths' must be a non-empty list of positive integers")
    return lengths


def padded_batch(batch: int, cap: int, lengths: list[int], seed: int = 0) -> torch.Tensor:
    """``(batch,)`` lengths drawn from the corpus distribution, capped at ``cap``."""
    pool = torch.tensor(lengths)
    g = torch.Generator().manual_seed(seed)
    return pool[torch.randint(len(pool), (batch,), generator=g)].clamp(max=cap)


def pack(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, H, N, D)`` -> ``(Σ L_b, H, D)``: the real tokens of each sequence, in order."""
    return x.transpose(1, 2)[mask]


def fp32_reference(q, k, v, mask=None, causal=False) -> torch.Tensor:
    """The attention formula on fp32 copies of the inputs."""
    return reference_attention(q.float(), k.float(), v.float(), key_padding_mask=mask, causal=causal)


def max_error(fn: Callable, want: torch.Tensor, q, k, v) -> tuple[float | None, str]:
    """``(largest absolute difference from want, status)``; None when the backend failed."""
    try:
        with torch.no_grad():
            return (fn(q, k, v).float() - want).abs().max().item(), "ok"
    except Exception as err:
        return None, error_status(err)


def matmul_tflops(runner: Runner, dtype: torch.dtype, n: int) -> dict:
    """Throughput of an ``n × n`` matrix product (the physical limit of the matrix units)."""
    row: dict[str, Any] = {"n": n, "dtype": str(dtype).replace("torch.", ""), "ms": None, "tflops": None,
                           "status": "ok"}
    why = runner.skipped()
    if why:
        row["status"] = why
        return row
    try:
        a, b = (torch.randn(n, n, device=runner.device, dtype=dtype) for _ in range(2))
        row["ms"], _ = time_ms(lambda: a @ b, runner.device, min_time=runner.min_time, group_ms=runner.group_ms)
        row["tflops"] = 2 * n**3 / (row["ms"] * 1e-3) / 1e12
    except Exception as err:
        row["status"] = error_status(err)
        runner.after_error()
    return row


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


# ------------------------------------------------------------------------ correctness

def rel_error(a: torch.Tensor, b: torch.Tensor) -> float:
    """‖a − b‖ / ‖b‖ in fp64 (NaN when a holds NaN)."""
    a, b = a.double(), b.double()
    return ((a - b).norm() / b.norm().clamp_min(1e-30)).item()


def outputs_and_grads(fn: Callable, q, k, v, do) -> list[torch.Tensor]:
    """``[out, dq, dk, dv]`` of ``fn(q, k, v)`` for the output gradient ``do``."""
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    out = fn(*leaves)
    grads = torch.autograd.grad(out, leaves, do)
    return [out.detach(), *grads]


def compare(got: list[torch.Tensor], rival: list[torch.Tensor] | None, ref: list[torch.Tensor],
            dtype: torch.dtype) -> dict[str, Any]:
    """Errors of the kernel (``got``) against ``rival`` (SDPA) and the fp32 reference, and
    the verdict: every relative error against the reference within max(2 × the rival's own,
    ERROR_FLOOR[dtype]), and no NaN."""
    names = ("out", "dq", "dk", "dv")
    row: dict[str, Any] = {"kernel_vs_fp32": {n: rel_error(a, r) for n, a, r in zip(names, got, ref)}}
    if rival is not None:
        row["rival_vs_fp32"] = {n: rel_error(a, r) for n, a, r in zip(names, rival, ref)}
        row["kernel_vs_rival"] = {n: rel_error(a, r) for n, a, r in zip(names, got, rival)}
        row["kernel_vs_rival_max_abs"] = {n: (a.float() - r.float()).abs().max().item()
                                          for n, a, r in zip(names, got, rival)}
    bad = []
    for n in names:
        err = row["kernel_vs_fp32"][n]
        limit = max(2 * row["rival_vs_fp32"][n], ERROR_FLOOR[dtype]) if rival is not None else ERROR_FLOOR[dtype]
        if not err <= limit:  # also catches NaN
            bad.append(f"{n} {err:.2e} > {limit:.2e}")
    row["status"] = "ok" if not bad else "mismatch: " + ", ".join(bad)
    return row


def flash_sdpa(causal: bool) -> Callable:
    """SDPA restricted to its FlashAttention backend."""
    def run(q, k, v):
        with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
            return F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    return run


def check_square(runner: Runner, dtype: torch.dtype, b: int, h: int, n: int, d: int, causal: bool) -> dict:
    """The kernel against SDPA's flash backend and the fp32 reference on one square problem."""
    row: dict[str, Any] = {"case": "square", "rival": "sdpa_flash", "dtype": str(dtype)[6:], "B": b, "H": h,
                           "N": n, "D": d, "causal": causal}
    g = torch.Generator().manual_seed(1000 + n + d + causal)
    q, k, v, do = (torch.randn(b, h, n, d, generator=g).to(runner.device, dtype) for _ in range(4))
    ref = outputs_and_grads(lambda q, k, v: fp32_reference(q, k, v, causal=causal), q, k, v, do.float())
    got = outputs_and_grads(lambda q, k, v: kernels.flash_attention(q, k, v, causal=causal), q, k, v, do)
    try:
        rival = outputs_and_grads(flash_sdpa(causal), q, k, v, do) if sdpa_kernel is not None else None
        row["rival_status"] = "ok" if rival is not None else "unavailable: this torch has no sdpa_kernel"
    except Exception as err:
        rival, row["rival_status"] = None, error_status(err)
    row.update(compare(got, rival, ref, dtype))
    return row


def check_padded(runner: Runner, dtype: torch.dtype, lens: torch.Tensor, h: int, d: int) -> dict:
    """The kernel with a padding mask against SDPA on nested (jagged) tensors and the fp32
    reference, on the real tokens only (packed)."""
    b, n = len(lens), int(lens.max())
    row: dict[str, Any] = {"case": "padded", "rival": "sdpa_nested", "dtype": str(dtype)[6:], "B": b, "H": h,
                           "N": n, "D": d, "causal": False, "lengths": lens.tolist()}
    mask = (torch.arange(n)[None, :] < lens[:, None]).to(runner.device)
    g = torch.Generator().manual_seed(2000 + n + d)
    q, k, v, do = (torch.randn(b, h, n, d, generator=g).to(runner.device, dtype) for _ in range(4))
    do = do * mask[:, None, :, None]   # padding queries, absent from the packed rival, get no gradient
    packed = [pack(t, mask) for t in (q, k, v, do)]
    ref = outputs_and_grads(lambda q, k, v: fp32_reference(q, k, v, mask), q, k, v, do.float())
    got = outputs_and_grads(lambda q, k, v: kernels.flash_attention(q, k, v, key_padding_mask=mask), q, k, v, do)
    ref, got = [pack(t, mask) for t in ref], [pack(t, mask) for t in got]
    try:
        rival = outputs_and_grads(make_packed_backend("sdpa_nested", lens.to(runner.device)), *packed)
        row["rival_status"] = "ok"
    except Exception as err:
        rival, row["rival_status"] = None, error_status(err)
    row.update(compare(got, rival, ref, dtype))
    return row


def run_check(runner: Runner, report: Report, names: list[str], check: Callable[[], dict], label: dict) -> None:
    """Run one correctness check, recording it (or why it did not run) in the report."""
    why = runner.skipped() or (None if "triton" in names else kernel_absent(runner.device))
    if why:
        row = {**label, "status": why}
    else:
        try:
            row = check()
        except Exception as err:
            row = {**label, "status": error_status(err)}
            runner.after_error()
    report.add("correctness", row)
    print(f"check   {row.get('case', '?'):7s} N={row.get('N', '?')} D={row.get('D', '?')} "
          f"{'causal' if row.get('causal') else 'full  '} vs {row.get('rival', '-')}: {row['status']}")


def kernel_absent(device: torch.device) -> str:
    """Why a run has no Triton kernel: it cannot run here, or it was left out."""
    if not kernels.triton_status(device)[0]:
        return "not run: the Triton kernel cannot run here (see the report's 'triton')"
    return "not run: the Triton kernel is not among this run's backends" + (
        "" if device.type == "cuda" else " (on a CPU it runs, in its interpreter, only with --tiny)")


def correctness_section(runner: Runner, report: Report, names: list[str], dtype: torch.dtype,
                        sizes: Sizes, lens: torch.Tensor) -> None:
    """The kernel's forward and gradients against SDPA (flash; nested for padding)."""
    b, h, n = sizes.check
    for d in sizes.head_dims:
        for causal in (False, True):
            label = {"case": "square", "rival": "sdpa_flash", "N": n, "D": d, "causal": causal}
            run_check(runner, report, names, lambda d=d, c=causal: check_square(runner, dtype, b, h, n, d, c), label)
    d = sizes.head_dims[0]
    label = {"case": "padded", "rival": "sdpa_nested", "N": int(lens.max()), "D": d, "causal": False}
    run_check(runner, report, names, lambda: check_padded(runner, dtype, lens, sizes.hidden // d, d), label)


# ------------------------------------------------------------------------ speed sections

def record(report: Report, row: dict, **problem: Any) -> None:
    """Complete a measured row with its problem and throughput, store and print it."""
    row.update(problem)
    row["tflops"] = row["flops"] / (row["ms"] * 1e-3) / 1e12 if row["ms"] else None
    report.add("results", row)
    print(format_row(row))


def score_skip(runner: Runner, name: str, b: int, h: int, n: int) -> str | None:
    """The status of a score-building backend above the memory cap, else None."""
    gib = score_gib(b, h, n, n)
    if name in SCORE_BACKENDS and gib > runner.max_score_gib:
        return f"skipped: score tensor would be {gib:.1f} GiB (over --max-score-gib {runner.max_score_gib:g})"
    return None


def not_run_row(name: str, backward: bool, status: str) -> dict:
    return {"backend": name, "pass": "fwd+bwd" if backward else "fwd", "status": status,
            "ms": None, "peak_mib": None, "reps": None}


def square_section(runner: Runner, report: Report, names: list[str], dtype: torch.dtype, sizes: Sizes) -> None:
    """Square problems: batch·N = tokens, hidden/D heads, every N, D, causal or not."""
    for d in sizes.head_dims:
        h = sizes.hidden // d
        for causal in (False, True):
            for n in sizes.lengths:
                square_problem(runner, report, names, dtype, max(1, sizes.tokens // n), h, n, d, causal,
                               with_errors=n == sizes.lengths[0])


def square_problem(runner: Runner, report: Report, names: list[str], dtype: torch.dtype,
                   b: int, h: int, n: int, d: int, causal: bool, with_errors: bool) -> None:
    """Every backend, forward and forward+backward, on one ``(B, H, N, D)`` problem."""
    problem = dict(case="square", N=n, D=d, B=b, H=h, causal=causal)
    q = k = v = None
    if runner.why_not() is None:
        q, k, v = (torch.randn(b, h, n, d, device=runner.device, dtype=dtype) for _ in range(3))
    backends = {name: backend_or_error(name, None, causal) for name in names}
    if with_errors and q is not None and runner.why_not() is None:
        want = fp32_reference(q, k, v, causal=causal)
        for name, (fn, status) in backends.items():
            status = status or score_skip(runner, name, b, h, n)
            err, status = max_error(fn, want, q, k, v) if status is None else (None, status)
            report.add("errors_vs_reference", {"case": "square", "backend": name, "D": d, "causal": causal,
                                               "max_abs_error": err, "status": status})
        del want
    for name, (fn, status) in backends.items():
        for backward in (False, True):
            skip = runner.skipped() if q is None else status or score_skip(runner, name, b, h, n)
            row = not_run_row(name, backward, skip) if skip else measure(runner, name, fn, q, k, v, backward=backward)
            record(report, row, **problem, flops=attention_flops(b, h, n, d, causal, backward))
    del q, k, v
    if runner.device.type == "cuda":
        torch.cuda.empty_cache()


def padded_section(runner: Runner, report: Report, names: list[str], dtype: torch.dtype, sizes: Sizes,
                   lens: torch.Tensor) -> None:
    """A BERT-like padded batch: real lengths, right padding, no causal mask. Dense backends
    get a padding mask; the packed ones get only the real tokens."""
    d = sizes.head_dims[0]
    h, b, n = sizes.hidden // d, len(lens), int(lens.max())
    useful = 4.0 * h * d * float((lens.double() ** 2).sum())
    problem = dict(case="padded", N=n, D=d, B=b, H=h, causal=False)
    mask = (torch.arange(n)[None, :] < lens[:, None]).to(runner.device)             # (B, N), True = real token
    q, k, v = (torch.randn(b, h, n, d, device=runner.device, dtype=dtype) for _ in range(3))
    want = fp32_reference(q, k, v, mask) if runner.why_not() is None else None
    for name in names + list(PACKED_BACKENDS):
        packed = name in PACKED_BACKENDS
        fn, status = backend_or_error(name, mask, False, lens.to(runner.device) if packed else None)
        if packed:
            inputs, skip = [pack(t.detach(), mask).contiguous() for t in (q, k, v)], status
            target = None if want is None else pack(want, mask)
        else:
            inputs, target, skip = [q, k, v], want, status or score_skip(runner, name, b, h, n)
        padded_backend(runner, report, name, fn, inputs, target, skip, problem, useful)


def padded_backend(runner: Runner, report: Report, name: str, fn: Callable | None, inputs: list[torch.Tensor],
                   target: torch.Tensor | None, skip: str | None, problem: dict, useful: float) -> None:
    """One backend on the padded batch: its error against ``target`` (the fp32 reference, in
    the backend's layout), then forward and forward+backward, or ``skip`` as their status."""
    error = {"case": "padded", "backend": name, "D": problem["D"], "causal": False,
             "max_abs_error": None, "status": skip or "not run"}
    if fn is not None and target is not None and runner.why_not() is None:
        error["max_abs_error"], error["status"] = max_error(fn, target, *inputs)
    report.add("errors_vs_reference", error)
    for backward in (False, True):
        row = not_run_row(name, backward, skip) if skip else measure(runner, name, fn, *inputs, backward=backward)
        record(report, row, **problem, flops=useful * (3.5 if backward else 1.0))


# ------------------------------------------------------------------------ main

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"],
                        help="GPU dtype (default bfloat16; the CPU set always uses float32)")
    parser.add_argument("--quick", action="store_true", help="fewer sizes (also on with TEXTFT_QUICK=1)")
    parser.add_argument("--tiny", action="store_true",
                        help="sizes of seconds, for checking the script end to end (with TRITON_INTERPRET=1 "
                             "on a CPU, the Triton kernel runs in its interpreter)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="folder of the JSON report (default: assets/benchmarks/)")
    parser.add_argument("--out", type=Path, default=None,
                        help="JSON path (overrides --out-dir; default: <out-dir>/attention_kernels_<device>.json)")
    parser.add_argument("--time-budget", type=float, default=None, metavar="SECONDS",
                        help="start no new measurement after this many seconds; the report is then partial")
    parser.add_argument("--max-score-gib", type=float, default=8.0,
                        help="skip reference and SDPA math when their fp32 score tensor would be larger (default 8)")
    parser.add_argument("--group-ms", type=float, default=5.0,
                        help="GPU timing: each timed group of calls lasts at least this long (default 5)")
    parser.add_argument("--backends", default=None,
                        help="comma-separated dense backends to run (default: all that run here)")
    parser.add_argument("--write-lengths", action="store_true",
                        help=f"derive the padded-batch lengths from the Lee corpus (needs gensim), write "
                             f"{LENGTHS_FILE.name} and exit")
    return parser.parse_args(argv)


def output_path(args: argparse.Namespace, device: torch.device) -> Path:
    """Where the report goes: --out, else <out-dir>/attention_kernels_<device>.json."""
    if args.out is not None:
        return args.out
    name = f"attention_kernels_{slug(device_name(device)) if device.type == 'cuda' else 'cpu'}.json"
    folder = args.out_dir if args.out_dir is not None else config.assets_dir("benchmarks")
    return Path(folder) / name


def select_backends(device: torch.device, tiny: bool, wanted: str | None) -> list[str]:
    """The dense backends of this run, filtered by ``--backends``."""
    names = backend_names(device, tiny)
    if wanted is None:
        return names
    chosen = [n.strip() for n in wanted.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in names]
    if unknown:
        raise SystemExit(f"--backends: {', '.join(unknown)} cannot run here; available: {', '.join(names)}")
    return chosen


def report_header(device: torch.device, dtype: torch.dtype, sizes: Sizes, names: list[str], lens: torch.Tensor,
                  args: argparse.Namespace, quick: bool) -> dict[str, Any]:
    gpu = device.type == "cuda"
    return {
        "benchmark": "attention",
        "device": device_name(device),
        "device_type": device.type,
        "capability": "sm_%d%d" % torch.cuda.get_device_capability(device) if gpu else None,
        "triton": kernels.triton_status(device)[1],
        "settings": {"dtype": str(dtype).replace("torch.", ""), "tokens_per_batch": sizes.tokens,
                     "hidden": sizes.hidden, "lengths": sizes.lengths, "head_dims": sizes.head_dims,
                     "quick": quick, "tiny": args.tiny, "backends": names,
                     "packed_backends": list(PACKED_BACKENDS), "kernel_config": kernel_config(device),
                     "time_budget_s": args.time_budget, "max_score_gib": args.max_score_gib,
                     "timing": (f"CUDA events around groups of calls lasting >= {args.group_ms:g} ms, median group, "
                                "per call" if gpu else "perf_counter per call, the fastest"),
                     "sizes": asdict(sizes),
                     "padded_batch": {"batch": sizes.padded_batch, "cap": sizes.cap, "lengths": lens.tolist(),
                                      "source": "Lee news corpus (gensim), word+punctuation tokens, read from "
                                                f"benchmarks/{LENGTHS_FILE.name}"},
                     "flops": "fwd 4·B·H·N²·D, halved when causal, ×3.5 for fwd+bwd; padded: Σ L_b² instead of B·N²",
                     "errors": "errors_vs_reference: largest |out - fp32 reference|; correctness: relative errors "
                               "‖a - b‖/‖b‖ of out, dQ, dK, dV",
                     "notes": "" if gpu else "CPU run: the Triton kernel runs on CPU only in its interpreter, "
                                              "which says nothing about GPU speed"},
    }


def run_section(report: Report, name: str, section: Callable[[], None]) -> None:
    """Run one section; an unexpected error is recorded and the next section runs."""
    try:
        section()
    except Exception as err:
        report.add("section_errors", {"section": name, "error": error_status(err)})
        print(f"section {name} failed: {error_status(err)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.write_lengths:
        print(f"wrote {write_lengths()}")
        return 0
    quick = args.quick or config.is_quick()
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    gpu = device.type == "cuda"
    dtype = getattr(torch, args.dtype) if gpu else torch.float32
    sizes = choose_sizes(gpu, quick, args.tiny)
    torch.manual_seed(0)
    names = select_backends(device, args.tiny, args.backends)
    lens = padded_batch(sizes.padded_batch, sizes.cap, load_lengths())
    out = output_path(args, device)
    runner = Runner(device, min_time=sizes.min_time, group_ms=args.group_ms, budget_s=args.time_budget,
                    max_score_gib=args.max_score_gib)
    report = Report(out, report_header(device, dtype, sizes, names, lens, args, quick))
    print(f"device: {device_name(device)} ({device.type}), dtype {str(dtype)[6:]}, backends: {', '.join(names)}, "
          f"kernel tiles: {report.data['settings']['kernel_config']}; writing {out}")
    warnings.filterwarnings("ignore", message=".*nested tensors is in prototype stage.*")

    def matmul() -> None:
        half = dtype if dtype in (torch.float16, torch.bfloat16) else torch.float16
        row = matmul_tflops(runner, half if gpu else torch.float32, sizes.matmul_n)
        report.set("matmul", row)
        speed = f"{row['tflops']:.3g} TFLOP/s (the physical limit)" if row["tflops"] else row["status"]
        print(f"matmul {row['n']}x{row['n']} {row['dtype']}: {speed}")

    run_section(report, "matmul", matmul)
    run_section(report, "correctness", lambda: correctness_section(runner, report, names, dtype, sizes, lens))
    run_section(report, "padded", lambda: padded_section(runner, report, names, dtype, sizes, lens))
    run_section(report, "square", lambda: square_section(runner, report, names, dtype, sizes))
    finish(report, runner)
    print(f"wrote {out}")
    return 0


def finish(report: Report, runner: Runner) -> None:
    """Mark the report complete, or partial with the reason."""
    if runner.not_run:
        why = f"the CUDA context broke ({runner.broken})" if runner.broken else \
            f"time budget of {runner.budget_s:g} s spent"
        report.finish(f"partial: {runner.not_run} measurements not run, {why}", partial=True)
    elif report.data["section_errors"]:
        report.finish("partial: a section failed (see section_errors)", partial=True)
    else:
        report.finish("complete")
    print(f"status: {report.data['status']} ({report.data['elapsed_s']:.0f} s)")


def format_row(row: dict) -> str:
    speed = f"{row['ms']:9.3f} ms {row['tflops']:9.3g} TFLOP/s" if row["ms"] else f"{row['status']}"
    mem = f"{row['peak_mib']:9.1f} MiB" if row.get("peak_mib") is not None else ""
    return (f"{row['case']:7s} N={row['N']:5d} D={row['D']:3d} {'causal' if row['causal'] else 'full  '} "
            f"{row['pass']:7s} {row['backend']:15s} {speed} {mem}")


if __name__ == "__main__":
    sys.exit(main())
