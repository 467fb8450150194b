"""Course-wide settings: quick mode, offline mode, device, seeding, cache and asset paths.

Every lesson starts with::

    from textft_lib import config
    device = config.setup(seed=0)   # seeds everything, prints device and versions

Environment variables (all optional) are listed with their meaning in ``SETTINGS``;
``check_settings()`` says what is wrong with their values (``python3 course.py`` runs it
before anything else, and ``python3 course.py --help`` prints the list).

This module imports no heavy package at import time; torch is imported inside the
functions that need it.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import random
import sys
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}

#: The packages whose versions ``setup()`` prints.
COURSE_PACKAGES = (
    "torch", "transformers", "tokenizers", "triton", "gensim", "nltk",
    "numpy", "sklearn", "matplotlib",
)


#: Every setting of the course: its environment variable and its meaning. The one list
#: that ``course.py --help``, the README and ``check_settings`` go by.
SETTINGS: dict[str, str] = {
    "TEXTFT_QUICK": "1 = quick mode: every lesson shrinks its sizes, same code paths (the test run sets it)",
    "TEXTFT_OFFLINE": "1 = never touch the network; cells that need it say what they would show (the test run sets it)",
    "TEXTFT_DEVICE": "force a device: cpu, cuda, cuda:N or mps (default: CUDA, then Apple MPS, then CPU)",
    "TEXTFT_CACHE_DIR": "where downloads and trained checkpoints go (default: ~/.cache/textft)",
    "TEXTFT_DATA_DIR": "a folder of local dataset copies in their standard layout (sst2/, ag_news/, glove/)",
    "TEXTFT_KERNEL_CONFIG": "GPU only: 'fixed' = one tile configuration per Triton kernel, no autotuning "
                            "(scripts/gpu_check.sh); default 'autotune'",
    "TEXTFT_TORCH_INDEX": "set-up only: the pip index URL to install torch from, or 'default' for pip's own choice "
                          "(default: PyTorch's CPU build on a machine without an NVIDIA GPU)",
}


def _flag_problem(name: str, raw: str) -> str | None:
    if raw.strip().lower() in _TRUE | _FALSE:
        return None
    return f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off"


def _device_problem(raw: str) -> str | None:
    wanted = raw.strip().lower()
    kind, _, index = wanted.partition(":")
    if not wanted or (kind in {"cpu", "mps"} and not index) or (kind == "cuda" and (not index or index.isdigit())):
        return None
    return f"unknown device {wanted!r}: use cpu, cuda, cuda:N or mps"


def check_settings(environ: dict[str, str] | None = None) -> list[str]:
    """What is wrong with the ``TEXTFT_*`` settings in ``environ`` (default: ``os.environ``):
    one line per problem, an empty list when all is well. Needs only the standard library.

    Example::

        >>> check_settings({"TEXTFT_QUICK": "maybe"})
        ["TEXTFT_QUICK='maybe' is not a boolean: use 1/0, true/false, yes/no or on/off"]
    """
    env = os.environ if environ is None else environ
    found = []
    for name in ("TEXTFT_QUICK", "TEXTFT_OFFLINE"):
        problem = _flag_problem(name, env.get(name, ""))
        if problem:
            found.append(problem)
    problem = _device_problem(env.get("TEXTFT_DEVICE", ""))
    if problem:
        found.append(f"TEXTFT_DEVICE: {problem}")
    data = env.get("TEXTFT_DATA_DIR", "")
    if data and not Path(data).expanduser().is_dir():
        found.append(f"TEXTFT_DATA_DIR={data!r} is not a folder")
    cache = env.get("TEXTFT_CACHE_DIR", "")
    if cache and Path(cache).expanduser().exists() and not Path(cache).expanduser().is_dir():
        found.append(f"TEXTFT_CACHE_DIR={cache!r} is a file, not a folder")
    index = env.get("TEXTFT_TORCH_INDEX", "")
    if index and index != "default" and not index.startswith(("https://", "http://", "file://")):
        found.append(f"TEXTFT_TORCH_INDEX={index!r} is neither 'default' nor an http(s):// or file:// URL")
    unknown = sorted(k for k in env if k.startswith("TEXTFT_") and k not in SETTINGS)
    found += [f"{k} is not a setting of the course (known: {', '.join(SETTINGS)})" for k in unknown]
    return found


def _flag(name: str) -> bool:
    """Read a boolean environment variable; reject values that are neither true nor false."""
    raw = os.environ.get(name, "")
    problem = _flag_problem(name, raw)
    if problem:
        raise ValueError(problem)
    return raw.strip().lower() in _TRUE


def is_quick() -> bool:
    """True when ``TEXTFT_QUICK`` is set: lessons use small sizes (same code paths)."""
    return _flag("TEXTFT_QUICK")


def is_offline() -> bool:
    """True when ``TEXTFT_OFFLINE`` is set: no function in the course touches the network."""
    return _flag("TEXTFT_OFFLINE")


def pick(full: T, quick: T) -> T:
    """Return ``quick`` in quick mode and ``full`` otherwise.

    Example::

        EPOCHS = config.pick(full=20, quick=2)
    """
    return quick if is_quick() else full


def repo_root() -> Path:
    """The folder that holds ``textft_lib/`` (the course checkout)."""
    return Path(__file__).resolve().parent.parent


def assets_dir(*parts: str) -> Path:
    """``assets/`` of the checkout (figures and benchmark JSON), created if missing."""
    path = repo_root().joinpath("assets", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_dir(*parts: str) -> Path:
    """The course cache (downloads, trained checkpoints), created if missing.

    ``TEXTFT_CACHE_DIR`` overrides the default ``$XDG_CACHE_HOME/textft`` (or
    ``~/.cache/textft``). Extra ``parts`` name a sub-folder.
    """
    root = os.environ.get("TEXTFT_CACHE_DIR")
    if root:
        base = Path(root).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "textft"
    path = base.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir() -> Path | None:
    """The folder named by ``TEXTFT_DATA_DIR``, or None when it is not set.

    Raises ``FileNotFoundError`` when the variable names a folder that does not exist,
    so a typo is not mistaken for "no local data".
    """
    root = os.environ.get("TEXTFT_DATA_DIR")
    if not root:
        return None
    path = Path(root).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"TEXTFT_DATA_DIR={root!r} is not a folder")
    return path


def get_device(prefer: str | None = None) -> Any:
    """Pick the device: ``TEXTFT_DEVICE`` (or ``prefer``), else CUDA, then Apple MPS, then CPU.

    Returns a ``torch.device``. Asking for a device that is not there raises an error
    that says what is available.
    """
    import torch

    wanted = (prefer or os.environ.get("TEXTFT_DEVICE", "")).strip().lower()
    if wanted:
        problem = _device_problem(wanted)
        if problem:
            raise ValueError(problem)
        kind = wanted.split(":")[0]
        if kind == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {wanted!r} was asked for, but CUDA is not available here")
        if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise RuntimeError(f"device {wanted!r} was asked for, but Apple MPS is not available here")
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def amp_dtype(device: Any) -> Any | None:
    """The mixed-precision dtype for ``device``: bf16 where the GPU supports it, else fp16
    on CUDA (the Colab T4), and None (full fp32) on CPU and MPS."""
    import torch

    if getattr(device, "type", str(device)) != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU and all GPUs)."""
    random.seed(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import numpy as np

        np.random.seed(seed)
    except ImportError:
        pass
    try:
        import torch

        torch.manual_seed(seed)  # also seeds every CUDA device
    except ImportError:
        pass


#: The distribution that installs each of ``COURSE_PACKAGES`` where its name differs.
_DISTRIBUTIONS = {"sklearn": "scikit-learn"}


def versions(*extra: str) -> dict[str, str]:
    """Installed versions of the course's packages and of ``extra`` ones (``"missing"`` when
    absent), read from the installed metadata: nothing is imported, so this is quick and
    works where a package is installed but cannot import (no GPU for a CUDA build)."""
    out = {"python": platform.python_version()}
    for name in (*COURSE_PACKAGES, *extra):
        try:
            out[name] = importlib.metadata.version(_DISTRIBUTIONS.get(name, name))
        except importlib.metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def benchmark_path(name: str, *, quick: bool, out: str | Path | None = None) -> Path:
    """Where a benchmark writes ``<name>.json``: ``out`` when given, else the committed
    ``assets/benchmarks/`` at full size, and the course cache for a quick smoke run, which so
    never overwrites the committed result. Example: ``benchmark_path("gpt_training", quick=True)``."""
    if out is not None:
        return Path(out)
    return (cache_dir("benchmarks") if quick else assets_dir("benchmarks")) / f"{name}.json"


def write_benchmark(report: dict[str, Any], path: str | Path) -> Path:
    """Write a benchmark's result as JSON at ``path``, stamped with the UTC time and the
    package versions (``"date"`` and ``"versions"``, ahead of the report's own keys).

    Example::

        config.write_benchmark({"benchmark": "demo", "results": rows},
                               config.assets_dir("benchmarks") / "demo.json")
    """
    import datetime as dt
    import json

    record = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "versions": versions(),
              **report}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return path


def describe_device(device: Any) -> str:
    """One line naming the device, e.g. ``cuda (NVIDIA T4, sm_75, fp16 autocast)``."""
    import torch

    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        major, minor = torch.cuda.get_device_capability(idx)
        amp = amp_dtype(device)
        amp_name = {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(amp, "fp32")
        return f"cuda ({torch.cuda.get_device_name(idx)}, sm_{major}{minor}, {amp_name} autocast)"
    if device.type == "mps":
        return "mps (Apple GPU)"
    return f"cpu ({os.cpu_count()} cores, {torch.get_num_threads()} torch threads)"


def setup(seed: int = 0, *, verbose: bool = True) -> Any:
    """Seed every generator, choose the device and print what the lesson runs on.

    Returns the ``torch.device``. Example::

        device = config.setup(seed=0)
        # textft | device: cpu (2 cores, 2 torch threads) | quick mode: on | offline: on
        # python 3.11.7 | torch 2.13.0 | transformers 5.23.0 | ...
    """
    seed_everything(seed)
    device = get_device()
    if verbose:
        modes = f"quick mode: {'on' if is_quick() else 'off'} | offline: {'on' if is_offline() else 'off'}"
        print(f"textft | device: {describe_device(device)} | seed: {seed} | {modes}")
        print(" | ".join(f"{k} {v}" for k, v in versions().items()))
    return device


def in_colab() -> bool:
    """True inside Google Colab."""
    return "google.colab" in sys.modules
