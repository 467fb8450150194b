"""Tests of textft_lib.word2vec: skip-gram pairs, the SGNS loss and its closed-form step, training."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch

from textft_lib import vectors, word2vec


def brute_force_pairs(doc: list[int], reach: list[int]) -> Counter:
    """Every (centre, context) pair the definition gives, for given per-centre windows."""
    pairs: Counter = Counter()
    for t, centre in enumerate(doc):
        for s in range(len(doc)):
            if s != t and abs(s - t) <= reach[t]:
                pairs[centre, doc[s]] += 1
    return pairs


@pytest.mark.parametrize("window", [1, 3, 8])
def test_skipgram_pairs_match_the_definition(window: int) -> None:
    doc = np.array([0, 3, 1, 4, 1, 5, 2, 6, 5, 3])
    pairs = word2vec.skipgram_pairs([doc], window=window, rng=np.random.default_rng(7))
    reach = np.random.default_rng(7).integers(1, window + 1, size=len(doc))   # the same draws, in order
    assert Counter(map(tuple, pairs.tolist())) == brute_force_pairs(doc.tolist(), reach.tolist())


def test_skipgram_pairs_stay_inside_documents_and_subsample() -> None:
    docs = [np.array([0, 1]), np.array([2, 3])]
    pairs = word2vec.skipgram_pairs(docs, window=5, rng=np.random.default_rng(0))
    assert {tuple(p) for p in pairs.tolist()} <= {(0, 1), (1, 0), (2, 3), (3, 2)}
    keep = np.array([1.0, 1.0, 0.0, 1.0])                      # word 2 is always dropped
    pairs = word2vec.skipgram_pairs(docs, window=5, keep=keep, rng=np.random.default_rng(0))
    assert 2 not in pairs and len(word2vec.skipgram_pairs([np.array([4])], window=3)) == 0


def test_window_draws_make_near_words_more_frequent() -> None:
    doc = np.arange(20_000) % 97
    pairs = word2vec.skipgram_pairs([doc], window=4, rng=np.random.default_rng(0))
    dist = Counter(np.abs((pairs[:, 1] - pairs[:, 0] + 48) % 97 - 48).tolist())
    for k in range(1, 5):                                     # used with probability (W - k + 1) / W
        assert dist[k] / (2 * len(doc)) == pytest.approx((4 - k + 1) / 4, abs=0.02)


def test_sgns_step_is_sgd_on_the_loss() -> None:
    gen = torch.Generator().manual_seed(0)
    w_in, w_out = torch.randn(12, 6, generator=gen), torch.randn(12, 6, generator=gen)
    centre = torch.tensor([0, 3, 3, 7])                       # a repeated centre: its gradients add
    targets = torch.tensor([[1, 2, 5], [4, 4, 9], [0, 1, 2], [3, 11, 0]])
    a, b = w_in.clone().requires_grad_(), w_out.clone().requires_grad_()
    loss = word2vec.sgns_loss(a, b, centre, targets)
    loss.sum().backward()
    losses = word2vec.sgns_step(w_in, w_out, centre, targets, lr=0.1)
    torch.testing.assert_close(losses, loss.detach())
    torch.testing.assert_close(w_in, (a - 0.1 * a.grad).detach())
    torch.testing.assert_close(w_out, (b - 0.1 * b.grad).detach())


def test_sgns_loss_is_the_formula() -> None:
    w_in, w_out = torch.randn(5, 3), torch.randn(5, 3)
    loss = word2vec.sgns_loss(w_in, w_out, torch.tensor([2]), torch.tensor([[1, 4, 0]]))
    s = [float(w_in[2] @ w_out[k]) for k in (1, 4, 0)]
    sig = lambda x: 1 / (1 + np.exp(-x))
    assert float(loss[0]) == pytest.approx(-np.log(sig(s[0])) - np.log(sig(-s[1])) - np.log(sig(-s[2])), rel=1e-5)


def test_noise_distribution() -> None:
    p = word2vec.noise_distribution([16, 1], power=0.75)
    assert float(p.sum()) == pytest.approx(1.0) and float(p[0] / p[1]) == pytest.approx(8.0)
    with pytest.raises(ValueError, match="positive counts"):
        word2vec.noise_distribution([3, 0])


def test_train_sgns_learns_and_is_seeded() -> None:
    docs = [(["cat", "purrs", "milk"] * 30 + ["dog", "barks", "bone"] * 30) for _ in range(8)]
    vocab = vectors.build_vocab(docs, min_count=1)
    ids = vectors.encode(docs, vocab)
    a = word2vec.train_sgns(ids, vocab.counts, dim=8, window=2, epochs=3, sample=None, lr=0.05,
                            batch_size=64, progress=False)
    b = word2vec.train_sgns(ids, vocab.counts, dim=8, window=2, epochs=3, sample=None, lr=0.05,
                            batch_size=64, progress=False)
    np.testing.assert_array_equal(a.vectors, b.vectors)
    assert a.vectors.shape == (len(vocab), 8) and a.losses[-1] < a.losses[0]
    kv = vectors.to_keyed_vectors(vocab.words, a.vectors)
    assert kv.similarity("cat", "purrs") > kv.similarity("cat", "bone")


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(ids=np.array([0, 1])), TypeError, "list of 1-D integer arrays"),
    (dict(ids=[np.array([0.5, 1.0])]), TypeError, "integer array"),
    (dict(ids=[np.array([0, 9])]), ValueError, "outside"),
    (dict(window=0), ValueError, "window"),
    (dict(negative=0), ValueError, "negative"),
    (dict(lr=0.0), ValueError, "lr"),
    (dict(ids=[np.array([0]), np.array([1])]), ValueError, "no \\(centre, context\\) pair"),
])
def test_train_sgns_refuses_bad_input(kwargs, error, match) -> None:
    args = dict(ids=[np.array([0, 1, 2, 1, 0])], counts=[2, 2, 1], window=2, epochs=1, progress=False, sample=None)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        word2vec.train_sgns(args.pop("ids"), args.pop("counts"), **args)


def test_train_sgns_says_when_it_diverges() -> None:
    ids = [np.array([0, 1, 2, 1, 0] * 40)]
    with pytest.raises(FloatingPointError, match="diverged"):
        word2vec.train_sgns(ids, [80, 80, 40], dim=4, window=2, epochs=2, sample=None, lr=1e30, batch_size=8,
                            progress=False)


def test_bad_keep_and_bad_batches_are_refused() -> None:
    with pytest.raises(ValueError, match="probabilities in \\[0, 1\\]"):
        word2vec.skipgram_pairs([np.array([0, 1])], window=1, keep=[1.0, 1.5])
    w = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="targets \\(B, 1 \\+ K\\)"):
        word2vec.sgns_loss(w, w, torch.tensor([0, 1]), torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match="K >= 1"):
        word2vec.sgns_step(w, w, torch.tensor([0]), torch.tensor([[1]]), lr=0.1)
