"""Tests of textft_lib.classify: metrics against scikit-learn, calibration, baselines,
tokenizing with truncation, and the Classifier's predict / save / load contract."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from textft_lib import classify, data


# --------------------------------------------------------------------------- metrics


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    y, p = rng.integers(0, 3, 80), rng.integers(0, 3, 80)
    assert classify.accuracy(y, p) == pytest.approx(skm.accuracy_score(y, p))
    np.testing.assert_array_equal(classify.confusion_matrix(y, p, 3), skm.confusion_matrix(y, p, labels=[0, 1, 2]))
    prf = classify.precision_recall_f1(y, p, 3)
    sk_p, sk_r, sk_f, sk_s = skm.precision_recall_fscore_support(y, p, labels=[0, 1, 2], zero_division=0)
    np.testing.assert_allclose(prf["precision"], sk_p)
    np.testing.assert_allclose(prf["recall"], sk_r)
    np.testing.assert_allclose(prf["f1"], sk_f)
    np.testing.assert_array_equal(prf["support"], sk_s)
    report = classify.classification_report(y, p, ["a", "b", "c"])
    assert report["macro_f1"] == pytest.approx(skm.f1_score(y, p, average="macro"))


def test_hand_worked_binary_metrics():
    y_true, y_pred = [1, 1, 1, 0, 0], [1, 1, 0, 1, 0]
    prf = classify.precision_recall_f1(y_true, y_pred, 2)
    # class 1: TP=2, FP=1, FN=1 -> P = R = F1 = 2/3; class 0: TP=1, FP=1, FN=1 -> 1/2
    np.testing.assert_allclose(prf["precision"], [0.5, 2 / 3])
    np.testing.assert_allclose(prf["recall"], [0.5, 2 / 3])
    np.testing.assert_array_equal(classify.confusion_matrix(y_true, y_pred, 2), [[1, 1], [1, 2]])


def test_class_never_predicted_gets_zero_not_nan():
    prf = classify.precision_recall_f1([0, 1, 1], [1, 1, 1], 2)
    assert prf["precision"][0] == 0.0 and prf["f1"][0] == 0.0
    assert not np.isnan(prf["f1"]).any()


@pytest.mark.parametrize("args, err", [
    (([0, 1], [0]), ValueError),            # lengths differ
    (([], []), ValueError),                 # empty
    (([0.5, 1.0], [0, 1]), TypeError),      # not class ids
    (([[0, 1]], [[0, 1]]), ValueError),     # not 1-D
    (([-1, 0], [0, 0]), ValueError),        # negative id
])
def test_metrics_reject_bad_input(args, err):
    with pytest.raises(err):
        classify.accuracy(*args)


def test_confusion_matrix_rejects_ids_beyond_n_classes():
    with pytest.raises(ValueError, match="n_classes"):
        classify.confusion_matrix([0, 2], [0, 1], n_classes=2)


# --------------------------------------------------------------------------- calibration


def test_ece_hand_worked_and_perfect():
    # conf 0.9 right, conf 0.8 wrong: (|1 - 0.9| + |0 - 0.8|) / 2
    assert classify.expected_calibration_error([[0.9, 0.1], [0.2, 0.8]], [0, 0]) == pytest.approx(0.45)
    # a model whose confidence equals its accuracy in each bin has ECE 0
    probs = np.array([[0.75, 0.25]] * 4)
    assert classify.expected_calibration_error(probs, [0, 0, 0, 1]) == pytest.approx(0.0)


def test_reliability_bins_count_everything_once():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 3))
    probs = classify.softmax(logits)
    b = classify.reliability_bins(probs, rng.integers(0, 3, 200), n_bins=7)
    assert b["count"].sum() == 200 and len(b["edges"]) == 8
    used = b["count"] > 0
    assert np.all((b["confidence"][used] >= 1 / 3 - 1e-9) & (b["confidence"][used] <= 1))


def test_probs_must_be_distributions():
    with pytest.raises(ValueError, match="softmax"):
        classify.expected_calibration_error([[2.0, -1.0]], [0])


def test_temperature_scaling_fixes_overconfidence_without_changing_labels():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(size=(2000, 2)) * 1.5
    labels = np.array([rng.choice(2, p=p) for p in classify.softmax(true_logits)])
    over = true_logits * 4                       # same ranking, four times too confident
    t = classify.fit_temperature(over, labels)
    assert 3.0 < t < 5.5
    before = classify.expected_calibration_error(classify.softmax(over), labels)
    after = classify.expected_calibration_error(classify.softmax(over, t), labels)
    assert after < before / 2
    np.testing.assert_array_equal(classify.softmax(over).argmax(1), classify.softmax(over, t).argmax(1))


def test_most_confident_mistakes_order():
    probs = np.array([[0.9, 0.1], [0.3, 0.7], [0.05, 0.95], [0.6, 0.4]])
    out = classify.most_confident_mistakes(["a", "b", "c", "d"], [1, 1, 0, 0], probs, ["neg", "pos"], k=5)
    assert [m["text"] for m in out] == ["c", "a"]
    assert out[0] == {"text": "c", "true": "neg", "predicted": "pos", "confidence": pytest.approx(0.95)}


# --------------------------------------------------------------------------- data and baselines


def test_subsample_is_seeded_and_balanced():
    split = data.Split([f"t{i}" for i in range(100)], [0] * 70 + [1] * 30)
    a, b = classify.subsample(split, 20, seed=3), classify.subsample(split, 20, seed=3)
    assert a.texts == b.texts and len(a) == 20 and sum(a.labels) == 6


def test_load_dataset_rejects_unknown_name():
    with pytest.raises(ValueError, match="movie_reviews"):
        classify.load_dataset("imdb")


def test_load_dataset_takes_every_labelled_set_of_the_catalogue(tmp_path, monkeypatch):
    # AG News from local files in its original layout: four topics, subsampled per class
    folder = tmp_path / "ag_news"
    folder.mkdir()
    rows = [f'"{1 + i % 4}","title {i}","text number {i}"' for i in range(80)]
    (folder / "train.csv").write_text("\n".join(rows) + "\n")
    (folder / "test.csv").write_text("\n".join(rows[:20]) + "\n")
    monkeypatch.setenv("TEXTFT_DATA_DIR", str(tmp_path))
    ds = classify.load_dataset("ag_news", max_train=40)
    assert len(ds.train) == 40 and set(ds.train.labels) == {0, 1, 2, 3} and len(ds.label_names) == 4
    assert "ag_news" in classify.DATASETS and "sst2" in classify.DATASETS


def test_baselines_on_movie_reviews():
    ds = classify.load_dataset("movie_reviews")
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (140, 30, 30)
    maj = classify.MajorityBaseline().fit(ds.train.labels)
    assert set(maj.predict(ds.test.texts)) == {0}                          # 74 neg vs 66 pos
    np.testing.assert_allclose(maj.predict_proba(ds.test.texts).sum(1), 1.0)
    tfidf = classify.fit_tfidf_logreg(ds.train.texts, ds.train.labels, ds.validation.texts, ds.validation.labels)
    train_acc = classify.accuracy(ds.train.labels, tfidf.predict(ds.train.texts))
    assert train_acc > 0.9                                                 # it can fit the data
    feats = classify.fit_features_logreg(np.eye(4)[[0, 1, 2, 3] * 5], [0, 1, 0, 1] * 5)
    assert classify.accuracy([0, 1, 0, 1], feats.predict(np.eye(4))) == 1.0


# --------------------------------------------------------------------------- tokenizing and Classifier


@pytest.fixture(scope="module")
def tokenizer():
    from textft_lib import wordpiece

    return wordpiece.train_wordpiece(data.load("movie_reviews").train.texts, vocab_size=400)


def tiny_hf_model(vocab_size: int, max_positions: int = 32):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=max_positions, num_labels=2)
    return BertForSequenceClassification(cfg).eval()


def test_encode_texts_pads_and_truncates_with_warning(tokenizer):
    long_text = " ".join(["film"] * 50)
    with pytest.warns(classify.TruncationWarning, match="1 of 2 text.*truncated"):
        ids, mask, cut = classify.encode_texts(tokenizer, ["a film", long_text], max_length=10)
    assert ids.shape == (2, 10) and cut == [1]
    assert ids[1, -1].item() == tokenizer.sep_token_id and ids[1, 0].item() == tokenizer.cls_token_id
    assert mask[0].tolist() == [1, 1, 1, 1] + [0] * 6
    assert (ids[0, 4:] == tokenizer.pad_token_id).all()


@pytest.mark.parametrize("texts, err, match", [
    ([], ValueError, "empty list"),
    ("a single string", TypeError, r"\[text\]"),
    (["fine", "   "], ValueError, "positions \\[1\\]"),
    (["fine", 3], TypeError, "item 1"),
])
def test_predict_rejects_bad_input(tokenizer, texts, err, match):
    clf = classify.Classifier(tiny_hf_model(len(tokenizer)), tokenizer, ["neg", "pos"])
    with pytest.raises(err, match=match):
        clf.predict(texts)


def test_predict_batches_agree_and_warn_on_truncation(tokenizer):
    clf = classify.Classifier(tiny_hf_model(len(tokenizer)), tokenizer, ["neg", "pos"])
    texts = data.load("movie_reviews").test.texts[:9] + ["great " * 100]
    with pytest.warns(classify.TruncationWarning, match="limit of 32 tokens"):
        one = clf.predict(texts, batch_size=64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", classify.TruncationWarning)
        small = clf.predict(texts, batch_size=3)
    assert one.probs.shape == (10, 2) and 9 in one.truncated
    np.testing.assert_allclose(one.probs.sum(1), 1.0, atol=1e-6)
    np.testing.assert_allclose(one.probs, small.probs, atol=1e-5)   # batching/padding does not change answers
    assert one.names == [["neg", "pos"][i] for i in one.labels]


def test_classifier_rejects_max_length_beyond_model(tokenizer):
    with pytest.raises(ValueError, match="positions"):
        classify.Classifier(tiny_hf_model(len(tokenizer)), tokenizer, ["neg", "pos"], max_length=64)


def test_transformers_classifier_save_load_roundtrip(tokenizer, tmp_path):
    clf = classify.Classifier(tiny_hf_model(len(tokenizer), 128), tokenizer, ["neg", "pos"])
    texts = data.load("movie_reviews").validation.texts[:8]
    before = clf.predict(texts)
    clf.save(tmp_path / "clf")
    again = classify.Classifier.load(tmp_path / "clf", device="cpu")
    after = again.predict(texts)
    np.testing.assert_array_equal(before.labels, after.labels)
    np.testing.assert_allclose(before.probs, after.probs, atol=1e-6)
    assert again.label_names == ["neg", "pos"] and again.max_length == 128


def test_load_missing_folder_says_why(tmp_path):
    with pytest.raises(FileNotFoundError, match="classifier.json"):
        classify.Classifier.load(tmp_path)


# --------------------------------------------------------------------------- BERT classifier and fine-tuning


@pytest.fixture(scope="module")
def tiny_bert_folder(tokenizer, tmp_path_factory):
    """A tiny randomly initialised course BERT saved like lesson 06 saves the real one."""
    from textft_lib import bert

    torch.manual_seed(0)
    cfg = bert.BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64, max_position_embeddings=64)
    return bert.save_pretrained(bert.BertForMLM(cfg), tokenizer, tmp_path_factory.mktemp("bert"))


def test_our_classifier_equals_transformers_classifier(tiny_bert_folder):
    from transformers import BertForSequenceClassification

    hf = BertForSequenceClassification.from_pretrained(tiny_bert_folder, num_labels=2).eval()
    ours = classify.BertClassifier.from_transformers(hf).eval()
    pretrained, _ = classify.BertClassifier.from_pretrained(tiny_bert_folder, 2)
    ids = torch.randint(5, 400, (3, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    with torch.no_grad():
        torch.testing.assert_close(ours(ids, mask), hf(input_ids=ids, attention_mask=mask).logits,
                                   atol=1e-5, rtol=1e-4)
        # the encoder loaded from the folder is the one transformers loaded
        torch.testing.assert_close(pretrained.eval().bert(ids, mask)[mask.bool()],
                                   hf.bert(input_ids=ids, attention_mask=mask).last_hidden_state[mask.bool()],
                                   atol=1e-5, rtol=1e-4)


def keyword_task(n: int, seed: int) -> data.Split:
    """Sentences from the movie reviews ending in a word that gives the label away."""
    rng = np.random.default_rng(seed)
    base = data.load("movie_reviews").train.texts
    labels = rng.integers(0, 2, n).tolist()
    texts = [" ".join(base[rng.integers(len(base))].split()[:8] + [["terrible", "excellent"][y]]) for y in labels]
    return data.Split(texts, labels)


def test_finetune_learns_and_classifier_roundtrips(tiny_bert_folder, tmp_path):
    torch.manual_seed(0)
    model, tok = classify.BertClassifier.from_pretrained(tiny_bert_folder, 2)
    train_split, val_split = keyword_task(96, 0), keyword_task(48, 1)
    history = classify.finetune(model, tok, train_split, val_split,
                                replace(classify.FINETUNE, lr=3e-3, lr_head=3e-3, epochs=10, batch_size=16, patience=None),
                                device="cpu", progress=False)
    assert history.best["val_accuracy"] >= 0.9
    assert history.steps[-1]["loss"] < history.steps[0]["loss"]
    clf = classify.Classifier(model, tok, ["neg", "pos"])
    pred = clf.predict(val_split.texts)
    assert classify.accuracy(val_split.labels, pred.labels) == pytest.approx(history.best["val_accuracy"])
    clf.save(tmp_path / "ours")
    again = classify.Classifier.load(tmp_path / "ours", device="cpu").predict(val_split.texts)
    np.testing.assert_allclose(pred.probs, again.probs, atol=1e-6)


def test_length_grouped_batches_cover_everything_once_with_less_padding(tokenizer):
    from textft_lib.encoding import LengthGroupedSampler

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 60, 1000).tolist()
    sampler = LengthGroupedSampler(lengths, 8, generator=torch.Generator().manual_seed(0))
    first, second = list(sampler), list(sampler)
    assert sorted(first) == list(range(1000)) and first != second      # all once, a fresh order each epoch

    def padded(order):
        return sum(max(lengths[i] for i in order[j:j + 8]) * len(order[j:j + 8]) for j in range(0, 1000, 8))
    assert padded(first) < 0.6 * padded(rng.permutation(1000).tolist())
    split = keyword_task(40, 0)
    ds = classify.TextClassificationDataset(tokenizer, split.texts, split.labels, 32)
    seen = [t for b in ds.loader(8, shuffle=True, group_by_length=True) for t in b["labels"].tolist()]
    assert sorted(seen) == sorted(split.labels)
    with pytest.raises(ValueError, match="shuffle=True"):
        ds.loader(8, group_by_length=True)


def test_finetune_groups_by_length_and_trains_in_fp32_on_request(tiny_bert_folder):
    model, tok = classify.BertClassifier.from_pretrained(tiny_bert_folder, 2)
    history = classify.finetune(model, tok, keyword_task(96, 0), keyword_task(48, 1),
                                replace(classify.FINETUNE, lr=3e-3, lr_head=3e-3, epochs=10, batch_size=16, patience=None),
                                group_by_length=True, amp=None, device="cpu", progress=False)
    assert len(history.steps) == 60 and history.best["val_accuracy"] >= 0.9


def test_frozen_body_trains_only_the_head(tiny_bert_folder):
    model, tok = classify.BertClassifier.from_pretrained(tiny_bert_folder, 2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    n_head = sum(p.numel() for n, p in model.named_parameters() if n.startswith(("pooler.", "classifier.")))
    classify.finetune(model, tok, keyword_task(32, 0), keyword_task(16, 1),
                      replace(classify.FINETUNE, epochs=1, batch_size=16, patience=None), frozen_body=True,
                      device="cpu", progress=False)
    assert sum(p.numel() for p in model.parameters() if p.requires_grad) == n_head
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("bert."))
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])


def test_finetune_cache_reloads_same_weights(tiny_bert_folder, tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path))
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model, tok = classify.BertClassifier.from_pretrained(tiny_bert_folder, 2)
        h = classify.finetune(model, tok, keyword_task(32, 0), keyword_task(16, 1),
                              replace(classify.FINETUNE, epochs=1, batch_size=16, patience=None), device="cpu",
                              progress=False, cache="test_clf")
        runs.append((h, model.state_dict()))
    assert not runs[0][0].from_cache and runs[1][0].from_cache
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])
    # the same texts and starting weights under another numbering of the same vocabulary: another run
    torch.manual_seed(0)
    model, tok = classify.BertClassifier.from_pretrained(tiny_bert_folder, 2)
    vocab, task = tok.get_vocab(), keyword_task(32, 0)
    a, b = sorted(set(tok.tokenize(task.texts[0])))[:2]                 # two pieces the texts use
    other = type(tok)(vocab={**vocab, a: vocab[b], b: vocab[a]}, do_lower_case=True)
    assert other.tokenize(task.texts[0]) == tok.tokenize(task.texts[0])     # the same splits
    h = classify.finetune(model, other, task, keyword_task(16, 1),
                          replace(classify.FINETUNE, epochs=1, batch_size=16, patience=None), device="cpu",
                          progress=False, cache="test_clf")
    assert not h.from_cache


def test_pool_mean_leaves_padding_out_and_cls_takes_position_zero():
    h = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    mean = classify.pool(h, mask, "mean")
    torch.testing.assert_close(mean[0], h[0, :3].mean(0))
    torch.testing.assert_close(mean[1], h[1].mean(0))
    torch.testing.assert_close(classify.pool(h, None, "mean"), h.mean(1))
    torch.testing.assert_close(classify.pool(h, mask, "cls"), h[:, 0])


@pytest.mark.parametrize("hidden, mask, how, match", [
    (torch.zeros(2, 5), None, "mean", "batch, length, hidden"),
    (torch.zeros(2, 5, 8), torch.ones(2, 4), "mean", "attention_mask must be"),
    (torch.zeros(2, 5, 8), torch.tensor([[1, 1, 0, 0, 0], [0, 0, 0, 0, 0]]), "mean", "no real token"),
    (torch.zeros(2, 5, 8), None, "max", "pooling must be one of"),
])
def test_pool_rejects_bad_input(hidden, mask, how, match):
    with pytest.raises(ValueError, match=match):
        classify.pool(hidden, mask, how)


def test_mean_pooling_classifier_ignores_padding_and_roundtrips(tiny_bert_folder, tmp_path):
    torch.manual_seed(0)
    model, tok = classify.BertClassifier.from_pretrained(tiny_bert_folder, 2, pooling="mean")
    model.eval()
    ids = torch.randint(5, 400, (1, 7))
    padded = torch.cat([ids, torch.full((1, 5), tok.pad_token_id)], 1)
    mask = torch.cat([torch.ones(1, 7, dtype=torch.long), torch.zeros(1, 5, dtype=torch.long)], 1)
    with torch.no_grad():
        torch.testing.assert_close(model(ids, torch.ones_like(ids)), model(padded, mask), atol=1e-5, rtol=1e-4)
        cls_model, _ = classify.BertClassifier.from_pretrained(tiny_bert_folder, 2)
        cls_model.load_state_dict(model.state_dict())
        assert not torch.allclose(cls_model.eval()(ids), model(ids))     # the pooling changes the answer
    clf = classify.Classifier(model, tok, ["neg", "pos"])
    texts = ["a fine film", "dull and long , with nothing to say"]
    clf.save(tmp_path / "mean")
    again = classify.Classifier.load(tmp_path / "mean", device="cpu")
    assert again.model.pooling == "mean"
    np.testing.assert_allclose(clf.predict(texts).probs, again.predict(texts).probs, atol=1e-6)
    with pytest.raises(ValueError, match="pooling must be one of"):
        classify.BertClassifier.from_pretrained(tiny_bert_folder, 2, pooling="max")


def test_head_prefixes_and_missing_head():
    with pytest.raises(ValueError, match="head"):
        classify.head_prefixes(torch.nn.Linear(2, 2))


def _sst2_available() -> bool:
    import os
    from pathlib import Path

    root = os.environ.get("TEXTFT_DATA_DIR")
    return bool(root) and (Path(root) / "sst2" / "train.tsv").exists()


@pytest.mark.skipif(not _sst2_available(), reason="needs TEXTFT_DATA_DIR with sst2/ (e.g. ../shared/data)")
def test_sst2_subsample_and_tfidf_baseline():
    ds = classify.load_dataset("sst2", max_train=2000)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (2000, 872, 1821)
    share = np.mean(ds.train.labels)
    full_share = np.mean(data.load("sst2").train.labels)
    assert abs(share - full_share) < 0.01                       # the subsample keeps the class balance
    tfidf = classify.fit_tfidf_logreg(ds.train.texts, ds.train.labels, ds.validation.texts, ds.validation.labels)
    assert classify.accuracy(ds.validation.labels, tfidf.predict(ds.validation.texts)) > 0.65
