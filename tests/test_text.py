"""Tests of textft_lib.text: normalization, cleaning, tokenizers, Vocab and padding."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from textft_lib import text
from textft_lib.text import SPECIAL_TOKENS, Vocab, pad_batch


# ---------------------------------------------------------------- normalization and cleaning

def test_normalize_nfkc_and_casefold():
    assert text.normalize("Ｔｈｅ ﬁrst  café") == "The first café"
    assert text.normalize("Straße", lowercase=True) == "strasse"
    assert text.normalize("e\u0301") == "é"  # combining accent composed into one code point
    assert text.normalize("  a \n\t b ", collapse_spaces=True) == "a b"
    assert text.normalize("a  b", collapse_spaces=False) == "a  b"


def test_normalize_errors():
    with pytest.raises(ValueError, match="normal form"):
        text.normalize("x", form="NFX")
    with pytest.raises(TypeError, match="str"):
        text.normalize(None)


def test_strip_wiki_markup():
    raw = ("{{Infobox|name={{nested|x}}}}\n'''Paris''' is the [[capital city|capital]] of [[France]]"
           "<ref name=a>Source</ref>.<!-- note -->\n== History ==\n* A [https://example.org link] here."
           "\n[[Category:Cities]]\n[[File:Paris.jpg|thumb|A [[view]]]]")
    assert text.strip_wiki_markup(raw) == "Paris is the capital of France.\nHistory\nA link here."


def test_strip_wiki_markup_on_the_raw_dump():
    from textft_lib import data

    article = data.load("wiki", raw=True, limit=1)[0]
    cleaned = text.strip_wiki_markup(article.text)
    assert "[[" not in cleaned and "{{" not in cleaned and "<ref" not in cleaned
    assert cleaned.startswith("Anarchism is a political philosophy")


# ---------------------------------------------------------------- tokenizers

def test_regex_tokenize_keeps_hard_cases_together():
    tokens = text.regex_tokenize("Don't miss https://x.org/a, it's state-of-the-art! U.S. 3.50 a.b@c.com")
    assert tokens == ["Don't", "miss", "https://x.org/a", ",", "it's", "state-of-the-art", "!", "U.S.",
                      "3.50", "a.b@c.com"]
    assert text.regex_tokenize("我爱北京") == ["我", "爱", "北", "京"]
    assert text.regex_tokenize("The END", lowercase=True) == ["the", "end"]


def test_regex_tokenize_rejects_capturing_groups():
    with pytest.raises(ValueError, match="capturing"):
        text.regex_tokenize("a b", pattern=r"(\w)+")


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_regex_tokenize_loses_only_whitespace(s):
    import regex

    # every character that is not whitespace ends up in exactly one token, in order
    assert "".join(text.regex_tokenize(s)) == regex.sub(r"\s", "", s)


def test_whitespace_tokenize_fails_where_expected():
    assert text.whitespace_tokenize("the dog.") == ["the", "dog."]
    assert text.whitespace_tokenize("我爱北京") == ["我爱北京"]


def test_split_sentences():
    assert text.split_sentences("It rained. We stayed in! Did you?") == ["It rained.", "We stayed in!", "Did you?"]
    assert text.split_sentences("你好。再见！") == ["你好。", "再见！"]
    assert text.split_sentences("") == []


def test_remove_stopwords():
    assert text.remove_stopwords(["The", "film", "is", "not", "good"], {"the", "is", "not"}) == ["film", "good"]


def test_count_tokens_and_oov_rate():
    counts = text.count_tokens([["a", "b"], ["a"]])
    assert counts == {"a": 2, "b": 1}
    with pytest.raises(TypeError, match="item 0 is a str"):
        text.count_tokens(["a b"])
    vocab = Vocab.build(counts)
    assert text.oov_rate(["a", "c", "[UNK]", "b"], vocab) == 0.5  # specials are not words
    assert text.oov_rate(["a", "b", "c", "a"], {"a"}) == 0.5
    with pytest.raises(ValueError, match="empty"):
        text.oov_rate([], {"a"})


# ---------------------------------------------------------------- Vocab

DOCS = [["the", "cat", "sat"], ["the", "dog", "sat"], ["the", "cat"]]


def test_vocab_layout_and_order():
    v = Vocab.build(DOCS)
    assert v.itos[:5] == list(SPECIAL_TOKENS)
    assert (v.pad_id, v.unk_id, v.cls_id, v.sep_id, v.mask_id) == (0, 1, 2, 3, 4)
    assert v.itos[5:] == ["the", "cat", "sat", "dog"]  # by count, ties alphabetical
    assert Vocab.build(list(reversed(DOCS))).itos == v.itos  # input order does not matter


def test_vocab_min_freq_and_max_size():
    assert Vocab.build(DOCS, min_freq=2).itos[5:] == ["the", "cat", "sat"]
    assert len(Vocab.build(DOCS, max_size=7)) == 7
    with pytest.raises(ValueError, match="no room"):
        Vocab.build(DOCS, max_size=3)
    with pytest.raises(ValueError, match="min_freq"):
        Vocab.build(DOCS, min_freq=0)


def test_vocab_encode_decode():
    v = Vocab.build(DOCS)
    assert v.encode(["the", "cow"]) == [5, v.unk_id]
    assert v.encode(["the", "cat"], add_special=True) == [2, 5, 6, 3]
    assert v.decode([2, 5, 6, 3, 0, 0]) == ["the", "cat"]
    assert v.decode([2, 5], skip_special=False) == ["[CLS]", "the"]
    with pytest.raises(IndexError):
        v.decode([99])
    with pytest.raises(TypeError, match="tokenize"):
        v.encode("the cat")


def test_vocab_truncation_keeps_sep():
    v = Vocab.build(DOCS)
    ids = v.encode(["the", "cat", "sat", "dog"], add_special=True, max_length=4)
    assert ids == [v.cls_id, 5, 6, v.sep_id]
    with pytest.raises(ValueError, match="too small"):
        v.encode(["the"], add_special=True, max_length=2)


def test_vocab_without_specials():
    v = Vocab(["a", "b"], specials=())
    assert v.encode(["b"]) == [1]
    with pytest.raises(KeyError, match="no \\[UNK\\]"):
        v.encode(["zzz"])
    with pytest.raises(ValueError, match="twice"):
        Vocab(["a", "a"])


def test_vocab_save_load(tmp_path):
    v = Vocab.build(DOCS + [["東京", "café"]])
    loaded = Vocab.load(v.save(tmp_path / "vocab.json"))
    assert loaded.itos == v.itos and loaded.specials == v.specials
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a textft vocabulary"):
        Vocab.load(tmp_path / "bad.json")


# ---------------------------------------------------------------- padding

def test_pad_batch_lists():
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0, return_tensors=None)
    assert ids == [[5, 6, 7], [8, 0, 0]] and mask == [[1, 1, 1], [1, 0, 0]]


def test_pad_batch_tensors_shapes_and_dtypes():
    ids, mask = pad_batch([[5, 6, 7], [8], [9, 9]], pad_id=0)
    assert ids.shape == mask.shape == (3, 3)
    assert ids.dtype == torch.long and mask.dtype == torch.bool
    assert mask.sum(dim=1).tolist() == [3, 1, 2]
    assert (ids[~mask] == 0).all()


def test_pad_batch_truncation_and_max_length_padding():
    ids, mask = pad_batch([[1, 2, 3, 4, 5], [6]], max_length=3, padding="max_length", return_tensors=None)
    assert ids == [[1, 2, 3], [6, 0, 0]] and mask == [[1, 1, 1], [1, 0, 0]]
    with pytest.raises(ValueError, match="more than max_length"):
        pad_batch([[1, 2, 3]], max_length=2, truncation=False)


def test_pad_batch_errors():
    with pytest.raises(ValueError, match="empty batch"):
        pad_batch([])
    with pytest.raises(ValueError, match="every sequence"):
        pad_batch([[], []])
    with pytest.raises(TypeError, match="not a list of integer ids"):
        pad_batch([["a", "b"]])
    with pytest.raises(ValueError, match="needs max_length"):
        pad_batch([[1]], padding="max_length")
    with pytest.raises(ValueError, match="padding"):
        pad_batch([[1]], padding="right")


def test_encode_batch_end_to_end():
    v = Vocab.build(DOCS)
    ids, mask = v.encode_batch([["the", "cat", "sat"], ["dog"]], max_length=4)
    assert ids.tolist() == [[2, 5, 6, 3], [2, 8, 3, 0]]
    assert mask.tolist() == [[True] * 4, [True, True, True, False]]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(st.integers(0, 50), min_size=1, max_size=12), min_size=1, max_size=6))
def test_pad_batch_round_trip(seqs):
    ids, mask = pad_batch(seqs, pad_id=0)
    assert [row[m].tolist() for row, m in zip(ids, mask)] == seqs
