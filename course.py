#!/usr/bin/env python3
"""Set up the course and run it: the only commands a learner needs.

    python3 course.py lab      # set up .venv if needed, open JupyterLab at lesson 01
    python3 course.py test     # set up .venv if needed, run the unit tests and every notebook
    python3 course.py full     # execute every lesson at full size, write HTML with outputs
    python3 course.py slides   # export every lesson as reveal.js slides that work offline
    python3 course.py setup    # only set up .venv

Setup creates a virtual environment in ``.venv`` next to this file and installs
``requirements.txt`` into it; it is skipped when nothing changed since the last setup.
A torch already installed in ``.venv`` (for example a CPU-only build, see the README) is
kept as long as it satisfies the requirements. Only the standard library is used here,
so this file runs with any Python >= 3.10.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".textft-setup"
FIRST_LESSON = "notebooks/01_text_preprocessing_and_tokenization.ipynb"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def requirements_digest() -> str:
    digest = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)


def setup() -> Path:
    """Create ``.venv`` and install the requirements, unless already done for these files."""
    if sys.version_info < (3, 10):
        sys.exit(f"textft needs Python 3.10 or newer; this is {sys.version.split()[0]}")
    py = venv_python()
    if not py.exists():
        print(f"Creating a virtual environment in {VENV} ...", flush=True)
        run([sys.executable, "-m", "venv", VENV])
    digest = requirements_digest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return py
    start = time.perf_counter()
    run([py, "-m", "pip", "install", "--upgrade", "pip"])
    run([py, "-m", "pip", "install", "-r", "requirements.txt"])
    STAMP.write_text(digest)
    print(f"Setup done in {time.perf_counter() - start:.0f} s.", flush=True)
    return py


def test_env() -> dict[str, str]:
    """The test run's environment: quick and offline mode, each only where the caller has
    not set it. ``conftest.py`` applies the same defaults to a bare ``pytest`` and also
    turns on Triton's interpreter when there is no CUDA GPU."""
    env = dict(os.environ)
    env.setdefault("TEXTFT_QUICK", "1")
    env.setdefault("TEXTFT_OFFLINE", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("MPLBACKEND", "Agg")
    # The tests train tiny models: one thread per process is as fast, and it stays fast
    # when the machine is busy (several threads on two busy cores wait on each other).
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def test(extra: list[str]) -> int:
    py = setup()
    env = test_env()
    shown = {k: env[k] for k in ("TEXTFT_QUICK", "TEXTFT_OFFLINE", "TRITON_INTERPRET", "OMP_NUM_THREADS") if k in env}
    if "TRITON_INTERPRET" not in env:
        shown["TRITON_INTERPRET"] = "1 unless a CUDA GPU is present (conftest.py)"
    print("Test settings:", " ".join(f"{k}={v}" for k, v in shown.items()), flush=True)
    args = extra or ["tests", "notebooks"]
    cmd = [str(py), "-m", "pytest", "--nbval-lax", "--durations=15", "-q", *args]
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT, env=env).returncode


def lab(extra: list[str]) -> int:
    py = setup()
    jupyter = [str(py), "-m", "jupyterlab"]
    cmd = [*jupyter, *(extra or [FIRST_LESSON])]
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode


def full(extra: list[str]) -> int:
    py = setup()
    cmd = [str(py), str(ROOT / "scripts" / "run_full.py"), *extra]
    return subprocess.run(cmd, cwd=ROOT).returncode


def slides(extra: list[str]) -> int:
    py = setup()
    return subprocess.run([str(py), str(ROOT / "scripts" / "slides.py"), *extra], cwd=ROOT).returncode


def main(argv: list[str]) -> int:
    commands = {"lab": lab, "test": test, "full": full, "slides": slides, "setup": lambda _: (setup(), 0)[1]}
    if not argv or argv[0] not in commands:
        print(__doc__)
        return 2
    if shutil.which("git") is None:
        print("note: git was not found; the course runs without it.", file=sys.stderr)
    return commands[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
