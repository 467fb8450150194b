"""textft_lib.config: modes, device choice, seeding, paths, and its bad inputs."""

import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from textft_lib import config


def test_quick_and_offline_flags(monkeypatch):
    monkeypatch.setenv("TEXTFT_QUICK", "1")
    monkeypatch.setenv("TEXTFT_OFFLINE", "yes")
    assert config.is_quick() and config.is_offline()
    assert config.pick(full=100, quick=3) == 3
    monkeypatch.setenv("TEXTFT_QUICK", "0")
    monkeypatch.delenv("TEXTFT_OFFLINE")
    assert not config.is_quick() and not config.is_offline()
    assert config.pick(full=100, quick=3) == 100


def test_bad_flag_value_is_an_error(monkeypatch):
    monkeypatch.setenv("TEXTFT_QUICK", "maybe")
    with pytest.raises(ValueError, match="TEXTFT_QUICK='maybe' is not a boolean"):
        config.is_quick()


def test_device_override_and_errors(monkeypatch):
    monkeypatch.setenv("TEXTFT_DEVICE", "cpu")
    assert config.get_device().type == "cpu"
    monkeypatch.setenv("TEXTFT_DEVICE", "tpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        config.get_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("TEXTFT_DEVICE", "cuda")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            config.get_device()


def test_default_device_prefers_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.delenv("TEXTFT_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert config.get_device().type == "cpu"
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert config.get_device().type == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert config.get_device().type == "cuda"


def test_amp_dtype_is_none_off_cuda():
    assert config.amp_dtype(torch.device("cpu")) is None


@pytest.mark.parametrize("bf16_supported, expected", [(False, torch.float16),   # a T4 (sm_75)
                                                     (True, torch.bfloat16)])   # sm_80 and newer
def test_amp_dtype_on_cuda_never_asks_a_t4_for_bf16(monkeypatch, bf16_supported, expected):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: bf16_supported)
    assert config.amp_dtype(torch.device("cuda")) is expected


def test_seed_everything_repeats():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    config.seed_everything(7)
    first = draw()
    config.seed_everything(7)
    assert draw() == first


def test_setup_prints_device_and_versions(capsys, monkeypatch):
    monkeypatch.setenv("TEXTFT_DEVICE", "cpu")
    device = config.setup(seed=1)
    out = capsys.readouterr().out
    assert device.type == "cpu"
    assert "device: cpu" in out and "torch " + torch.__version__ in out


def test_cache_dir_override(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path / "c"))
    path = config.cache_dir("sub")
    assert path == tmp_path / "c" / "sub" and path.is_dir()


def test_data_dir(monkeypatch, tmp_path):
    monkeypatch.delenv("TEXTFT_DATA_DIR", raising=False)
    assert config.data_dir() is None
    monkeypatch.setenv("TEXTFT_DATA_DIR", str(tmp_path))
    assert config.data_dir() == tmp_path
    monkeypatch.setenv("TEXTFT_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="is not a folder"):
        config.data_dir()


def test_package_import_is_light():
    code = "import sys, textft_lib, textft_lib.config, textft_lib.data; print(sorted(m for m in ('torch', 'transformers', 'gensim', 'triton', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_write_benchmark_stamps_date_and_versions(tmp_path):
    import json

    path = config.write_benchmark({"benchmark": "demo", "results": [1, 2]}, tmp_path / "sub" / "demo.json")
    record = json.loads(path.read_text())
    assert record["benchmark"] == "demo" and record["results"] == [1, 2]
    assert record["date"][:4].isdigit() and record["versions"]["torch"] == torch.__version__


def test_benchmark_path_keeps_quick_runs_out_of_the_committed_results(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path))
    assert config.benchmark_path("demo", quick=False) == config.assets_dir("benchmarks") / "demo.json"
    assert config.benchmark_path("demo", quick=True) == tmp_path / "benchmarks" / "demo.json"
    assert config.benchmark_path("demo", quick=True, out=tmp_path / "x.json") == tmp_path / "x.json"
