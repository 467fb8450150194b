"""Text as one stream of token ids, windows cut from it, and the n-gram baselines a language
model must beat (lesson 08).

A causal language model reads documents as one long stream: each document's ids, with a
separator (``[SEP]``) between documents, so that the model learns where a text ends. It trains
on random windows of ``length + 1`` tokens (the first ``length`` are read, the last ``length``
are predicted) and is judged on fixed windows of held-out documents against two baselines that
ignore most of the context: the unigram (add-one counts) and the bigram interpolated with it::

    from textft_lib import lm_data
    train = lm_data.token_stream(train_texts, tokenizer)            # (N,) int64, cached on disk
    held = lm_data.token_stream(held_out_texts, tokenizer)
    batch = lm_data.random_windows(train, 128, 32, generator=g)     # (32, 129)
    windows = lm_data.eval_windows(held, 128, max_windows=256)      # (256, 129), fixed
    lm_data.baseline_losses(train, windows, len(tokenizer))        # {"unigram": ..., "bigram": ...}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
from torch import Tensor

from textft_lib import cache, config
from textft_lib.checks import check_int, check_number

#: Documents tokenized per call of the fast tokenizer (and per step of the progress bar).
CHUNK = 1000


def _check_stream(stream: Any, name: str = "stream", *, min_length: int = 2) -> Tensor:
    if not isinstance(stream, Tensor) or stream.ndim != 1 or stream.dtype.is_floating_point \
            or stream.dtype == torch.bool:
        got = f"shape {tuple(stream.shape)}, dtype {stream.dtype}" if isinstance(stream, Tensor) else type(stream).__name__
        raise ValueError(f"{name} must be a 1-D tensor of token ids (integers), got {got}")
    if len(stream) < min_length:
        raise ValueError(f"{name} holds {len(stream)} tokens, fewer than the {min_length} needed")
    return stream


def _backend(tokenizer: Any) -> Any:
    """The ``tokenizers.Tokenizer`` behind ``tokenizer`` (a fast ``transformers`` tokenizer or
    a ``tokenizers.Tokenizer`` itself)."""
    backend = getattr(tokenizer, "backend_tokenizer", tokenizer)
    if not (hasattr(backend, "encode_batch") and hasattr(backend, "to_str")):
        raise TypeError(f"token_stream needs a fast tokenizer (a tokenizers.Tokenizer behind it), got "
                        f"{type(tokenizer).__name__}")
    return backend


def encode_stream(texts: Sequence[str], tokenizer: Any, separator_id: int, *, progress: bool = False) -> Tensor:
    """The ids of every text, in order, with ``separator_id`` between two texts (not after the
    last): ``(N,)`` int64. No other special tokens are added. Example::

        encode_stream(["a b", "c"], tok, tok.sep_token_id)        # ids of "a b", [SEP], ids of "c"
    """
    backend = _backend(tokenizer)
    separator = torch.tensor([separator_id], dtype=torch.long)
    parts: list[Tensor] = []
    chunks = range(0, len(texts), CHUNK)
    if progress and len(texts) > CHUNK:
        from tqdm.auto import tqdm
        chunks = tqdm(chunks, desc="tokenizing", unit=f"{CHUNK} docs", leave=False)
    for start in chunks:
        for enc in backend.encode_batch(list(texts[start:start + CHUNK]), add_special_tokens=False):
            if parts:
                parts.append(separator)
            parts.append(torch.tensor(enc.ids, dtype=torch.long))
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)


def stream_key(texts: Sequence[str], tokenizer: Any, separator_id: int) -> str:
    """The cache key of a stream: a hash of the texts, the whole tokenizer (its JSON) and the separator."""
    return cache.key(list(texts), _backend(tokenizer).to_str(), separator_id)


def stream_path(key: str) -> Path:
    """Where the stream of ``key`` is cached: ``config.cache_dir("lm_data")/stream-<key>.safetensors``."""
    return config.cache_dir("lm_data") / f"stream-{key}.safetensors"


def token_stream(texts: Sequence[str], tokenizer: Any, *, separator_id: int | None = None,
                 use_cache: bool = True, progress: bool = True) -> Tensor:
    """``encode_stream`` of ``texts`` (``separator_id`` defaults to the tokenizer's ``[SEP]``),
    cached under ``config.cache_dir("lm_data")`` by ``stream_key``: the second call with the same
    texts and tokenizer reads the file (int32 safetensors) instead of tokenizing. ``(N,)`` int64.

    Example::

        train = token_stream(train_texts, tok)       # ~30 s for 10 M words the first time, then instant
    """
    from safetensors.torch import load, save

    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a sequence of strings (documents)")
    if not texts:
        raise ValueError("texts is empty: there is nothing to tokenize")
    if separator_id is None:
        separator_id = getattr(tokenizer, "sep_token_id", None)
        if separator_id is None:
            raise ValueError("the tokenizer has no [SEP] token: give separator_id")
    separator_id = check_int(separator_id, "separator_id", minimum=0)
    path = stream_path(stream_key(texts, tokenizer, separator_id)) if use_cache else None
    if path is not None and path.exists():
        return load(path.read_bytes())["ids"].long()
    stream = encode_stream(texts, tokenizer, separator_id, progress=progress)
    if path is not None:
        cache.atomic_write_bytes(path, save({"ids": stream.to(torch.int32)}))
    return stream


def random_windows(stream: Tensor, length: int, batch_size: int, *,
                   generator: torch.Generator | None = None) -> Tensor:
    """``batch_size`` windows of ``length + 1`` consecutive tokens at uniformly random starts:
    ``(batch_size, length + 1)``. Row ``b`` is ``stream[s_b : s_b + length + 1]``. Example::

        batch = random_windows(train, 128, 32, generator=torch.Generator().manual_seed(0))
    """
    length = check_int(length, "length", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    _check_stream(stream, min_length=length + 1)
    starts = torch.randint(0, len(stream) - length, (batch_size,), generator=generator)   # (B,)
    return stream[starts[:, None] + torch.arange(length + 1)]                             # (B, L + 1)


class RandomWindows:
    """``steps`` batches of ``random_windows``, seeded: every pass yields the same batches, and
    ``len()`` is ``steps`` (so a progress bar knows its total). A training loader for
    ``train.fit(..., max_steps=steps)``. Example::

        loader = RandomWindows(train, length=128, batch_size=32, steps=700, seed=0)
        next(iter(loader)).shape                                   # (32, 129)
    """

    def __init__(self, stream: Tensor, length: int, batch_size: int, steps: int, *, seed: int = 0) -> None:
        self.length = check_int(length, "length", minimum=1)
        self.batch_size = check_int(batch_size, "batch_size", minimum=1)
        self.steps = check_int(steps, "steps", minimum=1)
        self.seed = check_int(seed, "seed")
        self.stream = _check_stream(stream, min_length=self.length + 1)

    def __len__(self) -> int:
        return self.steps

    def __iter__(self) -> Iterator[Tensor]:
        generator = torch.Generator().manual_seed(self.seed)
        for _ in range(self.steps):
            yield random_windows(self.stream, self.length, self.batch_size, generator=generator)


def eval_windows(stream: Tensor, length: int, max_windows: int | None = None) -> Tensor:
    """Fixed windows of ``length + 1`` tokens for evaluation, ``(n, length + 1)``. Window ``i``
    starts at ``i * length``, so neighbours share one token and every token after the first is
    predicted exactly once. With ``max_windows``, that many windows spread evenly over the
    stream (a sample of every part of it, not just its first documents). Example::

        windows = eval_windows(held, 128, max_windows=256)          # (256, 129)
    """
    length = check_int(length, "length", minimum=1)
    _check_stream(stream, min_length=length + 1)
    n = (len(stream) - 1) // length
    index = torch.arange(n)
    if max_windows is not None and check_int(max_windows, "max_windows", minimum=1) < n:
        index = torch.linspace(0, n - 1, max_windows).round().long()
    return stream[index[:, None] * length + torch.arange(length + 1)]


def unigram_log_probs(stream: Tensor, vocab_size: int) -> Tensor:
    """``log p(w)`` of every token id with add-one counts, ``log((count(w) + 1) / (N + V))``:
    ``(vocab_size,)``. No token gets probability 0. Example::

        unigram_log_probs(torch.tensor([0, 0, 1]), 3).exp()          # [0.5, 0.333, 0.167]
    """
    vocab_size = check_int(vocab_size, "vocab_size", minimum=1)
    _check_stream(stream, min_length=1)
    if int(stream.min()) < 0 or int(stream.max()) >= vocab_size:
        raise ValueError(f"the stream holds ids outside [0, {vocab_size})")
    counts = torch.bincount(stream, minlength=vocab_size).double() + 1.0
    return (counts / counts.sum()).log()


def bigram_log_probs(stream: Tensor, vocab_size: int, prev: Tensor, nxt: Tensor, *,
                     weight: float = 0.7) -> Tensor:
    """``log p(nxt | prev)`` of each pair (tensors of the same shape) under the interpolated
    bigram of ``stream``: ``weight * count(prev, nxt) / count(prev) + (1 - weight) * p_unigram(nxt)``
    with ``weight`` in [0, 1) (1 would give every unseen pair probability 0), where
    ``count(prev)`` counts ``prev`` followed by any token; a ``prev`` never seen followed gets
    the unigram in place of its bigram term. Same shape as ``prev``. The pair counts are kept
    sparse (sorted pair codes ``prev * V + nxt``), not as a ``(V, V)`` table. Example::

        bigram_log_probs(train, V, windows[:, :-1], windows[:, 1:])   # (n, L)
    """
    weight = check_number(weight, "weight", low=0.0, high=1.0, high_open=True)
    if not isinstance(prev, Tensor) or not isinstance(nxt, Tensor) or prev.shape != nxt.shape:
        raise ValueError("prev and nxt must be tensors of the same shape")
    _check_stream(stream)
    uni = unigram_log_probs(stream, vocab_size).exp()                                 # (V,)
    if prev.numel() and (int(torch.minimum(prev, nxt).min()) < 0
                         or int(torch.maximum(prev, nxt).max()) >= vocab_size):
        raise ValueError(f"prev and nxt must be ids in [0, {vocab_size})")
    codes, counts = (stream[:-1] * vocab_size + stream[1:]).unique(return_counts=True)  # sorted
    query = prev.reshape(-1) * vocab_size + nxt.reshape(-1)
    at = torch.searchsorted(codes, query).clamp(max=len(codes) - 1)
    pair = torch.where(codes[at] == query, counts[at], 0).double()
    context = torch.bincount(stream[:-1], minlength=vocab_size).double()[prev.reshape(-1)]
    p_uni = uni[nxt.reshape(-1)]
    p_bi = torch.where(context > 0, pair / context.clamp(min=1.0), p_uni)
    return (weight * p_bi + (1.0 - weight) * p_uni).log().reshape(prev.shape)


def baseline_losses(train_stream: Tensor, windows: Tensor, vocab_size: int, *,
                    weight: float = 0.7) -> dict[str, float]:
    """The mean cross-entropy (nats per token) of the unigram and the interpolated bigram of
    ``train_stream`` on the targets ``windows[:, 1:]`` of ``(n, L + 1)`` windows: the same tokens
    a model's loss on those windows scores. Example::

        baseline_losses(train, eval_windows(held, 128), V)          # {"unigram": ..., "bigram": ...}
    """
    if not isinstance(windows, Tensor) or windows.ndim != 2 or windows.shape[1] < 2:
        got = tuple(windows.shape) if isinstance(windows, Tensor) else type(windows).__name__
        raise ValueError(f"windows must have shape (n, length + 1) with length >= 1, got {got}")
    prev, nxt = windows[:, :-1], windows[:, 1:]
    unigram = -unigram_log_probs(train_stream, vocab_size)[nxt].mean()
    bigram = -bigram_log_probs(train_stream, vocab_size, prev, nxt, weight=weight).mean()
    return {"unigram": float(unigram), "bigram": float(bigram)}
