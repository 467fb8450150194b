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
    if path.name[:2].isdigit():  # a numbered lesson
        texts = [source(c) for c in nb["cells"]]
        if not any(COLAB_MARKER in t for t in texts):
            found.append("no Colab install cell")
        if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb["cells"]):
            found.append("no cell tagged 'parameters'")
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
    for problem in readme_problems(repo):
        print(f"README.md: {problem}")
        bad += 1
    print("notebooks clean" if not bad else f"{bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
