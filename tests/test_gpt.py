"""textft_lib.gpt: the decoder, its key/value cache, sampling, and the export to GPT-2."""

import pytest
import torch
import torch.nn.functional as F

from textft_lib import gpt


def tiny(positions="learned", **kw):
    torch.manual_seed(0)
    return gpt.GPT(gpt.GPTConfig(vocab_size=50, max_len=32, d_model=32, n_heads=4, n_layers=2,
                                 positions=positions, **kw)).eval()


def test_shapes_loss_and_tied_weights():
    model = tiny()
    ids = torch.randint(0, 50, (3, 10))
    assert model(ids).shape == (3, 10, 50) and model.head.weight is model.tok.weight
    logits = model(ids[:, :-1])
    expected = F.cross_entropy(logits.reshape(-1, 50), ids[:, 1:].reshape(-1))
    torch.testing.assert_close(model.loss(ids), expected)


def test_causal_no_position_sees_the_future():
    model = tiny()
    ids = torch.randint(0, 50, (1, 12))
    changed = ids.clone()
    changed[0, 8:] = (changed[0, 8:] + 1) % 50
    torch.testing.assert_close(model(ids)[:, :8], model(changed)[:, :8])


@pytest.mark.parametrize("positions", ["learned", "sinusoidal"])
def test_cache_gives_the_logits_of_full_recomputation(positions):
    model = tiny(positions)
    ids = torch.randint(0, 50, (2, 20))
    full = model(ids)
    cache = model.new_cache()
    steps = [model(ids[:, :5], cache=cache)]                       # the prompt at once
    steps += [model(ids[:, t:t + 1], cache=cache) for t in range(5, 20)]   # then one token at a time
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-5, rtol=1e-4)
    layer = cache.layers[0]
    assert cache.length == 20 and layer.k.shape == (2, 4, 20, 8) == layer.v.shape   # (B, H, L, head size)
    with pytest.raises(ValueError, match="one\\s+new token at a time"):
        model(ids[:, :2], cache=cache)


def test_generation_is_seeded_and_cached_equals_uncached():
    model = tiny()
    prompt = [3, 7, 11]
    a = gpt.generate(model, prompt, 12, temperature=0.9, top_k=10, seed=1)
    b = gpt.generate(model, prompt, 12, temperature=0.9, top_k=10, seed=1)
    c = gpt.generate(model, prompt, 12, temperature=0.9, top_k=10, seed=1, use_cache=False)
    assert torch.equal(a, b) and torch.equal(a, c) and a.shape == (1, 15) and a[0, :3].tolist() == prompt
    greedy = gpt.generate(model, prompt, 12, greedy=True)
    assert torch.equal(gpt.generate(model, prompt, 12, top_k=1, seed=5), greedy)
    assert torch.equal(gpt.generate(model, prompt, 12, top_p=1e-6, seed=5), greedy)


def test_unseeded_generation_follows_the_global_generator():
    """seed=None draws from PyTorch's global generator: two calls differ, and
    torch.manual_seed makes a call repeatable (a fresh unseeded Generator would always give
    the same sample)."""
    model = tiny()
    torch.manual_seed(3)
    a, b = (gpt.generate(model, [3, 7, 11], 20, temperature=2.0) for _ in range(2))
    torch.manual_seed(3)
    assert not torch.equal(a, b) and torch.equal(gpt.generate(model, [3, 7, 11], 20, temperature=2.0), a)


def test_top_p_of_one_keeps_every_token():
    """The float32 running sum of 50,000 probabilities reaches 1 before the last ones; top_p=1
    must still keep them all."""
    logits = torch.randn(4, 50_000, generator=torch.Generator().manual_seed(0)) * 3
    assert not torch.isinf(gpt.filter_logits(logits, top_p=1.0)).any()


def test_stop_ids_end_a_row():
    model = tiny()
    first = gpt.generate(model, [1, 2], 1, greedy=True)[0, -1].item()
    out = gpt.generate(model, [1, 2], 10, greedy=True, stop_ids=[first])
    assert out.shape == (1, 3) and out[0, -1].item() == first


def test_filter_logits_top_k_and_nucleus():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]]))
    assert torch.isinf(gpt.filter_logits(logits, top_k=2)).tolist() == [[False, False, True, True]]
    assert torch.isinf(gpt.filter_logits(logits, top_p=0.8)).tolist() == [[False, False, True, True]]
    assert torch.isinf(gpt.filter_logits(logits, top_p=0.81)).tolist() == [[False, False, False, True]]
    assert not torch.isinf(gpt.filter_logits(logits, top_p=1.0)).any()


@pytest.mark.parametrize("kwargs, match", [
    (dict(prompt=[]), "at least one token"),
    (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"),
    (dict(temperature=0.0), "temperature"), (dict(temperature=-1.0), "temperature"),
    (dict(prompt=list(range(30))), "context of 32 tokens"),
])
def test_bad_generation_arguments_are_refused(kwargs, match):
    args = dict(prompt=[1, 2, 3], temperature=1.0, seed=0) | kwargs
    with pytest.raises(ValueError, match=match):
        gpt.generate(tiny(), args.pop("prompt"), 5, **args)


def test_bad_configs_are_refused():
    with pytest.raises(ValueError, match="divisible"):
        gpt.GPTConfig(vocab_size=10, d_model=30, n_heads=4)
    with pytest.raises(ValueError, match="positions"):
        gpt.GPTConfig(vocab_size=10, positions="rotary")


def test_export_to_gpt2_same_logits_and_greedy_tokens():
    pytest.importorskip("transformers")
    model = tiny()
    hf = gpt.to_gpt2(model)
    ids = torch.randint(0, 50, (2, 16))
    torch.testing.assert_close(hf(ids).logits, model(ids), atol=1e-5, rtol=1e-4)
    prompt = torch.tensor([[4, 9, 2]])
    theirs = hf.generate(prompt, max_new_tokens=10, do_sample=False, pad_token_id=0)
    assert torch.equal(theirs, gpt.generate(model, prompt, 10, greedy=True))
    with pytest.raises(ValueError, match="learned positions"):
        gpt.to_gpt2(tiny("sinusoidal"))
