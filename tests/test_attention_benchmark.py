"""benchmarks/attention.py at tiny sizes on the CPU: the report's structure, rows written as
they are measured, errors recorded instead of raised, the time budget, the score-memory cap,
the correctness section, and no gensim on the default path. No timing is checked."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from textft_lib import kernels

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks" / "attention.py"
ROW_KEYS = {"backend", "pass", "status", "ms", "peak_mib", "reps", "case", "N", "D", "B", "H", "causal",
            "flops", "tflops"}
INTERPRETER = kernels.triton_status("cpu")[0]


@pytest.fixture(scope="module")
def bench():
    """The benchmark script, imported as a module."""
    spec = importlib.util.spec_from_file_location("attention_benchmark", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def tiny(tmp_path: Path, *extra: str) -> list[str]:
    return ["--device", "cpu", "--tiny", "--out-dir", str(tmp_path), *extra]


def read_report(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "attention_kernels_cpu.json").read_text())


def assert_paired(results: list[dict]) -> None:
    """Every (case, N, D, causal, backend) has a fwd and a fwd+bwd row (lesson 04 reads them in pairs)."""
    key = lambda r: (r["case"], r["N"], r["D"], r["causal"], r["backend"])  # noqa: E731
    fwd = sorted(key(r) for r in results if r["pass"] == "fwd")
    both = sorted(key(r) for r in results if r["pass"] == "fwd+bwd")
    assert fwd == both and fwd, "rows must come in fwd / fwd+bwd pairs"


BLOCK_GENSIM = """
import runpy, sys
attempts = []
class BlockGensim:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "gensim":
            attempts.append(name)
            raise ImportError("gensim is blocked in this test")
sys.meta_path.insert(0, BlockGensim())
script, *args = sys.argv[1:]
sys.argv = [script, *args]
try:
    runpy.run_path(script, run_name="__main__")
finally:
    print("gensim imports tried:", attempts)
"""


def test_default_path_needs_no_gensim(tmp_path):
    """A whole tiny run in a fresh Python where importing gensim fails: it completes and
    never even tries to import it; the padded lengths come from the committed file. The
    kernel module reads TEXTFT_KERNEL_CONFIG at import."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT), "TEXTFT_KERNEL_CONFIG": "fixed"}
    args = tiny(tmp_path, "--backends", "reference,sdpa_math")
    result = subprocess.run([sys.executable, "-c", BLOCK_GENSIM, str(BENCH), *args], env=env, cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "gensim imports tried: []" in result.stdout
    report = read_report(tmp_path)
    assert report["status"] == "complete" and report["partial"] is False
    assert report["settings"]["dtype"] == "float32" and report["matmul"]["status"] == "ok"
    tiles = report["settings"]["kernel_config"]   # read by the kernel module from the environment
    assert tiles == "fixed" if INTERPRETER else tiles.startswith("n/a")
    results = report["results"]
    assert all(ROW_KEYS <= set(r) for r in results)
    assert_paired(results)
    backends = {r["backend"] for r in results}
    assert {"reference", "sdpa_math", "sdpa_nested", "flash_varlen"} <= backends
    assert all(r["status"] == "ok" for r in results if r["backend"] in ("reference", "sdpa_math", "sdpa_nested"))
    nested = [e for e in report["errors_vs_reference"] if e["backend"] == "sdpa_nested"]
    assert nested and nested[0]["max_abs_error"] < 1e-4, "SDPA on nested tensors must match the reference"
    lengths = report["settings"]["padded_batch"]["lengths"]
    assert {r["N"] for r in results if r["case"] == "padded"} == {max(lengths)}


def test_rows_are_written_as_they_are_measured(bench, tmp_path, monkeypatch):
    """Each measurement finds every row recorded before it already in the file."""
    recorded: list[int] = []
    in_file: list[int] = []
    measure, record = bench.measure, bench.record

    def spy_measure(*args, **kwargs):
        in_file.append(len(read_report(tmp_path)["results"]))
        return measure(*args, **kwargs)

    def spy_record(*args, **kwargs):
        record(*args, **kwargs)
        recorded.append(len(read_report(tmp_path)["results"]))

    monkeypatch.setattr(bench, "measure", spy_measure)
    monkeypatch.setattr(bench, "record", spy_record)
    assert bench.main(tiny(tmp_path, "--backends", "sdpa_math")) == 0
    assert recorded == list(range(1, len(recorded) + 1)), "each row must be in the file once recorded"
    assert len(in_file) > 4 and all(n in [0, *recorded] for n in in_file)
    assert in_file == sorted(in_file) and len(set(in_file)) == len(in_file)


def test_errors_are_recorded_and_the_run_goes_on(bench, tmp_path, monkeypatch):
    """A backend that raises (here: out of memory, or a compile error) gets its error as the
    row's status; the other backends and problems still run."""
    make_backend = bench.make_backend

    class CompilationError(Exception):
        pass

    def failing(name, mask, causal):
        if name == "sdpa_math":
            def oom(q, k, v):
                raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 34.00 GiB")
            return oom
        if name == "reference" and causal:
            def broken(q, k, v):
                raise CompilationError("at 12:4: unsupported tensor shape\nmore lines")
            return broken
        return make_backend(name, mask, causal)

    monkeypatch.setattr(bench, "make_backend", failing)
    assert bench.main(tiny(tmp_path, "--backends", "reference,sdpa_math")) == 0
    report = read_report(tmp_path)
    rows = report["results"]
    assert_paired(rows)
    assert all(r["status"].startswith("out of memory: CUDA out of memory") for r in rows if r["backend"] == "sdpa_math")
    causal_ref = [r for r in rows if r["backend"] == "reference" and r["causal"]]
    assert causal_ref and all(r["status"] == "error: CompilationError: at 12:4: unsupported tensor shape ... "
                                             "more lines" for r in causal_ref)
    assert all(r["status"] == "ok" for r in rows if r["backend"] == "reference" and not r["causal"])
    assert report["status"] == "complete"


def test_error_status_names_the_kind(bench):
    assert bench.error_status(RuntimeError("No available kernel. Aborting execution.")).startswith("unsupported:")
    assert bench.error_status(torch.cuda.OutOfMemoryError("x")) == "out of memory: x"
    assert bench.error_status(ValueError("\n  bad shape\n")) == "error: ValueError: bad shape"
    assert bench.error_status(ValueError("at 3:4:\n  x = tl.dot(a, b)\nfirst input must be 2D")) == \
        "error: ValueError: at 3:4: ... first input must be 2D"


def test_time_budget_marks_the_report_partial(bench, tmp_path):
    """With no time left nothing is measured, every planned row says why, and the report is partial."""
    assert bench.main(tiny(tmp_path, "--backends", "reference", "--time-budget", "0")) == 0
    report = read_report(tmp_path)
    assert report["partial"] is True and report["status"].startswith("partial:")
    assert_paired(report["results"])
    statuses = {r["status"] for r in report["results"] if r["backend"] != "flash_varlen"}
    assert statuses == {"not run: time budget of 0 s spent"}
    assert report["matmul"]["status"].startswith("not run")
    assert report["correctness"] and all(c["status"].startswith("not run") for c in report["correctness"])


def test_score_backends_are_capped(bench, tmp_path):
    """reference and SDPA math are skipped when their score tensor would pass --max-score-gib."""
    assert bench.main(tiny(tmp_path, "--backends", "reference,sdpa_math,sdpa_flash", "--max-score-gib", "0")) == 0
    rows = read_report(tmp_path)["results"]
    capped = [r for r in rows if r["backend"] in ("reference", "sdpa_math")]
    assert capped and all(r["status"].startswith("skipped: score tensor would be") for r in capped)
    assert all(r["status"] == "ok" for r in rows if r["backend"] in ("sdpa_flash", "sdpa_nested"))
    assert bench.score_gib(32, 32, 16384, 16384) == 1024.0


def test_calls_per_group(bench):
    assert bench.calls_per_group(0.01, 5.0) == 500
    assert bench.calls_per_group(20.0, 5.0) == 1
    assert bench.calls_per_group(0.0, 5.0) == 1000


def test_compare_flags_a_wrong_kernel(bench):
    g = torch.Generator().manual_seed(0)
    ref = [torch.randn(3, 5, generator=g) for _ in range(4)]
    rival = [t + 1e-4 * torch.randn(3, 5, generator=g) for t in ref]
    assert bench.compare([t.clone() for t in ref], rival, ref, torch.bfloat16)["status"] == "ok"
    wrong = [t.clone() for t in ref]
    wrong[2] = wrong[2] * 1.5
    status = bench.compare(wrong, rival, ref, torch.bfloat16)["status"]
    assert status.startswith("mismatch: dk")
    wrong[0] = torch.full_like(ref[0], float("nan"))
    assert "out nan" in bench.compare(wrong, None, ref, torch.bfloat16)["status"]


@pytest.mark.skipif(not INTERPRETER, reason="the Triton kernel runs on a CPU only with TRITON_INTERPRET=1")
def test_correctness_checks_pass_under_the_interpreter(bench):
    """The kernel (fp32, interpreted) against SDPA flash and against SDPA on nested tensors."""
    runner = bench.Runner(torch.device("cpu"), min_time=0.0, group_ms=1.0, budget_s=None, max_score_gib=1.0)
    row = bench.check_square(runner, torch.float32, 1, 2, 19, 16, True)
    assert row["status"] == "ok" and row["rival_status"] == "ok", row
    assert set(row["kernel_vs_rival"]) == {"out", "dq", "dk", "dv"}
    assert max(row["kernel_vs_rival"].values()) < 1e-5, row
    row = bench.check_padded(runner, torch.float32, torch.tensor([7, 20, 13]), 2, 16)
    assert row["status"] == "ok" and row["rival_status"] == "ok", row
    assert max(row["kernel_vs_rival"].values()) < 1e-5, "padding must not change dK, dV of the real keys"


def test_committed_lengths_load_and_draw(bench, tmp_path):
    lengths = bench.load_lengths()
    assert len(lengths) == 300 and min(lengths) > 0
    batch = bench.padded_batch(8, 512, lengths)
    assert batch.tolist() == [320, 171, 483, 263, 163, 213, 277, 153]  # the batch of the committed CPU report
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(RuntimeError, match="--write-lengths"):
        bench.load_lengths(tmp_path / "bad.json")


def test_committed_lengths_match_the_corpus(bench):
    """The committed file holds what --write-lengths derives from the Lee corpus (needs gensim)."""
    pytest.importorskip("gensim")
    assert bench.corpus_lengths() == bench.load_lengths()


def test_kernel_config_switch():
    """TEXTFT_KERNEL_CONFIG=fixed keeps one tile configuration per kernel: the first the
    autotuner would try for the launch's precision (the small tiles for fp32)."""
    pytest.importorskip("triton")
    fk = kernels.kernel_module()
    assert fk.kernel_config_mode(None) == fk.kernel_config_mode(" ") == "autotune"
    assert fk.kernel_config_mode("Fixed") == "fixed"
    with pytest.raises(ValueError, match="'autotune'.*'fixed'"):
        fk.kernel_config_mode("fast")
    for configs in (fk.KERNELS[name].configs for name in ("fwd", "dkdv", "dq")):
        for precision in ("tf32", "ieee"):
            tried = fk.tried_configs(configs, precision)
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(fk, "KERNEL_CONFIG", "fixed")
                assert fk._prune(configs, {}, PRECISION=precision) == tried[:1]
                mp.setattr(fk, "KERNEL_CONFIG", "autotune")
                assert fk._prune(configs, {}, PRECISION=precision) == tried
