#!/usr/bin/env python3
"""Execute lessons at full size, write HTML with outputs, report each lesson's wall time.

    python scripts/run_full.py            # every lesson
    python scripts/run_full.py 05 06      # only these lessons (by number)
    python scripts/run_full.py A2         # an appendix (appendices run only when named)
    python scripts/run_full.py --quick    # the same in quick mode (a rehearsal)

Instructors run it before class (``python3 course.py full``): it fills the training cache,
so that every training cell re-runs instantly in class, and writes ``html/<lesson>.html``
for sharing. The wall times go to ``assets/benchmarks/full_run_<device>.json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def slowest_cells(nb, n: int = 5) -> list[tuple[int, float, str]]:
    """The ``n`` slowest code cells of an executed notebook: (index, seconds, first line),
    from the timestamps nbclient records in each cell's ``metadata.execution``."""
    timed = []
    for index, cell in enumerate(nb.cells):
        stamps = cell.get("metadata", {}).get("execution", {})
        begin, end = stamps.get("iopub.execute_input"), stamps.get("shell.execute_reply")
        if cell.cell_type == "code" and begin and end:
            seconds = (dt.datetime.fromisoformat(end.replace("Z", "+00:00"))
                       - dt.datetime.fromisoformat(begin.replace("Z", "+00:00"))).total_seconds()
            timed.append((index, seconds, (cell.source.splitlines() or [""])[0][:70]))
    return sorted(timed, key=lambda t: -t[1])[:n]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="*", help="lesson numbers, e.g. 01 05 A2 (default: all numbered lessons)")
    parser.add_argument("--quick", action="store_true", help="quick mode instead of full size")
    parser.add_argument("--timeout", type=int, default=3600, help="seconds one cell may take")
    parser.add_argument("--out", type=Path, default=ROOT / "html", help="folder for the HTML files")
    args = parser.parse_args(argv)

    os.environ["TEXTFT_QUICK"] = "1" if args.quick else "0"
    os.environ.setdefault("MPLBACKEND", "Agg")
    import nbformat
    import torch
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    from textft_lib import config

    if not torch.cuda.is_available():
        os.environ.setdefault("TRITON_INTERPRET", "1")
    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.lessons:                     # appendices (A1, A2, ...) only when named
        wanted = {n.upper().zfill(2) for n in args.lessons}
        paths = [p for p in sorted((ROOT / "notebooks").glob("*.ipynb")) if p.name[:2] in wanted]
        if not paths:
            print(f"no lesson matches {args.lessons}", file=sys.stderr)
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    device = config.describe_device(config.get_device())
    results = []
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        start = time.perf_counter()
        status = "ok"
        try:
            NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                           resources={"metadata": {"path": str(path.parent)}}).execute()
        except Exception as err:  # report and go on with the next lesson
            status = f"error: {type(err).__name__}: {str(err).splitlines()[0][:200] if str(err) else ''}"
        seconds = time.perf_counter() - start
        html, _ = HTMLExporter().from_notebook_node(nb)
        (args.out / f"{path.stem}.html").write_text(html, encoding="utf-8")
        results.append({"lesson": path.stem, "seconds": round(seconds, 1), "status": status})
        print(f"{path.stem:<45} {seconds / 60:6.1f} min  {status}", flush=True)
        for index, cell_seconds, first_line in slowest_cells(nb):
            print(f"    cell {index:>3}: {cell_seconds:6.1f} s  {first_line}", flush=True)

    record = {"date": dt.date.today().isoformat(), "device": device, "quick": args.quick,
              "versions": config.versions(), "lessons": results}
    kind = "cuda" if "cuda" in device else "cpu"
    name = f"full_run_{kind}{'_quick' if args.quick else ''}.json"
    target = config.assets_dir("benchmarks") / name
    previous = json.loads(target.read_text()) if target.exists() else {"lessons": []}
    merged = {r["lesson"]: r for r in previous.get("lessons", [])}
    merged.update({r["lesson"]: r for r in results})
    record["lessons"] = [merged[k] for k in sorted(merged)]
    target.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {target.relative_to(ROOT)} and {len(results)} HTML file(s) in {args.out}")
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
