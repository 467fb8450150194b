"""textft_lib.lm_data: the token stream and its cache, windows, and the n-gram baselines
against counts made by hand."""

import math
from collections import Counter

import pytest
import torch

from textft_lib import lm_data

tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

WORDS = ["[PAD]", "[UNK]", "[SEP]", "the", "cat", "sat", "on", "mat", "a", "dog"]


def word_tokenizer():
    raw = tokenizers.Tokenizer(tokenizers.models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    raw.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    return transformers.PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]", sep_token="[SEP]",
                                                pad_token="[PAD]")


@pytest.fixture
def course_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_stream_joins_documents_with_the_separator_and_is_cached(course_cache, monkeypatch):
    tok = word_tokenizer()
    texts = ["the cat sat", "a dog", "on the mat"]
    stream = lm_data.token_stream(texts, tok)
    assert stream.dtype == torch.long
    assert stream.tolist() == [3, 4, 5, 2, 8, 9, 2, 6, 3, 7]        # [SEP] (2) between documents only
    assert stream.tolist() == lm_data.encode_stream(texts, tok, tok.sep_token_id).tolist()
    files = list((course_cache / "lm_data").glob("stream-*.safetensors"))
    assert len(files) == 1
    monkeypatch.setattr(lm_data, "encode_stream", lambda *a, **k: pytest.fail("tokenized again"))
    assert torch.equal(lm_data.token_stream(texts, tok), stream)        # read from the cache
    assert lm_data.stream_key(texts, tok, 2) != lm_data.stream_key(texts[:2], tok, 2)


def test_stream_input_checks(course_cache):
    tok = word_tokenizer()
    with pytest.raises(TypeError, match="sequence of strings"):
        lm_data.token_stream("the cat", tok)
    with pytest.raises(ValueError, match="empty"):
        lm_data.token_stream([], tok)
    with pytest.raises(TypeError, match="fast tokenizer"):
        lm_data.token_stream(["the cat"], object(), separator_id=2)
    bare = transformers.PreTrainedTokenizerFast(tokenizer_object=word_tokenizer().backend_tokenizer)
    with pytest.raises(ValueError, match="no \\[SEP\\]"):
        lm_data.token_stream(["the cat"], bare)
    assert lm_data.token_stream(["the cat", "a dog"], bare, separator_id=0, use_cache=False).tolist() == [3, 4, 0, 8, 9]


def test_random_windows_are_slices_of_the_stream_and_seeded():
    stream = torch.arange(100) * 3
    w = lm_data.random_windows(stream, 10, 16, generator=torch.Generator().manual_seed(0))
    assert w.shape == (16, 11)
    starts = w[:, 0] // 3
    assert torch.equal(w, stream[starts[:, None] + torch.arange(11)]) and int(starts.max()) <= 89
    again = lm_data.random_windows(stream, 10, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(w, again)
    loader = lm_data.RandomWindows(stream, 10, 4, steps=5, seed=1)
    first, second = list(loader), list(loader)
    assert len(loader) == 5 == len(first) and all(torch.equal(a, b) for a, b in zip(first, second))
    # every start can be drawn, the last one included
    many = lm_data.random_windows(torch.arange(12), 10, 400, generator=torch.Generator().manual_seed(0))
    assert set(many[:, 0].tolist()) == {0, 1}


def test_eval_windows_predict_every_token_once():
    stream = torch.arange(41)
    w = lm_data.eval_windows(stream, 10)
    assert w.shape == (4, 11) and w[:, 1:].flatten().tolist() == list(range(1, 41))
    spread = lm_data.eval_windows(torch.arange(1001), 10, max_windows=3)
    assert spread[:, 0].tolist() == [0, 500, 990]                        # the start, the middle, the end
    assert lm_data.eval_windows(stream, 10, max_windows=50).shape == (4, 11)


@pytest.mark.parametrize("call, match", [
    (lambda: lm_data.random_windows(torch.arange(5), 5, 2), "fewer than the 6"),
    (lambda: lm_data.random_windows(torch.arange(50), 0, 2), "length"),
    (lambda: lm_data.random_windows(torch.rand(50), 5, 2), "1-D tensor of token ids"),
    (lambda: lm_data.eval_windows(torch.arange(50).view(5, 10), 5), "1-D tensor"),
    (lambda: lm_data.unigram_log_probs(torch.tensor([0, 7]), 5), "outside"),
    (lambda: lm_data.bigram_log_probs(torch.arange(5), 5, torch.tensor([1]), torch.tensor([1, 2])), "same shape"),
    (lambda: lm_data.bigram_log_probs(torch.arange(5), 5, torch.tensor([9]), torch.tensor([1])), "ids in"),
    (lambda: lm_data.baseline_losses(torch.arange(5), torch.arange(5), 5), "windows must have shape"),
    (lambda: lm_data.baseline_losses(torch.arange(5), torch.zeros(2, 3, dtype=torch.long), 5, weight=1.5),
     "weight"),
])
def test_bad_input_gets_a_clear_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def by_hand(train, windows, vocab_size, weight):
    """The two baselines from Python counters, one target at a time."""
    ids = train.tolist()
    uni, pairs, contexts = Counter(ids), Counter(zip(ids, ids[1:])), Counter(ids[:-1])
    p_uni = lambda w: (uni[w] + 1) / (len(ids) + vocab_size)                           # noqa: E731
    u = b = 0.0
    targets = [(p, n) for row in windows.tolist() for p, n in zip(row, row[1:])]
    for prev, nxt in targets:
        bigram = pairs[prev, nxt] / contexts[prev] if contexts[prev] else p_uni(nxt)
        u -= math.log(p_uni(nxt))
        b -= math.log(weight * bigram + (1 - weight) * p_uni(nxt))
    return {"unigram": u / len(targets), "bigram": b / len(targets)}


@pytest.mark.parametrize("weight", [0.7, 0.0, 0.99])
def test_baselines_equal_counts_by_hand(weight):
    g = torch.Generator().manual_seed(0)
    vocab = 30
    train = torch.randint(0, vocab, (2000,), generator=g) % torch.randint(1, vocab, (2000,), generator=g)
    train[-1] = vocab - 1                               # a token seen only at the end: never a context
    held = torch.randint(0, vocab, (300,), generator=g)
    windows = lm_data.eval_windows(held, 12)
    ours = lm_data.baseline_losses(train, windows, vocab, weight=weight)
    expected = by_hand(train, windows, vocab, weight)
    assert ours == pytest.approx(expected, rel=1e-9)
    assert lm_data.unigram_log_probs(train, vocab).exp().sum().item() == pytest.approx(1.0)
    if weight == 0.0:
        assert ours["bigram"] == pytest.approx(ours["unigram"])


def test_bigram_beats_unigram_on_a_predictable_stream():
    train = torch.tensor([0, 1, 2, 3] * 200)
    windows = lm_data.eval_windows(torch.tensor([0, 1, 2, 3] * 20), 8)
    losses = lm_data.baseline_losses(train, windows, 4)
    assert losses["unigram"] == pytest.approx(math.log(4), rel=1e-3)
    assert losses["bigram"] == pytest.approx(-math.log(0.7 + 0.3 * 0.25), rel=1e-3)
