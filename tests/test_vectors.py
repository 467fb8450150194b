"""Tests of textft_lib.vectors: co-occurrence counts, PPMI/SVD, GloVe, export, evaluation."""

from __future__ import annotations

import itertools
import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from textft_lib import vectors

TEXT = ("the cat sat on the mat . the dog sat on the log . a cat and a dog met on a mat . "
        "the cat saw the dog and the dog saw the cat").split()


def brute_force_counts(docs: list[list[int]], window: int, harmonic: bool = True) -> dict[tuple[int, int], float]:
    counts: dict[tuple[int, int], float] = defaultdict(float)
    for doc in docs:
        for t, center in enumerate(doc):
            for k in range(1, window + 1):
                if t + k < len(doc):
                    w = 1.0 / k if harmonic else 1.0
                    counts[(center, doc[t + k])] += w
                    counts[(doc[t + k], center)] += w
    return counts


@pytest.mark.parametrize("window", [1, 2, 5, 40])
@pytest.mark.parametrize("weighting", ["harmonic", "uniform"])
def test_cooccurrence_matches_brute_force(window: int, weighting: str) -> None:
    docs = [TEXT[:20], TEXT[20:], TEXT[5:9]]
    vocab = vectors.build_vocab(docs, min_count=1)
    ids = vectors.encode(docs, vocab)
    X = vectors.cooccurrence(ids, len(vocab), window=window, weighting=weighting)
    expected = np.zeros((len(vocab), len(vocab)))
    for (i, j), v in brute_force_counts([list(a) for a in ids], window, weighting == "harmonic").items():
        expected[i, j] = v
    np.testing.assert_allclose(X.toarray(), expected)
    np.testing.assert_allclose(X.toarray(), X.toarray().T)


def test_cooccurrence_never_crosses_documents() -> None:
    X = vectors.cooccurrence([np.array([0]), np.array([1])], 2, window=5)
    assert X.nnz == 0


def test_asymmetric_counts_look_right_only() -> None:
    X = vectors.cooccurrence([np.array([0, 1, 2])], 3, window=2, symmetric=False).toarray()
    np.testing.assert_allclose(X, [[0, 1, 0.5], [0, 0, 1], [0, 0, 0]])


def test_encode_drops_unknown_words() -> None:
    vocab = vectors.build_vocab([["a", "a", "b", "c", "c"]], min_count=2)
    assert vocab.words == ["a", "c"]
    np.testing.assert_array_equal(vectors.encode([["a", "b", "c"]], vocab)[0], [0, 1])


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_window_is_rejected(bad: object) -> None:
    with pytest.raises(ValueError, match="window"):
        vectors.cooccurrence([np.array([0, 1])], 2, window=bad)  # type: ignore[arg-type]


def test_empty_corpus_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        vectors.cooccurrence([np.array([], dtype=np.int64)], 3, window=2)
    with pytest.raises(ValueError, match="empty"):
        vectors.build_vocab([[], []])
    with pytest.raises(TypeError, match="tokenize"):
        vectors.build_vocab(["a text, not tokens"])  # type: ignore[list-item]


def test_out_of_range_ids_are_rejected() -> None:
    with pytest.raises(ValueError, match="word ids"):
        vectors.cooccurrence([np.array([0, 5])], 3, window=2)


def test_keep_probabilities_match_gensim() -> None:
    """word2vec's keep probability, as gensim stores it (``sample_int = round(p * 2**32)``)."""
    from gensim.models import Word2Vec

    docs = [TEXT * 30, ["seldom", "seen"]]
    vocab = vectors.build_vocab(docs, min_count=1)
    keep = vectors.keep_probabilities(vocab.counts, sample=1e-2)
    w2v = Word2Vec(vector_size=4, min_count=1, sample=1e-2)
    w2v.build_vocab(docs)
    gensim_keep = np.array([w2v.wv.get_vecattr(w, "sample_int") / 2**32 for w in vocab.words])
    np.testing.assert_allclose(keep, gensim_keep, atol=1e-9)
    assert keep[0] < keep[-1] == 1.0  # "the" is subsampled, the rarest word is always kept


@pytest.mark.parametrize("counts, sample", [([], 1e-3), ([3, 0], 1e-3), ([3, 1], 0.0), ([3, 1], True)])
def test_keep_probabilities_reject_bad_input(counts: list[int], sample: float) -> None:
    with pytest.raises((ValueError, TypeError)):
        vectors.keep_probabilities(counts, sample=sample)


@pytest.mark.parametrize("window", [1, 2, 3])
@pytest.mark.parametrize("weighting", ["harmonic", "uniform"])
def test_subsampled_cooccurrence_is_the_average_over_every_draw(window: int, weighting: str) -> None:
    """The exact expectation: average cooccurrence() over all 2**9 keep/drop patterns of 9 tokens."""
    docs = [np.array([0, 1, 0, 2, 3, 0]), np.array([1, 0, 3])]
    keep = np.array([0.3, 0.6, 1.0, 0.9])
    tokens = np.concatenate(docs)
    expected = np.zeros((4, 4))
    for pattern in itertools.product([False, True], repeat=tokens.size):
        kept = np.array(pattern)
        prob = np.prod(np.where(kept, keep[tokens], 1 - keep[tokens]))
        sub = [docs[0][kept[:6]], docs[1][kept[6:]]]
        if kept.any():
            expected += prob * vectors.cooccurrence(sub, 4, window=window, weighting=weighting).toarray()
    X = vectors.subsampled_cooccurrence(docs, keep, window=window, weighting=weighting, max_offset=8)
    np.testing.assert_allclose(X.toarray(), expected, atol=1e-12)


def test_subsampling_shrinks_frequent_words_and_keeps_rare_pairs() -> None:
    docs = [np.array([1, 2, 0, 0, 3])]
    keep = np.array([0.2, 1.0, 1.0, 1.0])                      # word 0 is the frequent one
    plain = vectors.cooccurrence(docs, 4, window=2).toarray()
    sub = vectors.subsampled_cooccurrence(docs, keep, window=2).toarray()
    np.testing.assert_allclose(vectors.subsampled_cooccurrence(docs, np.ones(4), window=2).toarray(), plain)
    assert np.all(sub[0] < plain[0])                            # pairs with the frequent word shrink
    assert sub[1, 2] == plain[1, 2] == 1                        # rare neighbours, nothing between: unchanged
    assert sub[2, 3] > plain[2, 3] == 0                         # 2 0 0 3: dropping the 0s brings 2 and 3 together


@pytest.mark.parametrize("keep, kwargs, message", [
    ([0.5, 1.5], {}, "probabilities"), ([[0.5, 1.0]], {}, "1-D"), ([0.5, 1.0], {"window": 0}, "window"),
    ([0.5, 1.0], {"window": 3, "max_offset": 2}, "max_offset"), ([0.5], {}, "word ids")])
def test_subsampled_cooccurrence_rejects_bad_input(keep: list, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        vectors.subsampled_cooccurrence([np.array([0, 1, 0])], keep, **kwargs)


def test_ppmi_is_positive_and_svd_has_the_asked_shape() -> None:
    docs = [TEXT]
    vocab = vectors.build_vocab(docs, min_count=1)
    X = vectors.cooccurrence(vectors.encode(docs, vocab), len(vocab), window=2)
    P = vectors.ppmi(X)
    assert P.shape == X.shape and (P.data > 0).all()
    # PPMI is zero where there is no co-occurrence
    assert set(zip(*P.nonzero())) <= set(zip(*X.nonzero()))
    assert vectors.svd_vectors(P, 3).shape == (len(vocab), 3)


def test_glove_weight() -> None:
    x = np.array([1.0, 50.0, 100.0, 1000.0])
    np.testing.assert_allclose(vectors.glove_weight(x), [(1 / 100) ** 0.75, 0.5 ** 0.75, 1.0, 1.0])


def test_glove_loss_falls_on_a_tiny_corpus() -> None:
    docs = [TEXT * 3]
    vocab = vectors.build_vocab(docs, min_count=1)
    X = vectors.cooccurrence(vectors.encode(docs, vocab), len(vocab), window=3)
    result = vectors.train_glove(X, dim=8, epochs=30, batch_size=16, lr=0.1, progress=False)
    assert result.vectors.shape == (len(vocab), 8) and result.vectors.dtype == np.float32
    assert result.losses[-1] < 0.5 * result.losses[0]
    assert all(math.isfinite(v) for v in result.losses)


def reference_glove(X, *, dim: int, epochs: int, batch_size: int, lr: float, seed: int = 0,
                    initial_accumulator: float = 0.1) -> np.ndarray:
    """GloVe written plainly: the same seeded shuffles as ``train_glove``, the gradient from
    autograd, and Adagrad by its formula ``acc += g^2; p -= lr * g / sqrt(acc)``."""
    import scipy.sparse as sp

    coo = sp.coo_matrix(X)
    rows, cols = torch.as_tensor(coo.row, dtype=torch.int64), torch.as_tensor(coo.col, dtype=torch.int64)
    x = torch.as_tensor(coo.data, dtype=torch.float32)
    log_x, f = torch.log(x), vectors.glove_weight(x, x_max=10.0, alpha=0.75)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = vectors.GloVeModel(X.shape[0], dim)
    params = [model.w, model.w_ctx, model.b, model.b_ctx]
    acc = [torch.full_like(p, initial_accumulator) for p in params]
    for _ in range(epochs):
        order = torch.randperm(coo.nnz, generator=gen)
        for s in range(0, coo.nnz, batch_size):
            idx = order[s:s + batch_size]
            loss = 0.5 * (f[idx] * (model(rows[idx], cols[idx]) - log_x[idx]) ** 2).sum()
            grads = torch.autograd.grad(loss, params)
            with torch.no_grad():
                for p, g, a in zip(params, grads, acc):
                    a += g * g
                    p -= lr * g / a.sqrt()
    return model.vectors().numpy()


@pytest.mark.parametrize("initial_accumulator", [0.1, 1.0])   # torch's default, the course's setting
def test_glove_matches_a_plain_reference(initial_accumulator: float) -> None:
    docs = [TEXT * 2]
    vocab = vectors.build_vocab(docs, min_count=1)
    X = vectors.cooccurrence(vectors.encode(docs, vocab), len(vocab), window=3)
    settings = dict(dim=6, epochs=4, batch_size=16, lr=0.1,   # several batches per epoch, a short last one
                    initial_accumulator=initial_accumulator)
    assert X.nnz % 16 != 0
    result = vectors.train_glove(X, progress=False, **settings)
    np.testing.assert_allclose(result.vectors, reference_glove(X, **settings), rtol=1e-4, atol=1e-5)


def test_glove_loss_matches_the_model() -> None:
    model = vectors.GloVeModel(5, 3)
    i, j = torch.tensor([0, 1, 4]), torch.tensor([2, 2, 3])
    pred = model(i, j)
    by_hand = (model.w[i] * model.w_ctx[j]).sum(1) + model.b[i] + model.b_ctx[j]
    torch.testing.assert_close(pred, by_hand)
    log_x, f = torch.tensor([0.0, 1.0, 2.0]), torch.tensor([1.0, 0.5, 0.25])
    torch.testing.assert_close(vectors.glove_loss(pred, log_x, f), (f * (pred - log_x) ** 2).mean())
    with pytest.raises(ValueError, match="shape"):
        vectors.glove_loss(pred, log_x[:2], f)


def test_glove_rejects_bad_matrices() -> None:
    import scipy.sparse as sp

    with pytest.raises(ValueError, match="non-zero"):
        vectors.train_glove(sp.csr_matrix((3, 3)), progress=False)
    with pytest.raises(ValueError, match="square"):
        vectors.train_glove(sp.csr_matrix(np.ones((2, 3))), progress=False)


def test_keyed_vectors_round_trip(tmp_path) -> None:
    words = ["king", "queen", "man", "woman"]
    matrix = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    kv = vectors.to_keyed_vectors(words, matrix)
    assert kv.index_to_key == words
    np.testing.assert_array_equal(kv.vectors, matrix)
    # write GloVe's text format and read it back with the course's loader
    path = tmp_path / "vecs.txt"
    path.write_text("".join(f"{w} {' '.join(repr(float(v)) for v in row)}\n" for w, row in zip(words, matrix)))
    back = vectors.load_glove_text(path)
    assert back.index_to_key == words
    np.testing.assert_allclose(back.vectors, matrix, rtol=1e-6)
    np.testing.assert_array_equal(vectors.to_keyed_vectors(words, torch.from_numpy(matrix)).vectors, matrix)


def test_keyed_vectors_bad_input() -> None:
    with pytest.raises(ValueError, match="rows"):
        vectors.to_keyed_vectors(["a"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="repeated"):
        vectors.to_keyed_vectors(["a", "a"], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="NaN"):
        vectors.to_keyed_vectors(["a"], np.full((1, 3), np.nan))


def test_glove_loader_on_the_bundled_sample() -> None:
    from textft_lib import data

    kv = vectors.load_glove_text(data.load("glove_sample"))
    assert len(kv) > 0 and kv.vector_size > 0
    assert len(vectors.load_glove_text(data.load("glove_sample"), limit=3)) == 3


@pytest.mark.parametrize("content, message", [
    ("a 1 2 3\nb 1 2\n", ":2: expected a word and 3 numbers"),
    ("a 1 2\nb 1 x\n", ":2: the values after 'b'"),
    ("a 1 2\na 3 4\n", ":2: the word 'a'"),
    ("a 1 2\n\nb 1 2\n", ":2: empty line"),
    ("", "no vectors"),
])
def test_glove_loader_names_the_bad_line(tmp_path, content: str, message: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    with pytest.raises(vectors.GloveFormatError, match=message):
        vectors.load_glove_text(path)


def test_glove_loader_skips_a_word2vec_header(tmp_path) -> None:
    path = tmp_path / "w2v.txt"
    path.write_text("2 2\na 1 2\nb 3 4\n")
    assert vectors.load_glove_text(path).index_to_key == ["a", "b"]


def test_evaluation_counts_coverage_and_agrees_with_gensim() -> None:
    rng = np.random.default_rng(0)
    words = ["king", "queen", "man", "woman", "paris", "france", "rome", "italy", "cat"]
    kv = vectors.to_keyed_vectors(words, rng.normal(size=(len(words), 4)))
    pairs = [("king", "queen", 9.0), ("man", "woman", 8.0), ("cat", "paris", 1.0), ("rome", "unknownword", 5.0),
             ("Italy", "france", 6.0)]
    sim = vectors.similarity_spearman(kv, pairs)
    assert sim["covered"] == 4 and sim["total"] == 5
    questions = {"capitals": [("paris", "france", "rome", "italy"), ("rome", "italy", "paris", "nowhere")],
                 "gender": [("man", "woman", "king", "queen")]}
    res = vectors.analogy_accuracy(kv, questions)
    assert res["covered"] == 2 and res["total"] == 3
    # gensim's 3CosAdd, with the same candidates, must give the same answers
    expected = sum(kv.most_similar(positive=[b, c], negative=[a], topn=1)[0][0] == d
                   for q in questions.values() for a, b, c, d in q if d in kv)
    assert res["correct"] == expected


def test_a_perfect_embedding_solves_analogies() -> None:
    # b - a + c lands exactly on d
    words = ["a", "b", "c", "d", "e"]
    m = np.array([[1, 0, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1], [-1, -1, -1]], dtype=np.float32)
    kv = vectors.to_keyed_vectors(words, m)
    assert vectors.analogy_accuracy(kv, {"s": [("a", "b", "c", "d")]})["accuracy"] == 1.0


def test_sentence_vectors_mean_pool() -> None:
    kv = vectors.to_keyed_vectors(["good", "film", "bad"], np.array([[1.0, 0], [0, 1.0], [-1.0, 0]]))
    out = vectors.sentence_vectors(kv, ["Good film!", "bad, bad FILM", "unknown words only"])
    np.testing.assert_allclose(out, [[0.5, 0.5], [-2 / 3, 1 / 3], [0, 0]], rtol=1e-6)
    assert vectors.known_fraction(kv, ["good unknown"]) == 0.5
    with pytest.raises(TypeError, match="not one string"):
        vectors.sentence_vectors(kv, "a single string")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no texts"):
        vectors.sentence_vectors(kv, [])


def test_tokenize() -> None:
    assert vectors.tokenize("GloVe's vectors, 2014!") == ["glove's", "vectors", "2014"]
    with pytest.raises(TypeError):
        vectors.tokenize(None)  # type: ignore[arg-type]


def test_course_glove_is_cached(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(vectors, "wiki_corpus", lambda limit=None: [TEXT * 2, TEXT[::-1]])  # skip the real corpus
    settings = dict(articles=2, min_count=3, window=3, dim=8, epochs=2, batch_size=512)
    kv = vectors.course_glove(progress=False, **settings)
    files = sorted(p.name for p in (tmp_path / "vectors").iterdir())
    assert len(files) == 3  # vectors, vocabulary, settings
    info = vectors.course_glove_info(**settings)
    assert len(info["losses"]) == 2 and info["vocab_size"] == len(kv)
    again = vectors.course_glove(progress=False, **settings)
    assert again.index_to_key == kv.index_to_key
    np.testing.assert_array_equal(again.vectors, kv.vectors)


def test_course_glove_passes_every_setting(tmp_path, monkeypatch) -> None:
    """Every training setting of GloveConfig reaches train_glove (a changed one changes the vectors)."""
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(vectors, "wiki_corpus", lambda limit=None: [TEXT * 2, TEXT[::-1]])
    settings = dict(articles=2, min_count=3, window=3, dim=8, epochs=2, batch_size=512)
    a = vectors.course_glove(progress=False, initial_accumulator=1.0, **settings)
    b = vectors.course_glove(progress=False, initial_accumulator=0.1, **settings)
    assert not np.allclose(a.vectors, b.vectors)
    plain = vectors.course_glove(progress=False, initial_accumulator=1.0, sample=None, **settings)
    assert not np.allclose(a.vectors, plain.vectors)  # the subsampled counts reach training


def test_glove_settings_are_checked_where_they_are_made() -> None:
    assert vectors.glove_settings(quick=False) == vectors.GLOVE_FULL
    assert vectors.glove_settings(quick=True, window=3).window == 3
    with pytest.raises(TypeError, match="unknown GloVe settings"):
        vectors.glove_settings(quick=True, windows=3)
    with pytest.raises(ValueError, match="window must be at least 1"):
        vectors.glove_settings(quick=True, window=0)
    with pytest.raises(ValueError, match="x_max"):
        vectors.GloveConfig(x_max=-1.0)
