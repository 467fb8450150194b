"""Tests of textft_lib.train: the loop, early stopping, the checkpoint cache, schedules."""

import json
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from textft_lib import cache, train


def _data(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 4, generator=g)
    y = (x[:, 0] + x[:, 1] > 0).long()
    return DataLoader(TensorDataset(x, y), batch_size=16, shuffle=False)


def _loss_fn(model, batch):
    x, y = batch
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y)
    return loss, {"accuracy": (logits.argmax(-1) == y).float().mean().item()}


def _model(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTFT_CACHE_DIR", str(tmp_path / "cache"))


def test_loss_falls_and_history_is_complete():
    model = _model()
    hist = train.fit(model, _data(), loss_fn=_loss_fn, lr=0.05, epochs=8, val_loader=_data(seed=1),
                     progress=False, verbose=False)
    assert len(hist.steps) == 8 * 4 and len(hist.evals) == 8
    assert hist.evals[-1]["val_loss"] < hist.evals[0]["val_loss"]
    assert hist.evals[-1]["val_accuracy"] > 0.8
    assert {"step", "epoch", "loss", "lr", "grad_norm", "accuracy"} <= set(hist.steps[0])
    xs, ys = hist.series("val_loss")
    assert xs == [4 * (i + 1) for i in range(8)] and len(ys) == 8
    with pytest.raises(KeyError, match="no 'val_f1'"):
        hist.series("val_f1")


def test_early_stopping_restores_the_best_weights():
    model = _model()
    script = iter([3.0, 2.0, 1.0, 2.0, 3.0, 4.0, 5.0])
    snapshots = []

    def evaluate(m, loader):
        snapshots.append({k: v.clone() for k, v in m.state_dict().items()})
        return {"loss": next(script)}

    hist = train.fit(model, _data(), loss_fn=_loss_fn, lr=0.05, epochs=10, val_loader=_data(seed=1),
                     evaluate_fn=evaluate, patience=2, progress=False, verbose=False)
    assert hist.stopped_early and len(hist.evals) == 5
    assert hist.best["epoch"] == 3 and hist.best["val_loss"] == 1.0
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, snapshots[2][k])


def test_monitor_max_and_eval_every():
    model = _model()
    hist = train.fit(model, _data(), loss_fn=_loss_fn, lr=0.05, epochs=2, val_loader=_data(seed=1),
                     eval_every=2, monitor="val_accuracy", mode="max", progress=False, verbose=False)
    assert [r["step"] for r in hist.evals] == [2, 4, 6, 8]  # the epoch-end evaluation is not repeated
    assert hist.best["val_accuracy"] == max(r["val_accuracy"] for r in hist.evals)
    with pytest.raises(KeyError, match="monitor='val_f1'"):
        train.fit(_model(), _data(), loss_fn=_loss_fn, epochs=1, val_loader=_data(), monitor="val_f1",
                  progress=False, verbose=False)


def test_max_steps_without_epochs():
    hist = train.fit(_model(), _data(), loss_fn=_loss_fn, epochs=None, max_steps=10, progress=False,
                     verbose=False)
    assert len(hist.steps) == 10 and hist.steps[-1]["epoch"] == 3


def test_checkpoint_cache_loads_instead_of_training(capsys):
    settings = {"lr": 0.05, "epochs": 2}
    first = _model(seed=0)
    h1 = train.fit(first, _data(), loss_fn=_loss_fn, lr=0.05, epochs=2, val_loader=_data(seed=1),
                   cache="tiny", settings=settings, progress=False, verbose=False)
    assert not h1.from_cache
    folder = train.cache_path("tiny", settings, _model(seed=0))   # the key of the model before training
    assert {p.name for p in folder.iterdir()} == {"model.safetensors", "history.json", "settings.json"}
    assert json.loads((folder / "settings.json").read_text()) == settings

    calls = []

    def counting_loss(model, batch):
        calls.append(1)
        return _loss_fn(model, batch)

    second = _model(seed=0)  # the same start, built again
    h2 = train.fit(second, _data(), loss_fn=counting_loss, lr=0.05, epochs=2, cache="tiny", settings=settings,
                   progress=False)
    assert h2.from_cache and not calls
    assert "loaded cached result" in capsys.readouterr().out
    assert h2.evals == h1.evals
    for k, v in first.state_dict().items():
        torch.testing.assert_close(second.state_dict()[k], v)

    # other settings, or another model shape, train again
    h3 = train.fit(_model(), _data(), loss_fn=counting_loss, lr=0.05, epochs=2, cache="tiny",
                   settings={**settings, "lr": 0.01}, progress=False, verbose=False)
    assert not h3.from_cache and calls
    wider = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    assert train.cache_path("tiny", settings, wider) != folder


def test_checkpoint_cache_key_covers_the_starting_weights_and_buffers():
    # same settings, same shapes, another start: another checkpoint. Lesson 05's exercise 2
    # zeroes the non-persistent sinusoidal table and retrains; it must not load the model
    # trained with positions
    from textft_lib import transformer as T

    settings = {"lr": 0.05}
    assert train.cache_path("k", settings, _model(seed=0)) == train.cache_path("k", settings, _model(seed=0))
    assert train.cache_path("k", settings, _model(seed=1)) != train.cache_path("k", settings, _model(seed=0))
    torch.manual_seed(0)
    model = T.Seq2SeqTransformer(12, 12, d_model=16, n_heads=2, d_ff=32, num_encoder_layers=1,
                                 num_decoder_layers=1, max_len=16)
    with_positions = train.cache_path("k", settings, model)
    assert "pos.pe" not in model.state_dict() and "pos.pe" in dict(model.named_buffers())
    model.pos.pe.zero_()
    assert train.cache_path("k", settings, model) != with_positions
    bf16 = train.cache_path("k", settings, _model(seed=0).to(torch.bfloat16))   # bf16 weights hash too
    assert bf16 != train.cache_path("k", settings, _model(seed=0))


def test_checkpoint_cache_keeps_precisions_apart():
    # the same settings trained in bf16 autocast are another checkpoint than in fp32; an fp32
    # key has no precision part
    settings, model = {"lr": 0.05, "epochs": 1}, _model(seed=0)
    fp32 = train.cache_path("tiny_amp", settings, model)
    before = cache.key({"settings": settings, "model": train._model_signature(model)},
                       train._starting_state(model))                                # no precision in it
    assert fp32.name == f"tiny_amp-{before}" == train.cache_path("tiny_amp", settings, model, None).name
    assert train.cache_path("tiny_amp", settings, model, torch.bfloat16) != fp32
    assert train.cache_path("tiny_amp", settings, model, torch.float16) not in (
        fp32, train.cache_path("tiny_amp", settings, model, torch.bfloat16))
    h1 = train.fit(model, _data(), loss_fn=_loss_fn, lr=0.05, epochs=1, cache="tiny_amp", settings=settings,
                   amp=None, progress=False, verbose=False)
    h2 = train.fit(_model(seed=0), _data(), loss_fn=_loss_fn, lr=0.05, epochs=1, cache="tiny_amp",
                   settings=settings, amp="bf16", progress=False, verbose=False)
    assert not h1.from_cache and not h2.from_cache     # bf16 did not load the fp32 run
    assert (train.cache_path("tiny_amp", settings, _model(seed=0), torch.bfloat16) / "history.json").exists()
    h3 = train.fit(_model(seed=0), _data(), loss_fn=_loss_fn, lr=0.05, epochs=1, cache="tiny_amp",
                   settings=settings, amp="bf16", progress=False, verbose=False)
    assert h3.from_cache


def test_schedule_warms_up_then_decays():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = train.warmup_decay_schedule(opt, warmup_steps=10, total_steps=110, kind="cosine")
    lrs = []
    for _ in range(110):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] < lrs[5] < lrs[9] <= 1.0
    assert max(lrs) == pytest.approx(1.0)
    assert lrs[60] == pytest.approx(0.5, abs=1e-6)  # half-way through the cosine
    assert lrs[-1] < 0.01
    with pytest.raises(ValueError, match="warmup_steps"):
        train.warmup_decay_schedule(opt, warmup_steps=20, total_steps=10)


def test_param_groups_discriminative_lr_and_no_decay():
    model = nn.Sequential()
    model.add_module("body", nn.Linear(4, 4))
    model.add_module("norm", nn.LayerNorm(4))
    model.add_module("head", nn.Linear(4, 2))
    groups = train.param_groups(model, lr_body=1e-5, lr_head=1e-3, head_prefix="head.", weight_decay=0.1)
    by_id = {id(p): g for g in groups for p in g["params"]}
    assert by_id[id(model.head.weight)]["lr"] == 1e-3 and by_id[id(model.head.weight)]["weight_decay"] == 0.1
    assert by_id[id(model.head.bias)]["weight_decay"] == 0.0
    assert by_id[id(model.body.weight)]["lr"] == 1e-5
    assert by_id[id(model.norm.weight)]["weight_decay"] == 0.0
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    with pytest.raises(ValueError, match="classifier"):
        train.param_groups(model, lr_body=1e-5, lr_head=1e-3, head_prefix="classifier.")


def test_bad_arguments_and_outputs_raise():
    with pytest.raises(ValueError, match="needs a val_loader"):
        train.fit(_model(), _data(), loss_fn=_loss_fn, patience=2, progress=False)
    with pytest.raises(ValueError, match="settings"):
        train.fit(_model(), _data(), loss_fn=_loss_fn, cache="x", progress=False)
    with pytest.raises(TypeError, match="scalar loss"):
        train.fit(_model(), _data(), loss_fn=lambda m, b: m(b[0]), progress=False)
    with pytest.raises(ValueError, match="CUDA"):
        train.fit(_model(), _data(), loss_fn=_loss_fn, amp="fp16", device="cpu", progress=False)
    with pytest.raises(FloatingPointError, match="step 1"):
        train.fit(_model(), _data(), loss_fn=lambda m, b: m(b[0]).sum() * math.inf, progress=False)


def test_bf16_autocast_on_cpu_trains():
    hist = train.fit(_model(), _data(), loss_fn=_loss_fn, lr=0.05, epochs=1, amp="bf16", progress=False,
                     verbose=False)
    assert all(math.isfinite(s["loss"]) for s in hist.steps)


def test_evaluate_loss_builds_no_graph_and_restores_the_mode():
    model = torch.nn.Linear(2, 1).train()

    def loss_fn(m, batch):
        assert not torch.is_grad_enabled() and not m.training
        return m(batch).mean()

    train.evaluate_loss(model, [torch.randn(3, 2)], loss_fn)
    assert model.training


# --------------------------------------------------------------------------- one settings type


def test_train_config_counts_steps_and_warm_up():
    s = train.TrainConfig(lr=5e-5, lr_head=1e-3, epochs=4, warmup_fraction=0.1)
    assert s.total_steps(125) == 500 and s.warmup_steps(500) == 50 and s.head_lr == 1e-3
    steps = train.TrainConfig(max_steps=40, warmup_fraction=0.01)
    assert steps.total_steps(7) == 40 and steps.warmup_steps(40) == 1     # at least one when asked for
    assert train.TrainConfig(epochs=1, warmup_fraction=0.0).warmup_steps(100) == 0
    assert train.TrainConfig(epochs=1).head_lr == 1e-3                    # no head rate: lr everywhere
    with pytest.raises(ValueError, match=r"exactly one"):
        train.TrainConfig(epochs=2, max_steps=10)


def test_optimizer_and_schedule_follow_the_settings():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    s = train.TrainConfig(lr=1e-3, lr_head=1e-2, max_steps=10, warmup_fraction=0.2, weight_decay=0.1)
    opt, sched = train.optimizer_and_schedule(model, s, 10, head_prefix="1.")
    rates = sorted({g["lr"] for g in opt.param_groups})
    assert rates == pytest.approx([1e-3 / 3, 1e-2 / 3])                   # warm-up step 0 of 2
    decays = {(g["lr"], g["weight_decay"]) for g in opt.param_groups}
    assert {d for _, d in decays} == {0.0, 0.1}                            # no decay on biases
    single, _ = train.optimizer_and_schedule(model, s, 10)
    assert len(single.param_groups) == 1 and single.param_groups[0]["weight_decay"] == 0.1
    for _ in range(2):
        opt.step()
        sched.step()
    assert max(g["lr"] for g in opt.param_groups) == pytest.approx(1e-2)  # warm-up over 2 steps done
