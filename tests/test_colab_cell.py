"""The first code cell of every lesson installs what Colab lacks, only in Colab.

The cell is run twice with ``subprocess.run`` replaced by a recorder: once as on a laptop
(no ``google.colab`` module: nothing may happen) and once with ``google.colab`` simulated
(exactly one pip install of gensim and this repository's library, and nothing else)."""

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

LESSONS = [p for p in nbtools.notebooks() if p.name[:2].isdigit()]


def colab_cell(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = [nbtools.source(c) for c in cells if c["cell_type"] == "code"]
    assert nbtools.COLAB_MARKER in code[0], f"{path.name}: the first code cell must be the Colab install cell"
    return code[0]


def run_cell(source, monkeypatch, in_colab):
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw)))
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
    assert len(calls) == 1
    cmd, kwargs = calls[0]
    assert cmd[:4] == [sys.executable, "-m", "pip", "install"] and kwargs.get("check") is True
    packages = [c for c in cmd[4:] if not c.startswith("-")]
    repo = nbtools.repository()
    assert packages == ["gensim>=4.3.3", f"textft_lib @ git+https://github.com/{repo}"]
    # Colab already has torch, transformers, tokenizers, sklearn, matplotlib, nltk: never reinstall them.
    assert not any(p.split(">")[0].split("=")[0] in {"torch", "transformers", "tokenizers"} for p in packages)


@pytest.mark.parametrize("path", LESSONS, ids=lambda p: p.name)
def test_first_cell_names_the_fix_when_textft_lib_is_missing(path, monkeypatch):
    # A kernel from outside the course's environment: `import textft_lib` fails.
    monkeypatch.setitem(sys.modules, "textft_lib", None)
    with pytest.raises(ModuleNotFoundError) as err:
        run_cell(colab_cell(path), monkeypatch, in_colab=False)
    message = str(err.value)
    assert "Change Kernel" in message and "python3 course.py lab" in message and sys.executable in message
    assert err.value.__cause__ is None and err.value.__suppress_context__  # one message, not two tracebacks
