"""Masked-language-model data: articles cut into ``[CLS] ... [SEP]`` blocks (``make_blocks``,
``pack_blocks``), BERT's masking (``mask_tokens``, ``MLMCollator``: 15% of the real tokens,
of those 80% ``[MASK]``, 10% random, 10% kept), the unigram baseline, and the held-out
evaluation on fixed masks (``evaluate_mlm``).

Example::

    blocks = make_blocks(train_texts, tok, block_size=128)       # (N, 128)
    batch = MLMCollator(tok, seed=0)(list(blocks[:32]))           # input_ids, labels, attention_mask
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from textft_lib.bert.model import IGNORE_INDEX, BertForMLM
from textft_lib.checks import check_int
from textft_lib.train import evaluating


def make_blocks(texts: Iterable[str], tokenizer: Any, block_size: int = 128) -> Tensor:
    """Tokenize ``texts`` and cut each into blocks ``[CLS] t1 ... tn [SEP]`` of ``block_size`` ids.

    Each text (an article) is encoded without special tokens and cut into pieces of
    ``block_size - 2`` tokens; a block never spans two texts. The last piece of a text
    is padded with ``[PAD]``. Returns a ``(num_blocks, block_size)`` int64 tensor.

    Example::

        blocks = make_blocks(train_texts, tokenizer, block_size=128)   # (N, 128)
        attention_mask = blocks != tokenizer.pad_token_id              # True = real token
    """
    encoded = _encode_texts(texts, tokenizer, "make_blocks")
    return torch.cat([make_blocks_from_ids(ids, tokenizer, block_size) for ids in encoded if ids])


def pack_blocks(texts: Iterable[str], tokenizer: Any, block_size: int = 128) -> Tensor:
    """Tokenize short ``texts`` (sentences, reviews) and pack them end to end into full
    blocks ``[CLS] t1 ... tn [SEP]`` of ``block_size`` ids.

    ``make_blocks`` gives every text blocks of its own, which suits articles; a sentence of
    15 tokens would then fill a 128-token block with 113 ``[PAD]``, and MLM would spend
    almost all its work on padding. Here the token stream of all texts (in the given order)
    is cut every ``block_size - 2`` tokens, so a block may hold the end of one text and the
    start of the next, as in RoBERTa's pretraining. Only the last block is padded.
    Returns a ``(num_blocks, block_size)`` int64 tensor.

    Example::

        blocks = pack_blocks(["a fine film .", "dull ."], tokenizer, block_size=8)   # (1, 8)
    """
    encoded = _encode_texts(texts, tokenizer, "pack_blocks")
    return make_blocks_from_ids([i for ids in encoded for i in ids], tokenizer, block_size)


def _encode_texts(texts: Iterable[str], tokenizer: Any, caller: str) -> list[list[int]]:
    """The token ids of the non-blank ``texts`` (no special tokens); raises when nothing is left."""
    if isinstance(texts, str):
        raise TypeError(f"{caller} expects a list of texts, not one string (it would be read as characters): "
                        "wrap it as [text]")
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ValueError(f"{caller} needs at least one non-empty text")
    # verbose=False: articles are longer than model_max_length, which is fine before cutting
    encoded = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    if not any(encoded):
        raise ValueError(f"{caller}: the texts tokenized to nothing")
    return encoded


def make_blocks_from_ids(ids: Sequence[int], tokenizer: Any, block_size: int) -> Tensor:
    """Cut one token stream ``ids`` into ``[CLS] ... [SEP]`` blocks of ``block_size``, the last padded."""
    if block_size < 3:
        raise ValueError(f"block_size must be at least 3 ([CLS], one token, [SEP]), got {block_size}")
    cls_id, sep_id, pad_id = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    if None in (cls_id, sep_id, pad_id):
        raise ValueError("the tokenizer needs [CLS], [SEP] and [PAD] tokens")
    if len(ids) == 0:
        raise ValueError("no tokens to cut into blocks: the texts tokenized to nothing")
    body = block_size - 2
    rows = []
    for start in range(0, len(ids), body):
        piece = [cls_id, *ids[start:start + body], sep_id]
        rows.append(piece + [pad_id] * (block_size - len(piece)))
    return torch.tensor(rows, dtype=torch.long)


# --------------------------------------------------------------------------- masking


def mask_tokens(input_ids: Tensor, special_mask: Tensor, *, mask_token_id: int, random_ids: Tensor,
                mlm_probability: float = 0.15, mask_replace_prob: float = 0.8, random_replace_prob: float = 0.1,
                generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """BERT's masking: returns ``(inputs, labels)``, both ``(B, L)`` like ``input_ids``.

    * each position where ``special_mask`` is False is chosen with probability
      ``mlm_probability`` (15%); special tokens and padding are never chosen;
    * a chosen position becomes ``mask_token_id`` with probability ``mask_replace_prob``
      (80%), a token drawn uniformly from ``random_ids`` with probability
      ``random_replace_prob`` (10%), and keeps its token otherwise (10%);
    * ``labels`` holds the original id at chosen positions and -100 everywhere else.

    ``input_ids`` is not modified. Example::

        special = torch.isin(ids, torch.tensor(tokenizer.all_special_ids))
        inputs, labels = mask_tokens(ids, special, mask_token_id=tokenizer.mask_token_id,
                                     random_ids=torch.arange(5, len(tokenizer)))
    """
    if input_ids.dtype != torch.long:
        raise TypeError(f"input_ids must be int64, got {input_ids.dtype}")
    if special_mask.shape != input_ids.shape or special_mask.dtype != torch.bool:
        raise ValueError(f"special_mask must be a bool tensor of shape {tuple(input_ids.shape)}, "
                         f"got {special_mask.dtype} {tuple(special_mask.shape)}")
    if not 0.0 < mlm_probability < 1.0:
        raise ValueError(f"mlm_probability must be in (0, 1), got {mlm_probability}")
    if mask_replace_prob < 0 or random_replace_prob < 0 or mask_replace_prob + random_replace_prob > 1:
        raise ValueError("mask_replace_prob and random_replace_prob must be >= 0 and sum to at most 1, "
                         f"got {mask_replace_prob} and {random_replace_prob}")
    if random_ids.numel() == 0:
        raise ValueError("random_ids is empty: there is no token to draw random replacements from")
    device = input_ids.device

    def uniform() -> Tensor:
        return torch.rand(input_ids.shape, generator=generator, device=device)

    chosen = (uniform() < mlm_probability) & ~special_mask               # (B, L) the 15%
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    # one draw decides the fate of each chosen token: [0, .8) mask, [.8, .9) random, rest keep
    fate = uniform()
    to_mask = chosen & (fate < mask_replace_prob)
    to_random = chosen & (fate >= mask_replace_prob) & (fate < mask_replace_prob + random_replace_prob)
    pick = torch.randint(len(random_ids), input_ids.shape, generator=generator, device=device)
    inputs = input_ids.clone()
    inputs[to_mask] = mask_token_id
    inputs[to_random] = random_ids.to(device)[pick[to_random]]
    return inputs, labels


class MLMCollator:
    """Turn a list of equal-length id sequences into a masked batch for MLM training.

    ``__call__(examples)`` takes a list of ``(L,)`` int tensors (or lists of ints) and
    returns a dict of ``(B, L)`` tensors: ``input_ids`` (masked), ``labels`` (original ids
    at the chosen positions, -100 elsewhere) and ``attention_mask`` (bool, True = real
    token). The tokenizer's special ids (``[PAD]``, ``[CLS]``, ``[SEP]``, ``[UNK]``,
    ``[MASK]``) are never chosen; random replacements are drawn from the other ids.

    Example::

        collate = MLMCollator(tokenizer, seed=0)
        loader = torch.utils.data.DataLoader(blocks, batch_size=32, shuffle=True, collate_fn=collate)
        batch = next(iter(loader))     # batch["input_ids"], batch["labels"], batch["attention_mask"]
    """

    def __init__(self, tokenizer: Any, *, mlm_probability: float = 0.15, mask_replace_prob: float = 0.8,
                 random_replace_prob: float = 0.1, seed: int | None = None) -> None:
        if tokenizer.mask_token_id is None or tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer needs [MASK] and [PAD] tokens for masked-language modelling")
        self.mask_token_id = int(tokenizer.mask_token_id)
        self.pad_token_id = int(tokenizer.pad_token_id)
        self.vocab_size = len(tokenizer)
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        self.random_ids = torch.tensor([i for i in range(self.vocab_size) if i not in set(self.special_ids.tolist())])
        self.mlm_probability = mlm_probability
        self.mask_replace_prob = mask_replace_prob
        self.random_replace_prob = random_replace_prob
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None

    def __call__(self, examples: Sequence[Tensor | Sequence[int]]) -> dict[str, Tensor]:
        if len(examples) == 0:
            raise ValueError("MLMCollator got an empty list of examples")
        rows = [torch.as_tensor(e) for e in examples]
        if any(r.dtype == torch.bool or r.is_floating_point() or r.is_complex() for r in rows if r.numel()):
            raise TypeError("MLMCollator expects integer token ids, got "
                            f"{sorted({str(r.dtype) for r in rows})}: float ids would be truncated")
        rows = [r.long() for r in rows]
        lengths = {r.shape for r in rows}
        if len(lengths) != 1 or rows[0].dim() != 1:
            raise ValueError(f"MLMCollator expects 1-D sequences of one length (use make_blocks), got shapes {lengths}")
        ids = torch.stack(rows)                                              # (B, L)
        if int(ids.min()) < 0 or int(ids.max()) >= self.vocab_size:
            raise IndexError(f"token ids must lie in [0, {self.vocab_size}), got {int(ids.min())}..{int(ids.max())}")
        special = torch.isin(ids, self.special_ids)
        inputs, labels = mask_tokens(ids, special, mask_token_id=self.mask_token_id, random_ids=self.random_ids,
                                     mlm_probability=self.mlm_probability, mask_replace_prob=self.mask_replace_prob,
                                     random_replace_prob=self.random_replace_prob, generator=self.generator)
        return {"input_ids": inputs, "labels": labels, "attention_mask": ids != self.pad_token_id}


# --------------------------------------------------------------------------- the unigram baseline


def unigram_log_probs(blocks: Tensor, vocab_size: int, special_ids: Iterable[int]) -> Tensor:
    """Log-frequencies of the non-special tokens in ``blocks``, with add-one smoothing.

    Returns a ``(vocab_size,)`` tensor of log-probabilities (special ids get ``-inf``):
    the best guess for a masked token when the context is ignored.
    """
    special = torch.tensor(sorted(set(special_ids)), dtype=torch.long)
    counts = torch.bincount(blocks.reshape(-1), minlength=vocab_size).double()
    if counts.numel() != vocab_size:
        raise IndexError(f"blocks hold ids >= vocab_size={vocab_size}")
    counts += 1.0
    counts[special] = 0.0
    return (counts / counts.sum()).log().float()


def unigram_loss(log_probs: Tensor, labels: Tensor) -> float:
    """Cross-entropy (nats) of predicting each labelled token from ``log_probs`` alone.

    ``labels`` is ``(B, L)`` with -100 at ignored positions, as ``MLMCollator`` makes it.
    """
    targets = labels[labels != IGNORE_INDEX]
    if targets.numel() == 0:
        raise ValueError("labels hold no masked position")
    return float(-log_probs[targets].double().mean())


def fixed_mask_batches(blocks: Tensor, collator: MLMCollator, *, batch_size: int = 64,
                       seed: int = 0) -> list[dict[str, Tensor]]:
    """Masked batches of ``blocks`` drawn with a generator seeded by ``seed``: the same
    blocks and seed always give the same masks (for evaluations that compare models)."""
    if blocks.dim() != 2 or len(blocks) == 0:
        raise ValueError(f"blocks must be a non-empty (N, L) tensor, got {tuple(blocks.shape)}")
    saved = collator.generator
    collator.generator = torch.Generator().manual_seed(seed)
    try:
        return [collator(list(blocks[i:i + batch_size])) for i in range(0, len(blocks), batch_size)]
    finally:
        collator.generator = saved


@torch.no_grad()
def evaluate_mlm(model: BertForMLM, blocks: Tensor, collator: MLMCollator, *, batch_size: int = 64,
                 seed: int = 0) -> dict[str, float]:
    """Mean MLM loss (nats per masked token) and masked-token accuracy on ``blocks``.

    The masks come from ``fixed_mask_batches`` (seeded), so successive evaluations
    differ only by the model. Returns ``{"loss", "accuracy", "masked_tokens"}`` plus the
    loss split by what the input showed at the chosen position: ``loss_mask`` (``[MASK]``,
    the 80%), ``loss_random`` (a random token, 10%) and ``loss_kept`` (the true token
    itself, 10%). A model that copies its input scores well on ``loss_kept`` without
    reading any context; only ``loss_mask`` says whether it uses the words around the blank.
    """
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    device = next(model.parameters()).device
    nll_parts, kind_parts, correct = [], [], 0
    with evaluating(model):
        for batch in fixed_mask_batches(blocks, collator, batch_size=batch_size, seed=seed):
            labels = batch["labels"]
            where = labels != IGNORE_INDEX                                          # (B, L)
            if not bool(where.any()):
                continue
            _, logits, targets = model.mlm_loss(batch["input_ids"].to(device), labels.to(device),
                                                batch["attention_mask"].to(device))
            nll_parts.append(F.cross_entropy(logits.float(), targets, reduction="none").cpu())   # (N,)
            shown = batch["input_ids"][where]                                       # (N,) what the model saw
            kind_parts.append(torch.where(shown == collator.mask_token_id, 0,
                                          torch.where(shown == labels[where], 2, 1)))
            correct += int((logits.argmax(-1) == targets).sum())
    if not nll_parts:
        raise ValueError("no masked position in the evaluation blocks")
    nll, kind = torch.cat(nll_parts).double(), torch.cat(kind_parts)
    out = {"loss": float(nll.mean()), "accuracy": correct / len(nll), "masked_tokens": len(nll)}
    for k, name in enumerate(("loss_mask", "loss_random", "loss_kept")):
        out[name] = float(nll[kind == k].mean()) if bool((kind == k).any()) else float("nan")
    return out


def unigram_baseline(train_blocks: Tensor, held_out_blocks: Tensor, tokenizer: Any, *, seed: int = 0,
                     batch_size: int = 64) -> dict[str, float]:
    """The unigram baseline on the same held-out masks as ``evaluate_mlm``: its loss and
    the accuracy of always guessing the most frequent token. Frequencies come from
    ``train_blocks``."""
    collator = MLMCollator(tokenizer)
    log_probs = unigram_log_probs(train_blocks, len(tokenizer), tokenizer.all_special_ids)
    labels = torch.cat([b["labels"].reshape(-1) for b in
                        fixed_mask_batches(held_out_blocks, collator, batch_size=batch_size, seed=seed)])
    targets = labels[labels != IGNORE_INDEX]
    return {"loss": unigram_loss(log_probs, labels),
            "accuracy": float((targets == log_probs.argmax()).float().mean())}
