"""The course's cache, in one place: a key for settings, atomic files and atomic folders.

Everything the lessons train once and reuse (tokenizers, word vectors, checkpoints, BERT
models, adapted models, fine-tuned classifiers) is stored under ``config.cache_dir(kind)``
in a file or folder named after a hash of what it depends on::

    from textft_lib import cache, config
    name = f"glove-{cache.key(settings)}"                     # 12 hex digits of a sha256
    cache.atomic_write(path, lambda tmp: tmp.write_text("done"))
    cache.write_folder(folder, lambda tmp: model.save(tmp), record={"settings": settings})

Writes are atomic: a reader (another lesson, another process) sees the old file or folder
or the whole new one, never half of one. Standard library only; tensors and arrays are
hashed by their bytes when they are part of a key.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable


def json_default(value: Any) -> Any:
    """The ``default=`` of ``json.dumps`` for keys: a tensor or NumPy array becomes its dtype,
    shape and the sha256 of its bytes (``str()`` abbreviates arrays of more than 1000
    elements, so two different arrays would give the same key); anything else ``str()``."""
    if hasattr(value, "detach") and hasattr(value, "view"):                 # a torch tensor
        import torch

        value = value.detach().cpu().contiguous()
        data = value.reshape(-1).view(torch.uint8).numpy().tobytes()
    elif type(value).__module__ == "numpy" and type(value).__name__ == "ndarray":
        if value.dtype == object:
            return value.tolist()   # Python objects: JSON (and this function) handle each element
        import numpy as np

        data = np.ascontiguousarray(value).tobytes()
    else:
        return str(value)
    return {"dtype": str(value.dtype), "shape": list(value.shape), "sha256": hashlib.sha256(data).hexdigest()}


def key(*parts: Any, length: int = 12) -> str:
    """The first ``length`` hex digits of a sha256 over ``parts``, in order.

    Each part is raw ``bytes``, a model (anything with ``state_dict()``: its tensors by name),
    or anything JSON can write (``sort_keys=True``, tensors and arrays through
    ``json_default``), so equal settings give equal keys whatever their dict order.

    Example::

        >>> key({"dim": 100, "window": 10}) == key({"window": 10, "dim": 100})
        True
    """
    if not parts:
        raise ValueError("key() needs at least one part to hash")
    if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= 64:
        raise ValueError(f"length must be an int in [1, 64], got {length!r}")
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, (bytes, bytearray)):
            digest.update(part)
        elif hasattr(part, "state_dict"):
            import torch

            for name, tensor in sorted(part.state_dict().items()):
                digest.update(name.encode())
                digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            digest.update(json.dumps(part, sort_keys=True, default=json_default).encode())
    return digest.hexdigest()[:length]


def atomic_write(dest: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp)`` on a temporary file next to ``dest``, then rename it to ``dest``,
    so a reader sees either the old file or the whole new one, never half of it. If
    ``write`` fails, the temporary file is removed and ``dest`` is left as it was. The file
    gets the mode ``open()`` would give it (0666 less the umask).

    Example::

        atomic_write(path, lambda tmp: tmp.write_text("done"))
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)           # mkstemp's file is private: give it plain open()'s mode
        write(Path(tmp))
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def atomic_write_bytes(dest: Path, payload: bytes) -> Path:
    """Write ``payload`` to ``dest`` atomically (see ``atomic_write``), synced to disk."""
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())

    return atomic_write(dest, write)


def write_folder(folder: Path, write: Callable[[Path], None], *, record: dict[str, Any] | None = None,
                 record_name: str = "record.json") -> Path:
    """Call ``write(tmp)`` on a temporary sibling folder, write ``record`` (if given) into it
    as ``record_name`` last, then rename the folder to ``folder``.

    A crash half-way never leaves a half-written folder where a cache lookup would find it;
    an older folder of the same name is replaced. The old folder is renamed aside before the
    new one takes its place, so a reader finds a complete folder at every moment but for the
    instant between two renames. A folder holding its record is complete.

    Example::

        write_folder(folder, lambda tmp: bert.save_pretrained(model, tokenizer, tmp),
                     record={"settings": settings, "history": history}, record_name="pretraining.json")
    """
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".part"))
    old = None
    try:
        write(tmp)
        if record is not None:
            (tmp / record_name).write_text(json.dumps(record, indent=1, default=str))
        if folder.exists():
            old = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.", suffix=".old"))
            folder.replace(old / "previous")
        tmp.replace(folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return folder
