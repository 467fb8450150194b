"""word2vec's skip-gram with negative sampling (SGNS), written in PyTorch (lesson 02).

Mikolov et al. (2013) train two tables, the word vectors ``w_in`` and the context vectors
``w_out`` (V, d). For a centre word ``c`` and a word ``o`` within its window, and ``K`` noise
words ``n_1..n_K`` drawn from the unigram distribution raised to 0.75, the loss is::

    -log sigma(w_in[c] . w_out[o]) - sum_k log sigma(-w_in[c] . w_out[n_k])

The pieces, each usable on its own::

    from textft_lib import vectors, word2vec
    keep = vectors.keep_probabilities(vocab.counts, sample=1e-3)     # (V,) subsampling
    pairs = word2vec.skipgram_pairs(ids, window=10, keep=keep, rng=np.random.default_rng(0))  # (N, 2)
    noise = word2vec.noise_distribution(vocab.counts)                # (V,) unigram ** 0.75
    loss = word2vec.sgns_loss(w_in, w_out, centre, targets)          # (B,), targets (B, 1 + K)
    result = word2vec.train_sgns(ids, vocab.counts, dim=100, window=10)   # SGNSResult

``train_sgns`` follows the reference C code and gensim: subsampling redrawn every epoch, a
window shrunk at random for each centre word (nearer words count more often), ``w_in``
drawn uniformly in ``[-0.5/d, 0.5/d]`` and ``w_out`` zero, plain SGD with the learning rate
falling linearly from ``lr`` to ``lr * 1e-4``. The returned vectors are ``w_in``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from textft_lib.checks import check_int, check_number
from textft_lib.vectors import keep_probabilities


def _check_ids(ids: Sequence[np.ndarray], vocab_size: int | None = None) -> list[np.ndarray]:
    """``ids`` as a list of 1-D int64 arrays, each value in ``[0, vocab_size)``."""
    if isinstance(ids, np.ndarray) or not isinstance(ids, Sequence) or len(ids) == 0:
        raise TypeError("ids must be a non-empty list of 1-D integer arrays, one per document "
                        "(vectors.encode gives one)")
    docs = []
    for n, doc in enumerate(ids):
        arr = np.asarray(doc)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise TypeError(f"ids[{n}] must be a 1-D integer array, got dtype {arr.dtype}, shape {arr.shape}")
        if arr.size and (arr.min() < 0 or (vocab_size is not None and arr.max() >= vocab_size)):
            raise ValueError(f"ids[{n}] has ids outside [0, {vocab_size}): min {arr.min()}, max {arr.max()}")
        docs.append(arr.astype(np.int64, copy=False))
    return docs


def skipgram_pairs(ids: Sequence[np.ndarray], *, window: int, keep: np.ndarray | None = None,
                   rng: np.random.Generator | None = None) -> np.ndarray:
    """One epoch of (centre, context) id pairs, (N, 2) int64, in corpus order.

    First each occurrence of word ``w`` is kept with probability ``keep[w]`` (``None``: all
    kept); then every centre position draws its own window ``b`` uniformly in 1..``window``
    and pairs with the kept words at most ``b`` positions away on either side, within its
    document. A neighbour ``k`` positions away is thus used with probability
    ``(window - k + 1) / window``, as in word2vec.

    Example::

        >>> skipgram_pairs([np.array([0, 1, 2])], window=1)
        array([[0, 1], [1, 2], [1, 0], [2, 1]])         # by offset: rightward pairs, then leftward
    """
    window = check_int(window, "window", minimum=1)
    if keep is not None:
        keep = np.asarray(keep, dtype=np.float64)
        if keep.ndim != 1 or keep.size == 0 or not np.all((keep >= 0) & (keep <= 1)):   # NaN fails too
            raise ValueError("keep must be a 1-D array of probabilities in [0, 1], one per word "
                             "(vectors.keep_probabilities gives one)")
    docs = _check_ids(ids, None if keep is None else len(keep))
    rng = np.random.default_rng(0) if rng is None else rng
    out = []
    for doc in docs:
        if keep is not None:
            doc = doc[rng.random(len(doc)) < keep[doc]]
        reach = rng.integers(1, window + 1, size=len(doc))   # each centre's own window
        for k in range(1, min(window, len(doc) - 1) + 1):
            right = reach[:-k] >= k                            # centre t sees t + k
            left = reach[k:] >= k                              # centre t + k sees t
            out += [np.stack([doc[:-k][right], doc[k:][right]], 1), np.stack([doc[k:][left], doc[:-k][left]], 1)]
    return np.concatenate(out) if out else np.zeros((0, 2), dtype=np.int64)


def noise_distribution(counts: Sequence[int], *, power: float = 0.75) -> torch.Tensor:
    """The distribution negative samples are drawn from, (V,) float64: ``counts ** power``,
    normalised. 0.75 is word2vec's choice: rare words are drawn more often than their
    frequency, *the* less often."""
    c = np.asarray(counts, dtype=np.float64)
    if c.ndim != 1 or c.size == 0 or not np.isfinite(c).all() or np.any(c <= 0):
        raise ValueError("counts must be a non-empty 1-D sequence of finite, positive counts (the vocabulary's)")
    p = c ** check_number(power, "power", low=0.0)
    return torch.from_numpy(p / p.sum())


def _check_batch(centre: torch.Tensor, targets: torch.Tensor) -> None:
    if centre.ndim != 1 or targets.ndim != 2 or targets.shape[0] != centre.shape[0] or targets.shape[1] < 2:
        raise ValueError(f"centre must be (B,) and targets (B, 1 + K) with K >= 1 noise words, got "
                         f"{tuple(centre.shape)} and {tuple(targets.shape)}")


def sgns_loss(w_in: torch.Tensor, w_out: torch.Tensor, centre: torch.Tensor, targets: torch.Tensor
              ) -> torch.Tensor:
    """The skip-gram negative-sampling loss of each pair, (B,).

    ``w_in``, ``w_out``: (V, d). ``centre``: (B,) ids. ``targets``: (B, 1 + K) ids, column 0
    the true context word and columns 1..K the noise words. Returns
    ``-log sigma(s_0) - sum_k log sigma(-s_k)`` with ``s = w_out[targets] . w_in[centre]``.
    Unlike the C code, a noise word that happens to equal the context is not skipped (with
    thousands of words, rare).
    """
    _check_batch(centre, targets)
    scores = (w_out[targets] * w_in[centre].unsqueeze(1)).sum(-1)      # (B, 1 + K)
    return F.softplus(-scores[:, 0]) + F.softplus(scores[:, 1:]).sum(-1)


def sgns_step(w_in: torch.Tensor, w_out: torch.Tensor, centre: torch.Tensor, targets: torch.Tensor,
              lr: float) -> torch.Tensor:
    """One SGD step on the summed ``sgns_loss`` of a batch, in place; returns the (B,) losses.

    The gradient in closed form: with ``g = sigma(s) - y`` (``y`` 1 for the true context, 0
    for noise), (B, 1 + K), row ``w_in[c]`` gets ``sum_k g_k w_out[t_k]`` and row
    ``w_out[t_k]`` gets ``g_k w_in[c]``; ``index_add_`` sums them per row (a word used twice in
    the batch gets both). No autograd graph, which on a CPU is several times faster.
    """
    _check_batch(centre, targets)
    v, u = w_in[centre], w_out[targets]                                # (B, d), (B, 1 + K, d)
    scores = (u * v.unsqueeze(1)).sum(-1)                              # (B, 1 + K)
    g = torch.sigmoid(scores)
    g[:, 0] -= 1.0
    w_in.index_add_(0, centre, torch.bmm(g.unsqueeze(1), u).squeeze(1), alpha=-lr)
    w_out.index_add_(0, targets.reshape(-1), (g.unsqueeze(-1) * v.unsqueeze(1)).reshape(-1, v.shape[1]), alpha=-lr)
    return F.softplus(-scores[:, 0]) + F.softplus(scores[:, 1:]).sum(-1)


@dataclass
class SGNSResult:
    """What ``train_sgns`` returns: the word vectors ``w_in`` (V, d) float32, the context
    vectors ``w_out`` (V, d), the mean loss of every epoch and the training time in seconds."""

    vectors: np.ndarray
    context_vectors: np.ndarray
    losses: list[float]
    seconds: float


def train_sgns(ids: Sequence[np.ndarray], counts: Sequence[int], *, dim: int = 100, window: int = 10,
               negative: int = 5, epochs: int = 5, sample: float | None = 1e-3, lr: float = 0.025,
               batch_size: int = 4096, seed: int = 0, num_threads: int | None = 1,
               progress: bool = True) -> SGNSResult:
    """Train skip-gram with negative sampling on encoded documents ``ids`` (``vectors.encode``).

    ``counts[w]`` is word ``w``'s corpus count (``vocab.counts``): it sets the subsampling
    (``sample``; ``None`` keeps every word) and the noise distribution. Every epoch draws
    new pairs (``skipgram_pairs``), shuffles them, and takes ``sgns_step`` on batches of
    ``batch_size`` pairs with ``negative`` noise words each; the learning rate falls linearly
    over all batches from ``lr`` to ``lr * 1e-4``. ``num_threads`` sets torch's CPU threads
    while training (restored after). Seeded: the same arguments give the same vectors.

    Example::

        >>> result = train_sgns(ids, vocab.counts, dim=50, epochs=3, progress=False)
        >>> result.vectors.shape, result.losses[-1] < result.losses[0]
        ((V, 50), True)
    """
    noise = noise_distribution(counts)
    V = len(noise)
    docs = _check_ids(ids, V)
    dim, window = check_int(dim, "dim", minimum=1), check_int(window, "window", minimum=1)
    negative, epochs = check_int(negative, "negative", minimum=1), check_int(epochs, "epochs", minimum=1)
    batch_size, seed = check_int(batch_size, "batch_size", minimum=1), check_int(seed, "seed")
    lr = check_number(lr, "lr", low=0.0, low_open=True)
    keep = None if sample is None else keep_probabilities(counts, sample=sample)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    w_in = (torch.rand(V, dim, generator=gen) - 0.5) / dim               # as word2vec.c
    w_out = torch.zeros(V, dim)
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(check_int(num_threads, "num_threads", minimum=1))
    try:
        start, losses, done = time.perf_counter(), [], 0
        pairs = torch.from_numpy(skipgram_pairs(docs, window=window, keep=keep, rng=rng))
        if len(pairs) == 0:
            raise ValueError("the documents give no (centre, context) pair: each needs at least two words")
        total = len(pairs) * epochs                                      # for the learning-rate schedule
        bar = tqdm(total=epochs * math.ceil(len(pairs) / batch_size), desc="word2vec (SGNS)", disable=not progress)
        for epoch in range(epochs):
            if epoch:
                pairs = torch.from_numpy(skipgram_pairs(docs, window=window, keep=keep, rng=rng))
            loss_sum = 0.0
            for batch in pairs[torch.randperm(len(pairs), generator=gen)].split(batch_size):
                noise_ids = torch.multinomial(noise, len(batch) * negative, replacement=True, generator=gen)
                targets = torch.cat([batch[:, 1:], noise_ids.view(len(batch), negative)], 1)   # (B, 1 + K)
                step_lr = lr * max(1e-4, 1.0 - done / total)
                loss_sum += float(sgns_step(w_in, w_out, batch[:, 0], targets, step_lr).sum())
                done += len(batch)
                bar.update()
            losses.append(loss_sum / len(pairs))
            if not math.isfinite(losses[-1]):
                raise FloatingPointError(f"the loss diverged in epoch {epoch + 1} (it is {losses[-1]}): with "
                                         f"batch_size={batch_size}, lr={lr} is too large; lower either")
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
        bar.close()
    finally:
        torch.set_num_threads(previous)
    return SGNSResult(w_in.numpy(), w_out.numpy(), losses, time.perf_counter() - start)
