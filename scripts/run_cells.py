#!/usr/bin/env python3
"""Run a lesson's code cells in one plain Python process, without Jupyter.

    python scripts/run_cells.py notebooks/04_fast_attention_kernel.ipynb

For a machine that has PyTorch but no Jupyter (a rented GPU, a cluster node): the cells run in
order in one namespace, each announced by its index, their printed output shown as it comes;
the first cell that raises stops the run with its traceback and exit code 1. Figures go where
the lesson saves them (matplotlib's non-interactive backend). A cell that uses IPython syntax
(``!pip``, ``%magic``) is refused with its index rather than misread.
"""

from __future__ import annotations

import json
import linecache
import os
import sys
import time
import traceback
from pathlib import Path

IPYTHON_ONLY = ("!", "%")


def code_cells(path: Path) -> list[tuple[int, str]]:
    """(index among all cells, source) of every code cell of the notebook at ``path``."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    cells = []
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            source = "".join(cell["source"])
            for line in source.splitlines():
                if line.lstrip().startswith(IPYTHON_ONLY):
                    raise ValueError(f"{path.name}, cell {index}: IPython syntax ({line.strip()[:40]!r}) "
                                     "cannot run in plain Python")
            cells.append((index, source))
    return cells


def run(path: Path) -> int:
    """Run the cells; return 0 if all ran, 1 at the first failure."""
    os.environ.setdefault("MPLBACKEND", "Agg")
    namespace = {"__name__": "__main__", "__file__": str(path)}
    cells = code_cells(path)
    started = time.perf_counter()
    for index, source in cells:
        print(f"--- cell {index}", flush=True)
        filename = f"<{path.name}, cell {index}>"
        # As Jupyter does: the cell's source in linecache, so that inspect.getsource (which
        # @triton.jit needs) and tracebacks can read the functions a cell defines.
        linecache.cache[filename] = (len(source), None, source.splitlines(keepends=True), filename)
        try:
            exec(compile(source, filename, "exec"), namespace)  # noqa: S102
        except Exception:
            traceback.print_exc()
            print(f"FAILED at cell {index} after {time.perf_counter() - started:.1f} s", flush=True)
            return 1
    print(f"all {len(cells)} code cells ran in {time.perf_counter() - started:.1f} s", flush=True)
    return 0


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].endswith(".ipynb"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    path = Path(argv[0])
    if not path.is_file():
        print(f"no notebook at {path}", file=sys.stderr)
        return 2
    try:
        return run(path)
    except ValueError as err:        # IPython syntax in a cell
        print(err, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
