"""scripts/pretrain_bert.py runs the library's ``bert.pretrain``: on one process, and on two
(DDP over gloo, as on a machine without GPUs), each writing a folder ``transformers`` loads."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from textft_lib import bert

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "pretrain_bert.py"


def run(cmd, tmp_path):
    env = dict(os.environ, TEXTFT_CACHE_DIR=str(tmp_path / "cache"), OMP_NUM_THREADS="1")
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("processes", [1, 2])
def test_the_script_pretrains_and_saves(tmp_path, processes):
    out = tmp_path / "bert"
    args = [str(SCRIPT), "--quick", "--max-steps", "6", "--out", str(out)]
    cmd = [sys.executable, *args] if processes == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}", *args]
    stdout = run(cmd, tmp_path)
    assert f"{processes} process(es)" in stdout and "saved to" in stdout
    model, tok = bert.load_pretrained(out)
    from transformers import AutoModelForMaskedLM

    hf = AutoModelForMaskedLM.from_pretrained(out).eval()
    ids = tok(["a short test sentence"], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(ids), hf(input_ids=ids).logits, atol=1e-4, rtol=1e-4)


def test_shard_and_wrap_are_checked():
    s = bert.LESSON_QUICK
    data = bert.prepare_data(s)
    model = bert.new_model(s, data)
    with pytest.raises(ValueError, match="0 <= rank < world"):
        bert.pretrain(model, data, s.train, shard=(2, 2), cache=None, progress=False, verbose=False)
    with pytest.raises(ValueError, match="cache=None"):
        bert.pretrain(model, data, s.train, wrap=lambda m: m, progress=False, verbose=False)
