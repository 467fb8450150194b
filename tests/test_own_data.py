"""Your own data (issue "Your own data"): ``data.load_labelled`` on files, DataFrames and lists;
``data.Split``'s checks; labels a model is fit on must be 0..n-1; ``finetune``'s settings;
``Classifier``'s label names; a saved classifier that ``transformers`` loads where it can;
and a property test: bad input to the public classification functions gives a clear
``TypeError`` / ``ValueError`` raised by the library, never a silent answer."""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from textft_lib import bert, classify, data

pytestmark = pytest.mark.usefixtures("one_thread")      # tests/conftest.py

WORDS = {"ham": ["lunch", "meeting", "home", "dinner", "call"], "spam": ["cash", "prize", "winner", "free", "offer"]}


def spam_rows(n: int = 40, spam_every: int = 4) -> list[tuple[str, str]]:
    """(label, text) rows: every ``spam_every``-th is spam, each text with a word that gives it away."""
    rows = []
    for i in range(n):
        label = "spam" if i % spam_every == 0 else "ham"
        rows.append((label, f"message {i} about the {WORDS[label][i % 5]} today"))
    return rows


def write_tsv(path: Path, rows, header: str | None = "label\ttext") -> Path:
    lines = ([header] if header is not None else []) + [f"{label}\t{text}" for label, text in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- load_labelled: reading


def test_tsv_with_word_labels_becomes_a_stratified_seeded_dataset(tmp_path, capsys):
    path = write_tsv(tmp_path / "spam.tsv", spam_rows(40))
    ds = data.load_labelled(path)
    assert capsys.readouterr().out == ""                                   # nothing printed
    assert isinstance(ds, data.TextDataset) and ds.name == "spam" and ds.source == str(path)
    assert ds.label_names == ["ham", "spam"]                               # sorted order
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (32, 4, 4)
    for split in ds.splits().values():
        assert set(split.labels) == {0, 1}                                 # stratified: both classes everywhere
        for text, y in zip(split.texts, split.labels):
            assert any(w in text for w in WORDS[ds.label_names[y]])        # the labels stayed with their texts
    balance = ds.report["class_balance"]
    assert balance["train"] == {"ham": 24, "spam": 8} and balance["test"] == {"ham": 3, "spam": 1}
    assert ds.report["label_map"] == {"ham": 0, "spam": 1} and ds.report["rows"] == 40
    assert ds.report["duplicates"]["across_splits"] == 0 and ds.report["delimiter"] == "\t"
    again, other = data.load_labelled(path), data.load_labelled(path, seed=1)
    assert again.train.texts == ds.train.texts and other.train.texts != ds.train.texts


def test_label_names_give_the_order_and_a_dict_works_too(tmp_path):
    path = write_tsv(tmp_path / "spam.tsv", spam_rows(40))
    ds = data.load_labelled(path, label_names=["spam", "ham"])
    assert ds.label_names == ["spam", "ham"] and ds.report["label_map"] == {"ham": 1, "spam": 0}
    assert data.load_labelled(path, label_names={1: "spam", 0: "ham"}).label_names == ["ham", "spam"]
    with pytest.raises(ValueError, match=r"\['spam'\], which label_names \['ham', 'junk'\] does not list"):
        data.load_labelled(path, label_names=["ham", "junk"])
    with pytest.raises(ValueError, match="which no row has"):
        data.load_labelled(path, label_names=["ham", "spam", "junk"])


def test_csv_with_quotes_other_column_names_and_sniffed_separators(tmp_path):
    csv_path = tmp_path / "reviews.csv"
    csv_path.write_text('body,category\n' + '"great, really great",pos\n"dull, ""boring""",neg\n' * 10)
    ds = data.load_labelled(csv_path, text_column="body", label_column="category", splits=(0.6, 0.2, 0.2))
    assert "great, really great" in ds.train.texts + ds.test.texts + ds.validation.texts
    assert 'dull, "boring"' in ds.train.texts and ds.label_names == ["neg", "pos"]
    assert ds.report["duplicates"]["across_splits"] == 2                   # both texts are in every split
    assert any("more than one split" in note for note in ds.report["notes"])
    semi = tmp_path / "export.txt"                                          # no extension: sniffed
    semi.write_text("label;text\n" + "".join(f"{y};text number {i}\n" for i, y in enumerate("ab" * 10)))
    assert data.load_labelled(semi).report["delimiter"] == ";"


def test_a_file_without_header_by_position(tmp_path):
    path = write_tsv(tmp_path / "SMSSpamCollection", spam_rows(40), header=None)
    with pytest.raises(ValueError, match=r"has no column 'text'.*its columns are \['spam', 'message 0.*header=False"):
        data.load_labelled(path)
    ds = data.load_labelled(path, header=False, label_column=0, text_column=1)
    assert ds.label_names == ["ham", "spam"] and len(ds.train) + len(ds.validation) + len(ds.test) == 40


def test_tsv_keeps_quotes_and_unicode_line_separators_inside_texts(tmp_path):
    rows = [("ham", 'she said "see you at lunch'), ("spam", "win\u2028a prize")] * 10
    ds = data.load_labelled(write_tsv(tmp_path / "odd.tsv", rows), splits=(0.8, 0.2, 0.0))
    everything = ds.train.texts + ds.validation.texts
    assert len(everything) == 20 and set(everything) == {t for _, t in rows} and len(ds.test) == 0


def test_dataframe_dict_and_pair_of_lists():
    pd = pytest.importorskip("pandas")
    rows = spam_rows(40)
    labels, texts = [r[0] for r in rows], [r[1] for r in rows]
    from_pair = data.load_labelled((texts, labels))
    from_frame = data.load_labelled(pd.DataFrame({"text": texts, "label": labels}))
    from_dict = data.load_labelled({"text": texts, "label": labels})
    assert from_pair.train.texts == from_frame.train.texts == from_dict.train.texts
    assert from_pair.name == "own_data" and from_frame.source == "the DataFrame"
    numbered = pd.DataFrame({"text": texts, "label": [1 + (y == "spam") for y in labels]})   # numpy ints 1/2
    ds = data.load_labelled(numbered, label_names=["ham", "spam"])
    assert ds.label_names == ["ham", "spam"] and set(ds.train.labels) == {0, 1}
    with pytest.raises(ValueError, match="row 3: the text is missing"):
        data.load_labelled(pd.DataFrame({"text": texts[:3] + [None] + texts[4:], "label": labels}))


def test_numbers_not_0_to_n_minus_1_are_mapped_and_reported(tmp_path):
    path = tmp_path / "stars.csv"
    path.write_text("text,label\n" + "".join(f"review {i},{[1, 3, 5][i % 3]}\n" for i in range(30)))
    ds = data.load_labelled(path)
    assert ds.label_names == ["1", "3", "5"] and ds.report["label_map"] == {1: 0, 3: 1, 5: 2}
    assert any("1 -> 0, 3 -> 1, 5 -> 2" in note for note in ds.report["notes"])
    named = data.load_labelled(path, label_names={1: "bad", 3: "fine", 5: "great"})     # keyed by the values
    assert named.label_names == ["bad", "fine", "great"]
    zero_based = tmp_path / "binary.csv"
    zero_based.write_text("text,label\n" + "".join(f"review {i},{i % 2}\n" for i in range(20)))
    ds = data.load_labelled(zero_based, label_names=["neg", "pos"])
    assert ds.report["notes"] == [] and ds.label_names == ["neg", "pos"]
    for split in ds.splits().values():
        assert all(int(t.split()[1]) % 2 == y for t, y in zip(split.texts, split.labels))


def test_a_split_column_decides_the_splits(tmp_path):
    rows = spam_rows(20)
    where = ["train"] * 12 + ["dev"] * 4 + ["test"] * 4
    path = tmp_path / "split.tsv"
    path.write_text("label\ttext\tsplit\n" + "".join(f"{y}\t{t}\t{s}\n" for (y, t), s in zip(rows, where)))
    ds = data.load_labelled(path)
    assert (len(ds.train), len(ds.validation), len(ds.test)) == (12, 4, 4)
    assert ds.test.texts == [t for _, t in rows[16:]] and ds.report["split_by"] == "the column 'split'"
    with pytest.raises(ValueError, match="splits= was given too"):
        data.load_labelled(path, splits=(0.8, 0.1, 0.1))
    ignored = data.load_labelled(path, split_column=None)                  # the column ignored: drawn at random
    assert ignored.report["split_by"].startswith("stratified") and len(ignored.train) == 14   # 11 ham + 3 spam
    path.write_text(path.read_text().replace("\ttest\n", "\tholdout\n", 1))
    with pytest.raises(ValueError, match=r"split.tsv:18: the split column 'split' holds 'holdout'"):
        data.load_labelled(path)
    only_train = tmp_path / "train_only.tsv"
    only_train.write_text("label\ttext\tsplit\n" + "".join(f"{y}\t{t}\ttrain\n" for y, t in rows))
    ds = data.load_labelled(only_train)
    assert len(ds.validation) == 0 and any("no row in validation" in n for n in ds.report["notes"])


# --------------------------------------------------------------------------- load_labelled: clear errors


@pytest.mark.parametrize("content, kwargs, err, match", [
    ("", {}, ValueError, "is empty"),
    ("\n  \n", {}, ValueError, "is empty"),
    ("label\ttext\n", {}, ValueError, "header line .* but no rows"),
    ("label\tbody\nham\thello\n", {}, ValueError,
     r"no column 'text' \(text_column\); its columns are \['label', 'body'\]"),
    ("label\ttext\nham\thello\nspam\t   \n", {}, ValueError, r"data.tsv:3: the text is blank"),
    ("label\ttext\nham\thello\n\tno label\n", {}, ValueError, r"data.tsv:3: the label is blank"),
    ("label\ttext\nham\thello\tthere\n", {}, ValueError, r"data.tsv:2: expected 2 fields"),
    ("label\ttext\nham\thello\nlabel\ttext\nspam\tbuy\n", {}, ValueError, r"data.tsv:3 repeats the header"),
    ("label\ttext\n0.5\thello\n1\tbye\n", {}, ValueError, r"data.tsv:2: the label '0.5' is not a whole number"),
    ("label\ttext\nham\thello\nham\tbye\n", {}, ValueError, "at least two classes"),
    ("label\ttext\n" + "ham\tx\n" * 20 + "spam\tbuy now\nspam\tbuy\n", {}, ValueError,
     r"class 'spam' has 2 example\(s\): too few to stratify"),
    ("label\ttext\nham\thi\nspam\tbuy\n", {"splits": (0.5, 0.5)}, ValueError, "three fractions"),
    ("label\ttext\nham\thi\nspam\tbuy\n", {"splits": (0.5, 0.4, 0.4)}, ValueError, "sum to 1"),
    ("label\ttext\nham\thi\nspam\tbuy\n", {"splits": (0.8, -0.1, 0.3)}, ValueError, r"splits\[1\] \(validation\)"),
    ("label\ttext\nham\thi\nspam\tbuy\n", {"sep": "::"}, ValueError, "sep must be one character"),
    ("label\ttext\nham\thi\nspam\tbuy\n", {"seed": "1"}, TypeError, "seed must be an int"),
    ("label\ttext\nham\thi\nspam\tbuy\n", {"label_names": "hamspam"}, TypeError, "not one string"),
])
def test_load_labelled_says_what_is_wrong(tmp_path, content, kwargs, err, match):
    path = tmp_path / "data.tsv"
    path.write_text(content)
    with pytest.raises(err, match=match):
        data.load_labelled(path, **kwargs)


def test_load_labelled_refuses_what_is_not_a_table(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file"):
        data.load_labelled(tmp_path / "missing.tsv")
    with pytest.raises(TypeError, match="source must be a path"):
        data.load_labelled(42)
    with pytest.raises(TypeError, match="source must be a path"):
        data.load_labelled(["a text", "another text"])        # two texts, no labels
    with pytest.raises(ValueError, match="3 texts but 2 labels"):
        data.load_labelled((["a", "b", "c"], ["x", "y"]))
    (tmp_path / "latin.tsv").write_bytes("label\ttext\nham\tcaf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="is not utf-8 text.*encoding="):
        data.load_labelled(tmp_path / "latin.tsv")


# --------------------------------------------------------------------------- Split and TextDataset


@pytest.mark.parametrize("texts, labels, err, match", [
    (["a", "b"], ["ham", "spam"], TypeError, r"the string 'ham'.*data.load_labelled"),
    (["a", "b"], [0, 0.5], TypeError, "item 1 is 0.5"),
    (["a", "b"], [0, -1], ValueError, "item 1 is -1"),
    (["a", "b"], [True, False], TypeError, "item 0 is bool"),
    (["a", "b"], [0], ValueError, "2 texts but 1 labels"),
    (["a", "b"], "01", TypeError, "not one string"),
    ("ab", [0, 1], TypeError, "not one string"),
    (["a", 7], [0, 1], TypeError, "item 1 is int"),
    (None, [0], TypeError, "got NoneType"),
])
def test_split_checks_its_contents(texts, labels, err, match):
    with pytest.raises(err, match=match):
        data.Split(texts, labels)


def test_split_keeps_valid_input_as_lists_of_ints():
    split = data.Split(("a", "b", "c"), [np.int64(1), 0.0, torch.tensor(2).item()])
    assert split.texts == ["a", "b", "c"] and split.labels == [1, 0, 2]
    assert all(type(y) is int for y in split.labels)
    assert len(data.Split([], [])) == 0                                 # an empty split (e.g. no validation)
    assert data.Split(["a"], torch.tensor([1])).labels == [1]
    with pytest.raises(ValueError, match="go up to 2, but there are 2 label_names"):
        data.TextDataset("x", split, data.Split([], []), data.Split([], []), ["a", "b"])


# --------------------------------------------------------------------------- baselines: ids 0..n-1


def test_tfidf_refuses_labels_that_are_not_0_to_n_minus_1():
    texts = ["free cash prize", "lunch at home", "win a prize", "dinner at home"]
    with pytest.raises(ValueError, match=r"train_labels hold class ids \[1, 2\].*0..n-1"):
        classify.fit_tfidf_logreg(texts, [2, 1, 2, 1])
    with pytest.raises(ValueError, match=r"val_labels hold class ids \[0, 2\], but there are 2 classes"):
        classify.fit_tfidf_logreg(texts, [1, 0, 1, 0], texts[:2], [2, 0])
    with pytest.raises(ValueError, match="single class"):
        classify.fit_tfidf_logreg(texts, [0, 0, 0, 0])
    with pytest.raises(ValueError, match="4 training examples but 3 train_labels"):
        classify.fit_tfidf_logreg(texts, [0, 1, 0])
    with pytest.raises(ValueError, match="together"):
        classify.fit_tfidf_logreg(texts, [1, 0, 1, 0], texts)
    with pytest.raises(TypeError, match="train_texts must be a list of strings, not one string"):
        classify.fit_tfidf_logreg("free cash", [1])
    with pytest.raises(ValueError, match="no word of two or more letters"):
        classify.fit_tfidf_logreg(["a", "b"], [0, 1])
    model = classify.fit_tfidf_logreg(texts, [1, 0, 1, 0], Cs=[1.0])
    assert model.predict(["a cash prize"]).tolist() == [1]


def test_majority_baseline_and_class_ids():
    with pytest.raises(ValueError, match="missing: \\[0\\]"):
        classify.MajorityBaseline().fit([1, 2, 2])
    assert classify.MajorityBaseline().fit([1, 2, 2], n_classes=3).class_prior_.tolist() == [0, 1 / 3, 2 / 3]
    with pytest.raises(TypeError, match="not one string"):
        classify.MajorityBaseline().fit([0, 1]).predict("one text")
    assert classify.class_ids([0, 2, 1], "y")[1] == 3


# --------------------------------------------------------------------------- a tiny model


@pytest.fixture(scope="module")
def tokenizer():
    from textft_lib import wordpiece

    texts = [t for _, t in spam_rows(60)] + data.load("movie_reviews").train.texts
    return wordpiece.train_wordpiece(texts, vocab_size=400)


def tiny_classifier(tokenizer, pooling: str = "cls", num_classes: int = 2) -> classify.BertClassifier:
    torch.manual_seed(0)
    cfg = bert.BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=32, pad_token_id=tokenizer.pad_token_id)
    return classify.BertClassifier(cfg, num_classes, pooling=pooling).eval()


@pytest.fixture(scope="module")
def tiny_clf(tokenizer):
    return classify.Classifier(tiny_classifier(tokenizer), tokenizer, ["ham", "spam"])


def test_own_file_through_the_whole_pipeline(tmp_path, tokenizer):
    ds = data.load_labelled(write_tsv(tmp_path / "spam.tsv", spam_rows(60)))
    tfidf = classify.fit_tfidf_logreg(ds.train.texts, ds.train.labels, ds.validation.texts, ds.validation.labels)
    assert classify.accuracy(ds.test.labels, tfidf.predict(ds.test.texts)) == 1.0
    model = tiny_classifier(tokenizer)
    history = classify.finetune(model, tokenizer, ds.train, ds.validation,
                                replace(classify.FINETUNE, epochs=1, batch_size=16, patience=None), device="cpu",
                                progress=False)
    assert len(history.steps) == 3
    clf = classify.Classifier(model, tokenizer, ds.label_names)
    report = clf.evaluate(ds.test.texts, ds.test.labels)
    assert set(report["per_class"]) == {"ham", "spam"} and set(report["prediction"].names) <= {"ham", "spam"}


@pytest.mark.parametrize("changes, err, match", [
    (dict(batch_size=0), ValueError, "batch_size must be at least 1, got 0"),
    (dict(batch_size=2.5), TypeError, "batch_size must be an int"),
    (dict(epochs=0), ValueError, "epochs must be at least 1"),
    (dict(epochs=None), ValueError, r"give epochs or max_steps \(exactly one\)"),
    (dict(max_steps=10), ValueError, r"give epochs or max_steps \(exactly one\)"),
    (dict(lr=0.0), ValueError, r"lr must lie in \(0, inf\)"),
    (dict(lr_head="1e-3"), TypeError, "lr_head must be a number"),
    (dict(lr_head=float("nan")), ValueError, "lr_head must be a finite number"),
    (dict(warmup_fraction=1.0), ValueError, r"warmup_fraction must lie in \[0, 1\)"),
    (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    (dict(schedule="step"), ValueError, "schedule must be one of"),
    (dict(patience=0), ValueError, "patience must be at least 1"),
    (dict(seed=1.5), TypeError, "seed must be an int"),
])
def test_training_settings_are_checked_where_they_are_made(changes, err, match):
    with pytest.raises(err, match=match):
        replace(classify.FINETUNE, **changes)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(max_length=2), ValueError, "max_length must be at least 3"),
    (dict(max_length=64), ValueError, "longer than the model's 32 positions"),
    (dict(max_length=0), ValueError, "max_length must be at least 3"),
    (dict(settings={"lr": 1e-3}), TypeError, "settings must be a train.TrainConfig"),
])
def test_finetune_checks_its_inputs_before_training(tokenizer, kwargs, err, match):
    model = tiny_classifier(tokenizer)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    split = data.Split([t for _, t in spam_rows(8)], [0, 1] * 4)
    with pytest.raises(err, match=match):
        classify.finetune(model, tokenizer, split, split, device="cpu", progress=False, **kwargs)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())     # nothing ran


def test_classifier_label_names(tokenizer):
    model = tiny_classifier(tokenizer)
    assert classify.Classifier(model, tokenizer, {0: "ham", 1: "spam"}).label_names == ["ham", "spam"]
    assert classify.Classifier(model, tokenizer, {1: "spam", 0: "ham"}).label_names == ["ham", "spam"]
    assert classify.Classifier(model, tokenizer, ("ham", "spam")).label_names == ["ham", "spam"]
    for bad, err, match in [({1: "ham", 2: "spam"}, ValueError, r"ids 0..1 as keys, got \[1, 2\]"),
                            ({"0": "ham", "1": "spam"}, TypeError, "maps class ids"),
                            ("hs", TypeError, "not one string"),
                            (["ham", "ham"], ValueError, "distinct"),
                            ([0, 1], TypeError, "item 0 is int"),
                            (["ham", "spam", "other"], ValueError, "2 classes but label_names has 3"),
                            ([], ValueError, "empty")]:
        with pytest.raises(err, match=match):
            classify.Classifier(model, tokenizer, bad)


def test_encode_texts_refuses_empty_lists_lone_strings_and_bad_lengths(tokenizer):
    with pytest.raises(ValueError, match="empty list"):
        classify.encode_texts(tokenizer, [], 16)
    with pytest.raises(TypeError, match="not one string"):
        classify.encode_texts(tokenizer, "a fine film", 16)
    with pytest.raises(TypeError, match="max_length must be an int"):
        classify.encode_texts(tokenizer, ["a fine film"], "16")
    with pytest.raises(TypeError, match="Hugging Face tokenizer"):
        classify.encode_texts(None, ["a fine film"], 16)


# --------------------------------------------------------------------------- saving for transformers


def test_cls_classifier_saves_a_folder_transformers_loads(tokenizer, tmp_path):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    clf = classify.Classifier(tiny_classifier(tokenizer), tokenizer, ["ham", "spam"])
    texts = [t for _, t in spam_rows(6)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", classify.TransformersExportWarning)
        folder = clf.save(tmp_path / "cls")
    hf = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    hf_tok = AutoTokenizer.from_pretrained(folder)
    assert type(hf).__name__ == "BertForSequenceClassification" and hf.config.id2label == {0: "ham", 1: "spam"}
    batch = hf_tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        theirs = hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        ours = clf.model(batch["input_ids"], batch["attention_mask"])
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-4)
    again = classify.Classifier.load(folder, device="cpu")
    assert isinstance(again.model, classify.BertClassifier) and again.model.pooling == "cls"
    np.testing.assert_allclose(again.predict(texts).probs, clf.predict(texts).probs, atol=1e-6)
    meta = json.loads((folder / classify.CLASSIFIER_FILE).read_text())
    assert meta["transformers"] == {"loads": True, "class": "BertForSequenceClassification"}
    via_bert = bert.to_transformers(clf.model).eval()                    # the call the issue reported
    with torch.no_grad():
        torch.testing.assert_close(via_bert(**batch).logits, ours, atol=1e-5, rtol=1e-4)


def test_mean_classifier_says_transformers_cannot_hold_it(tokenizer, tmp_path):
    clf = classify.Classifier(tiny_classifier(tokenizer, "mean"), tokenizer, ["ham", "spam"])
    folder = tmp_path / "mean"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}')          # stale, from an earlier save
    with pytest.warns(classify.TransformersExportWarning, match="transformers cannot.*mean-pooling"):
        clf.save(folder)
    assert not (folder / "config.json").exists()                            # no misleading config
    meta = json.loads((folder / classify.CLASSIFIER_FILE).read_text())
    assert meta["transformers"]["loads"] is False and "[CLS]" in meta["transformers"]["why"]
    texts = [t for _, t in spam_rows(4)]
    again = classify.Classifier.load(folder, device="cpu")
    assert again.model.pooling == "mean"
    np.testing.assert_allclose(again.predict(texts).probs, clf.predict(texts).probs, atol=1e-6)
    with pytest.raises(ValueError, match="pooling='mean' cannot become a transformers model"):
        bert.to_transformers(clf.model)
    with pytest.raises(TypeError, match="converts a BertForMLM"):
        bert.to_transformers(torch.nn.Linear(2, 2))


def test_classifiers_saved_before_this_change_still_load(tokenizer, tmp_path):
    from safetensors.torch import save_model

    from textft_lib import classifier

    model = tiny_classifier(tokenizer)
    folder = tmp_path / "old"
    folder.mkdir()
    save_model(model, str(folder / classify.WEIGHTS_FILE))                 # our parameter names, no config.json
    tokenizer.save_pretrained(folder)
    (folder / classify.CLASSIFIER_FILE).write_text(json.dumps(
        {"format": "textft-classifier", "version": 1, "label_names": ["ham", "spam"], "max_length": 32,
         "kind": "textft-bert", "model_config": model.config_dict()}))
    again = classifier.Classifier.load(folder, device="cpu")
    for name, value in model.state_dict().items():
        assert torch.equal(again.model.state_dict()[name], value)


# --------------------------------------------------------------------------- property: bad input, clear errors


def raised_by_the_library(err: BaseException) -> bool:
    """True when the innermost frame of ``err``'s traceback is textft_lib's own code."""
    tb = err.__traceback__
    while tb.tb_next is not None:
        tb = tb.tb_next
    return "textft_lib" in Path(tb.tb_frame.f_code.co_filename).parts


not_whole = st.floats(allow_nan=True, allow_infinity=True).filter(lambda x: not math.isfinite(x) or x != round(x))
junk = st.one_of(st.none(), st.floats(), st.text(max_size=4), st.dictionaries(st.text(max_size=2), st.integers(),
                                                                                max_size=2))
bad_labels = st.one_of(
    st.text(max_size=5),                                                     # a lone string
    st.none(), st.integers(), st.floats(),                                   # a scalar
    st.just([]),                                                             # nothing
    st.lists(st.text(min_size=1, max_size=3), min_size=1, max_size=4),       # words
    st.lists(not_whole, min_size=1, max_size=4),                             # fractions, NaN, inf
    st.lists(st.integers(max_value=-1), min_size=1, max_size=4),             # negative ids
    st.lists(st.booleans(), min_size=1, max_size=4),                         # booleans
    st.lists(st.lists(st.integers(0, 2), max_size=3), min_size=1, max_size=3),   # 2-D or ragged
    st.lists(st.one_of(st.integers(0, 2), st.none()), min_size=1, max_size=4).filter(lambda v: None in v),
    st.dictionaries(st.integers(0, 3), st.integers(0, 3), max_size=3),       # no order
    st.sets(st.integers(0, 3), max_size=3),
)
bad_texts = st.one_of(
    st.text(max_size=8), st.none(), st.integers(), st.just([]),
    st.lists(st.one_of(st.integers(), st.none(), st.floats(), st.binary(max_size=3)), min_size=1, max_size=3),
    st.lists(st.text(alphabet=" \t\n", max_size=3), min_size=1, max_size=3),     # blank texts
    st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=2),
)
bad_int = st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=3), st.none(), st.booleans())
bad_positive = st.one_of(st.floats(max_value=0.0), st.floats(allow_nan=True).filter(lambda x: not math.isfinite(x)),
                         st.text(max_size=3), st.none(), st.booleans())
bad_names = st.one_of(
    st.text(max_size=6), st.none(), st.integers(), st.just([]), st.just(["a"]), st.just(["a", "a"]),
    st.just(["a", "  "]), st.lists(st.integers(), min_size=2, max_size=3),
    st.dictionaries(st.integers(5, 9), st.text(min_size=1, max_size=3), min_size=1, max_size=2),
    st.dictionaries(st.text(min_size=1, max_size=2), st.text(min_size=1, max_size=3), min_size=1, max_size=2),
)
bad_Cs = st.one_of(st.text(max_size=3), st.none(), st.floats(), st.just([]),
                   st.lists(bad_positive, min_size=1, max_size=3))
GOOD_TEXTS = ["free cash prize", "lunch at home", "win a prize now", "dinner at home"]
GOOD_LABELS = [1, 0, 1, 0]
bad_splits = st.one_of(
    st.text(max_size=3), st.none(), st.floats(),
    st.lists(st.floats(0, 1), max_size=5).filter(lambda f: len(f) != 3),
    st.tuples(st.floats(), st.floats(), st.floats()).filter(
        lambda f: not all(math.isfinite(x) and 0 <= x <= 1 for x in f) or abs(sum(f) - 1) > 1e-3 or f[0] == 0),
    st.tuples(st.text(max_size=2), st.just(0.1), st.just(0.1)),
)


def own_pairs():
    """Pairs (texts, labels) that must be refused: a bad text, a bad label or mismatched lengths."""
    texts = st.lists(st.sampled_from(GOOD_TEXTS), min_size=8, max_size=12)
    bad_text_value = st.one_of(st.none(), st.integers(), st.just("   "), st.just(""), st.floats())
    bad_label_value = st.one_of(st.none(), not_whole, st.just("  "), st.just(""), st.lists(st.integers(), max_size=1))

    def with_bad(values, bad, at):
        values = list(values)
        values[at % len(values)] = bad
        return values

    labelled = texts.map(lambda t: (t, [i % 2 for i in range(len(t))]))
    return st.one_of(
        st.tuples(labelled, bad_text_value, st.integers(0, 20)).map(lambda a: (with_bad(a[0][0], a[1], a[2]), a[0][1])),
        st.tuples(labelled, bad_label_value, st.integers(0, 20)).map(
            lambda a: (a[0][0], with_bad(a[0][1], a[1], a[2]))),
        labelled.map(lambda p: (p[0], p[1][:-1])),
        labelled.map(lambda p: (p[0], [0] * len(p[1]))),                     # one class only
    )


def bad_calls(name: str, tokenizer, clf):
    """A strategy of zero-argument calls of ``name`` with at least one invalid argument."""
    y = [0, 1, 1, 0]
    calls = {
        "accuracy": st.one_of(bad_labels.map(lambda b: lambda: classify.accuracy(b, y)),
                              bad_labels.map(lambda b: lambda: classify.accuracy(y, b)),
                              st.integers(1, 3).map(lambda k: lambda: classify.accuracy(y, y[:k]))),
        "confusion_matrix": st.one_of(bad_labels.map(lambda b: lambda: classify.confusion_matrix(b, y)),
                                      st.one_of(bad_int.filter(lambda n: n is not None), st.just(1)).map(
                                          lambda n: lambda: classify.confusion_matrix(y, y, n))),
        "classification_report": st.one_of(
            bad_labels.map(lambda b: lambda: classify.classification_report(y, b, ["neg", "pos"])),
            bad_names.map(lambda n: lambda: classify.classification_report(y, y, n))),
        "fit_tfidf_logreg": st.one_of(
            bad_texts.map(lambda t: lambda: classify.fit_tfidf_logreg(t, GOOD_LABELS)),
            bad_labels.map(lambda b: lambda: classify.fit_tfidf_logreg(GOOD_TEXTS, b)),
            st.just(lambda: classify.fit_tfidf_logreg(GOOD_TEXTS, [2, 1, 2, 1])),
            bad_labels.map(lambda b: lambda: classify.fit_tfidf_logreg(GOOD_TEXTS, GOOD_LABELS, GOOD_TEXTS, b)),
            bad_Cs.map(lambda c: lambda: classify.fit_tfidf_logreg(GOOD_TEXTS, GOOD_LABELS, Cs=c))),
        "Classifier.predict": st.one_of(
            bad_texts.map(lambda t: lambda: clf.predict(t)),
            bad_int.map(lambda b: lambda: clf.predict(["a fine film"], batch_size=b)),
            bad_positive.map(lambda t: lambda: clf.predict(["a fine film"], temperature=t))),
        "encode_texts": st.one_of(
            bad_texts.filter(lambda t: not (isinstance(t, list) and t and all(isinstance(x, str) for x in t))).map(
                lambda t: lambda: classify.encode_texts(tokenizer, t, 16)),
            st.one_of(bad_int, st.integers(1, 2)).map(lambda m: lambda: classify.encode_texts(tokenizer, ["ok"], m))),
        "load_labelled": st.one_of(
            own_pairs().map(lambda p: lambda: data.load_labelled(p)),
            st.one_of(st.none(), st.integers(), st.floats(), st.lists(st.text(max_size=3), max_size=3)).map(
                lambda s: lambda: data.load_labelled(s)),
            bad_splits.filter(lambda s: s is not None).map(
                lambda s: lambda: data.load_labelled((GOOD_TEXTS * 5, GOOD_LABELS * 5), splits=s)),
            bad_int.filter(lambda s: not isinstance(s, int) or isinstance(s, bool)).map(
                lambda s: lambda: data.load_labelled((GOOD_TEXTS * 5, GOOD_LABELS * 5), seed=s)),
            junk.filter(lambda c: not isinstance(c, str)).map(
                lambda c: lambda: data.load_labelled((GOOD_TEXTS * 5, GOOD_LABELS * 5), text_column=c)),
            bad_names.filter(lambda n: n is not None).map(
                lambda n: lambda: data.load_labelled((GOOD_TEXTS * 5, GOOD_LABELS * 5), label_names=n))),
        "Split": st.one_of(bad_texts.filter(lambda t: not (isinstance(t, list) and all(isinstance(x, str) for x in t)))
                           .map(lambda t: lambda: data.Split(t, [0])),
                           bad_labels.filter(lambda b: b != []).map(lambda b: lambda: data.Split(["a"], b)),
                           st.integers(0, 3).map(lambda k: lambda: data.Split(["a"] * 4, [0] * k))),
    }
    return calls[name]


@pytest.mark.parametrize("name", ["accuracy", "confusion_matrix", "classification_report", "fit_tfidf_logreg",
                                  "Classifier.predict", "encode_texts", "load_labelled", "Split"])
def test_bad_input_gets_a_clear_error_from_the_library(name, tokenizer, tiny_clf):
    @settings(max_examples=50, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
    @given(call=bad_calls(name, tokenizer, tiny_clf))
    def check(call):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = call()
        except (TypeError, ValueError) as err:
            assert str(err).strip(), "an error without a message"
            assert raised_by_the_library(err), f"raised inside another library: {type(err).__name__}: {err}"
        else:
            pytest.fail(f"{name} accepted invalid input and returned {result!r:.200}")

    check()
