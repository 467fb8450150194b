"""Pretraining: ``PretrainConfig`` (every choice of a run), ``prepare_data`` (tokenizer and
blocks), ``new_model``, ``pretrain`` (on ``textft_lib.train.fit``) and ``course_bert()``, the
cached pretrained model that appendix A1 fine-tunes.

Example::

    s = lesson_settings()
    data = prepare_data(s)
    model = new_model(s, data)
    history = pretrain(model, data, s)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from textft_lib import cache, config, corpus, train, wordpiece
from textft_lib.corpus import CORPORA
from textft_lib.bert.convert import check_tokenizer, save_pretrained
from textft_lib.bert.head_start import init_offset_heads, init_output_bias
from textft_lib.bert.mlm import MLMCollator, evaluate_mlm, make_blocks, unigram_baseline, unigram_log_probs
from textft_lib.bert.model import BertConfig, BertForMLM


@dataclass(frozen=True)
class PretrainConfig:
    """Every choice of a pretraining run: corpus, tokenizer, model sizes, optimisation, start.

    ``corpus`` is one of ``corpus.CORPORA`` (``"wiki_sample"``, ``"offline_mix"``,
    ``"wikitext103"``); ``max_words`` takes a seeded subset of its documents up to that many
    words and ``limit_documents`` its first documents (both ``None``: all of it).

    ``mlm_probability`` is the share of real tokens chosen for training (BERT's 15%; the
    held-out loss is always measured at 15%, so runs with other rates stay comparable).
    ``init`` is the starting point: ``"bert"`` is BERT's random start (N(0, 0.02) weights);
    ``"offset_heads"`` adds ``init_offset_heads`` and ``init_output_bias``, appendix A2's head
    start, the course's own device for leaving the plateau on a CPU budget (``new_model``).

    ``LESSON_FULL`` and ``LESSON_QUICK`` are lesson 06's two sizes, ``lesson_settings()`` picks
    one by quick mode; ``HEAD_START_*`` and ``head_start_settings()`` are appendix A2's.
    ``model_config(vocab_size)`` gives the ``BertConfig``.
    """

    corpus: str = "wiki_sample"
    max_words: int | None = None
    limit_documents: int | None = None
    vocab_size: int = 8000
    held_out_fraction: float = 0.1
    block_size: int = 128
    hidden_size: int = 128
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    intermediate_size: int = 512
    dropout: float = 0.0
    batch_size: int = 32
    mlm_probability: float = 0.15
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_fraction: float = 0.06
    max_steps: int = 3000
    eval_every: int = 250
    max_eval_blocks: int = 512
    seed: int = 0
    init: str = "bert"

    def __post_init__(self) -> None:
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.corpus not in CORPORA:
            raise ValueError(f"corpus must be one of {CORPORA}, got {self.corpus!r}")
        if self.block_size < 3:
            raise ValueError(f"block_size must be at least 3, got {self.block_size}")
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1), got {self.mlm_probability}")
        for name in ("batch_size", "max_steps", "eval_every", "max_eval_blocks"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")

    def model_config(self, vocab_size: int | None = None) -> BertConfig:
        return BertConfig(vocab_size=vocab_size or self.vocab_size, hidden_size=self.hidden_size,
                          num_hidden_layers=self.num_hidden_layers, num_attention_heads=self.num_attention_heads,
                          intermediate_size=self.intermediate_size, max_position_embeddings=self.block_size,
                          hidden_dropout_prob=self.dropout)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


#: The starting points ``PretrainConfig.init`` accepts (see ``new_model``).
INITS = ("bert", "offset_heads")
#: Lesson 06 at full size: BERT's recipe on the offline mix (about 8 minutes of training on an
#: idle 2-core CPU).
LESSON_FULL = PretrainConfig(corpus="offline_mix")
#: Lesson 06 in quick mode: a smoke run of a few seconds on a small model.
LESSON_QUICK = PretrainConfig(vocab_size=2000, limit_documents=24, block_size=64, hidden_size=32,
                              num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                              batch_size=16, lr=2e-3, max_steps=40, eval_every=20, max_eval_blocks=32)
#: Appendix A2's model: the Wikipedia sample from the head start (``init="offset_heads"``),
#: the course BERT that appendix A1 fine-tunes.
HEAD_START_FULL = PretrainConfig(corpus="wiki_sample", eval_every=150, max_eval_blocks=256, init="offset_heads")
HEAD_START_QUICK = replace(LESSON_QUICK, corpus="wiki_sample", init="offset_heads")


#: Lesson 06 at full size on a GPU: the same model and recipe for eight times the steps.
LESSON_GPU = replace(LESSON_FULL, max_steps=24_000, eval_every=1000)


def lesson_settings(device: Any = "cpu") -> PretrainConfig:
    """``LESSON_QUICK`` in quick mode (``TEXTFT_QUICK=1``), else ``LESSON_FULL``, or on a CUDA
    ``device`` ``LESSON_GPU`` (a GPU's budget: bf16 or fp16 autocast, eight times the steps)."""
    full = LESSON_GPU if torch.device(device).type == "cuda" else LESSON_FULL
    return config.pick(full=full, quick=LESSON_QUICK)


def head_start_settings() -> PretrainConfig:
    """``HEAD_START_QUICK`` in quick mode, else ``HEAD_START_FULL`` (appendices A1 and A2)."""
    return config.pick(full=HEAD_START_FULL, quick=HEAD_START_QUICK)


@dataclass
class PretrainData:
    """The tokenizer and the ``(N, block_size)`` blocks of the training and held-out articles."""

    tokenizer: Any
    train_blocks: Tensor
    held_out_blocks: Tensor


def training_texts(settings: PretrainConfig) -> tuple[list[str], list[str]]:
    """``(train_texts, held_out_texts)`` of ``settings.corpus``, split by whole document as the
    settings say (``corpus.training_split``): the texts ``prepare_data`` cuts into blocks."""
    return corpus.training_split(settings.corpus, held_out_fraction=settings.held_out_fraction, seed=settings.seed,
                                 max_words=settings.max_words, limit=settings.limit_documents)


def prepare_data(settings: PretrainConfig) -> PretrainData:
    """Split ``settings.corpus`` by document, train (or load) the WordPiece tokenizer on the
    training documents, and cut both splits into blocks. The blocks are cached next to the
    tokenizer (cutting ten million words takes about half a minute). The held-out blocks
    are capped at ``settings.max_eval_blocks`` (an evenly spaced subset) to keep evaluations
    short."""
    import io

    source = {"corpus": settings.corpus, "held_out_fraction": settings.held_out_fraction, "seed": settings.seed,
              "limit": settings.limit_documents, "max_words": settings.max_words}     # what the texts depend on
    tokenizer = wordpiece.course_tokenizer(settings.vocab_size, model_max_length=settings.block_size, **source)
    key = cache.key({**source, "vocab": sorted(tokenizer.get_vocab().items()), "block_size": settings.block_size,
                     "version": 1})
    path = config.cache_dir("bert") / f"blocks-{settings.corpus}-{key}.pt"
    if path.exists():
        stored = torch.load(path, weights_only=True)
        train_blocks, held = stored["train"], stored["held_out"]
    else:
        train_texts, held_texts = training_texts(settings)
        train_blocks, held = (make_blocks(t, tokenizer, settings.block_size) for t in (train_texts, held_texts))
        small = torch.int16 if len(tokenizer) <= torch.iinfo(torch.int16).max else torch.int32   # a quarter the disk
        buffer = io.BytesIO()
        torch.save({"train": train_blocks.to(small), "held_out": held.to(small)}, buffer)
        cache.atomic_write_bytes(path, buffer.getvalue())
    return PretrainData(tokenizer, train_blocks.long(), evenly_spaced(held.long(), settings.max_eval_blocks))


def evenly_spaced(blocks: Tensor, n: int) -> Tensor:
    """At most ``n`` rows of ``blocks (N, L)``, evenly spaced from the first to the last:
    a held-out set capped to keep evaluations short, still spread over the whole text."""
    if len(blocks) <= n:
        return blocks
    return blocks[torch.linspace(0, len(blocks) - 1, n).round().long()]


def new_model(settings: PretrainConfig, data: PretrainData) -> BertForMLM:
    """A fresh ``BertForMLM`` for ``settings``, sized to ``data.tokenizer`` and started as
    ``settings.init`` says: BERT's random start, or the head start (``init_offset_heads``,
    and the output bias at the training blocks' log-frequencies, ``init_output_bias``).
    Seed torch first for a reproducible start."""
    model = BertForMLM(settings.model_config(len(data.tokenizer)))
    if settings.init == "offset_heads":
        init_offset_heads(model)
        init_output_bias(model, unigram_log_probs(data.train_blocks, len(data.tokenizer),
                                                  data.tokenizer.all_special_ids))
    return model


def score_held_out(model: BertForMLM, data: PretrainData, *, seed: int = 0) -> dict[str, float]:
    """``model``'s held-out MLM loss and accuracy beside the unigram baseline's (frequencies of
    ``data.train_blocks``), on the same fixed held-out masks, and the loss's reduction below the
    unigram: the one number lesson 06's pretraining is judged by.

    Example::

        score_held_out(model, data)["loss_reduction_vs_unigram"]     # 0.122: 12.2% below
    """
    final = evaluate_mlm(model, data.held_out_blocks, MLMCollator(data.tokenizer), seed=seed)
    base = unigram_baseline(data.train_blocks, data.held_out_blocks, data.tokenizer, seed=seed)
    return {"held_out_loss": final["loss"], "held_out_loss_mask": final["loss_mask"],
            "held_out_accuracy": final["accuracy"], "unigram_loss": base["loss"], "unigram_accuracy": base["accuracy"],
            "loss_reduction_vs_unigram": 1 - final["loss"] / base["loss"], "masked_tokens": final["masked_tokens"]}


def mlm_loss_fn(model: BertForMLM, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
    """``train.fit``'s loss function for MLM: the loss at the masked positions, and the
    accuracy of the top guess there."""
    loss, logits, targets = model.mlm_loss(batch["input_ids"], batch["labels"], batch["attention_mask"])
    return loss, {"accuracy": float((logits.argmax(-1) == targets).float().mean())}


class MLMObjective(nn.Module):
    """``BertForMLM`` whose ``forward`` returns ``mlm_loss``'s ``(loss, logits, targets)``.
    ``DistributedDataParallel`` synchronises gradients only for work done inside the
    wrapped module's ``forward``, so several processes wrap this, not the model."""

    def __init__(self, model: BertForMLM) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: Tensor, labels: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return self.model.mlm_loss(input_ids, labels, attention_mask)


def pretrain(model: BertForMLM, data: PretrainData, settings: PretrainConfig, *, device: Any = None,
             progress: bool = True, verbose: bool = True, cache: str | None = "bert_mlm",
             retrain: bool = False, shard: tuple[int, int] = (0, 1),
             wrap: Callable[[nn.Module], nn.Module] | None = None) -> Any:
    """Pretrain ``model`` with masked-language modelling on ``data``; return ``train.fit``'s ``History``.

    AdamW with linear warm-up and decay over ``settings.max_steps`` steps; fresh masks
    for every batch (dynamic masking); the held-out loss and accuracy measured every
    ``settings.eval_every`` steps on fixed masks (``evaluate_mlm``). With ``cache`` the
    trained weights are stored under the course cache and a second call with the same
    settings loads them instantly.

    Several processes (``scripts/pretrain_bert.py``): ``shard=(rank, world)`` trains on
    blocks ``rank, rank + world, ...`` with masks of its own, and ``wrap`` wraps the
    ``MLMObjective`` (in ``DistributedDataParallel``, say); pass ``cache=None`` then.

    Example::

        s = lesson_settings()
        data = prepare_data(s)
        model = new_model(s, data)
        history = pretrain(model, data, s)
        history.series("val_loss")
    """
    from torch.utils.data import DataLoader

    rank, world = shard
    if not (isinstance(world, int) and isinstance(rank, int) and world >= 1 and 0 <= rank < world):
        raise ValueError(f"shard must be (rank, world) with 0 <= rank < world, got {shard!r}")
    if wrap is not None and cache is not None:
        raise ValueError("a wrapped (distributed) run cannot use the cache: pass cache=None")
    check_tokenizer(model, data.tokenizer)
    if data.train_blocks.shape[1] > model.config.max_position_embeddings:
        raise ValueError(f"blocks of {data.train_blocks.shape[1]} tokens exceed the model's "
                         f"max_position_embeddings={model.config.max_position_embeddings}")
    blocks = data.train_blocks[rank::world]
    loader = DataLoader(list(blocks), batch_size=settings.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(settings.seed + rank),
                        collate_fn=MLMCollator(data.tokenizer, mlm_probability=settings.mlm_probability,
                                               seed=settings.seed + rank))
    if len(loader) == 0:
        raise ValueError(f"{len(blocks)} training blocks are fewer than one batch of {settings.batch_size}")
    eval_collator = MLMCollator(data.tokenizer)
    device = device if device is not None else next(model.parameters()).device
    trained = model if wrap is None else wrap(MLMObjective(model.to(device)))
    optimizer = torch.optim.AdamW(trained.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    warmup = max(1, round(settings.warmup_fraction * settings.max_steps))
    scheduler = train.warmup_decay_schedule(optimizer, warmup, settings.max_steps, kind="linear")
    return train.fit(
        trained, loader, loss_fn=mlm_loss_fn if wrap is None else objective_loss_fn, optimizer=optimizer,
        scheduler=scheduler, epochs=None, max_steps=settings.max_steps, val_loader=data.held_out_blocks,
        evaluate_fn=lambda _m, held: evaluate_mlm(model, held, eval_collator, seed=settings.seed),
        eval_every=settings.eval_every, restore_best=False, device=device, progress=progress,
        verbose=verbose, cache=cache, settings={"pretrain": settings.as_dict(), "tokenizer_size": len(data.tokenizer)},
        retrain=retrain)


def objective_loss_fn(objective: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
    """``mlm_loss_fn`` for a (wrapped) ``MLMObjective``."""
    loss, logits, targets = objective(batch["input_ids"], batch["labels"], batch["attention_mask"])
    return loss, {"accuracy": float((logits.argmax(-1) == targets).float().mean())}


def course_bert(settings: PretrainConfig | None = None, *, device: Any = None, progress: bool = True,
                verbose: bool = True) -> Path:
    """The folder of the course's pretrained BERT, in ``save_pretrained`` format.

    Taken from the cache when a model with the same settings is there; otherwise
    pretrained with lesson 06's settings (``lesson_settings(device)``: full size, a GPU's
    budget on CUDA, or the quick size when ``TEXTFT_QUICK=1``) and saved. The folder holds ``config.json``,
    ``model.safetensors``, the tokenizer files, and ``pretraining.json`` (the settings and
    the training history).

    Example::

        folder = course_bert()
        model, tokenizer = load_pretrained(folder)             # ours
        hf = transformers.AutoModelForMaskedLM.from_pretrained(folder)   # or transformers'
    """
    if device is None:
        device = config.get_device()
    settings = settings or lesson_settings(device)
    folder = config.cache_dir("bert") / f"course-bert-{cache.key(settings.as_dict())}"
    if (folder / "pretraining.json").exists():
        return folder
    data = prepare_data(settings)
    torch.manual_seed(settings.seed)
    model = new_model(settings, data)
    history = pretrain(model, data, settings, device=device, progress=progress, verbose=verbose)
    record = {"settings": settings.as_dict(), "history": history.to_dict()}
    cache.write_folder(folder, lambda tmp: save_pretrained(model.cpu(), data.tokenizer, tmp), record=record,
                       record_name="pretraining.json")
    return folder
