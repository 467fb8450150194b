"""Fine-tuning a classifier with ``train.fit`` (lesson 07).

``finetune`` runs lesson 05's training loop with a small learning rate for the encoder and
a larger one for the head (``train.param_groups``), warm-up and decay, and early stopping,
as a ``train.TrainConfig`` says (``FINETUNE`` is the standard recipe).
Its pieces: ``HEAD_PREFIXES`` / ``head_prefixes`` (which parameters are the head),
``freeze_body``, ``classification_loss`` and ``evaluate_classifier`` (the ``loss_fn`` and
``evaluate_fn`` of ``train.fit``), and ``fingerprint`` (cache keys).

Example::

    from textft_lib import classifier, data, finetuning
    ds = data.load("movie_reviews")
    model, tok = classifier.BertClassifier.from_pretrained(folder, num_classes=2)
    settings = dataclasses.replace(finetuning.FINETUNE, epochs=3)
    history = finetuning.finetune(model, tok, ds.train, ds.validation, settings)
    history.best["val_accuracy"]
"""

from __future__ import annotations

from typing import Any, Iterable

import torch

from textft_lib import cache, config, data
from textft_lib import train as training
from textft_lib.classifier import logits_of, model_classes, model_max_length
from textft_lib.encoding import TextClassificationDataset
from textft_lib.metrics import as_labels, check_int


#: Parameter-name prefixes of the task head, for the models this lesson trains.
HEAD_PREFIXES = ("classifier.", "pooler.", "bert.pooler.", "head.")


def head_prefixes(model: Any) -> tuple[str, ...]:
    """The prefixes (of ``HEAD_PREFIXES``) that name the head parameters of ``model``."""
    names = [n for n, _ in model.named_parameters()]
    found = tuple(p for p in HEAD_PREFIXES if any(n.startswith(p) for n in names))
    if not found:
        raise ValueError(f"cannot find a classification head among {names[-4:]}; expected names starting "
                         f"with one of {HEAD_PREFIXES}")
    return found


def freeze_body(model: Any, frozen: bool = True) -> int:
    """Freeze (or unfreeze) every parameter outside the head; return how many values stay trainable.

    With the body frozen, fine-tuning trains only the head on fixed pretrained features
    ("feature extraction"); unfrozen, every layer adapts to the task.
    """
    heads = head_prefixes(model)
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(heads) or not frozen
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def classification_loss(model: Any, batch: dict[str, Any]) -> tuple[Any, dict[str, float]]:
    """``loss_fn`` for ``train.fit``: cross-entropy of the logits against ``batch["labels"]``.

    ``batch``: ``input_ids (B, L)``, ``attention_mask (B, L)``, ``labels (B,)``. Returns the
    loss and the batch accuracy (computed from the same logits, so the log shows exactly
    what the model did).
    """
    import torch.nn.functional as F

    logits = logits_of(model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]))
    loss = F.cross_entropy(logits.float(), batch["labels"])
    return loss, {"accuracy": (logits.argmax(-1) == batch["labels"]).float().mean().item()}


def evaluate_classifier(model: Any, loader: Iterable) -> dict[str, float]:
    """``evaluate_fn`` for ``train.fit``: loss and accuracy over *all* examples of ``loader``
    (weighted by example, so a short last batch counts for what it holds)."""
    import torch.nn.functional as F

    device = next(model.parameters()).device
    total_loss, correct, n = 0.0, 0, 0
    with torch.no_grad():
        for batch in loader:
            ids, mask, y = (batch[k].to(device) for k in ("input_ids", "attention_mask", "labels"))
            logits = logits_of(model(input_ids=ids, attention_mask=mask)).float()
            total_loss += F.cross_entropy(logits, y, reduction="sum").item()
            correct += int((logits.argmax(-1) == y).sum())
            n += len(y)
    if n == 0:
        raise ValueError("the evaluation loader yielded no example")
    return {"loss": total_loss / n, "accuracy": correct / n}


def fingerprint(*parts: Any) -> str:
    """A short hash of texts, labels (lists, arrays, tensors), numbers or a model's weights,
    for cache keys: ``cache.key(*parts, length=16)``."""
    return cache.key(*parts, length=16)


def check_labels_fit(model: Any, *splits: Any) -> None:
    """Raise ``ValueError`` unless every split's labels are whole class ids the model's head
    can output (0 .. classes - 1), with a message that names the split and the labels."""
    n = model_classes(model)
    for name, split in zip(("train", "validation"), splits):
        if not hasattr(split, "texts") or not hasattr(split, "labels"):
            raise TypeError(f"{name} must be a data.Split (texts and labels), got {type(split).__name__}: "
                            "wrap lists as data.Split(texts, labels)")
        labels = as_labels(split.labels, f"{name} labels")
        if n is not None and len(labels) and labels.max() >= n:
            found = sorted(set(labels.tolist()))[:10]
            raise ValueError(f"{name} labels {found} do not fit a head of {n} classes (ids 0..{n - 1}): "
                             "map the labels to 0..n-1, or give the model more classes")


#: Fine-tuning's standard recipe (a ``train.TrainConfig``): the encoder at 5e-5 and the new
#: head at 1e-3, four epochs of 32 examples, 10% warm-up then linear decay, early stopping
#: after two epochs without a better validation accuracy.
FINETUNE = training.TrainConfig(lr=5e-5, lr_head=1e-3, epochs=4, batch_size=32, warmup_fraction=0.1,
                                weight_decay=0.01, patience=2)


def check_max_length(model: Any, max_length: Any) -> int:
    """``max_length`` checked against the model: None gives the model's limit; else a whole
    number from 3 to the model's limit (where the model states one). Raises ``TypeError`` /
    ``ValueError`` naming the argument.

    Example: ``check_max_length(model, 1000)`` on a 512-position BERT raises
    ``ValueError: max_length=1000 is longer than the model's 512 positions``.
    """
    if max_length is None:
        return model_max_length(model)
    max_length = check_int(max_length, "max_length", minimum=3)
    try:
        limit = model_max_length(model)
    except ValueError:          # the model does not say: the caller's max_length stands
        limit = None
    if limit is not None and max_length > limit:
        raise ValueError(f"max_length={max_length} is longer than the model's {limit} positions")
    return max_length


def _token_ids(ds: TextClassificationDataset) -> list[Any]:
    """What training reads of ``ds``: every text's token ids end to end, and their lengths. Part
    of the cache key, so the same texts under another tokenizer (or another numbering of the
    same vocabulary) are another run."""
    return [torch.cat([ids for ids, _ in ds.items]), [len(ids) for ids, _ in ds.items]]


def finetune(model: Any, tokenizer: Any, train: data.Split, validation: data.Split,
             settings: training.TrainConfig = FINETUNE, *, frozen_body: bool | None = False,
             max_length: int | None = None, group_by_length: bool = False, amp: str | None = "auto",
             cache: str | None = None, device: Any = None, progress: bool = True, verbose: bool = False) -> Any:
    """Fine-tune a classifier with ``train.fit``: discriminative learning rates, warm-up then
    decay, early stopping on validation accuracy, the best weights restored at the end.

    * ``model``: ``BertClassifier``, ``transformers.BertForSequenceClassification`` or
      ``transformer.EncoderClassifier`` (anything with a head named as in ``HEAD_PREFIXES``
      whose forward takes ``input_ids`` and ``attention_mask``);
    * ``settings``: a ``train.TrainConfig`` (default ``FINETUNE``): ``lr`` for the pretrained
      encoder (small: it already knows a lot), ``lr_head`` for the new head (larger: it starts
      from random; None: ``lr`` everywhere, as for a model trained from scratch), ``epochs``
      (or ``max_steps``), ``batch_size``, ``warmup_fraction``, ``schedule``, ``weight_decay``,
      ``patience``, ``seed``; change one with ``dataclasses.replace(FINETUNE, epochs=1)``;
    * ``frozen_body=True`` trains the head alone; ``None`` trains what the model marks trainable
      (``requires_grad``), e.g. after ``lora.add_lora``;
    * ``max_length``: texts are cut to this many tokens (None: the model's limit);
      ``group_by_length=True``: batches of texts of similar length (``LengthGroupedSampler``,
      as ``Trainer``'s ``train_sampling_strategy="group_by_length"``): less padding, faster steps;
    * ``amp``: mixed precision as in ``train.fit`` (``"auto"``: bf16/fp16 on a GPU, fp32 on a
      CPU); ``None`` trains in fp32 everywhere, as a hand-written loop without autocast does;
    * ``cache``: a name for ``train.fit``'s checkpoint cache; the key covers every setting,
      the data, its token ids and the model's initial weights, so a re-run with the same
      inputs is instant.

    Everything is checked before training starts: the settings when they were made, then
    splits that are not ``data.Split``, labels the head cannot output (``check_labels_fit``)
    and a ``max_length`` beyond the model's limit (``check_max_length``) raise ``TypeError`` /
    ``ValueError``.

    Returns ``train.History`` (``history.best["val_accuracy"]``, ``history.seconds``).
    Example::

        history = finetune(model, tok, ds.train, ds.validation, replace(FINETUNE, epochs=3))
    """
    if not isinstance(settings, training.TrainConfig):
        raise TypeError(f"settings must be a train.TrainConfig, got {type(settings).__name__}")
    check_labels_fit(model, train, validation)
    max_length = check_max_length(model, max_length)
    s = settings
    device = device if device is not None else config.get_device()
    model.to(device)
    if frozen_body is not None:
        freeze_body(model, frozen_body)
    initial = fingerprint(model) if cache else None
    train_ds = TextClassificationDataset(tokenizer, train.texts, train.labels, max_length)
    val_ds = TextClassificationDataset(tokenizer, validation.texts, validation.labels, max_length)
    train_loader = train_ds.loader(s.batch_size, shuffle=True, seed=s.seed, group_by_length=bool(group_by_length))
    val_loader = val_ds.loader(max(s.batch_size, 64))
    total = s.total_steps(len(train_loader))
    optimizer, scheduler = training.optimizer_and_schedule(model, s, total, head_prefix=head_prefixes(model))
    run = None
    if cache:
        run = {"train": s.as_dict(), "frozen_body": frozen_body, "max_length": max_length,
               "group_by_length": bool(group_by_length), "amp": amp,
               "data": fingerprint(train.texts, train.labels, validation.texts, validation.labels),
               "tokens": fingerprint(*_token_ids(train_ds), *_token_ids(val_ds), train_ds.pad_id),
               "initial_weights": initial, "device": str(device)}
    torch.manual_seed(s.seed)   # dropout masks
    return training.fit(model, train_loader, loss_fn=classification_loss, optimizer=optimizer,
                        scheduler=scheduler, epochs=s.epochs, max_steps=s.max_steps, val_loader=val_loader,
                        evaluate_fn=evaluate_classifier, eval_every=s.eval_every, monitor="val_accuracy",
                        mode="max", amp=amp, patience=s.patience, restore_best=True, device=device,
                        progress=progress, verbose=verbose, cache=cache, settings=run)
