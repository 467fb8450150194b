"""textft_lib.cache: one key for settings, atomic files and folders."""

import hashlib
import json
import os

import numpy as np
import pytest
import torch

from textft_lib import cache


def test_key_ignores_dict_order_and_keeps_the_old_names():
    a = {"dim": 100, "window": 10, "sample": None}
    assert cache.key(a) == cache.key(dict(reversed(list(a.items()))))
    # the formula every cache used before, so that existing cache entries keep their names
    assert cache.key(a) == hashlib.sha256(json.dumps(a, sort_keys=True).encode()).hexdigest()[:12]
    assert len(cache.key(a, length=16)) == 16 and cache.key(a) != cache.key({**a, "dim": 50})


def test_key_hashes_bytes_tensors_arrays_and_models():
    t = torch.arange(2000.0)
    assert cache.key(t) != cache.key(t + 1)                      # str() would abbreviate both alike
    assert cache.key(np.arange(2000)) != cache.key(np.arange(1, 2001))
    assert cache.key(b"abc", [1, 2]) != cache.key(b"abd", [1, 2])
    m = torch.nn.Linear(3, 2)
    before = cache.key(m)
    with torch.no_grad():
        m.weight.add_(1)
    assert cache.key(m) != before
    with pytest.raises(ValueError, match="at least one part"):
        cache.key()


def test_write_folder_is_all_or_nothing(tmp_path):
    folder = tmp_path / "model-abc"
    cache.write_folder(folder, lambda tmp: (tmp / "weights.bin").write_bytes(b"1"), record={"loss": 0.5},
                       record_name="run.json")
    assert json.loads((folder / "run.json").read_text()) == {"loss": 0.5}

    def fail(tmp):
        (tmp / "weights.bin").write_bytes(b"2")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        cache.write_folder(folder, fail)
    assert (folder / "weights.bin").read_bytes() == b"1"          # the old folder, whole
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-abc"]   # nothing half-written left


def test_atomic_write_gives_the_usual_mode(tmp_path):
    path = cache.atomic_write(tmp_path / "x.txt", lambda tmp: tmp.write_text("done"))
    umask = os.umask(0)
    os.umask(umask)
    assert path.read_text() == "done" and (path.stat().st_mode & 0o777) == 0o666 & ~umask
