"""Tests of the byte-level BPE (textft_lib.bpe)."""

from __future__ import annotations

import json
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from textft_lib import bpe
from textft_lib.bpe import BPETokenizer, merge_pair, most_frequent_pair, pretokenize

SMALL_CORPUS = [
    "The quick brown fox jumps over the lazy dog. The dog doesn't mind; it's lazy!",
    "Low, lower, lowest: the newest and the widest were shown in 1999 and 2026.",
    "Byte-level BPE handles café, naïve, 東京 and 🙂 without any unknown token.",
    "aaaa bbbb aaaa abab baba   spaces   and\ttabs\nand new lines\n\n",
]


def naive_train(texts: list[str], vocab_size: int) -> dict[tuple[int, int], int]:
    """The textbook BPE: recount every pair of every word occurrence before each merge.

    Same pre-tokenizer and same tie-breaking rule as the library (highest count, then the
    smallest pair), but no word counting and no incremental updates.
    """
    words = [list(chunk.encode("utf-8")) for t in texts for chunk in pretokenize(t)]
    merges: dict[tuple[int, int], int] = {}
    for new_id in range(256, vocab_size):
        counts: dict[tuple[int, int], int] = {}
        for w in words:
            for pair in zip(w, w[1:]):
                counts[pair] = counts.get(pair, 0) + 1
        if not counts:
            break
        pair = most_frequent_pair(counts)
        merges[pair] = new_id
        words = [merge_pair(w, pair, new_id) for w in words]
    return merges


@pytest.fixture(scope="module")
def small_tok() -> BPETokenizer:
    return BPETokenizer().train(SMALL_CORPUS, vocab_size=256 + 120)


# ---------------------------------------------------------------- pre-tokenizer and helpers

def test_pretokenize_example():
    assert pretokenize("Don't panic, it's 2026!") == ["Don", "'t", " panic", ",", " it", "'s", " 202", "6", "!"]


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_pretokenize_covers_every_character(text):
    assert "".join(pretokenize(text)) == text


def test_merge_pair_is_greedy_from_the_left():
    assert merge_pair([1, 1, 1], (1, 1), 9) == [9, 1]
    assert merge_pair([1, 1, 1, 1], (1, 1), 9) == [9, 9]
    assert merge_pair([1, 2, 3, 1, 2], (1, 2), 99) == [99, 3, 99]
    assert merge_pair([], (1, 2), 99) == []


def test_tie_breaking_rule():
    assert most_frequent_pair({(5, 9): 3, (4, 7): 3, (1, 1): 2}) == (4, 7)
    assert most_frequent_pair({(4, 8): 3, (4, 7): 3}) == (4, 7)
    with pytest.raises(ValueError):
        most_frequent_pair({})


# ---------------------------------------------------------------- training

def test_hand_worked_example():
    # "aaabdaaabac": aa occurs 4 times -> 256; then ab and (256, a) both occur twice:
    # the tie goes to the smaller first id, a=97 -> (97, 98) = 257; then (256, 257) -> 258;
    # then every pair occurs once and the smallest, (97, 99) = "ac", wins -> 259.
    tok = BPETokenizer().train("aaabdaaabac", vocab_size=260)
    assert tok.merges == {(97, 97): 256, (97, 98): 257, (256, 257): 258, (97, 99): 259}
    assert tok.vocab[258] == b"aaab"
    assert tok.encode("aaabdaaabac") == [258, ord("d"), 258, 259]


@pytest.mark.parametrize("vocab_size", [256, 300, 420])
def test_same_merges_as_naive_reference(vocab_size):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the corpus may run out of pairs before 420
        fast = BPETokenizer().train(SMALL_CORPUS, vocab_size=vocab_size).merges
        slow = naive_train(SMALL_CORPUS, vocab_size)
    assert list(fast.items()) == list(slow.items())


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(alphabet="ab cé.", max_size=40), min_size=1, max_size=5), st.integers(0, 30))
def test_same_merges_as_naive_reference_on_random_text(texts, n_merges):
    # A tiny alphabet makes many pairs tie: the tie-breaking rule is exercised hard.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = BPETokenizer().train(texts, vocab_size=256 + n_merges).merges
    assert list(fast.items()) == list(naive_train(texts, 256 + n_merges).items())


def test_same_merges_as_naive_reference_on_wikipedia():
    from textft_lib import data

    texts = [a.text[:3000] for a in data.load("wiki", limit=6)]
    fast = BPETokenizer().train(texts, vocab_size=256 + 100).merges
    assert list(fast.items()) == list(naive_train(texts, 256 + 100).items())


def test_encoding_the_training_text_replays_training(small_tok):
    # Encoding applies merges lowest id first; that must give the same tokens as training.
    for text in SMALL_CORPUS:
        ids = small_tok.encode(text)
        assert small_tok.decode(ids) == text
        assert len(ids) < len(text.encode("utf-8"))


def test_subset_equals_a_shorter_training(small_tok):
    shorter = BPETokenizer().train(SMALL_CORPUS, vocab_size=256 + 40)
    sub = small_tok.subset(40)
    assert sub.merges == shorter.merges and sub.vocab_size == 296
    assert sub.encode(SMALL_CORPUS[0]) == shorter.encode(SMALL_CORPUS[0])
    with pytest.raises(ValueError, match="between 0 and 120"):
        small_tok.subset(121)


def test_progress_bar_does_not_change_the_result():
    assert BPETokenizer().train(SMALL_CORPUS, 300, progress=True).merges == BPETokenizer().train(SMALL_CORPUS, 300).merges


def test_stops_early_with_a_warning():
    with pytest.warns(UserWarning, match="stopped after"):
        tok = BPETokenizer().train("ab", vocab_size=300)
    assert tok.vocab_size == 257


def test_vocab_size_below_256_is_rejected():
    with pytest.raises(ValueError, match="at least 256"):
        BPETokenizer().train("hello", vocab_size=255)
    with pytest.raises(TypeError):
        BPETokenizer().train("hello", vocab_size=300.0)


def test_train_rejects_non_str():
    with pytest.raises(TypeError, match="bytes"):
        BPETokenizer().train(b"hello", vocab_size=300)
    with pytest.raises(TypeError, match="item 1"):
        BPETokenizer().train(["ok", 3], vocab_size=300)


def test_vocab_size_256_means_plain_bytes():
    tok = BPETokenizer().train("hello", vocab_size=256)
    assert tok.encode("hé") == list("hé".encode("utf-8"))


# ---------------------------------------------------------------- encoding and decoding

def test_encode_before_train_raises():
    tok = BPETokenizer()
    with pytest.raises(RuntimeError, match="not trained"):
        tok.encode("hello")
    with pytest.raises(RuntimeError, match="not trained"):
        tok.decode([104])


def test_encode_rejects_non_str(small_tok):
    with pytest.raises(TypeError, match="str"):
        small_tok.encode(b"bytes")
    with pytest.raises(TypeError, match="str"):
        small_tok.encode(None)


def test_decode_rejects_unknown_ids(small_tok):
    with pytest.raises(ValueError, match="not in the vocabulary"):
        small_tok.decode([small_tok.vocab_size])


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_round_trip_on_arbitrary_unicode(text):
    tok = _SHARED
    ids = tok.encode(text)
    assert all(0 <= i < tok.vocab_size for i in ids)
    assert tok.decode(ids) == text


@pytest.mark.parametrize("text", ["", " ", "東京は日本の首都です。", "🙂👍🏽 emoji", "naïve café Ångström",
                                  "e\u0301 (combining accent)", "\x00\x01 control", "mixed 中文 and English"])
def test_round_trip_examples(small_tok, text):
    assert small_tok.decode(small_tok.encode(text)) == text


def test_empty_string(small_tok):
    assert small_tok.encode("") == []
    assert small_tok.decode([]) == ""


def test_cache_does_not_change_results(small_tok, tmp_path):
    text = "the lazy dog, the lazy dog"
    first = small_tok.encode(text)
    assert small_tok.encode(text) == first
    uncached = BPETokenizer.load(small_tok.save(tmp_path / "bpe.json"))
    uncached.cache_size = 0  # nothing is remembered: every chunk is merged from its bytes
    assert uncached.encode(text) == first


def test_pieces_show_partial_characters(small_tok):
    bytes_only = BPETokenizer().train("x", vocab_size=256)
    assert bytes_only.pieces("東a") == ["<e6>", "<9d>", "<b1>", "a"]
    assert "".join(small_tok.pieces(" the lazy dog")) == " the lazy dog"


# ---------------------------------------------------------------- save and load

def test_save_load_preserves_encoding(small_tok, tmp_path):
    path = small_tok.save(tmp_path / "bpe.json")
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["format"] == "textft-bpe" and len(payload["merges"]) == 120
    loaded = BPETokenizer.load(path)
    assert loaded.merges == small_tok.merges and loaded.vocab == small_tok.vocab
    for text in SMALL_CORPUS + ["unseen words: zygote quixotic 🙂"]:
        assert loaded.encode(text) == small_tok.encode(text)


def test_load_rejects_bad_files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(ValueError, match="not a textft BPE file"):
        BPETokenizer.load(bad)
    bad.write_text(json.dumps({"format": "textft-bpe", "version": 1, "pattern": bpe.SPLIT_PATTERN,
                               "merges": [[97, 97], [300, 1]]}))
    with pytest.raises(ValueError, match="merge 1"):
        BPETokenizer.load(bad)


def test_save_before_train_raises(tmp_path):
    with pytest.raises(RuntimeError, match="not trained"):
        BPETokenizer().save(tmp_path / "x.json")


_SHARED = BPETokenizer().train(SMALL_CORPUS, vocab_size=256 + 120)
