"""Every committed notebook is clean: no outputs, no execution counts, slide metadata, the
Colab cell and a ``parameters`` cell, and the repository path of pyproject.toml."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("nbtools", ROOT / "scripts" / "nbtools.py")
nbtools = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nbtools)

NOTEBOOKS = nbtools.notebooks()


def test_there_are_lessons():
    assert NOTEBOOKS, "no notebooks found in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_clean(path):
    assert nbtools.problems(path, nbtools.repository()) == [], "run: python scripts/nbtools.py fix"


def test_readme_badges_match_repository():
    assert nbtools.readme_problems(nbtools.repository()) == []


def test_problems_are_detected(tmp_path):
    nb = {"cells": [{"cell_type": "code", "source": "1+1", "metadata": {}, "execution_count": 3,
                     "outputs": [{"output_type": "stream", "name": "stdout", "text": "2"}]},
                    {"cell_type": "markdown", "source": "[x](https://colab.research.google.com/github/"
                                                        "someone/else/blob/main/notebooks/01.ipynb)",
                     "metadata": {}}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "01_x.ipynb"
    path.write_text(json.dumps(nb))
    found = " | ".join(nbtools.problems(path, "textft/textft"))
    for expected in ("has outputs", "execution count", "slide metadata", "someone/else",
                     "no Colab install cell", "no cell tagged 'parameters'"):
        assert expected in found


def test_missing_and_duplicate_cell_ids_are_found_and_fixed(tmp_path):
    cells = [{"cell_type": "markdown", "source": "# A", "metadata": {}, "id": "aaaa1111"},
             {"cell_type": "markdown", "source": "text", "metadata": {}, "id": "aaaa1111"},
             {"cell_type": "code", "source": "x = 1", "metadata": {}, "execution_count": None, "outputs": []}]
    path = tmp_path / "x.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    found = " | ".join(nbtools.problems(path, "textft/textft"))
    assert "1 cell(s) without an id" in found and "not unique" in found
    nbtools.fix(path, "textft/textft")
    ids = [c["id"] for c in json.loads(path.read_text())["cells"]]
    assert ids[0] == "aaaa1111" and len(set(ids)) == 3 and all(ids)
    assert nbtools.problems(path, "textft/textft") == []


def test_cpu_time_phrase():
    assert [nbtools.cpu_time_phrase(s) for s in (6.9, 59.9, 60, 86.1, 94.5, 130, 656.1)] == [
        "under a minute", "under a minute", "about 1 minute", "about 1.5 minutes", "about 1.5 minutes",
        "about 2 minutes", "about 11 minutes"]


def test_stated_times_come_from_the_measured_run():
    # every lesson's title cell and the README's syllabus say what full_run_cpu.json measured
    assert nbtools.time_problems() == []


def test_a_stale_stated_time_is_found(monkeypatch):
    times = dict(nbtools.measured_times())
    times["01_text_preprocessing_and_tokenization"] = 300.0  # as if lesson 01 had become slow
    monkeypatch.setattr(nbtools, "measured_times", lambda: times)
    found = " | ".join(nbtools.time_problems())
    assert "01_text_preprocessing_and_tokenization.ipynb" in found and "README.md: lesson 01" in found
    assert "about 5 minutes" in found
