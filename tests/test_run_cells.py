"""scripts/run_cells.py runs a notebook's code cells in plain Python: in order, in one
namespace, with the cells' source readable by ``inspect`` (as ``@triton.jit`` needs); it stops
at the first failing cell, names it, and refuses IPython syntax."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "run_cells.py"


def notebook(tmp_path: Path, *cells: str) -> Path:
    """A notebook with a markdown cell first, then ``cells`` as code cells."""
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {},
          "cells": [{"cell_type": "markdown", "id": "m", "metadata": {}, "source": ["# title"]}]
          + [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "execution_count": None, "outputs": [],
              "source": src.splitlines(keepends=True)} for i, src in enumerate(cells)]}
    path = tmp_path / "lesson.ipynb"
    path.write_text(json.dumps(nb), encoding="utf-8")
    return path


def run(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)


def test_cells_share_a_namespace_and_their_source(tmp_path):
    path = notebook(tmp_path, "import inspect\ndef double(x):\n    return 2 * x\n",
                    "print('source:', inspect.getsource(double).splitlines()[0])\nprint(double(21))")
    done = run(path)
    assert done.returncode == 0, done.stderr
    assert "source: def double(x):" in done.stdout and "42" in done.stdout
    assert "all 2 code cells ran" in done.stdout


def test_the_first_failure_stops_the_run_and_names_its_cell(tmp_path):
    path = notebook(tmp_path, "x = 1", "assert x == 2, 'x is not 2'", "print('never printed')")
    done = run(path)
    assert done.returncode == 1
    assert "FAILED at cell 2" in done.stdout and "never printed" not in done.stdout
    assert "x is not 2" in done.stderr and "lesson.ipynb, cell 2" in done.stderr


def test_ipython_syntax_is_refused_with_its_cell(tmp_path):
    done = run(notebook(tmp_path, "x = 1", "!pip install something"))
    assert done.returncode == 2 and "cell 2: IPython syntax" in done.stderr


def test_bad_arguments(tmp_path):
    assert run(tmp_path / "missing.ipynb").returncode == 2
    done = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "run_cells.py" in done.stderr
