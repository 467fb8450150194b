#!/usr/bin/env python3
"""Keep the lesson notebooks clean and consistent.

    python scripts/nbtools.py check   # report problems, exit 1 if any
    python scripts/nbtools.py fix     # fix what can be fixed automatically
    python scripts/nbtools.py fix notebooks/01_*.ipynb   # only these notebooks

What it looks after:

* outputs and execution counts are stripped (notebooks are committed clean);
* every cell has a unique ``id`` (nbformat 4.5 requires one; a cell pasted in by hand lacks it);
* slide metadata: ``#``/``##`` headings start a slide, ``###`` a sub-slide, the Colab
  install cell is skipped, everything else continues the current slide — so every lesson
  shows as slides in JupyterLab's presentation mode, RISE or ``nbconvert --to slides``;
* the lesson times: each title cell and the README's syllabus state the full-size CPU time
  that ``assets/benchmarks/full_run_cpu.json`` measured (checked, not rewritten);
* the repository path: ``pyproject.toml``'s ``[project.urls] Repository`` is the one place
  that names it; the README's Colab badges and each notebook's badge and Colab install
  cell are rewritten from it.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
COLAB_MARKER = '"google.colab" in sys.modules'
BADGE_RE = re.compile(r"https://colab\.research\.google\.com/github/([^/\s)]+/[^/\s)]+)/blob/main/notebooks/")
REPO_LINE_RE = re.compile(r'REPO = "https://github\.com/([^"]+)"')
#: Every lesson's first code cell, exactly: the Colab-only install, then an import check that
#: names the fix when the notebook runs on a kernel outside the course's environment.
COLAB_CELL = """\
# Colab only: fetch the course (its library, and the measurements lessons read) and what Colab lacks. Elsewhere this does nothing.
import sys
if "google.colab" in sys.modules:
    import os, subprocess
    REPO = "https://github.com/{repo}"
    HERE = "/content/textft"                      # the course's files, assets/ included
    if not os.path.isdir(HERE):
        subprocess.run(["git", "clone", "-q", "--depth", "1", REPO, HERE], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "gensim>=4.3.3", "-e", HERE], check=True)
    sys.path.insert(0, HERE)                      # this session imports the clone, not a copy without assets
try:
    import textft_lib  # the course's library: is it in this kernel's Python?
except ModuleNotFoundError:
    raise ModuleNotFoundError(f"textft_lib is not installed in this kernel's Python ({{sys.executable}}). Pick the "
                              "kernel of the course's .venv (Kernel > Change Kernel), or start Jupyter with "
                              "`python3 course.py lab` in the course folder.") from None"""


def repository() -> str:
    """``owner/name`` from pyproject.toml's ``Repository`` URL."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    match = re.search(r'^Repository\s*=\s*"https://github\.com/([^"/]+/[^"/]+)"', text, re.M)
    if not match:
        raise SystemExit("pyproject.toml has no [project.urls] Repository = \"https://github.com/<owner>/<name>\"")
    return match.group(1)


def notebooks() -> list[Path]:
    return sorted(NOTEBOOKS.glob("*.ipynb"))


def source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def slide_type(cell: dict) -> str:
    text = source(cell).lstrip()
    if cell["cell_type"] == "code" and COLAB_MARKER in text:
        return "skip"
    if cell["cell_type"] == "markdown":
        if text.startswith("# ") or text.startswith("## "):
            return "slide"
        if text.startswith("### "):
            return "subslide"
    return "-"


def problems(path: Path, repo: str) -> list[str]:
    """What is wrong with one notebook (empty list: nothing)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    found = []
    ids = [c.get("id") for c in nb["cells"]]
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) >= (4, 5):
        if None in ids:
            found.append(f"{ids.count(None)} cell(s) without an id")
        if len(set(ids) - {None}) != len(ids) - ids.count(None):
            found.append("cell ids are not unique")
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            if cell.get("outputs"):
                found.append(f"cell {i} has outputs")
            if cell.get("execution_count") is not None:
                found.append(f"cell {i} has an execution count")
        if cell.get("metadata", {}).get("slideshow", {}).get("slide_type") != slide_type(cell):
            found.append(f"cell {i} lacks slide metadata ({slide_type(cell)!r})")
        text = source(cell)
        for other in set(BADGE_RE.findall(text)) | set(REPO_LINE_RE.findall(text)):
            if other != repo:
                found.append(f"cell {i} names repository {other!r}, pyproject.toml says {repo!r}")
    code = [source(c) for c in nb["cells"] if c["cell_type"] == "code"]
    if code and COLAB_MARKER in code[0] and code[0] != COLAB_CELL.format(repo=repo):
        found.append("the first code cell is not nbtools.COLAB_CELL")
    if path.name[:2].isdigit():  # a numbered lesson
        if not code or COLAB_MARKER not in code[0]:
            found.append("no Colab install cell first")
        if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb["cells"]):
            found.append("no cell tagged 'parameters'")
    return found


def cpu_time_phrase(seconds: float) -> str:
    """How long a lesson takes, in the words the lesson and the README both use:
    ``under a minute``, then half minutes up to 10 (``about 1.5 minutes``), then whole ones."""
    if seconds < 60:
        return "under a minute"
    minutes = round(seconds / 30) / 2 if seconds < 600 else round(seconds / 60)
    return f"about {minutes:g} minute{'' if minutes == 1 else 's'}"


def measured_times() -> dict[str, float]:
    """Each lesson's full-size CPU time in seconds, from ``python3 course.py full``'s record
    (``assets/benchmarks/full_run_cpu.json``): the one source of the times the course states."""
    record = json.loads((ROOT / "assets" / "benchmarks" / "full_run_cpu.json").read_text(encoding="utf-8"))
    return {row["lesson"]: row["seconds"] for row in record["lessons"]}


def time_problems() -> list[str]:
    """Where a lesson's title cell or the README's syllabus states another CPU time than the
    measured one (as ``cpu_time_phrase`` words it)."""
    found = []
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    times = measured_times()
    for path in notebooks():
        if not path.name[:2].isdigit():
            continue
        if path.stem not in times:
            found.append(f"{path.name} has no time in assets/benchmarks/full_run_cpu.json")
            continue
        phrase = cpu_time_phrase(times[path.stem])
        title = source(json.loads(path.read_text(encoding="utf-8"))["cells"][0])
        if f"**Time** (full size): {phrase} on a laptop CPU" not in title:
            found.append(f"{path.name}: its title cell must say '**Time** (full size): {phrase} on a laptop CPU'")
        row = re.search(rf"^\| {path.name[:2]} \|.*$", readme, re.M)
        cpu = row.group(0).split(" | ")[3] if row else ""
        if not cpu.startswith(phrase):
            found.append(f"README.md: lesson {path.name[:2]}'s CPU time is {cpu!r}, measured: {phrase!r}")
    return found


def fix(path: Path, repo: str) -> None:
    nb = json.loads(path.read_text(encoding="utf-8"))
    if (nb.get("nbformat"), nb.get("nbformat_minor", 0)) >= (4, 5):
        seen: set[str] = set()
        for i, cell in enumerate(nb["cells"]):
            if cell.get("id") in seen or not cell.get("id"):   # new id: a hash of name, place and text
                digest = hashlib.sha1(f"{path.name}:{i}:{source(cell)}".encode()).hexdigest()
                cell["id"] = next(digest[k:k + 8] for k in range(0, 33) if digest[k:k + 8] not in seen)
            seen.add(cell["id"])
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    if code and COLAB_MARKER in source(code[0]):          # lessons and appendices alike
        code[0]["source"] = COLAB_CELL.format(repo=repo).splitlines(keepends=True)
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        cell.setdefault("metadata", {}).setdefault("slideshow", {})["slide_type"] = slide_type(cell)
        text = source(cell)
        new = BADGE_RE.sub(f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/", text)
        new = REPO_LINE_RE.sub(f'REPO = "https://github.com/{repo}"', new)
        if new != text:
            cell["source"] = new
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def readme_problems(repo: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    found = [f"README names repository {r!r}" for r in set(BADGE_RE.findall(text)) if r != repo]
    for link in re.findall(r"/blob/main/(notebooks/[^)\s]+\.ipynb)", text):
        if not (ROOT / link).exists():
            found.append(f"README links to {link}, which does not exist")
    return found


def fix_readme(repo: str) -> None:
    path = ROOT / "README.md"
    text = path.read_text(encoding="utf-8")
    path.write_text(BADGE_RE.sub(f"https://colab.research.google.com/github/{repo}/blob/main/notebooks/", text),
                    encoding="utf-8")


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("check", "fix"):
        print(__doc__)
        return 2
    repo = repository()
    if argv[0] == "fix":
        chosen = [Path(p).resolve() for p in argv[1:]] or notebooks()
        for path in chosen:
            fix(path, repo)
        if len(argv) == 1:
            fix_readme(repo)
    bad = 0
    for path in notebooks():
        for problem in problems(path, repo):
            print(f"{path.relative_to(ROOT)}: {problem}")
            bad += 1
    for problem in readme_problems(repo) + time_problems():
        print(f"README.md: {problem}")
        bad += 1
    print("notebooks clean" if not bad else f"{bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
