"""Smoke runs of the benchmark scripts at their quick sizes: they run end to end and write
the report their lessons read, with the fields the lessons use. No timings are checked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_script(name: str, *args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "TEXTFT_QUICK": "1", "TEXTFT_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    env.pop("TEXTFT_DATA_DIR", None)                      # the downstream half is skipped without SST-2
    return subprocess.run([sys.executable, str(ROOT / "benchmarks" / name), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


def test_corpus_ladder_quick_writes_both_budgets(tmp_path):
    out = tmp_path / "ladder.json"
    run = run_script("corpus_ladder.py", "--quick", "--threads", "1", "--more-steps", "60", "--out", str(out),
                     tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    budgets = {r["budget"] for r in report["ladder"]}
    assert budgets == {"equal steps", "equal epochs", "more steps"} and report["downstream"] is None
    for row in report["ladder"]:
        assert row["held_out_loss"] > 0 and row["unigram_loss"] > 0 and row["steps"] >= 1
    whole = [r for r in report["ladder"] if r["budget"] == "more steps"]
    assert [r["steps"] for r in whole] == [60] and "SST-2 not found" in run.stdout


def test_gpt_training_quick_writes_the_fields_lesson_08_reads(tmp_path):
    out = tmp_path / "gpt_training.json"
    run = run_script("gpt_training.py", "--quick", "--steps", "20", "--out", str(out), tmp_path=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["quick"] and report["corpus"] == "wiki_sample" and report["settings"]["steps"] == 20
    assert report["bigram"] < report["unigram"] and report["held_out_loss"] > 0
    assert report["reduction_vs_unigram"] == 1 - report["held_out_loss"] / report["unigram"]
    assert [e["step"] for e in report["evals"]][-1] == 20 and report["tokens_seen"] == 20 * 32 * 32
    assert "below the unigram" in run.stdout
