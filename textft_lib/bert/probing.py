"""Asking a pretrained MLM: ``fill_mask`` (the top guesses for each blank) and
``mask_word_scores`` (how likely chosen words are in the blank of a template: a zero-shot probe).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import Tensor

from textft_lib.text import pad_batch
from textft_lib.bert.convert import check_tokenizer
from textft_lib.bert.model import BertForMLM
from textft_lib.train import evaluating


@torch.no_grad()
def fill_mask(model: BertForMLM, tokenizer: Any, text: str, *, top_k: int = 5) -> list[list[tuple[str, float]]]:
    """The ``top_k`` guesses (token, probability) for each ``[MASK]`` in ``text``.

    The text is truncated to ``max_position_embeddings`` tokens; a ``[MASK]`` lost to
    truncation, or a text without one, raises. Example::

        fill_mask(model, tok, "The capital of France is [MASK].")   # [[('paris', 0.41), ...]]
    """
    if not isinstance(text, str):
        raise TypeError(f"fill_mask takes one text (a str), got {type(text).__name__}: call it once per text")
    if not text.strip():
        raise ValueError("fill_mask needs a non-empty text")
    check_tokenizer(model, tokenizer)
    n_masks = text.count(tokenizer.mask_token)
    if n_masks == 0:
        raise ValueError(f"the text has no {tokenizer.mask_token} token to fill: {text!r}")
    enc = tokenizer(text, truncation=True, max_length=model.config.max_position_embeddings, return_tensors="pt")
    ids = enc["input_ids"]
    where = (ids[0] == tokenizer.mask_token_id).nonzero().flatten()
    if len(where) != n_masks:
        raise ValueError(f"{n_masks - len(where)} of the {n_masks} masks fell beyond "
                         f"max_position_embeddings={model.config.max_position_embeddings} and were truncated")
    device = next(model.parameters()).device
    with evaluating(model):
        probs = model(ids.to(device))[0, where].softmax(-1)                        # (n_masks, V)
    top = probs.topk(top_k, dim=-1)
    return [[(tokenizer.convert_ids_to_tokens(int(i)), float(p)) for p, i in zip(ps, ix)]
            for ps, ix in zip(top.values, top.indices)]


@torch.no_grad()
def mask_word_scores(model: BertForMLM, tokenizer: Any, texts: Sequence[str], template: str,
                     words: Sequence[str], *, batch_size: int = 64) -> Tensor:
    """Zero-shot probe: how strongly the MLM puts each of ``words`` in the blank of a template.

    ``template`` holds ``{}`` where the text goes and one ``[MASK]`` outside it, e.g.
    ``"{} it was [MASK] ."``; keep spaces around ``{}``, since the text and the template are
    tokenized apart. Every word must be a single, ordinary token of the vocabulary. A long
    text is cut from its end so that the template (and its blank) always fits.
    Returns ``(N, K)`` log-probabilities on the CPU: row n, column k is log P(words[k]) at the
    blank of the template filled with texts[n] (normalised over the whole vocabulary). Example::

        scores = mask_word_scores(model, tok, ["a dull film"], "{} it was [MASK] .", ["bad", "good"])
        scores.argmax(1)                                  # tensor([0]) if the model knows sentiment
    """
    if isinstance(texts, str) or len(texts) == 0:
        raise ValueError("mask_word_scores needs a non-empty list of texts")
    if isinstance(words, str) or len(words) == 0:
        raise ValueError(f"words must be a non-empty list of words, got {words!r}")
    if not isinstance(template, str) or template.count("{}") != 1 or template.count(tokenizer.mask_token) != 1:
        raise ValueError(f"the template needs exactly one '{{}}' and one {tokenizer.mask_token}, got {template!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    check_tokenizer(model, tokenizer)
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise ValueError(f"texts at positions {bad[:5]} are empty or not strings")
    specials = set(tokenizer.all_special_ids)
    encoded = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    for i, ids in enumerate(encoded):
        if not ids or (specials - {tokenizer.unk_token_id}).intersection(ids):
            raise ValueError(f"text at position {i} ({texts[i][:40]!r}) becomes no tokens or holds a special "
                             f"token such as {tokenizer.mask_token}: only the template may hold the blank")
    word_ids = []
    for w in words:
        pieces = tokenizer.tokenize(w)
        wid = tokenizer.convert_tokens_to_ids(pieces[0]) if len(pieces) == 1 else None
        if wid is None or wid in specials:
            raise ValueError(f"{w!r} is not one ordinary token of the vocabulary (it becomes {pieces})")
        word_ids.append(wid)
    prefix, suffix = (tokenizer(part, add_special_tokens=False)["input_ids"] for part in template.split("{}"))
    room = model.config.max_position_embeddings - len(prefix) - len(suffix) - 2
    if room < 1:
        raise ValueError(f"the template takes {len(prefix) + len(suffix) + 2} of the model's "
                         f"{model.config.max_position_embeddings} positions: no room for a text")
    rows = [[tokenizer.cls_token_id, *prefix, *ids[:room], *suffix, tokenizer.sep_token_id] for ids in encoded]
    device = next(model.parameters()).device
    out = []
    with evaluating(model):
        for start in range(0, len(rows), batch_size):
            ids, mask = pad_batch(rows[start:start + batch_size], pad_id=tokenizer.pad_token_id)   # (b, L)
            ids, mask = ids.to(device), mask.to(device)
            h = model.bert(ids, mask)[ids == tokenizer.mask_token_id]               # (b, d): one blank per row
            log_probs = model.head(h, model.decoder_weight).log_softmax(-1)         # (b, V)
            out.append(log_probs[:, word_ids].cpu())
    return torch.cat(out)                                                           # (N, K)
