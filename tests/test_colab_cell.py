"""The first code cell of every lesson and appendix fetches the course and what Colab lacks,
only in Colab.

The cell is run twice with ``subprocess.run`` replaced by a recorder: once as on a laptop
(no ``google.colab`` module: nothing may happen) and once with ``google.colab`` simulated
(a shallow clone of this repository, one pip install of gensim and the clone, and the clone
first on ``sys.path``, so that ``config.assets_dir()`` holds the committed measurements)."""

import importlib.util
import json
import subprocess
import sys
import types

import pytest

from textft_lib.config import repo_root

spec = importlib.util.spec_from_file_location("nbtools", repo_root() / "scripts" / "nbtools.py")
nbtools = importlib.util.module_from_spec(spec)
spec.loader.exec_module(nbtools)

LESSONS = [p for p in nbtools.notebooks() if p.name[:2].isdigit() or p.name.startswith("A")]


def colab_cell(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = [nbtools.source(c) for c in cells if c["cell_type"] == "code"]
    assert nbtools.COLAB_MARKER in code[0], f"{path.name}: the first code cell must be the Colab install cell"
    return code[0]


def run_cell(source, monkeypatch, in_colab):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
    monkeypatch.setattr(sys, "path", list(sys.path))             # the cell may prepend the clone
    if in_colab:
        monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
        monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "colab-cell", "exec"), {})
    return calls


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_colab_cell_does_nothing_outside_colab(path, monkeypatch):
    assert run_cell(colab_cell(path), monkeypatch, in_colab=False) == []


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_colab_cell_installs_only_what_colab_lacks(path, monkeypatch):
    calls = run_cell(colab_cell(path), monkeypatch, in_colab=True)
    assert len(calls) == 2
    (clone, clone_kw), (pip, pip_kw) = calls
    repo, here = f"https://github.com/{nbtools.repository()}", "/content/textft"
    assert clone == ["git", "clone", "-q", "--depth", "1", repo, here] and clone_kw.get("check") is True
    assert pip[:4] == [sys.executable, "-m", "pip", "install"] and pip_kw.get("check") is True
    assert [c for c in pip[4:] if c != "-q"] == ["gensim>=4.3.3", "-e", here]
    assert sys.path[0] == here                                   # this session imports the clone
    # Colab already has torch, transformers, tokenizers, sklearn, matplotlib, nltk: never name them.
    assert not any(p.split(">")[0].split("=")[0] in {"torch", "transformers", "tokenizers"} for p in pip)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_first_cell_names_the_fix_when_textft_lib_is_missing(path, monkeypatch):
    # A kernel from outside the course's environment: `import textft_lib` fails.
    monkeypatch.setitem(sys.modules, "textft_lib", None)
    with pytest.raises(ModuleNotFoundError) as err:
        run_cell(colab_cell(path), monkeypatch, in_colab=False)
    message = str(err.value)
    assert "Change Kernel" in message and "python3 course.py lab" in message and sys.executable in message
    assert err.value.__cause__ is None and err.value.__suppress_context__  # one message, not two tracebacks
