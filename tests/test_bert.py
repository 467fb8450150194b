"""Tests of textft_lib.bert and textft_lib.wordpiece: masking statistics, the model against
transformers' BertForMaskedLM, save/load round trips, pretraining and bad input."""

from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
import torch.nn.functional as F

transformers = pytest.importorskip("transformers")

from textft_lib import bert, data, train, wordpiece  # noqa: E402


pytestmark = pytest.mark.usefixtures("one_thread")      # tests/conftest.py


@pytest.fixture(scope="module")
def tokenizer():
    texts = data.load("lee")[:120]
    return wordpiece.train_wordpiece(texts, vocab_size=400, model_max_length=32)


@pytest.fixture(scope="module")
def texts():
    return data.load("lee")[120:140]


def tiny_config(vocab_size: int = 400, **kw) -> bert.BertConfig:
    args = dict(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                intermediate_size=64, max_position_embeddings=32, hidden_dropout_prob=0.0)
    args.update(kw)
    return bert.BertConfig(**args)


# --------------------------------------------------------------------------- tokenizer


def test_clean_wiki_strips_markup():
    raw = "== Birth ==\n'''Achilles''' was the son of ''Thetis'' and Peleus.\n* a list item with words\nthumb"
    assert bert is not None
    cleaned = wordpiece.clean_wiki(raw)
    assert cleaned.splitlines() == ["Achilles was the son of Thetis and Peleus.", "a list item with words"]


def test_tokenizer_round_trip(tokenizer, texts, tmp_path):
    assert len(tokenizer) == 400
    assert [tokenizer.convert_tokens_to_ids(t) for t in wordpiece.SPECIAL_TOKENS] == [0, 1, 2, 3, 4]
    wordpiece.save_tokenizer(tokenizer, tmp_path)
    assert {"tokenizer.json", "tokenizer_config.json", "vocab.txt"} <= {p.name for p in tmp_path.iterdir()}
    vocab_lines = (tmp_path / "vocab.txt").read_text(encoding="utf-8").splitlines()
    assert vocab_lines == tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    loaded = wordpiece.load_tokenizer(tmp_path)
    auto = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    for text in texts[:5]:
        ids = tokenizer(text)["input_ids"]
        assert loaded(text)["input_ids"] == ids == auto(text)["input_ids"]
        assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    # vocab.txt alone (the classic format) gives the same tokenization
    classic = transformers.BertTokenizer(vocab=str(tmp_path / "vocab.txt"))
    assert classic(texts[0])["input_ids"] == tokenizer(texts[0])["input_ids"]
    # truncation follows model_max_length
    assert len(loaded(" ".join(texts), truncation=True)["input_ids"]) == 32


def test_train_wordpiece_rejects_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        wordpiece.train_wordpiece(["", "  "])
    with pytest.raises(ValueError, match="vocab_size"):
        wordpiece.train_wordpiece(["some text"], vocab_size=3)


_TRAIN_AND_PRINT = """
import json
from textft_lib import data, wordpiece
print(json.dumps(wordpiece.train_wordpiece(data.load("lee")[:120], vocab_size=400).get_vocab(), sort_keys=True))
"""


def test_retraining_in_a_new_process_gives_the_same_ids():
    # tokenizers' hash maps are seeded per process, so its raw trainer numbers tied tokens
    # differently each time (three runs on these texts: three numberings); canonical_ids fixes it
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    runs = [subprocess.run([sys.executable, "-c", _TRAIN_AND_PRINT], capture_output=True, text=True,
                           check=True, cwd=root).stdout for _ in range(2)]
    assert runs[0] == runs[1] and len(json.loads(runs[0])) == 400


def test_canonical_ids_keep_the_splits(tokenizer, texts):
    vocab = tokenizer.get_vocab()
    assert wordpiece.canonical_ids(vocab) == vocab                    # already canonical
    order = sorted(vocab, key=vocab.get)
    assert order[:5] == list(wordpiece.SPECIAL_TOKENS) and order[5:] == sorted(order[5:])
    shuffled = {t: (i * 7919) % len(vocab) for i, t in enumerate(vocab)}   # another numbering
    assert wordpiece.canonical_ids(shuffled) == vocab
    other = type(tokenizer)(vocab=shuffled, do_lower_case=True)
    assert [other.tokenize(t) for t in texts] == [tokenizer.tokenize(t) for t in texts]
    with pytest.raises(ValueError, match=r"lacks the special tokens \['\[MASK\]'\]"):
        wordpiece.canonical_ids({t: i for t, i in vocab.items() if t != "[MASK]"})


# --------------------------------------------------------------------------- blocks and masking


def test_make_blocks(tokenizer, texts):
    blocks = bert.make_blocks(texts[:3], tokenizer, block_size=16)
    assert blocks.dtype == torch.long and blocks.shape[1] == 16
    assert (blocks[:, 0] == tokenizer.cls_token_id).all()
    n_tokens = sum(len(tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"]) for t in texts[:3])
    real = blocks != tokenizer.pad_token_id
    assert int(real.sum()) - 2 * len(blocks) == n_tokens          # every token once, plus [CLS]/[SEP]
    last_real = real.sum(1) - 1
    assert (blocks[torch.arange(len(blocks)), last_real] == tokenizer.sep_token_id).all()
    with pytest.raises(ValueError, match="block_size"):
        bert.make_blocks(texts, tokenizer, block_size=2)


def test_masking_proportions():
    g = torch.Generator().manual_seed(0)
    vocab, mask_id = 1000, 4
    ids = torch.randint(5, vocab, (400, 100), generator=g)
    ids[:, 0], ids[:, -1] = 2, 3                         # [CLS] ... [SEP]
    ids[::3, 60:] = 0                                    # padding in a third of the rows
    special = ids < 5
    inputs, labels = bert.mask_tokens(ids, special, mask_token_id=mask_id, random_ids=torch.arange(5, vocab),
                                      generator=g)
    chosen = labels != -100
    n_real = int((~special).sum())
    frac = chosen.sum().item() / n_real
    sigma = math.sqrt(0.15 * 0.85 / n_real)
    assert abs(frac - 0.15) < 5 * sigma, frac
    assert not chosen[special].any()                     # specials and padding are never chosen
    assert torch.equal(inputs[~chosen], ids[~chosen])    # nothing else changes
    assert torch.equal(labels[chosen], ids[chosen])      # labels are the original tokens
    n = int(chosen.sum())
    as_mask = (inputs[chosen] == mask_id).float().mean().item()
    kept = (inputs[chosen] == ids[chosen]).float().mean().item()
    randomised = 1 - as_mask - kept
    s = lambda p: 5 * math.sqrt(p * (1 - p) / n)
    assert abs(as_mask - 0.8) < s(0.8) and abs(kept - 0.1) < s(0.1) + 1e-3 and abs(randomised - 0.1) < s(0.1) + 1e-3
    assert (inputs[chosen & (inputs != ids) & (inputs != mask_id)] >= 5).all()   # random tokens are never special


def test_collator_against_transformers(tokenizer, texts):
    """Our collator and DataCollatorForLanguageModeling choose and replace in the same proportions."""
    blocks = bert.make_blocks(texts, tokenizer, block_size=32)
    examples = list(blocks) * 20
    ours = bert.MLMCollator(tokenizer, seed=0)(examples)
    hf_collator = transformers.DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=0)
    theirs = hf_collator([{"input_ids": b.tolist()} for b in examples])
    special = torch.isin(blocks.repeat(20, 1), torch.tensor(tokenizer.all_special_ids))
    for batch in (ours, theirs):
        chosen = batch["labels"] != -100
        assert not chosen[special].any()
        assert abs(chosen.sum().item() / (~special).sum().item() - 0.15) < 0.02
        assert abs((batch["input_ids"][chosen] == tokenizer.mask_token_id).float().mean().item() - 0.8) < 0.04
    assert ours["attention_mask"].dtype == torch.bool
    assert torch.equal(ours["attention_mask"], blocks.repeat(20, 1) != tokenizer.pad_token_id)


def test_collator_rejects_bad_input(tokenizer):
    collate = bert.MLMCollator(tokenizer)
    with pytest.raises(ValueError, match="empty"):
        collate([])
    with pytest.raises(ValueError, match="one length"):
        collate([torch.tensor([2, 10, 3]), torch.tensor([2, 3])])
    with pytest.raises(IndexError, match="400"):
        collate([torch.tensor([2, 400, 3])])


def test_unigram_baseline():
    blocks = torch.tensor([[2, 5, 5, 6, 3, 0]])
    lp = bert.unigram_log_probs(blocks, vocab_size=8, special_ids=[0, 1, 2, 3, 4])
    # add-one counts over ids 5, 6, 7: 3, 2, 1
    assert torch.allclose(lp[5:].exp(), torch.tensor([3 / 6, 2 / 6, 1 / 6]))
    assert torch.isinf(lp[:5]).all()
    labels = torch.tensor([[-100, 5, -100, 6, -100, -100]])
    assert bert.unigram_loss(lp, labels) == pytest.approx(-(math.log(3 / 6) + math.log(2 / 6)) / 2)


def test_score_held_out_sets_model_beside_unigram(tokenizer, texts):
    blocks = bert.make_blocks(texts, tokenizer, 32)
    data_ = bert.PretrainData(tokenizer, blocks, blocks[:8])
    torch.manual_seed(0)
    model = bert.BertForMLM(tiny_config(len(tokenizer))).eval()
    score = bert.score_held_out(model, data_, seed=0)
    alone = bert.evaluate_mlm(model, blocks[:8], bert.MLMCollator(tokenizer), seed=0)
    base = bert.unigram_baseline(blocks, blocks[:8], tokenizer, seed=0)
    assert score["held_out_loss"] == alone["loss"] and score["unigram_loss"] == base["loss"]
    assert score["loss_reduction_vs_unigram"] == pytest.approx(1 - alone["loss"] / base["loss"])
    assert score["loss_reduction_vs_unigram"] < 0           # an untrained model is worse than word counts


# --------------------------------------------------------------------------- the model against transformers


def test_names_map_both_ways():
    model = bert.BertForMLM(tiny_config())
    hf = transformers.BertForMaskedLM(tiny_config().to_hf())
    ours = list(model.state_dict())
    assert sorted(bert.hf_name(k) for k in ours) == sorted(k for k in hf.state_dict() if k not in bert.HF_TIED)
    assert [bert.our_name(bert.hf_name(k)) for k in ours] == ours
    for k, v in bert.to_hf_state_dict(model).items():
        assert v.shape == hf.state_dict()[k].shape, k
    with pytest.raises(KeyError, match="pooler"):
        bert.our_name("bert.pooler.dense.weight")


@pytest.mark.parametrize("attn", ["eager", "sdpa"])
def test_same_logits_as_transformers_both_ways(attn):
    torch.manual_seed(0)
    model = bert.BertForMLM(tiny_config()).eval()
    ids = torch.randint(5, 400, (3, 20))
    mask = torch.ones(3, 20, dtype=torch.long)
    mask[1, 12:] = 0
    ids[1, 12:] = 0
    types = torch.zeros_like(ids)
    types[2, 10:] = 1
    hf = bert.to_transformers(model, attn).eval()
    expected = hf(input_ids=ids, attention_mask=mask, token_type_ids=types).logits
    torch.testing.assert_close(model(ids, mask, types), expected, atol=2e-5, rtol=1e-4)
    # the reverse: a transformers model (its own random init) into ours
    other = transformers.BertForMaskedLM(tiny_config().to_hf()).eval()
    back = bert.from_transformers(other).eval()
    torch.testing.assert_close(back(ids, mask, types), other(input_ids=ids, attention_mask=mask,
                                                               token_type_ids=types).logits, atol=2e-5, rtol=1e-4)
    assert back.bert.embeddings.word_embeddings.weight.data_ptr() == back.decoder_weight.data_ptr()


def test_save_pretrained_round_trip(tokenizer, tmp_path):
    torch.manual_seed(1)
    model = bert.BertForMLM(tiny_config()).eval()
    bert.save_pretrained(model, tokenizer, tmp_path)
    hf = transformers.AutoModelForMaskedLM.from_pretrained(str(tmp_path)).eval()
    tok = transformers.AutoTokenizer.from_pretrained(str(tmp_path))
    enc = tok(["A man was shot in the [MASK] today.", "Short."], padding=True, return_tensors="pt")
    torch.testing.assert_close(model(enc["input_ids"], enc["attention_mask"]), hf(**enc).logits,
                               atol=2e-5, rtol=1e-4)
    loaded, loaded_tok = bert.load_pretrained(tmp_path)
    torch.testing.assert_close(loaded(enc["input_ids"], enc["attention_mask"]), model(enc["input_ids"],
                               enc["attention_mask"]))
    assert loaded_tok.model_max_length == 32


def test_mlm_loss_equals_full_cross_entropy():
    torch.manual_seed(2)
    model = bert.BertForMLM(tiny_config()).eval()
    ids = torch.randint(5, 400, (2, 16))
    labels = torch.full_like(ids, -100)
    labels[0, 3], labels[1, 7], labels[1, 8] = 11, 12, 13
    loss, logits, targets = model.mlm_loss(ids, labels)
    full = F.cross_entropy(model(ids).transpose(1, 2), labels)
    torch.testing.assert_close(loss, full)
    assert logits.shape == (3, 400) and targets.tolist() == [11, 12, 13]
    assert model.bert(ids).shape == (2, 16, 32)


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises_or_truncates(tokenizer):
    model = bert.BertForMLM(tiny_config()).eval()
    with pytest.raises(ValueError, match="max_position_embeddings"):
        model(torch.randint(5, 400, (1, 33)))
    with pytest.raises(IndexError, match="vocabulary"):
        model(torch.tensor([[2, 400, 3]]))
    with pytest.raises(ValueError, match="shape"):
        model(torch.randint(5, 400, (16,)))
    with pytest.raises(ValueError, match="no masked position"):
        model.mlm_loss(torch.randint(5, 400, (1, 8)), torch.full((1, 8), -100))
    wrong = bert.BertForMLM(tiny_config(vocab_size=500))
    with pytest.raises(ValueError, match="do not belong together"):
        bert.check_tokenizer(wrong, tokenizer)
    with pytest.raises(ValueError, match="do not belong together"):
        bert.fill_mask(wrong, tokenizer, "a [MASK] day")
    # fill_mask truncates a long text to max_position_embeddings ...
    long_text = "the [MASK] was here . " + "and a long tail of words " * 40
    guesses = bert.fill_mask(model, tokenizer, long_text, top_k=3)
    assert len(guesses) == 1 and len(guesses[0]) == 3
    # ... and says so when a mask falls beyond it
    with pytest.raises(ValueError, match="truncated"):
        bert.fill_mask(model, tokenizer, "words " * 40 + "the [MASK] end")
    with pytest.raises(ValueError, match="no \\[MASK\\]"):
        bert.fill_mask(model, tokenizer, "no mask here")


def test_config_errors():
    with pytest.raises(ValueError, match="divisible"):
        bert.BertConfig(hidden_size=30, num_attention_heads=4)
    hf_cfg = transformers.BertConfig(hidden_act="relu")
    with pytest.raises(ValueError, match="gelu"):
        bert.BertConfig.from_hf(hf_cfg)


# --------------------------------------------------------------------------- pretraining


def test_loss_falls_on_a_tiny_corpus(tokenizer, texts):
    torch.manual_seed(0)
    blocks = bert.make_blocks(texts, tokenizer, block_size=32)
    settings = train.TrainConfig(batch_size=16, lr=3e-3, max_steps=60, eval_every=30)
    prepared = bert.PretrainData(tokenizer, blocks, blocks[:32])
    model = bert.BertForMLM(bert.BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                                            num_attention_heads=4, intermediate_size=64, max_position_embeddings=32))
    before = bert.evaluate_mlm(model, blocks[:32], bert.MLMCollator(tokenizer))["loss"]
    history = bert.pretrain(model, prepared, settings, progress=False, verbose=False, cache=None)
    after = history.evals[-1]["val_loss"]
    assert before > math.log(400) - 0.5                  # an untrained model guesses near-uniformly
    assert after < before - 0.3, (before, after)
    first, last = [sum(r["loss"] for r in rows) / 10 for rows in (history.steps[:10], history.steps[-10:])]
    assert last < first - 0.3, (first, last)
    assert len(history.steps) == 60 and "accuracy" in history.steps[0]


def test_evaluate_mlm_splits_the_loss_by_what_the_input_showed(tokenizer, texts):
    torch.manual_seed(0)
    blocks = bert.make_blocks(texts, tokenizer, block_size=32)[:48]
    model = bert.BertForMLM(tiny_config(len(tokenizer), max_position_embeddings=32))
    collator = bert.MLMCollator(tokenizer)
    result = bert.evaluate_mlm(model, blocks, collator, batch_size=16, seed=3)
    # recompute each kind's loss by hand on the same seeded masks
    nll, kinds = [], []
    with torch.no_grad():
        for batch in bert.fixed_mask_batches(blocks, collator, batch_size=16, seed=3):
            where = batch["labels"] != -100
            logits = model(batch["input_ids"], batch["attention_mask"])[where]
            nll.append(torch.nn.functional.cross_entropy(logits, batch["labels"][where], reduction="none"))
            shown = batch["input_ids"][where]
            kinds.append(torch.where(shown == tokenizer.mask_token_id, 0,
                                     torch.where(shown == batch["labels"][where], 2, 1)))
    nll, kinds = torch.cat(nll), torch.cat(kinds)
    assert result["masked_tokens"] == len(nll)
    assert result["loss"] == pytest.approx(float(nll.mean()), rel=1e-5)
    for k, key in enumerate(["loss_mask", "loss_random", "loss_kept"]):
        assert (kinds == k).sum() > 0
        assert result[key] == pytest.approx(float(nll[kinds == k].mean()), rel=1e-5)
    share = [(kinds == k).float().mean() for k in range(3)]
    assert 0.7 < share[0] < 0.9 and share[1] < 0.2 and share[2] < 0.2


def test_kept_tokens_are_cheap_for_a_model_that_copies(tokenizer, texts):
    """A model that only copies its input (no context at all) scores low on the kept
    positions and no better than chance on [MASK]: the split exposes it."""
    blocks = bert.make_blocks(texts, tokenizer, block_size=32)[:32]
    model = bert.BertForMLM(tiny_config(len(tokenizer), max_position_embeddings=32))

    class Copier(torch.nn.Module):
        config = model.config

        def __init__(self):
            super().__init__()
            self.anchor = torch.nn.Parameter(torch.zeros(()))

        def mlm_loss(self, ids, labels, attention_mask=None):
            where = labels != -100
            logits = torch.nn.functional.one_hot(ids[where], len(tokenizer)).float() * 20 + self.anchor
            return torch.nn.functional.cross_entropy(logits, labels[where]), logits, labels[where]

    result = bert.evaluate_mlm(Copier(), blocks, bert.MLMCollator(tokenizer), batch_size=16)
    assert result["loss_kept"] < 0.01
    assert result["loss_mask"] > math.log(len(tokenizer)) - 0.1


def test_offset_heads_look_at_their_neighbour_and_still_export():
    torch.manual_seed(0)
    cfg = tiny_config(400, hidden_size=64, num_attention_heads=2, max_position_embeddings=32)
    model = bert.BertForMLM(cfg)
    bert.init_offset_heads(model, offsets=(-1, 2, 1, -2), position_dims=32)
    assert not model.bert.embeddings.position_embeddings.weight.requires_grad
    ids = torch.randint(5, 400, (3, 32))
    model.eval()
    with torch.no_grad():
        x = model.bert.embeddings(ids)
        for layer, wanted in zip(model.bert.layers, [(-1, 2), (1, -2)]):
            _, w = layer.self_attn(x, need_weights=True)                       # (B, H, L, L)
            queries = torch.arange(4, 28)                                      # away from the edges
            for h, k in enumerate(wanted):
                top = w[:, h, queries].argmax(-1)                              # (B, Q)
                assert (top == queries + k).float().mean() > 0.9, (h, k)
            x = layer(x)
        hf = bert.to_transformers(model).eval()
        torch.testing.assert_close(hf(input_ids=ids).logits, model(ids), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="position_dims"):
        bert.init_offset_heads(model, position_dims=48)
    with pytest.raises(ValueError, match="offsets"):
        bert.init_offset_heads(model, offsets=())


def test_output_bias_starts_at_the_unigram(tokenizer, texts):
    blocks = bert.make_blocks(texts, tokenizer, block_size=32)
    model = bert.BertForMLM(tiny_config(len(tokenizer)))
    log_p = bert.unigram_log_probs(blocks, len(tokenizer), tokenizer.all_special_ids)
    bert.init_output_bias(model, log_p)
    assert torch.equal(model.head.bias.data, log_p.clamp(min=-30.0))
    with pytest.raises(ValueError, match="shape"):
        bert.init_output_bias(model, log_p[:-1])


def test_new_model_starts_as_the_settings_say(tokenizer, texts):
    blocks = bert.make_blocks(texts, tokenizer, block_size=32)
    data = bert.PretrainData(tokenizer, blocks, blocks[:8])
    small = bert.PretrainConfig().with_model(max_position_embeddings=32, hidden_size=32, num_attention_heads=2,
                                             intermediate_size=64)
    torch.manual_seed(0)
    plain = bert.new_model(small, data)
    torch.manual_seed(0)
    head = bert.new_model(dataclasses.replace(small, init="offset_heads"), data)
    assert plain.bert.embeddings.position_embeddings.weight.requires_grad
    assert not head.bert.embeddings.position_embeddings.weight.requires_grad
    assert float(plain.head.bias.detach().abs().max()) == 0.0
    log_p = bert.unigram_log_probs(blocks, len(tokenizer), tokenizer.all_special_ids)
    assert torch.equal(head.head.bias.data, log_p.clamp(min=-30.0))
    # the untrained head start predicts the unigram distribution, so its loss starts near the baseline
    collator = bert.MLMCollator(tokenizer)
    first = bert.evaluate_mlm(head, blocks[:32], collator)["loss"]
    unigram = bert.unigram_loss(log_p, torch.cat([b["labels"] for b in bert.fixed_mask_batches(blocks[:32], collator)]))
    assert abs(first - unigram) < 0.5 < bert.evaluate_mlm(plain, blocks[:32], collator)["loss"] - unigram
    with pytest.raises(ValueError, match="init must be one of"):
        bert.PretrainConfig(init="xavier")


def test_mask_word_scores_matches_the_full_logits(tokenizer):
    torch.manual_seed(0)
    model = bert.BertForMLM(tiny_config()).eval()
    words = [w for w in ("the", "and", "of") if len(tokenizer.tokenize(w)) == 1][:2]
    assert len(words) == 2
    texts = ["a short text", "a much longer text that goes on " * 10, "x"]
    scores = bert.mask_word_scores(model, tokenizer, texts, "{} it was [MASK] .", words, batch_size=2)
    assert scores.shape == (3, 2) and bool((scores <= 0).all())
    # short texts: the same as the filled-in template tokenized in one piece
    for text, row in zip(texts[::2], scores[::2]):
        ids = tokenizer(f"{text} it was [MASK] .", return_tensors="pt")["input_ids"]
        logp = model(ids)[0, ids[0] == tokenizer.mask_token_id].log_softmax(-1)[0]
        assert torch.allclose(row, logp[tokenizer.convert_tokens_to_ids(words)], atol=1e-5)
    # the same numbers from the whole model, one text at a time, unpadded
    for text, row in zip(texts, scores):
        ids = [tokenizer.cls_token_id, *tokenizer(text, add_special_tokens=False)["input_ids"]]
        tail = tokenizer(" it was [MASK] .", add_special_tokens=False)["input_ids"] + [tokenizer.sep_token_id]
        ids = torch.tensor([ids[:32 - len(tail)] + tail])                 # the long text is cut, the blank kept
        logp = model(ids)[0, ids[0] == tokenizer.mask_token_id].log_softmax(-1)[0]
        assert torch.allclose(row, logp[tokenizer.convert_tokens_to_ids(words)], atol=1e-5)


def test_mask_word_scores_bad_input(tokenizer):
    model = bert.BertForMLM(tiny_config()).eval()
    word = next(w for w in ("the", "and", "of") if len(tokenizer.tokenize(w)) == 1)
    with pytest.raises(ValueError, match="non-empty list"):
        bert.mask_word_scores(model, tokenizer, [], "{} [MASK]", [word])
    with pytest.raises(ValueError, match="empty or not strings"):
        bert.mask_word_scores(model, tokenizer, ["ok", " "], "{} [MASK]", [word])
    with pytest.raises(ValueError, match="exactly one"):
        bert.mask_word_scores(model, tokenizer, ["ok"], "{} and no blank", [word])
    with pytest.raises(ValueError, match="only the template"):
        bert.mask_word_scores(model, tokenizer, ["a [MASK] here"], "{} [MASK]", [word])
    with pytest.raises(ValueError, match="no tokens"):
        bert.mask_word_scores(model, tokenizer, ["ok", "\u200b"], "{} [MASK]", [word])
    with pytest.raises(ValueError, match="not one ordinary token"):
        bert.mask_word_scores(model, tokenizer, ["ok"], "{} [MASK]", ["zzqxjv"])
    with pytest.raises(ValueError, match="not one ordinary token"):
        bert.mask_word_scores(model, tokenizer, ["ok"], "{} [MASK]", ["[SEP]"])
    with pytest.raises(ValueError, match="non-empty list of words"):
        bert.mask_word_scores(model, tokenizer, ["ok"], "{} [MASK]", word)             # a string, not a list
    with pytest.raises(ValueError, match="non-empty list of words"):
        bert.mask_word_scores(model, tokenizer, ["ok"], "{} [MASK]", [])
    with pytest.raises(ValueError, match="batch_size"):
        bert.mask_word_scores(model, tokenizer, ["ok"], "{} [MASK]", [word], batch_size=0)
    # a character outside the vocabulary becomes [UNK]: that is a text, not an error
    assert bert.mask_word_scores(model, tokenizer, ["ok \u2603"], "{} [MASK]", [word]).shape == (1, 1)
    # the model's mode is restored, also after an error inside the batch loop
    model.train()
    with pytest.raises(Exception):
        bert.mask_word_scores(model, tokenizer, ["ok"] * 3, "{} [MASK]", [word], batch_size=1.5)
    assert model.training
    with pytest.raises(ValueError, match="no room"):
        bert.mask_word_scores(model, tokenizer, ["ok"], "{} [MASK] " + "and " * 40, [word])


def test_lesson_settings_take_a_gpus_budget_on_cuda(monkeypatch):
    monkeypatch.setenv("TEXTFT_QUICK", "0")
    assert bert.lesson_settings() == bert.LESSON_FULL == bert.lesson_settings("cpu")
    gpu = bert.lesson_settings("cuda")        # naming the device needs no GPU
    assert gpu.train.max_steps == 8 * bert.LESSON_FULL.train.max_steps and gpu.data.corpus == "offline_mix"
    assert gpu.with_train(max_steps=3000, eval_every=250) == bert.LESSON_FULL
    monkeypatch.setenv("TEXTFT_QUICK", "1")
    assert bert.lesson_settings("cuda") == bert.LESSON_QUICK


def test_course_bert_keeps_a_gpus_precisions_apart(monkeypatch, tmp_path):
    from textft_lib import train
    from textft_lib.bert.pretraining import course_bert_folder

    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path))
    settings = bert.LESSON_QUICK
    cpu = course_bert_folder(settings, "cpu")
    assert cpu.parent == tmp_path / "bert" and cpu == course_bert_folder(settings, "cpu")
    folders = {cpu}
    for dtype in (torch.bfloat16, torch.float16):      # an A100's bf16, a T4's fp16
        monkeypatch.setattr(train, "resolve_amp", lambda amp, device, dtype=dtype: dtype)
        folders.add(course_bert_folder(settings, "cuda"))
    assert len(folders) == 3
    monkeypatch.setattr(wordpiece, "VERSION", wordpiece.VERSION + 1)   # tokenizers numbered another way
    assert course_bert_folder(settings, "cuda") not in folders
