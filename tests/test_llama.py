"""textft_lib.llama: each Llama piece against transformers' own on random weights, then the
whole decoder: logits, greedy tokens and the key/value cache."""

import pytest
import torch

from textft_lib import gpt, llama

transformers = pytest.importorskip("transformers")
from transformers.models.llama import modeling_llama as ml  # noqa: E402


def hf_config(**kw):
    base = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
                num_key_value_heads=2, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=True,
                hidden_act="silu", attention_bias=False, mlp_bias=False)
    return transformers.LlamaConfig(**(base | kw))


def test_rmsnorm_matches():
    theirs = ml.LlamaRMSNorm(32, eps=1e-5)
    with torch.no_grad():
        theirs.weight.normal_()
    ours = llama.RMSNorm(32, 1e-5)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 5, 32)
    torch.testing.assert_close(ours(x), theirs(x))


def test_rope_matches_and_depends_only_on_the_offset():
    config = hf_config()
    x = torch.randn(1, 4, 10, 8)
    pos = torch.arange(3, 13)
    cos_t, sin_t = ml.LlamaRotaryEmbedding(config)(x, pos[None])
    cos, sin = llama.rope_tables(8, pos, 10000.0)
    torch.testing.assert_close(cos, cos_t[0])
    torch.testing.assert_close(sin, sin_t[0])
    q, k = torch.randn(1, 4, 10, 8), torch.randn(1, 4, 10, 8)
    q_t, k_t = ml.apply_rotary_pos_emb(q, k, cos_t, sin_t)
    torch.testing.assert_close(llama.apply_rope(q, cos, sin), q_t)
    # relative positions: shifting both by 5 leaves every q.k unchanged
    shifted = llama.rope_tables(8, pos + 5, 10000.0)
    dots = llama.apply_rope(q, cos, sin) @ llama.apply_rope(k, cos, sin).transpose(-2, -1)
    dots_shifted = llama.apply_rope(q, *shifted) @ llama.apply_rope(k, *shifted).transpose(-2, -1)
    torch.testing.assert_close(dots, dots_shifted, atol=1e-4, rtol=1e-4)


def test_swiglu_matches():
    theirs = ml.LlamaMLP(hf_config())
    ours = llama.SwiGLU(32, 48)
    ours.load_state_dict(theirs.state_dict())
    x = torch.randn(2, 5, 32)
    torch.testing.assert_close(ours(x), theirs(x))


@pytest.mark.parametrize("kv_heads", [4, 2, 1])     # multi-head, grouped, multi-query
def test_whole_model_logits_tokens_and_cache(kv_heads):
    torch.manual_seed(0)
    hf = transformers.LlamaForCausalLM(hf_config(num_key_value_heads=kv_heads)).eval()
    ours = llama.from_transformers(hf)
    ids = torch.randint(0, 64, (2, 12))
    with torch.no_grad():
        torch.testing.assert_close(ours(ids), hf(ids).logits, atol=1e-5, rtol=1e-4)
        cache = ours.new_cache()
        steps = [ours(ids[:, :4], cache=cache)] + [ours(ids[:, t:t + 1], cache=cache) for t in range(4, 12)]
    torch.testing.assert_close(torch.cat(steps, 1), ours(ids).detach(), atol=1e-5, rtol=1e-4)
    assert cache.layers[0].k.shape == (2, kv_heads, 12, 8)        # the cache holds the key/value heads only
    prompt = torch.tensor([[5, 9, 2, 7]])
    theirs = hf.generate(prompt, max_new_tokens=16, do_sample=False, pad_token_id=0)
    assert torch.equal(gpt.generate(ours, prompt, 16, greedy=True), theirs)


def test_bad_configs():
    with pytest.raises(ValueError, match="must divide"):
        llama.LlamaConfig(vocab_size=10, n_heads=4, n_kv_heads=3)
    with pytest.raises(ValueError, match="even"):
        llama.LlamaConfig(vocab_size=10, d_model=12, n_heads=4, n_kv_heads=2)


def test_a_filled_cache_takes_one_token_at_a_time():
    model = llama.Llama(llama.LlamaConfig(vocab_size=20, d_model=16, d_ff=24, n_layers=1, n_heads=2, n_kv_heads=1))
    cache = model.new_cache()
    model(torch.tensor([[1, 2, 3]]), cache=cache)
    with pytest.raises(ValueError, match="one new token at a time"):
        model(torch.tensor([[4, 5]]), cache=cache)
