"""One training loop for lessons 05-07: ``fit()``.

What it does, in order, for every batch::

    batch -> device -> loss_fn(model, batch) -> (loss, metrics)
    loss.backward()                       (scaled first when training in fp16)
    clip the gradient norm                (grad_clip)
    optimizer.step(); scheduler.step()    (the schedule advances once per optimizer step)

and after every epoch (or every ``eval_every`` steps) it evaluates on ``val_loader``,
keeps the best weights by ``monitor``, and stops early after ``patience`` evaluations
without improvement. Everything it measured is returned in a ``History`` for plots.

Mixed precision (``amp="auto"``): bf16 autocast on GPUs that support it, fp16 autocast
with a gradient scaler on other CUDA GPUs (the Colab T4), full fp32 on CPU and MPS.

Checkpoint cache: with ``cache="name"`` and ``settings={...}`` (every choice that changes
the result: sizes, learning rate, epochs, seed, data), the trained weights and history are
stored in ``config.cache_dir("checkpoints")/<name>-<hash>/``; a second call with the same
settings, the same model (its shape and its starting weights and buffers) and the same mixed
precision loads them instead of training, and says so. A change the settings do not name, a
zeroed position table or another initialisation, trains anew instead of loading a model it
does not describe. Weights
are written with ``safetensors`` (no pickle), into a folder written aside and renamed into
place (``cache.write_folder``), so no reader ever finds half a checkpoint.

Example::

    from textft_lib import train
    def loss_fn(model, batch):
        x, y = batch
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        return loss, {"accuracy": (logits.argmax(-1) == y).float().mean().item()}

    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    sched = train.warmup_decay_schedule(opt, warmup_steps=100, total_steps=2000)
    history = train.fit(model, train_loader, loss_fn=loss_fn, optimizer=opt, scheduler=sched,
                        epochs=10, val_loader=val_loader, patience=3,
                        cache="my_model", settings={"lr": 1e-3, "epochs": 10})
    history.plot()
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping

import torch
from safetensors.torch import load_model, save_model
from torch import Tensor, nn
from tqdm.auto import tqdm

from textft_lib import cache, config
from textft_lib.checks import check_int, check_number

LossFn = Callable[[nn.Module, Any], "Tensor | tuple[Tensor, Mapping[str, float]]"]
EvaluateFn = Callable[[nn.Module, Iterable], Mapping[str, float]]


# --------------------------------------------------------------------------- history


@dataclass
class History:
    """What ``fit`` measured.

    * ``steps``: one dict per optimizer step: ``step``, ``epoch``, ``loss``, ``lr``,
      ``grad_norm`` (before clipping) and the metrics ``loss_fn`` returned;
    * ``evals``: one dict per evaluation: ``step``, ``epoch``, ``train_loss`` (mean since
      the previous evaluation) and the validation metrics, prefixed ``val_``;
    * ``best``: the evaluation with the best ``monitor`` value (None without validation);
    * ``stopped_early``, ``from_cache``, ``seconds`` (training time, also for a cached run).
    """

    monitor: str = "val_loss"
    mode: str = "min"
    steps: list[dict[str, float]] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)
    best: dict[str, float] | None = None
    stopped_early: bool = False
    from_cache: bool = False
    seconds: float = 0.0

    def series(self, key: str) -> tuple[list[float], list[float]]:
        """``(steps, values)`` of one quantity, for plotting against the step number.
        Looks in the evaluations for ``val_*`` and ``train_loss``, else in the steps."""
        rows = self.evals if key.startswith("val_") or key == "train_loss" else self.steps
        pairs = [(r["step"], r[key]) for r in rows if key in r]
        if not pairs:
            known = sorted({k for r in self.steps + self.evals for k in r})
            raise KeyError(f"no {key!r} in this history; it has {known}")
        xs, ys = zip(*pairs)
        return list(xs), list(ys)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> History:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    def plot(self, ax: Any = None, *, smooth: int = 20) -> Any:
        """Training loss (per step, and a running mean over ``smooth`` steps) and the
        validation loss per evaluation, on one axis. Returns the axis."""
        if ax is None:
            from textft_lib import plot

            _, ax = plot.figure()
        xs, ys = self.series("loss")
        ax.plot(xs, ys, alpha=0.3, color="C0", label="train loss (per step)")
        if len(ys) >= smooth > 1:
            running = [sum(ys[i - smooth + 1:i + 1]) / smooth for i in range(smooth - 1, len(ys))]
            ax.plot(xs[smooth - 1:], running, color="C0", label=f"train loss (mean of {smooth})")
        if any("val_loss" in r for r in self.evals):
            vx, vy = self.series("val_loss")
            ax.plot(vx, vy, "o-", color="C1", label="validation loss")
        ax.set_xlabel("optimizer step")
        ax.set_ylabel("loss")
        ax.legend()
        return ax


# --------------------------------------------------------------------------- schedules and parameter groups


def warmup_decay_schedule(optimizer: torch.optim.Optimizer, warmup_steps: int, total_steps: int, *,
                          kind: Literal["linear", "cosine", "constant"] = "linear",
                          min_ratio: float = 0.0) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate rising linearly from 0 over ``warmup_steps``, then decaying to
    ``min_ratio`` x the peak at ``total_steps`` (linearly, along a cosine, or not at all).

    Call ``scheduler.step()`` after every ``optimizer.step()`` (``fit`` does). Example::

        sched = warmup_decay_schedule(opt, warmup_steps=100, total_steps=1000, kind="cosine")
    """
    if total_steps < 1 or not 0 <= warmup_steps <= total_steps:
        raise ValueError(f"need 0 <= warmup_steps <= total_steps and total_steps >= 1, "
                         f"got warmup_steps={warmup_steps}, total_steps={total_steps}")
    if kind not in ("linear", "cosine", "constant"):
        raise ValueError(f"kind must be 'linear', 'cosine' or 'constant', got {kind!r}")
    if not 0.0 <= min_ratio <= 1.0:
        raise ValueError(f"min_ratio must lie in [0, 1], got {min_ratio}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        if kind == "constant":
            return 1.0
        progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
        shape = 1.0 - progress if kind == "linear" else 0.5 * (1.0 + math.cos(math.pi * progress))
        return min_ratio + (1.0 - min_ratio) * shape

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def param_groups(model: nn.Module, *, lr_body: float, lr_head: float, head_prefix: str | tuple[str, ...],
                 weight_decay: float = 0.01) -> list[dict[str, Any]]:
    """Optimizer parameter groups with discriminative learning rates and no weight decay
    on biases and normalisation weights (any parameter with fewer than 2 dimensions).

    Parameters whose name starts with ``head_prefix`` (e.g. ``"head."`` or
    ``("classifier.", "pooler.")``) get ``lr_head``, the rest ``lr_body``. Frozen
    parameters (``requires_grad=False``) are left out. Example::

        opt = torch.optim.AdamW(param_groups(model, lr_body=2e-5, lr_head=1e-3, head_prefix="head."))
    """
    prefixes = (head_prefix,) if isinstance(head_prefix, str) else tuple(head_prefix)
    groups: dict[tuple[bool, bool], list[Tensor]] = {(h, d): [] for h in (False, True) for d in (False, True)}
    for name, p in model.named_parameters():
        if p.requires_grad:
            groups[(name.startswith(prefixes), p.ndim >= 2)].append(p)
    if not groups[(True, True)] and not groups[(True, False)]:
        names = [n for n, _ in model.named_parameters()][:8]
        raise ValueError(f"no trainable parameter name starts with {prefixes}; names look like {names}")
    out = []
    for (is_head, decay), params in groups.items():
        if params:
            out.append({"params": params, "lr": lr_head if is_head else lr_body,
                        "weight_decay": weight_decay if decay else 0.0})
    return out


# --------------------------------------------------------------------------- settings


SCHEDULES = ("linear", "cosine", "constant")


@dataclass(frozen=True)
class TrainConfig:
    """How a model is trained: the one settings type of pretraining (``bert.pretrain``),
    domain adaptation (``adapt.adapt_pretraining``) and fine-tuning (``classify.finetune``).

    * AdamW at peak rate ``lr`` with ``weight_decay`` (``optimizer_and_schedule``: on every
      parameter, as pretraining uses it; with a head prefix, as fine-tuning does, on the
      weight matrices only); ``lr_head`` gives a new head its own, larger rate (None: ``lr``
      everywhere);
    * ``batch_size`` examples per step, for ``epochs`` passes over the data or ``max_steps``
      optimizer steps (exactly one of the two);
    * the rate warms up linearly over ``warmup_fraction`` of the steps, then decays as
      ``schedule`` says (``"linear"``, ``"cosine"`` or ``"constant"``, see
      ``warmup_decay_schedule``);
    * evaluation every ``eval_every`` steps (None: after each epoch); early stopping after
      ``patience`` evaluations without improvement (None: never); ``seed`` for the batch
      order, the masks and dropout.

    Checked once, here, when it is made; the runs that take it trust it. Example::

        s = TrainConfig(lr=5e-5, lr_head=1e-3, epochs=4, warmup_fraction=0.1, patience=2)
        s.warmup_steps(500)                    # 50
        dataclasses.replace(s, epochs=1)       # a changed copy, checked again
    """

    lr: float = 1e-3
    lr_head: float | None = None
    batch_size: int = 32
    epochs: int | None = None
    max_steps: int | None = None
    warmup_fraction: float = 0.06
    schedule: str = "linear"
    weight_decay: float = 0.01
    eval_every: int | None = None
    patience: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_number(self.lr, "lr", low=0, low_open=True)
        if self.lr_head is not None:
            check_number(self.lr_head, "lr_head", low=0, low_open=True)
        check_int(self.batch_size, "batch_size", minimum=1)
        if (self.epochs is None) == (self.max_steps is None):
            raise ValueError(f"give epochs or max_steps (exactly one), got epochs={self.epochs}, "
                             f"max_steps={self.max_steps}")
        for name in ("epochs", "max_steps", "eval_every", "patience"):
            if getattr(self, name) is not None:
                check_int(getattr(self, name), name, minimum=1)
        check_number(self.warmup_fraction, "warmup_fraction", low=0, high=1, high_open=True)
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        check_number(self.weight_decay, "weight_decay", low=0)
        check_int(self.seed, "seed")

    @property
    def head_lr(self) -> float:
        """The head's learning rate: ``lr_head``, or ``lr`` when there is none."""
        return self.lr if self.lr_head is None else self.lr_head

    def total_steps(self, batches_per_epoch: int) -> int:
        """The run's optimizer steps: ``max_steps``, or ``epochs`` passes of ``batches_per_epoch``."""
        return self.max_steps if self.max_steps is not None else self.epochs * batches_per_epoch

    def warmup_steps(self, total_steps: int) -> int:
        """``warmup_fraction`` of ``total_steps``, rounded down, and at least 1 when the
        fraction is not 0."""
        return max(1, int(self.warmup_fraction * total_steps)) if self.warmup_fraction else 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def optimizer_and_schedule(model: nn.Module, settings: TrainConfig, total_steps: int, *,
                           head_prefix: str | tuple[str, ...] | None = None
                           ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over ``model``'s trainable parameters and its warm-up-then-decay schedule over
    ``total_steps``, as ``settings`` says. With ``head_prefix`` the parameters named so get
    ``settings.head_lr`` and the rest ``settings.lr``, and biases and norms no weight decay
    (``param_groups``); without, one group at ``settings.lr``.

    Example::

        opt, sched = optimizer_and_schedule(model, TrainConfig(lr=2e-3, max_steps=3000), 3000)
    """
    if head_prefix is None:
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    else:
        optimizer = torch.optim.AdamW(param_groups(model, lr_body=settings.lr, lr_head=settings.head_lr,
                                                   head_prefix=head_prefix, weight_decay=settings.weight_decay))
    schedule = warmup_decay_schedule(optimizer, settings.warmup_steps(total_steps), total_steps,
                                     kind=settings.schedule)
    return optimizer, schedule


# --------------------------------------------------------------------------- devices and precision


def move_to(batch: Any, device: torch.device) -> Any:
    """Move every tensor in a (nested) tuple / list / dict / tensor to ``device``; objects
    with their own ``.to(device)`` (a tokenizer's ``BatchEncoding``) move themselves."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_to(v, device) for k, v in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # a namedtuple
        return type(batch)(*(move_to(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to(v, device) for v in batch)
    if callable(getattr(batch, "to", None)):
        return batch.to(device)
    return batch


def resolve_amp(amp: str | bool | None, device: torch.device) -> torch.dtype | None:
    """``"auto"`` -> bf16/fp16 on CUDA (see ``config.amp_dtype``), None elsewhere;
    ``"bf16"``/``"fp16"`` force one; ``None``/``False``/``"off"`` means fp32."""
    if amp in (None, False, "off", "none", "fp32"):
        return None
    if amp in ("auto", True):
        return config.amp_dtype(device)
    if amp == "bf16":
        return torch.bfloat16
    if amp == "fp16":
        if device.type != "cuda":
            raise ValueError(f"amp='fp16' needs a CUDA device (it trains with a gradient scaler), got {device}")
        return torch.float16
    raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or None, got {amp!r}")


def _autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _split_loss(out: Any) -> tuple[Tensor, dict[str, float]]:
    loss, metrics = (out if isinstance(out, tuple) else (out, {}))
    if not isinstance(loss, Tensor) or loss.dim() != 0:
        raise TypeError("loss_fn must return a scalar loss tensor, or (loss, metrics dict); got "
                        f"{type(loss).__name__} {tuple(loss.shape) if isinstance(loss, Tensor) else ''}")
    return loss, {k: float(v) for k, v in dict(metrics).items()}


@contextlib.contextmanager
def evaluating(model: nn.Module) -> Iterator[nn.Module]:
    """Put ``model`` in eval mode (dropout off) for the block, then back in the mode it had,
    also when the block raises.

    Example::

        with evaluating(model), torch.no_grad():
            logits = model(x)
    """
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


@torch.no_grad()
def evaluate_loss(model: nn.Module, loader: Iterable, loss_fn: LossFn, *, device: torch.device | None = None,
                  amp: str | bool | None = "auto") -> dict[str, float]:
    """Mean of ``loss_fn``'s loss and metrics over the batches of ``loader``, in eval mode.
    The default ``evaluate_fn`` of ``fit``."""
    device = device or next(model.parameters()).device
    dtype = resolve_amp(amp, device)
    totals: dict[str, float] = {}
    n = 0
    with evaluating(model):
        for batch in loader:
            batch = move_to(batch, device)
            with _autocast(device, dtype):
                loss, metrics = _split_loss(loss_fn(model, batch))
            for k, v in {"loss": float(loss), **metrics}.items():
                totals[k] = totals.get(k, 0.0) + v
            n += 1
    if n == 0:
        raise ValueError("the validation loader yielded no batch")
    return {k: v / n for k, v in totals.items()}


# --------------------------------------------------------------------------- checkpoint cache


def _model_signature(model: nn.Module) -> list[str]:
    return [type(model).__name__] + [f"{k}:{tuple(v.shape)}" for k, v in sorted(model.state_dict().items())]


def _starting_state(model: nn.Module) -> Any:
    """What ``cache.key`` hashes of a model: every tensor of its state_dict and every buffer,
    the non-persistent ones too (a sinusoidal position table is not in the state_dict)."""
    return SimpleNamespace(state_dict=lambda: {**dict(model.named_buffers()), **model.state_dict()})


def cache_path(name: str, settings: Mapping[str, Any], model: nn.Module,
               precision: torch.dtype | None = None) -> Path:
    """The folder ``config.cache_dir("checkpoints")/<name>-<hash>`` for these settings,
    this model as it is before training (its parameter names and shapes, and the bytes of
    every parameter and buffer) and the mixed precision the run trains in (``precision``:
    the autocast dtype, None for fp32). A T4's fp16 run and an A100's bf16 run of the
    same settings are two checkpoints, so a cache kept across machines (Drive in Colab)
    never hands one the other's result."""
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise ValueError(f"cache name must be a plain name like 'seq2seq_dates', got {name!r}")
    parts: dict[str, Any] = {"settings": settings, "model": _model_signature(model)}
    if precision is not None:
        parts["precision"] = str(precision).removeprefix("torch.")
    return config.cache_dir("checkpoints") / f"{name}-{cache.key(parts, _starting_state(model))}"


def save_checkpoint(folder: Path, model: nn.Module, history: History, settings: Mapping[str, Any]) -> None:
    """Write ``model.safetensors``, ``settings.json`` and ``history.json`` into ``folder``,
    atomically (``cache.write_folder``)."""
    def write(tmp: Path) -> None:
        save_model(model, str(tmp / "model.safetensors"))
        (tmp / "settings.json").write_text(json.dumps(dict(settings), indent=2, sort_keys=True, default=str))
        (tmp / "history.json").write_text(json.dumps(history.to_dict()))

    cache.write_folder(folder, write)


def load_checkpoint(folder: Path, model: nn.Module) -> History:
    """Load weights (safetensors: tensors only, no pickle) into ``model``; return the history."""
    if not (folder / "history.json").exists() or not (folder / "model.safetensors").exists():
        raise FileNotFoundError(f"{folder} holds no complete checkpoint")
    device = next(model.parameters()).device
    load_model(model, folder / "model.safetensors", strict=True, device=str(device))
    return History.from_dict(json.loads((folder / "history.json").read_text()))


# --------------------------------------------------------------------------- the loop


def _improved(value: float, best: float | None, mode: str) -> bool:
    if best is None:
        return True
    return value < best if mode == "min" else value > best


def _check_fit(epochs: int | None, max_steps: int | None, mode: str, patience: int | None, val_loader: Any,
               cache: str | None, settings: Any, *, eval_every: int | None = None, grad_clip: float | None = None,
               lr: float = 1e-3, weight_decay: float = 0.0) -> None:
    if epochs is None and max_steps is None:
        raise ValueError("give epochs, max_steps, or both")
    for name, value in (("epochs", epochs), ("max_steps", max_steps), ("eval_every", eval_every),
                        ("patience", patience)):
        if value is not None:
            check_int(value, name, minimum=1)       # 1.5 epochs or eval_every=0 would run silently
    if grad_clip is not None:
        check_number(grad_clip, "grad_clip", low=0, low_open=True)   # a negative norm flips the step
    check_number(lr, "lr", low=0, low_open=True)
    check_number(weight_decay, "weight_decay", low=0)
    if mode not in ("min", "max"):
        raise ValueError(f"mode must be 'min' or 'max', got {mode!r}")
    if patience is not None and val_loader is None:
        raise ValueError("early stopping (patience) needs a val_loader to watch")
    if cache is not None and settings is None:
        raise ValueError("a cache name needs the settings that define the run (settings={...})")


def _cached_history(folder: Path | None, model: nn.Module, verbose: bool) -> History | None:
    """The history of a complete checkpoint in ``folder``, its weights loaded into ``model``; else None."""
    if folder is None or not (folder / "history.json").exists():
        return None
    history = load_checkpoint(folder, model)
    history.from_cache = True
    if verbose:
        print(f"loaded cached result from {folder} (trained in {history.seconds:.0f} s; "
              f"pass retrain=True or delete the folder to train again)")
    return history


def _progress_bar(train_loader: Iterable, epochs: int | None, max_steps: int | None, progress: bool) -> Any:
    """A tqdm bar over the optimizer steps (its total when the loader has a length), or None."""
    if not progress:
        return None
    try:
        per_epoch = len(train_loader)  # type: ignore[arg-type]
    except TypeError:
        per_epoch = None
    total = max_steps if epochs is None else (per_epoch * epochs if per_epoch is not None else None)
    if max_steps is not None and total is not None:
        total = min(total, max_steps)
    return tqdm(total=total, desc="training", unit="step", leave=False)


class _Best:
    """The best evaluation so far of ``monitor``: its weights (copied to the CPU) and how many
    evaluations have passed without improving on it."""

    def __init__(self, monitor: str, mode: str, patience: int | None) -> None:
        self.monitor, self.mode, self.patience = monitor, mode, patience
        self.value: float | None = None
        self.state: dict[str, Tensor] | None = None
        self.bad = 0

    def update(self, row: dict[str, float], model: nn.Module, history: History) -> bool:
        """Take one evaluation's ``row``; True when ``patience`` evaluations passed without a gain."""
        if self.monitor not in row:
            raise KeyError(f"monitor={self.monitor!r} is not among the evaluation's results {sorted(row)}")
        if _improved(row[self.monitor], self.value, self.mode):
            self.value, self.bad = row[self.monitor], 0
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            history.best = dict(row)
        else:
            self.bad += 1
        return self.patience is not None and self.bad >= self.patience


def _evaluation(row: dict[str, float], model: nn.Module, val_loader: Iterable | None, evaluate_fn: EvaluateFn,
                best: _Best, history: History, verbose: bool) -> bool:
    """Complete ``row`` (step, epoch, train_loss) with the validation metrics, track the best,
    append it to ``history.evals``; True when early stopping says stop."""
    stop = False
    if val_loader is not None:
        with evaluating(model), torch.no_grad():
            metrics = evaluate_fn(model, val_loader)
        row.update({(k if k.startswith("val_") else f"val_{k}"): float(v) for k, v in metrics.items()})
        stop = best.update(row, model, history)
    history.evals.append(row)
    if verbose:
        shown = " | ".join(f"{k} {v:.4g}" for k, v in row.items() if k not in ("step", "epoch"))
        mark = " *" if history.best is not None and history.best["step"] == row["step"] else ""
        print(f"epoch {row['epoch']} step {row['step']}: {shown}{mark}")
    return stop


def optimizer_step(model: nn.Module, batch: Any, loss_fn: LossFn, optimizer: torch.optim.Optimizer, *,
                   scheduler: Any = None, scaler: Any = None, grad_clip: float | None = 1.0,
                   amp_dtype: torch.dtype | None = None, step: int = 0) -> dict[str, float]:
    """One training step on one batch already on the model's device: the loss, its gradient
    (scaled under fp16), clipping to ``grad_clip``, the optimizer's step, then the
    scheduler's. Returns the step's record: ``loss``, ``lr`` (before the scheduler moved it),
    ``grad_norm`` (before clipping) and ``loss_fn``'s metrics. ``step`` (the steps done so
    far) only names the step in the error a non-finite loss raises."""
    device = next(model.parameters()).device
    with _autocast(device, amp_dtype):
        loss, metrics = _split_loss(loss_fn(model, batch))
    if not torch.isfinite(loss):
        raise FloatingPointError(f"the loss is {loss.detach().item()} at step {step + 1}: lower the learning "
                                 "rate, check the inputs, or clip the gradients")
    optimizer.zero_grad(set_to_none=True)
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)
    else:
        loss.backward()
    params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
    norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip is not None else float("inf"))
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    lr_now = optimizer.param_groups[0]["lr"]
    if scheduler is not None:
        scheduler.step()
    return {"loss": loss.detach().item(), "lr": lr_now, "grad_norm": float(norm), **metrics}


def fit(model: nn.Module, train_loader: Iterable, *, loss_fn: LossFn,
        optimizer: torch.optim.Optimizer | None = None, lr: float = 1e-3, weight_decay: float = 0.01,
        scheduler: Any = None, epochs: int | None = 1, max_steps: int | None = None,
        val_loader: Iterable | None = None, evaluate_fn: EvaluateFn | None = None, eval_every: int | None = None,
        monitor: str = "val_loss", mode: Literal["min", "max"] = "min", patience: int | None = None,
        restore_best: bool = True, grad_clip: float | None = 1.0, device: torch.device | str | None = None,
        amp: str | bool | None = "auto", progress: bool = True, verbose: bool = True,
        cache: str | None = None, settings: Mapping[str, Any] | None = None, retrain: bool = False) -> History:
    """Train ``model`` and return a ``History``.

    Arguments:

    * ``loss_fn(model, batch) -> loss`` or ``(loss, {"metric": float, ...})``: the batch
      arrives already on ``device``; the loss must be computed against the labels.
    * ``optimizer``: default ``AdamW(lr, weight_decay)``; ``scheduler``: stepped once per
      optimizer step (e.g. ``warmup_decay_schedule``).
    * ``epochs`` passes over ``train_loader``, capped at ``max_steps`` optimizer steps
      (``epochs=None`` with ``max_steps``: as many passes as the steps need).
    * ``val_loader``: evaluated after each epoch and every ``eval_every`` steps, by
      ``evaluate_fn(model, loader) -> {"loss": ..., "accuracy": ...}`` (default: the mean of
      ``loss_fn``'s outputs); keys get a ``val_`` prefix, so ``monitor="val_accuracy",
      mode="max"`` picks the most accurate weights.
    * ``patience``: stop after this many evaluations without improvement of ``monitor``;
      ``restore_best``: at the end, load the weights of the best evaluation.
    * ``grad_clip``: maximum global gradient norm (None: no clipping).
    * ``amp``: ``"auto"`` (bf16 / fp16 + scaler on CUDA, fp32 elsewhere), ``"bf16"``,
      ``"fp16"`` or None.
    * ``cache`` + ``settings``: the checkpoint cache (see the module docstring); ``retrain``
      ignores a cached result and overwrites it.

    Returns the ``History``; the model holds the final (or best) weights, on ``device``.
    """
    # The course's one training loop, read in lesson 05: its length is the loop itself; the
    # step, the evaluation, the best-weights tracking and the checkpoint cache are helpers.
    _check_fit(epochs, max_steps, mode, patience, val_loader, cache, settings, eval_every=eval_every,
               grad_clip=grad_clip, lr=lr, weight_decay=weight_decay)
    device = torch.device(device) if device is not None else next(model.parameters()).device
    model.to(device)
    amp_dtype = resolve_amp(amp, device)
    folder = cache_path(cache, settings, model, amp_dtype) if cache is not None else None
    cached = None if retrain else _cached_history(folder, model, verbose)
    if cached is not None:
        return cached

    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    if optimizer is None:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    evaluate_fn = evaluate_fn or (lambda m, loader: evaluate_loss(m, loader, loss_fn, device=device, amp=amp))
    history, best = History(monitor=monitor, mode=mode), _Best(monitor, mode, patience)
    step, epoch, since_eval = 0, 0, []
    start = time.perf_counter()
    bar = _progress_bar(train_loader, epochs, max_steps, progress)

    def run_evaluation() -> bool:
        """Evaluate, record, track the best; True when training should stop."""
        nonlocal since_eval
        row = {"step": step, "epoch": epoch}
        if since_eval:
            row["train_loss"] = sum(since_eval) / len(since_eval)
        since_eval = []
        return _evaluation(row, model, val_loader, evaluate_fn, best, history, verbose)

    model.train()
    stop = False
    while not stop and (epochs is None or epoch < epochs):
        epoch += 1
        evaluated_at, epoch_start = -1, step
        for batch in train_loader:
            record = optimizer_step(model, move_to(batch, device), loss_fn, optimizer, scheduler=scheduler,
                                    scaler=scaler, grad_clip=grad_clip, amp_dtype=amp_dtype, step=step)
            step += 1
            since_eval.append(record["loss"])
            history.steps.append({"step": step, "epoch": epoch, **record})
            if bar is not None:
                bar.update(1)
                bar.set_postfix(epoch=epoch, loss=f"{record['loss']:.4f}")
            if eval_every and step % eval_every == 0:
                evaluated_at = step
                if run_evaluation():
                    stop = history.stopped_early = True
                    break
            if max_steps is not None and step >= max_steps:
                stop = True
                break
        if step == epoch_start:  # checked every epoch: a generator is used up after its first pass
            hint = "" if epoch == 1 else (
                f" in epoch {epoch}, after {step} steps in the epochs before: a generator or iterator is used "
                "up after one pass; pass a DataLoader or a list, not a generator, for several epochs")
            raise ValueError("the training loader yielded no batch" + hint)
        if evaluated_at != step and not history.stopped_early and run_evaluation():
            stop = history.stopped_early = True
    if bar is not None:
        bar.close()

    if restore_best and best.state is not None:
        model.load_state_dict(best.state)
    history.seconds = time.perf_counter() - start
    if verbose and history.stopped_early:
        print(f"stopped early: {monitor} did not improve for {patience} evaluations")
    if verbose and restore_best and history.best is not None:
        print(f"restored the weights of step {history.best['step']} ({monitor} {history.best[monitor]:.4g})")
    if folder is not None:
        save_checkpoint(folder, model, history, settings)
        if verbose:
            print(f"saved to {folder}")
    return history
