"""Pretraining: ``PretrainConfig`` (every choice of a run: the data's, the model's and the
training's settings), ``prepare_data`` (tokenizer and blocks), ``new_model``, ``pretrain``
(on ``textft_lib.train.fit``) and ``course_bert()``, the cached pretrained model that
lesson 07 and appendix A1 fine-tune.

Example::

    s = lesson_settings()
    data = prepare_data(s)
    model = new_model(s, data)
    history = pretrain(model, data, s.train, mlm_probability=s.data.mlm_probability)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn

from textft_lib import cache as _cache, config, corpus, train, wordpiece
from textft_lib.checks import check_int, check_number
from textft_lib.corpus import CORPORA
from textft_lib.bert.convert import check_tokenizer, save_pretrained
from textft_lib.bert.head_start import init_offset_heads, init_output_bias
from textft_lib.bert.mlm import MLMCollator, evaluate_mlm, make_blocks, unigram_baseline, unigram_log_probs
from textft_lib.bert.model import BertConfig, BertForMLM
from textft_lib.train import TrainConfig


@dataclass(frozen=True)
class MLMDataConfig:
    """The text of a pretraining run and how it is masked.

    ``corpus`` is one of ``corpus.CORPORA`` (``"wiki_sample"``, ``"offline_mix"``,
    ``"wikitext103"``); ``max_words`` takes a seeded subset of its documents up to that many
    words and ``limit_documents`` its first documents (both ``None``: all of it);
    ``held_out_fraction`` of the documents, chosen with ``seed``, are held out, and at most
    ``max_eval_blocks`` of their blocks measure the loss. ``mlm_probability`` is the share of
    real tokens chosen for training (BERT's 15%; the held-out loss is always measured at 15%,
    so runs with other rates stay comparable). The tokenizer's size and the block length are
    the model's (``BertConfig.vocab_size``, ``max_position_embeddings``).
    """

    corpus: str = "wiki_sample"
    max_words: int | None = None
    limit_documents: int | None = None
    held_out_fraction: float = 0.1
    mlm_probability: float = 0.15
    max_eval_blocks: int = 512
    seed: int = 0

    def __post_init__(self) -> None:
        if self.corpus not in CORPORA:
            raise ValueError(f"corpus must be one of {CORPORA}, got {self.corpus!r}")
        check_number(self.held_out_fraction, "held_out_fraction", low=0, high=1, low_open=True, high_open=True)
        if not 0.0 < self.mlm_probability < 1.0:
            raise ValueError(f"mlm_probability must be in (0, 1), got {self.mlm_probability}")
        check_int(self.max_eval_blocks, "max_eval_blocks", minimum=1)
        for name in ("max_words", "limit_documents"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, minimum=1)


@dataclass(frozen=True)
class PretrainConfig:
    """Every choice of a pretraining run, in three parts and a start.

    * ``data``: the corpus, its held-out split and the masking (``MLMDataConfig``);
    * ``model``: the network's sizes (``BertConfig``); the WordPiece tokenizer is trained to
      ``model.vocab_size`` pieces and the blocks fill ``model.max_position_embeddings``;
    * ``train``: the optimiser, schedule, steps and evaluations (``train.TrainConfig``, the
      same type adaptation and fine-tuning take; pretraining counts ``max_steps``);
    * ``init``: ``"bert"`` is BERT's random start (N(0, 0.02) weights); ``"offset_heads"``
      adds ``init_offset_heads`` and ``init_output_bias``, appendix A2's head start, the
      course's own device for leaving the plateau on a CPU budget (``new_model``).

    Each part checks itself when it is made; this checks how they fit together.
    ``with_data``, ``with_model`` and ``with_train`` return a copy with one part changed::

        s = LESSON_FULL.with_train(max_steps=200, eval_every=50)
        s.train.lr, s.model.hidden_size, s.block_size          # 0.002 128 128

    ``LESSON_FULL`` and ``LESSON_QUICK`` are lesson 06's two sizes, ``lesson_settings()``
    picks one by quick mode; ``HEAD_START_*`` and ``head_start_settings()`` are appendix A2's.
    """

    data: MLMDataConfig = field(default_factory=MLMDataConfig)
    model: BertConfig = field(default_factory=lambda: BertConfig(
        vocab_size=8000, hidden_size=128, num_hidden_layers=2, num_attention_heads=4, intermediate_size=512,
        max_position_embeddings=128, hidden_dropout_prob=0.0))
    train: TrainConfig = field(default_factory=lambda: TrainConfig(lr=2e-3, max_steps=3000, eval_every=250))
    init: str = "bert"

    def __post_init__(self) -> None:
        for name, kind in (("data", MLMDataConfig), ("model", BertConfig), ("train", TrainConfig)):
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"{name} must be a {kind.__name__}, got {type(getattr(self, name)).__name__}")
        if self.init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {self.init!r}")
        if self.train.max_steps is None:
            raise ValueError("pretraining counts optimizer steps: give train=TrainConfig(max_steps=...)")
        if self.block_size < 3:
            raise ValueError(f"blocks of {self.block_size} positions cannot hold [CLS], a token and [SEP]")

    @property
    def block_size(self) -> int:
        """The length of a block: the model's positions."""
        return self.model.max_position_embeddings

    def with_data(self, **changes: Any) -> PretrainConfig:
        return replace(self, data=replace(self.data, **changes))

    def with_model(self, **changes: Any) -> PretrainConfig:
        return replace(self, model=replace(self.model, **changes))

    def with_train(self, **changes: Any) -> PretrainConfig:
        return replace(self, train=replace(self.train, **changes))

    def as_dict(self) -> dict[str, Any]:
        """The settings as nested dicts: ``{"data": {...}, "model": {...}, "train": {...}, "init": ...}``."""
        return asdict(self)


#: The starting points ``PretrainConfig.init`` accepts (see ``new_model``).
INITS = ("bert", "offset_heads")
#: Lesson 06 at full size: BERT's recipe on the offline mix (about 8 minutes of training on an
#: idle 2-core CPU).
LESSON_FULL = PretrainConfig(data=MLMDataConfig(corpus="offline_mix"))
#: Lesson 06 in quick mode: a smoke run of a few seconds on a small model.
LESSON_QUICK = PretrainConfig(
    data=MLMDataConfig(limit_documents=24, max_eval_blocks=32),
    model=BertConfig(vocab_size=2000, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64, hidden_dropout_prob=0.0),
    train=TrainConfig(lr=2e-3, batch_size=16, max_steps=40, eval_every=20))
#: Appendix A2's model: the Wikipedia sample from the head start (``init="offset_heads"``),
#: the course BERT that appendix A1 fine-tunes.
HEAD_START_FULL = PretrainConfig(data=MLMDataConfig(corpus="wiki_sample", max_eval_blocks=256),
                                 train=TrainConfig(lr=2e-3, max_steps=3000, eval_every=150), init="offset_heads")
HEAD_START_QUICK = replace(LESSON_QUICK.with_data(corpus="wiki_sample"), init="offset_heads")


#: Lesson 06 at full size on a GPU: the same model and recipe for eight times the steps.
LESSON_GPU = LESSON_FULL.with_train(max_steps=24_000, eval_every=1000)


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
    d = settings.data
    return corpus.training_split(d.corpus, held_out_fraction=d.held_out_fraction, seed=d.seed,
                                 max_words=d.max_words, limit=d.limit_documents)


def prepare_data(settings: PretrainConfig) -> PretrainData:
    """Split ``settings.corpus`` by document, train (or load) the WordPiece tokenizer on the
    training documents, and cut both splits into blocks. The blocks are cached next to the
    tokenizer (cutting ten million words takes about half a minute). The held-out blocks
    are capped at ``settings.max_eval_blocks`` (an evenly spaced subset) to keep evaluations
    short."""
    import io

    d, block_size = settings.data, settings.block_size
    source = {"corpus": d.corpus, "held_out_fraction": d.held_out_fraction, "seed": d.seed,
              "limit": d.limit_documents, "max_words": d.max_words}     # what the texts depend on
    tokenizer = wordpiece.course_tokenizer(settings.model.vocab_size, model_max_length=block_size, **source)
    texts = corpus.texts_key(d.corpus)       # the offline mix: which texts (SST-2 checked or not)
    key = _cache.key({**source, "vocab": sorted(tokenizer.get_vocab().items()), "block_size": block_size,
                     "version": 1, **({"texts": texts} if texts else {})})
    path = config.cache_dir("bert") / f"blocks-{d.corpus}-{key}.pt"
    if path.exists():
        stored = torch.load(path, weights_only=True)
        train_blocks, held = stored["train"], stored["held_out"]
    else:
        train_texts, held_texts = training_texts(settings)
        train_blocks, held = (make_blocks(t, tokenizer, block_size) for t in (train_texts, held_texts))
        small = torch.int16 if len(tokenizer) <= torch.iinfo(torch.int16).max else torch.int32   # a quarter the disk
        buffer = io.BytesIO()
        torch.save({"train": train_blocks.to(small), "held_out": held.to(small)}, buffer)
        _cache.atomic_write_bytes(path, buffer.getvalue())
    return PretrainData(tokenizer, train_blocks.long(), evenly_spaced(held.long(), d.max_eval_blocks))


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
    model = BertForMLM(replace(settings.model, vocab_size=len(data.tokenizer)))
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


def pretrain(model: BertForMLM, data: PretrainData, settings: TrainConfig, *, mlm_probability: float = 0.15,
             device: Any = None, progress: bool = True, verbose: bool = True, cache: str | None = "bert_mlm",
             retrain: bool = False, shard: tuple[int, int] = (0, 1),
             wrap: Callable[[nn.Module], nn.Module] | None = None) -> Any:
    """Pretrain ``model`` with masked-language modelling on ``data``; return ``train.fit``'s ``History``.

    ``settings`` is a ``train.TrainConfig`` that counts ``max_steps``: AdamW, warm-up then
    decay (``settings.schedule``), fresh masks of ``mlm_probability`` for every batch (dynamic
    masking), the held-out loss and accuracy every ``settings.eval_every`` steps on fixed
    masks (``evaluate_mlm``). With ``cache`` the trained weights are stored under the course
    cache, keyed by the settings, the blocks and the initial weights, and a second call with
    the same inputs loads them instantly.

    Several processes (``scripts/pretrain_bert.py``): ``shard=(rank, world)`` trains on
    blocks ``rank, rank + world, ...`` with masks of its own, and ``wrap`` wraps the
    ``MLMObjective`` (in ``DistributedDataParallel``, say); pass ``cache=None`` then.

    Example::

        s = lesson_settings()
        data = prepare_data(s)
        model = new_model(s, data)
        history = pretrain(model, data, s.train, mlm_probability=s.data.mlm_probability)
        history.series("val_loss")
    """
    from torch.utils.data import DataLoader

    rank, world = shard
    if not (isinstance(world, int) and isinstance(rank, int) and world >= 1 and 0 <= rank < world):
        raise ValueError(f"shard must be (rank, world) with 0 <= rank < world, got {shard!r}")
    if wrap is not None and cache is not None:
        raise ValueError("a wrapped (distributed) run cannot use the cache: pass cache=None")
    if not isinstance(settings, TrainConfig) or settings.max_steps is None:
        raise TypeError(f"settings must be a train.TrainConfig with max_steps, got {settings!r}")
    check_number(mlm_probability, "mlm_probability", low=0, high=1, low_open=True, high_open=True)
    check_tokenizer(model, data.tokenizer)
    if data.train_blocks.shape[1] > model.config.max_position_embeddings:
        raise ValueError(f"blocks of {data.train_blocks.shape[1]} tokens exceed the model's "
                         f"max_position_embeddings={model.config.max_position_embeddings}")
    blocks = data.train_blocks[rank::world]
    loader = DataLoader(list(blocks), batch_size=settings.batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(settings.seed + rank),
                        collate_fn=MLMCollator(data.tokenizer, mlm_probability=mlm_probability,
                                               seed=settings.seed + rank))
    if len(loader) == 0:
        raise ValueError(f"{len(blocks)} training blocks are fewer than one batch of {settings.batch_size}")
    eval_collator = MLMCollator(data.tokenizer)
    device = device if device is not None else next(model.parameters()).device
    run = None if cache is None else {"train": settings.as_dict(), "mlm_probability": mlm_probability,
                                      "tokenizer_size": len(data.tokenizer), "initial_weights": _cache.key(model),
                                      "blocks": _cache.key(data.train_blocks, data.held_out_blocks)}
    trained = model if wrap is None else wrap(MLMObjective(model.to(device)))
    optimizer, scheduler = train.optimizer_and_schedule(trained, settings, settings.max_steps)
    return train.fit(
        trained, loader, loss_fn=mlm_loss_fn if wrap is None else objective_loss_fn, optimizer=optimizer,
        scheduler=scheduler, epochs=None, max_steps=settings.max_steps, val_loader=data.held_out_blocks,
        evaluate_fn=lambda _m, held: evaluate_mlm(model, held, eval_collator, seed=settings.seed),
        eval_every=settings.eval_every, restore_best=False, device=device, progress=progress,
        verbose=verbose, cache=cache, settings=run, retrain=retrain)


def objective_loss_fn(objective: nn.Module, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, float]]:
    """``mlm_loss_fn`` for a (wrapped) ``MLMObjective``."""
    loss, logits, targets = objective(batch["input_ids"], batch["labels"], batch["attention_mask"])
    return loss, {"accuracy": float((logits.argmax(-1) == targets).float().mean())}


def course_bert_folder(settings: PretrainConfig, device: Any = None) -> Path:
    """Where ``course_bert`` keeps the model of ``settings`` trained on ``device``: the key covers
    the settings, the texts (``corpus.texts_key``), how the tokenizer numbers its vocabulary
    (``wordpiece.VERSION``) and a GPU's mixed precision (``train.resolve_amp``; fp32 adds nothing).
    ``device`` None: ``config.get_device()``, as ``course_bert`` trains on."""
    device = config.get_device() if device is None else device
    texts = corpus.texts_key(settings.data.corpus)              # the same settings on other texts: another model
    precision = train.resolve_amp("auto", torch.device(device))  # and in another precision
    extra = ([texts] if texts else []) + [f"wordpiece-v{wordpiece.VERSION}"] \
        + ([str(precision)] if precision is not None else [])
    return config.cache_dir("bert") / f"course-bert-{_cache.key(settings.as_dict(), *extra)}"


def course_bert(settings: PretrainConfig | None = None, *, device: Any = None, progress: bool = True,
                verbose: bool = True) -> Path:
    """The folder of the course's pretrained BERT, in ``save_pretrained`` format.

    Taken from the cache (``course_bert_folder``: the settings, the texts, the tokenizer's numbering, a GPU's
    mixed precision) when a model is there; otherwise
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
    folder = course_bert_folder(settings, device)
    if (folder / "pretraining.json").exists():
        return folder
    data = prepare_data(settings)
    torch.manual_seed(settings.train.seed)
    model = new_model(settings, data)
    history = pretrain(model, data, settings.train, mlm_probability=settings.data.mlm_probability, device=device,
                       progress=progress, verbose=verbose)
    record = {"settings": settings.as_dict(), "history": history.to_dict()}
    _cache.write_folder(folder, lambda tmp: save_pretrained(model.cpu(), data.tokenizer, tmp), record=record,
                       record_name="pretraining.json")
    return folder
