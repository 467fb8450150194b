"""Tests of textft_lib.adapt (domain-adaptive MLM) and bert.pack_blocks."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch

pytest.importorskip("transformers")

from textft_lib import adapt, bert, data, train, wordpiece  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_thread")      # tests/conftest.py


@pytest.fixture(scope="module")
def tokenizer():
    return wordpiece.train_wordpiece(data.load("lee")[:120], vocab_size=400, model_max_length=32)


@pytest.fixture(scope="module")
def reviews():
    ds = data.load("movie_reviews")
    return ds.train.texts


@pytest.fixture(scope="module")
def tiny_folder(tokenizer, tmp_path_factory):
    torch.manual_seed(0)
    cfg = bert.BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64, max_position_embeddings=32, hidden_dropout_prob=0.0)
    return bert.save_pretrained(bert.BertForMLM(cfg), tokenizer, tmp_path_factory.mktemp("tiny"))


def test_pack_blocks_fills_blocks_end_to_end(tokenizer, reviews):
    texts = reviews[:20]
    blocks = bert.pack_blocks(texts, tokenizer, block_size=16)
    stream = [i for ids in tokenizer(texts, add_special_tokens=False)["input_ids"] for i in ids]
    assert blocks.shape == (-(-len(stream) // 14), 16)
    assert (blocks[:, 0] == tokenizer.cls_token_id).all()
    body = blocks[:, 1:]
    real = body[(body != tokenizer.pad_token_id) & (body != tokenizer.sep_token_id)]
    assert real.tolist() == stream                                   # every token once, in order
    pads = (blocks == tokenizer.pad_token_id).sum(1)
    assert (pads[:-1] == 0).all()                                    # only the last block is padded
    per_text = bert.make_blocks(texts, tokenizer, block_size=16)
    assert len(per_text) > len(blocks)                                # one block (or more) per text wastes room


@pytest.mark.parametrize("texts, match", [([], "at least one"), (["  ", ""], "at least one")])
def test_pack_blocks_rejects_empty(tokenizer, texts, match):
    with pytest.raises(ValueError, match=match):
        bert.pack_blocks(texts, tokenizer)


def test_split_texts_dedups_and_is_seeded():
    texts = ["b", "a", "a", " c ", "d", "", "e"]
    kept, held = adapt.split_texts(texts, 0.2, seed=1)
    assert sorted(kept + held) == ["a", "b", "c", "d", "e"] and len(held) == 1
    assert adapt.split_texts(texts, 0.2, seed=1) == (kept, held)
    with pytest.raises(ValueError, match="at least 2 distinct"):
        adapt.split_texts(["same", "same", " "], 0.2)
    with pytest.raises(TypeError, match="not one string"):
        adapt.split_texts("a text", 0.2)


@pytest.mark.parametrize("kw, match", [(dict(held_out_fraction=0.0), "held_out_fraction"),
                                       (dict(max_eval_blocks=0), "max_eval_blocks must be at least 1"),
                                       (dict(settings=dataclasses.replace(adapt.ADAPT, max_steps=None, epochs=1)),
                                        "TrainConfig with max_steps")])
def test_adaptation_rejects_bad_settings(tiny_folder, reviews, tmp_path, kw, match):
    with pytest.raises((TypeError, ValueError), match=match):
        adapt.adapt_pretraining(tiny_folder, reviews, out=tmp_path / "x", **kw)
    assert not (tmp_path / "x").exists()


def test_adaptation_lowers_the_held_out_loss_and_is_cached(tiny_folder, reviews, tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path / "cache"))
    settings = train.TrainConfig(max_steps=60, lr=3e-3, batch_size=8, eval_every=30)
    out = adapt.adapt_pretraining(tiny_folder, reviews, settings, held_out_fraction=0.2, device="cpu",
                                  progress=False)
    record = adapt.adaptation_record(out)
    assert record["loss_after"] < record["loss_before"] - 0.3        # measured: 5.99 -> 5.41 over 3 seeds
    model, tok = bert.load_pretrained(out)
    start, _ = bert.load_pretrained(tiny_folder)
    assert not torch.equal(model.bert.embeddings.word_embeddings.weight,
                           start.bert.embeddings.word_embeddings.weight)
    again = adapt.adapt_pretraining(tiny_folder, reviews, settings, held_out_fraction=0.2, device="cpu",
                                    progress=False)
    assert again == out and json.loads((out / "adaptation.json").read_text()) == record
    # a GPU's mixed precision is another run: a cache carried across machines keeps them apart
    monkeypatch.setattr(train, "resolve_amp", lambda amp, device: torch.bfloat16)
    in_bf16 = adapt.adapt_pretraining(tiny_folder, reviews, settings,
                                      held_out_fraction=0.2, device="cpu", progress=False)
    assert in_bf16 != out and adapt.adaptation_record(in_bf16)["settings"]["precision"] == "torch.bfloat16"


def test_adaptation_says_what_is_wrong(tiny_folder, reviews, tmp_path):
    with pytest.raises(ValueError, match="fewer than one batch"):
        adapt.adapt_pretraining(tiny_folder, reviews[:10], dataclasses.replace(adapt.ADAPT, batch_size=32), out=tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        adapt.adapt_pretraining(tmp_path, reviews, out=tmp_path / "y")
    with pytest.raises(FileNotFoundError, match="adapt_pretraining"):
        adapt.adaptation_record(tiny_folder)
