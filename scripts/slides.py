#!/usr/bin/env python3
"""Export lessons as reveal.js slides that work offline (no CDN).

    python scripts/slides.py              # every lesson -> slides/<lesson>.slides.html
    python scripts/slides.py 03 05        # only these lessons
    python scripts/slides.py --check      # also verify that no page loads anything remote

``jupyter nbconvert --to slides`` writes pages that load reveal.js, require.js, jQuery and MathJax
from CDNs, so they break in a classroom without the network. This script fetches these
libraries once with ``npm pack`` into the course cache (or takes them from there),
copies them next to the slides in ``slides/vendor/``, and points the pages at the copies.
The slides show the lessons' cells as committed (without outputs); for pages with the
outputs, ``python3 course.py full`` writes executed lessons as HTML to ``html/``.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VENDOR = {  # folder name -> npm package spec
    "reveal.js": "reveal.js@4.6.1",
    "requirejs": "requirejs@2.3.7",
    "mathjax": "mathjax@2.7.9",
    "jquery": "jquery@2.2.4",
}


def vendor_cache() -> Path:
    from textft_lib import config

    return config.cache_dir("slides-vendor")


def fetch(name: str, spec: str) -> Path:
    """The unpacked npm package ``spec`` in the cache, fetched once with ``npm pack``."""
    from textft_lib import config

    target = vendor_cache() / name
    if target.exists():
        return target
    hint = (f"Slides need {spec} once. Run this with the network (and npm installed), or unpack "
            f"the npm package {spec} into {target}.")
    if config.is_offline():
        raise SystemExit(f"TEXTFT_OFFLINE is set and {target} is missing. {hint}")
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(f"npm was not found. {hint}")
    with tempfile.TemporaryDirectory(dir=vendor_cache()) as tmp:
        done = subprocess.run([npm, "pack", spec, "--silent"], cwd=tmp, capture_output=True, text=True, timeout=300)
        tarballs = list(Path(tmp).glob("*.tgz"))
        if done.returncode != 0 or not tarballs:
            raise SystemExit(f"npm pack {spec} failed: {done.stderr.strip()[:300]}. {hint}")
        with tarfile.open(tarballs[0]) as tar:
            tar.extractall(Path(tmp) / "x", filter="data")
        (Path(tmp) / "x" / "package").rename(target)  # atomic: a half-unpacked copy never appears
    return target


def export(notebook: Path, out_dir: Path) -> Path:
    import nbformat
    from nbconvert import SlidesExporter

    exporter = SlidesExporter(
        reveal_url_prefix="vendor/reveal.js",
        require_js_url="vendor/requirejs/require.js",
        mathjax_url="vendor/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
        jquery_url="vendor/jquery/dist/jquery.min.js",
    )
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    target = out_dir / f"{notebook.stem}.slides.html"
    target.write_text(body, encoding="utf-8")
    return target


def remote_loads(html: str) -> list[str]:
    """Scripts and stylesheets that a page would fetch from the network."""
    return re.findall(r'<(?:script|link)[^>]+(?:src|href)="(https?://[^"]+)"', html)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lessons", nargs="*", help="lesson numbers (default: all)")
    parser.add_argument("--out", type=Path, default=ROOT / "slides")
    parser.add_argument("--check", action="store_true", help="fail if a page loads anything remote")
    args = parser.parse_args(argv)

    paths = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.lessons:
        paths = [p for p in paths if p.name[:2] in {n.zfill(2) for n in args.lessons}]
    vendor_out = args.out / "vendor"
    vendor_out.mkdir(parents=True, exist_ok=True)
    for name, spec in VENDOR.items():
        if not (vendor_out / name).exists():
            shutil.copytree(fetch(name, spec), vendor_out / name)
    bad = 0
    for path in paths:
        target = export(path, args.out)
        remote = remote_loads(target.read_text(encoding="utf-8"))
        print(f"{target.relative_to(ROOT) if target.is_relative_to(ROOT) else target}"
              f"{'' if not remote else f'  loads remote: {remote}'}")
        bad += bool(remote)
    return 1 if (args.check and bad) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
