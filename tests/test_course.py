"""course.py, the learner's entry point: its command line, its messages and exit codes,
the settings check, the torch it picks on any machine (faked), and that the files which
state the Python range and the requirements agree."""

import importlib.util
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from textft_lib.config import SETTINGS, check_settings, repo_root

ROOT = repo_root()
spec = importlib.util.spec_from_file_location("course", ROOT / "course.py")
course = importlib.util.module_from_spec(spec)
sys.modules["course"] = course  # dataclasses look their module up there
spec.loader.exec_module(course)

REQ = "torch>=2.4,<3"


def cli(*args, env=None, timeout=60):
    """Run course.py with this Python (as a learner would with theirs)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTFT_")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, str(ROOT / "course.py"), *args], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=ROOT)


# ----------------------------------------------------------------------------- the command line


def test_help_lists_every_command_argument_and_setting():
    done = cli("--help")
    assert done.returncode == 0 and done.stderr == ""
    for name, (_, args, _) in course.COMMANDS.items():
        assert f"  {name} {args}".rstrip() in done.stdout
    for setting in SETTINGS:
        assert setting in done.stdout
    assert "full 05 06" in done.stdout and "tests/test_bpe.py" in done.stdout and "--no-browser" in done.stdout
    assert cli("-h").stdout == done.stdout


def test_unknown_command_is_one_line_and_a_failure():
    done = cli("nonsense")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "unknown command 'nonsense'" in done.stderr


def test_no_command_prints_the_usage_and_fails():
    done = cli()
    assert done.returncode == 2 and done.stdout.startswith("usage:")


@pytest.mark.parametrize("env, expected", [
    ({"TEXTFT_QUICK": "maybe"}, "TEXTFT_QUICK='maybe' is not a boolean"),
    ({"TEXTFT_OFFLINE": "2"}, "TEXTFT_OFFLINE='2' is not a boolean"),
    ({"TEXTFT_DEVICE": "tpu"}, "unknown device 'tpu'"),
    ({"TEXTFT_DATA_DIR": "/no/such/folder"}, "is not a folder"),
    ({"TEXTFT_QUIK": "1"}, "TEXTFT_QUIK is not a setting of the course"),
    ({"TEXTFT_TORCH_INDEX": "cpu"}, "neither 'default' nor an http(s)"),
])
def test_a_bad_setting_stops_everything_with_one_line(env, expected):
    done = cli("test", "tests/test_bpe.py", env=env)
    assert done.returncode == 2 and done.stdout == ""             # nothing ran: no "+ pip ..." line
    assert done.stderr.strip().count("\n") == 0 and expected in done.stderr
    assert "Traceback" not in done.stderr and "\x1b[" not in done.stderr


def test_check_settings_accepts_good_values(tmp_path):
    good = {"TEXTFT_QUICK": "yes", "TEXTFT_OFFLINE": "0", "TEXTFT_DEVICE": "cuda:1",
            "TEXTFT_DATA_DIR": str(tmp_path), "TEXTFT_CACHE_DIR": str(tmp_path / "new"),
            "TEXTFT_TORCH_INDEX": "default"}
    assert check_settings(good) == [] and check_settings({}) == []
    (tmp_path / "f").write_text("")
    assert "is a file" in check_settings({"TEXTFT_CACHE_DIR": str(tmp_path / "f")})[0]
    assert "unknown device" in check_settings({"TEXTFT_DEVICE": "cuda:x"})[0]


def test_setup_takes_no_arguments():
    done = cli("setup", "extra")
    assert done.returncode != 0 and "takes no arguments" in done.stderr


@pytest.mark.parametrize("extra, root, lesson, allow_root", [
    ([], False, True, False),
    ([], True, True, True),                                   # Colab, Docker, CI containers
    (["--no-browser", "--port", "8899"], True, True, True),   # a flag's value is not a path
    (["--no-browser", "--port=8899"], True, True, True),
    (["--allow-root"], True, True, True),
    (["notebooks/03_attention.ipynb"], False, False, False),
])
def test_lab_keeps_the_lesson_and_runs_as_root(extra, root, lesson, allow_root):
    cmd = course.lab_command(course.Path("py"), extra, is_root=root)
    assert cmd[:3] == ["py", "-m", "jupyterlab"] and cmd[3:3 + len(extra)] == extra
    assert (course.FIRST_LESSON in cmd) == lesson
    assert cmd.count("--allow-root") == (1 if allow_root else 0)


def test_ctrl_c_stops_cleanly(tmp_path):
    # A child that stops on Ctrl-C the way Jupyter does (a message, exit code 130), run by
    # course.py's own runner; the whole process group gets the SIGINT, as from a terminal.
    # Both processes restore Python's Ctrl-C handler first: a test run started in the background
    # (`cmd &` in a script) inherits SIGINT as ignored, which a terminal never passes on.
    child = ("import signal, sys, time\nsignal.signal(signal.SIGINT, signal.default_int_handler)\ntry:\n"
             "    print('sleeping', flush=True)\n    time.sleep(60)\nexcept KeyboardInterrupt:\n    sys.exit(130)\n")
    driver = tmp_path / "driver.py"
    driver.write_text(textwrap.dedent(f"""
        import importlib.util, signal, sys
        signal.signal(signal.SIGINT, signal.default_int_handler)
        spec = importlib.util.spec_from_file_location("course", {str(ROOT / "course.py")!r})
        course = sys.modules["course"] = importlib.util.module_from_spec(spec); spec.loader.exec_module(course)
        course.COMMANDS["lab"] = (lambda extra: course.run_child([sys.executable, "-c", {child!r}]), "", "")
        print("ready", flush=True)
        sys.exit(course.main(["lab"]))
    """))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TEXTFT_")}
    proc = subprocess.Popen([sys.executable, str(driver)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True, env=env)
    assert proc.stdout.readline().strip() == "ready"
    assert proc.stdout.readline().strip() == "sleeping"         # the child is in its sleep: a busy machine
    time.sleep(0.2)                                             # can take seconds to get there
    os.killpg(proc.pid, signal.SIGINT)
    try:
        out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("course.py did not stop after Ctrl-C") from None
    assert proc.returncode == 130
    assert "Traceback" not in err and "Stopped (Ctrl-C)." in err


# ----------------------------------------------------------------------------- which torch


def machine(**kw):
    """A faked machine: Linux, no GPU, no torch, nothing reachable, an index without CPU builds."""
    calls = []
    base = dict(system="Linux", gpu=None, installed=None, index_setting="",
                probe=lambda url: False, plan=lambda spec: [], versions=lambda: [])
    base.update(kw)
    plan = base["plan"]
    base["plan"] = lambda spec: calls.append(spec) or plan(spec)
    return course.Machine(**base), calls


CUDA_PLAN = ["torch==2.14.1", "nvidia-cublas==13.1", "cuda-bindings==13.5", "sympy==1.14"]


def test_gpu_machine_takes_the_default_build():
    m, calls = machine(gpu="GPU 0: NVIDIA H100")
    choice = course.choose_torch(m, REQ)
    assert choice.args is None and "NVIDIA H100" in choice.why and calls == []


def test_plain_machine_with_pytorch_cpu_index():
    seen = []
    m, _ = machine(probe=lambda url: seen.append(url) or True,
                   plan=lambda spec: ["torch==2.14.1+cpu", "sympy==1.14"] if course.TORCH_CPU_INDEX in spec else [])
    choice = course.choose_torch(m, REQ)
    assert choice.args == [REQ, "--index-url", course.TORCH_CPU_INDEX]
    assert "PyTorch's CPU index" in choice.why and "2.14.1+cpu" in choice.why
    assert seen == [course.TORCH_CPU_INDEX + "/torch/"]


def test_plain_machine_offline_takes_a_cpu_build_of_the_configured_index():
    # This machine: PyTorch's index unreachable, the configured index offers a CUDA 2.14.1
    # and a 2.13.0+cpu wheel.
    plans = {"torch==2.13.0+cpu": ["torch==2.13.0+cpu", "sympy==1.14"], REQ: CUDA_PLAN}
    m, calls = machine(versions=lambda: ["2.15.0", "3.0.0", "2.14.1", "2.13.0+cpu", "2.13.0", "2.3.1"],
                       plan=lambda spec: plans.get(spec[0], CUDA_PLAN))
    choice = course.choose_torch(m, REQ)
    assert choice.args == ["torch==2.13.0+cpu"] and "configured index" in choice.why
    assert calls == [["torch==2.13.0+cpu"]]


def test_plain_machine_never_gets_a_cuda_build():
    # No +cpu wheel: the requirement pulls CUDA, so older versions are tried; none is clean.
    m, calls = machine(versions=lambda: ["2.14.1", "2.14.0", "2.13.0"], plan=lambda spec: CUDA_PLAN)
    with pytest.raises(SystemExit, match="TEXTFT_TORCH_INDEX=default"):
        course.choose_torch(m, REQ)
    assert calls[0] == [REQ] and len(calls) <= 6


def test_an_older_clean_build_is_taken_when_the_newest_pulls_cuda():
    m, _ = machine(versions=lambda: ["2.14.1", "2.9.1"],
                   plan=lambda spec: ["torch==2.9.1"] if spec == ["torch==2.9.1"] else CUDA_PLAN)
    assert course.choose_torch(m, REQ).args == ["torch==2.9.1"]


def test_kept_torch_macos_and_the_setting():
    assert course.choose_torch(machine(installed="2.13.0+cpu")[0], REQ).args is None
    out_of_range = course.choose_torch(machine(installed="2.1.0", probe=lambda url: True,
                                               plan=lambda spec: ["torch==2.14.1+cpu"])[0], REQ)
    assert out_of_range.args[0] == REQ                         # replaced by one in range
    assert course.choose_torch(machine(system="Darwin")[0], REQ).args is None
    assert course.choose_torch(machine(index_setting="default")[0], REQ).args is None
    rocm = "https://example.org/rocm"
    assert course.choose_torch(machine(index_setting=rocm)[0], REQ).args == [REQ, "--index-url", rocm]


def test_pulls_cuda():
    assert course.pulls_cuda(CUDA_PLAN) and course.pulls_cuda(["cuda-toolkit==13.0"])
    assert not course.pulls_cuda(["torch==2.13.0+cpu", "sympy==1.14", "nvidiax==1"])


def test_the_probe_never_hangs(monkeypatch):
    monkeypatch.setattr(course.urllib.request, "urlopen", lambda *a, **k: time.sleep(30))
    start = time.perf_counter()
    assert course.reachable("https://example.invalid/", timeout=0.5) is False
    assert time.perf_counter() - start < 5


def test_torch_requirement_is_read_from_requirements():
    assert course.torch_requirement() == REQ
    assert course.requirement_bounds(REQ) == ((2, 4), (3,))
    assert course.in_range("2.13.0+cpu", (2, 4), (3,)) and not course.in_range("3.0.0", (2, 4), (3,))


# ----------------------------------------------------------------------------- files that must agree


def test_python_range_agrees_everywhere():
    low, high = course.PYTHON_MIN, course.PYTHON_MAX
    yml = (ROOT / "environment.yml").read_text()
    assert f"python>={low[0]}.{low[1]},<{high[0]}.{high[1]}" in yml
    assert f'requires-python = ">={low[0]}.{low[1]},<{high[0]}.{high[1]}"' in (ROOT / "pyproject.toml").read_text()
    readme = (ROOT / "README.md").read_text()
    assert f"Python {low[0]}.{low[1]} to {high[0]}.{high[1] - 1}" in readme


def requirement_lines():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_requirements_and_pyproject_agree():
    text = (ROOT / "pyproject.toml").read_text()
    block = re.search(r"^course = \[(.*?)^\]", text, re.M | re.S).group(1)
    course_extra = [line.strip().rstrip(",")[1:-1] for line in block.splitlines() if line.strip().startswith('"')]
    same_quotes = lambda r: r.replace("'", '"')  # noqa: E731
    reqs = [same_quotes(r) for r in requirement_lines()]
    missing = [e for e in course_extra if same_quotes(e) not in reqs]
    assert course_extra and missing == [], f"in pyproject.toml's course extra but not in requirements.txt: {missing}"
    assert any(r.startswith("datasets") for r in reqs)          # data.load('sst2') online needs it


def test_readme_names_current_commands():
    readme = (ROOT / "README.md").read_text()
    assert "huggingface-cli" not in readme and "hf download" in readme
    assert "python3 course.py --help" in readme
