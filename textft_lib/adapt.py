"""Domain-adaptive pretraining: more masked-language modelling, on the task's own unlabelled text.

The course BERT learned its words from news, newsgroups and encyclopedia text (lesson 06; the
head-start model of appendix A2 from half a million words of Wikipedia). A sentiment task
speaks another language ("a clever , funny comedy"), and its 4,000 labelled sentences are
too few to teach it. Unlabelled sentences of the task's kind are cheap, so before
fine-tuning we continue the MLM pretraining on them (Gururangan et al., 2020, "Don't Stop
Pretraining"): same model, same loss, new text; the labels are never read.

    folder = bert.course_bert()
    adapted = adapt.adapt_pretraining(folder, unlabelled_texts)      # adapt.ADAPT's settings; cached
    clf, tok = classify.BertClassifier.from_pretrained(adapted, num_classes=2, pooling="mean")

The short texts are packed end to end into full blocks (``bert.pack_blocks``), a held-out
share of them measures the MLM loss before and after, and the result is saved in
``save_pretrained`` format with ``adaptation.json`` (settings and losses) beside it.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Sequence

import torch

from textft_lib import bert, cache, config, train
from textft_lib.checks import check_int, check_number
from textft_lib.train import TrainConfig


#: The default adaptation run (a ``train.TrainConfig``): ``max_steps`` batches of ``batch_size``
#: packed blocks at peak learning rate ``lr``, linear warm-up and decay. Too many steps on
#: little text overfit: lesson 07's 140 sentences (32 blocks) do best with about 40.
ADAPT = TrainConfig(lr=1e-3, batch_size=32, max_steps=2000, eval_every=500)


def split_texts(texts: Sequence[str], held_out_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Shuffle the distinct non-blank ``texts`` with ``seed`` and split off ``held_out_fraction``
    (at least one text) for evaluation. Returns ``(train_texts, held_out_texts)``."""
    if isinstance(texts, str):
        raise TypeError("texts must be a list of strings, not one string")
    unique = sorted({t.strip() for t in texts if isinstance(t, str) and t.strip()})
    if len(unique) < 2:
        raise ValueError(f"domain adaptation needs at least 2 distinct non-blank texts, got {len(unique)}")
    random.Random(seed).shuffle(unique)
    n_held = max(1, round(held_out_fraction * len(unique)))
    return unique[n_held:], unique[:n_held]


def prepare(texts: Sequence[str], tokenizer: Any, block_size: int, *, batch_size: int, held_out_fraction: float,
            max_eval_blocks: int, seed: int = 0) -> bert.PretrainData:
    """Split ``texts``, pack both parts into ``(N, block_size)`` blocks, cap the held-out ones."""
    train_texts, held_texts = split_texts(texts, held_out_fraction, seed)
    train_blocks = bert.pack_blocks(train_texts, tokenizer, block_size)
    held = bert.pack_blocks(held_texts, tokenizer, block_size)
    if len(train_blocks) < batch_size:
        raise ValueError(f"the texts fill {len(train_blocks)} training blocks of {block_size} tokens, fewer than "
                         f"one batch of {batch_size}: lower batch_size or give more text")
    return bert.PretrainData(tokenizer, train_blocks, bert.evenly_spaced(held, max_eval_blocks))


def adapt_pretraining(folder: str | Path, texts: Sequence[str], settings: TrainConfig = ADAPT, *,
                      held_out_fraction: float = 0.05, max_eval_blocks: int = 128, out: str | Path | None = None,
                      device: Any = None, progress: bool = True, verbose: bool = False) -> Path:
    """Continue MLM pretraining of the model in ``folder`` on the unlabelled ``texts``; return
    the folder of the adapted model (``save_pretrained`` format, loadable by ``bert``,
    ``classify`` and ``transformers``).

    ``settings`` is a ``train.TrainConfig`` with ``max_steps`` (default ``ADAPT``);
    ``held_out_fraction`` of the texts (at least one), chosen with ``settings.seed``, is kept
    out of training, and at most ``max_eval_blocks`` of its blocks measure the MLM loss on
    text the run did not see. Where the texts overlap (SST-2's training phrases are pieces of
    the same sentences) that loss is optimistic.

    The result is cached: by default under ``config.cache_dir("bert")``, keyed by the starting
    weights and tokenizer, the texts, the settings and (on a GPU) the mixed precision, so a second call
    returns at once. ``out`` names the folder instead. ``adaptation.json`` in it holds the settings and the held-out MLM loss
    before and after (``loss_before``, ``loss_after``) with the training history. Example::

        adapted = adapt_pretraining(folder, texts, dataclasses.replace(ADAPT, max_steps=40, batch_size=8))
    """
    folder = Path(folder)
    if not isinstance(settings, TrainConfig) or settings.max_steps is None:
        raise TypeError(f"settings must be a train.TrainConfig with max_steps, got {settings!r}")
    check_number(held_out_fraction, "held_out_fraction", low=0, high=1, low_open=True, high_open=True)
    check_int(max_eval_blocks, "max_eval_blocks", minimum=1)
    if not (folder / "model.safetensors").exists():
        raise FileNotFoundError(f"{folder} holds no model.safetensors: pass a folder written by save_pretrained")
    device = device if device is not None else config.get_device()
    run = {"train": settings.as_dict(), "held_out_fraction": held_out_fraction, "max_eval_blocks": max_eval_blocks}
    precision = train.resolve_amp("auto", torch.device(device))     # a GPU's mixed precision: another result
    if precision is not None:
        run["precision"] = str(precision)
    tokenizer_files = [(folder / name).read_bytes() for name in ("tokenizer.json", "vocab.txt")
                       if (folder / name).exists()]              # the texts' ids depend on them too
    key = cache.key((folder / "model.safetensors").read_bytes(), *tokenizer_files, list(texts), run)
    target = Path(out) if out is not None else config.cache_dir("bert") / f"adapted-{key}"
    if (target / "adaptation.json").exists():
        return target
    model, tokenizer = bert.load_pretrained(folder)
    data = prepare(texts, tokenizer, model.config.max_position_embeddings, batch_size=settings.batch_size,
                   held_out_fraction=held_out_fraction, max_eval_blocks=max_eval_blocks, seed=settings.seed)
    model.to(device)
    collator = bert.MLMCollator(tokenizer)
    before = bert.evaluate_mlm(model, data.held_out_blocks, collator, seed=settings.seed)
    history = bert.pretrain(model, data, settings, device=device, progress=progress, verbose=verbose, cache=None)
    after = bert.evaluate_mlm(model, data.held_out_blocks, collator, seed=settings.seed)
    record = {"source": str(folder), "settings": run, "texts": len(texts),
              "train_blocks": len(data.train_blocks), "held_out_blocks": len(data.held_out_blocks),
              "loss_before": before["loss"], "loss_after": after["loss"],
              "loss_mask_before": before["loss_mask"], "loss_mask_after": after["loss_mask"],
              "seconds": history.seconds, "history": history.to_dict()}

    return cache.write_folder(target, lambda tmp: bert.save_pretrained(model.cpu(), tokenizer, tmp), record=record,
                              record_name="adaptation.json")


def adaptation_record(folder: str | Path) -> dict[str, Any]:
    """The ``adaptation.json`` of an adapted folder (settings, losses before and after, history)."""
    path = Path(folder) / "adaptation.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {folder} was not written by adapt_pretraining")
    return json.loads(path.read_text())
