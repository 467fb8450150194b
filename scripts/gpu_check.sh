#!/usr/bin/env bash
# The GPU check of the attention kernel, in one run of under 8 minutes on one H100/H200:
#
#   1. the kernel tests (tests/test_kernels.py, bf16 and padding included, and the
#      benchmark's own tests), with one pinned tile configuration (TEXTFT_KERNEL_CONFIG=fixed:
#      no autotuning), junit XML and log in OUT_DIR;
#   2. benchmarks/attention.py with a time budget (what is left of the run's seconds), its
#      JSON report in OUT_DIR (rewritten after every row, so a kill loses nothing measured);
#   3. lesson 04's code cells in plain Python (scripts/run_cells.py: no Jupyter needed), at
#      full size and reading the benchmark's fresh JSON (copied into assets/benchmarks/), so
#      its GPU path runs (bf16 checked against the reference) and its benchmark figure is
#      drawn from the GPU's numbers: OUT_DIR/04_benchmark.png;
#   4. a short summary (also OUT_DIR/summary.json).
#
# A failing step does not stop the next ones; each step's exit code is logged in
# OUT_DIR/steps.txt, and the script exits 1 if any step failed.
#
# Usage, from anywhere (it runs in the repository root):
#
#   bash scripts/gpu_check.sh OUT_DIR
#   GPU_CHECK_DRY_RUN=1 bash scripts/gpu_check.sh /tmp/gpu_check    # CPU rehearsal, tiny sizes, under a minute
#
# Environment:
#   GPU_CHECK_DRY_RUN=1       CPU rehearsal: TRITON_INTERPRET=1, a few kernel tests, --device cpu --tiny
#   GPU_CHECK_SECONDS=465     wall-clock seconds for the whole script (the benchmark gets what the tests leave)
#   GPU_CHECK_TEST_SECONDS    longest the tests may run (default 240; 120 in a dry run)
#   GPU_CHECK_LESSON_SECONDS  longest lesson 04 may run (default 90), kept from the benchmark's time
#   GPU_CHECK_AUTOTUNE=1      let the benchmark autotune the kernel (minutes of compiling on a fresh machine)
#   GPU_CHECK_BENCH_ARGS      extra arguments for benchmarks/attention.py (e.g. "--quick")
#   GPU_CHECK_PYTHON          the Python to use (default: .venv/bin/python if present, else python3)
#
# At most 9 files are written to OUT_DIR: env.txt, tests.xml, tests.log, bench.log,
# attention_kernels_<device>.json, lesson.log, 04_benchmark.png, steps.txt, summary.json.
# A dry run leaves assets/ alone: its lesson runs in quick mode on the committed JSON.

set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 OUT_DIR" >&2
    exit 2
fi
mkdir -p "$1"
OUT_DIR=$(cd "$1" && pwd)
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO"

if [[ -n "${GPU_CHECK_PYTHON:-}" ]]; then
    PY=$GPU_CHECK_PYTHON
elif [[ -x .venv/bin/python ]]; then
    PY=.venv/bin/python
else
    PY=python3
fi
DRY=${GPU_CHECK_DRY_RUN:-0}
TOTAL=${GPU_CHECK_SECONDS:-465}
LESSON_SECONDS=${GPU_CHECK_LESSON_SECONDS:-90}
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 TEXTFT_OFFLINE=1 TEXTFT_KERNEL_CONFIG=fixed

if [[ "$DRY" == 1 ]]; then
    export TRITON_INTERPRET=1 OMP_NUM_THREADS=1
    TEST_SECONDS=${GPU_CHECK_TEST_SECONDS:-120}
    TESTS=(tests/test_kernels.py -k "padding or bf16 or status" tests/test_attention_benchmark.py)
    BENCH_ARGS=(--device cpu --tiny)
else
    unset TRITON_INTERPRET   # compiled kernels: the interpreter would be inherited silently
    TEST_SECONDS=${GPU_CHECK_TEST_SECONDS:-240}
    TESTS=(tests/test_kernels.py tests/test_attention_benchmark.py)
    BENCH_ARGS=()
fi
# shellcheck disable=SC2206  # word splitting of the extra arguments is wanted
BENCH_ARGS+=(${GPU_CHECK_BENCH_ARGS:-})

: >"$OUT_DIR/steps.txt"
FAILED=0

# run_step NAME LOG SECONDS CMD...: run CMD (output to the terminal and LOG) for at most
# SECONDS (SIGINT first, so pytest still writes its report; SIGKILL 20 s later), record its
# exit code, never stop the script.
run_step() {
    local name=$1 log=$2 seconds=$3 rc=0 started=$SECONDS
    shift 3
    echo "=== $name (at most ${seconds} s): $*"
    set +e
    if command -v timeout >/dev/null; then
        timeout -s INT -k 20 "$seconds" "$@" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
    else
        "$@" 2>&1 | tee "$log"
        rc=${PIPESTATUS[0]}
    fi
    set -e
    echo "$name rc=$rc seconds=$((SECONDS - started))" | tee -a "$OUT_DIR/steps.txt"
    if [[ $rc -ne 0 ]]; then FAILED=1; fi
}

# 0. What the machine is (cheap; never fatal).
{
    echo "repo: $REPO  python: $PY  dry run: $DRY  seconds: $TOTAL"
    git log -1 --format='commit %h %<(72,trunc)%s' 2>/dev/null || true
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm \
        --format=csv 2>&1 || echo "nvidia-smi: not available"
    "$PY" - <<'EOF' 2>&1 || echo "python environment check failed"
import importlib.util, platform, torch
print("python", platform.python_version(), "torch", torch.__version__, "cuda", torch.version.cuda,
      "available", torch.cuda.is_available())
if torch.cuda.is_available():
    print("gpu", torch.cuda.get_device_name(0), "sm_%d%d" % torch.cuda.get_device_capability(0))
for name in ("triton", "flash_attn", "gensim", "pytest"):
    print(name, "installed" if importlib.util.find_spec(name) else "missing")
EOF
} 2>&1 | tee "$OUT_DIR/env.txt"

# 1. Kernel tests, no autotuning.
run_step tests "$OUT_DIR/tests.log" "$TEST_SECONDS" \
    "$PY" -m pytest -q -rfEs -p no:nbval --junitxml="$OUT_DIR/tests.xml" "${TESTS[@]}"

# 2. The benchmark, within what is left: its budget stops new measurements early enough
# for the last one, the report and the summary; the hard limit kills it before the end.
LEFT=$((TOTAL - SECONDS - LESSON_SECONDS))
BUDGET=$((LEFT - 75 > 20 ? LEFT - 75 : 20))
HARD=$((LEFT - 15 > BUDGET + 10 ? LEFT - 15 : BUDGET + 10))
if [[ "${GPU_CHECK_AUTOTUNE:-0}" == 1 && "$DRY" != 1 ]]; then
    BENCH_ENV=(env TEXTFT_KERNEL_CONFIG=autotune)
else
    BENCH_ENV=(env TEXTFT_KERNEL_CONFIG=fixed)
fi
run_step benchmark "$OUT_DIR/bench.log" "$HARD" "${BENCH_ENV[@]}" \
    "$PY" benchmarks/attention.py --out-dir "$OUT_DIR" --time-budget "$BUDGET" ${BENCH_ARGS[@]+"${BENCH_ARGS[@]}"}

# 3. Lesson 04 on this machine, reading the JSON just written (a dry run: quick mode, the
# committed JSON, nothing in assets/ rewritten).
if [[ "$DRY" == 1 ]]; then
    LESSON_ENV=(env TEXTFT_QUICK=1)
else
    LESSON_ENV=(env TEXTFT_QUICK=0)
    for f in "$OUT_DIR"/attention_kernels_*.json; do
        if [[ -f "$f" ]]; then cp "$f" assets/benchmarks/; fi
    done
fi
run_step lesson "$OUT_DIR/lesson.log" "$LESSON_SECONDS" "${LESSON_ENV[@]}" MPLBACKEND=Agg \
    "$PY" scripts/run_cells.py notebooks/04_fast_attention_kernel.ipynb
if [[ "$DRY" != 1 && -f assets/figures/04_benchmark.png ]]; then
    cp assets/figures/04_benchmark.png "$OUT_DIR/"
fi

# 4. Summary of the three (reads what exists; never fatal).
"$PY" - "$OUT_DIR" <<'EOF' || echo "summary failed"
import collections, glob, json, os, sys
import xml.etree.ElementTree as ET

out = sys.argv[1]
summary = {"steps": open(os.path.join(out, "steps.txt")).read().split("\n")[:-1]}
try:
    suite = ET.parse(os.path.join(out, "tests.xml")).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    summary["tests"] = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
    summary["tests"]["failed"] = [f"{c.get('classname')}::{c.get('name')}" for c in suite.iter("testcase")
                                  if c.find("failure") is not None or c.find("error") is not None]
except Exception as err:
    summary["tests"] = f"no junit report ({err})"
reports = sorted(glob.glob(os.path.join(out, "attention_kernels_*.json")))
if reports:
    r = json.load(open(reports[-1]))
    rows = r.get("results", [])
    kinds = collections.Counter(row["status"].split(":")[0] for row in rows)
    summary["benchmark"] = {
        "file": os.path.basename(reports[-1]), "status": r.get("status"), "elapsed_s": r.get("elapsed_s"),
        "device": r.get("device"), "dtype": r.get("settings", {}).get("dtype"),
        "kernel_config": r.get("settings", {}).get("kernel_config"), "rows": dict(kinds),
        "matmul_tflops": (r.get("matmul") or {}).get("tflops"),
        "correctness": [f"{c.get('case')} N={c.get('N')} D={c.get('D')} causal={c.get('causal')}: {c['status']}"
                        for c in r.get("correctness", [])],
        "errors": sorted({f"{row['backend']}: {row['status'][:120]}" for row in rows
                          if row["status"].startswith(("error", "out of memory"))})[:12],
        "section_errors": r.get("section_errors", []),
    }
    best = {}
    for row in rows:
        if row["status"] == "ok" and row["backend"] in ("triton", "sdpa_flash", "sdpa_nested", "sdpa_efficient"):
            key = f"{row['case']} N={row['N']} D={row['D']} {'causal' if row['causal'] else 'full'} {row['pass']}"
            best.setdefault(key, {})[row["backend"]] = float(f"{row['tflops']:.3g}")
    summary["benchmark"]["tflops"] = best
else:
    summary["benchmark"] = "no report written"
try:
    lines = [l for l in open(os.path.join(out, "lesson.log")).read().splitlines() if l.strip()]
    summary["lesson"] = lines[-1] if lines else "empty log"
except OSError as err:
    summary["lesson"] = f"no log ({err})"
json.dump(summary, open(os.path.join(out, "summary.json"), "w"), indent=2)

print("\n=== summary")
print("\n".join(summary["steps"]))
t = summary["tests"]
print("tests:", t if isinstance(t, str) else
      f"{t['tests']} run, {t['failures']} failed, {t['errors']} errors, {t['skipped']} skipped {t['failed'][:8]}")
print("lesson 04:", summary["lesson"])
b = summary["benchmark"]
if isinstance(b, str):
    print("benchmark:", b)
else:
    print(f"benchmark: {b['file']}: {b['status']} in {b['elapsed_s']} s; {b['device']} {b['dtype']}, "
          f"kernel tiles {b['kernel_config']}; rows {b['rows']}; matmul {b['matmul_tflops'] or 0:.3g} TFLOP/s")
    for line in b["correctness"]:
        print("  check", line)
    for line in b["errors"] + [f"section {e}" for e in b["section_errors"]]:
        print("  error", line)
    for key, speeds in list(b["tflops"].items())[:16]:
        print(f"  {key:34s} " + "  ".join(f"{n} {v}" for n, v in speeds.items()))
EOF

echo "done in $SECONDS s; files in $OUT_DIR"
exit "$FAILED"
