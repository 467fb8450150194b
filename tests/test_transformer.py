"""Tests of textft_lib.transformer: agreement with torch.nn, masks, padding, bad input."""

import math

import pytest
import torch
from torch import nn

from textft_lib.transformer import (
    EncoderClassifier,
    LearnedPositionalEmbedding,
    Seq2SeqTransformer,
    SinusoidalPositionalEncoding,
    TokenEmbedding,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
    count_parameters,
    masked_mean,
    sinusoidal_table,
    to_torch,
)

D, H, FF = 32, 4, 64


def _padding_mask(lengths, total):
    return torch.arange(total)[None, :] < torch.tensor(lengths)[:, None]  # True = real


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer_matches_torch(norm_first, activation):
    torch.manual_seed(0)
    ours = TransformerEncoderLayer(D, H, FF, dropout=0.0, activation=activation, norm_first=norm_first).double()
    ref = to_torch(ours)
    x = torch.randn(3, 7, D, dtype=torch.float64)
    mask = _padding_mask([7, 4, 1], 7)
    out = ours(x, key_padding_mask=mask)
    expected = ref(x, src_key_padding_mask=~mask)
    torch.testing.assert_close(out[mask], expected[mask])
    assert count_parameters(ours) == count_parameters(ref)


@pytest.mark.parametrize("norm_first", [False, True])
def test_encoder_layer_gradients_match_torch(norm_first):
    torch.manual_seed(1)
    ours = TransformerEncoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first).double()
    ref = to_torch(ours)
    x = torch.randn(2, 5, D, dtype=torch.float64)
    ours(x).square().sum().backward()
    ref(x).square().sum().backward()
    torch.testing.assert_close(ours.linear1.weight.grad, ref.linear1.weight.grad)
    q_grad = ref.self_attn.in_proj_weight.grad[:D]
    torch.testing.assert_close(ours.self_attn.q_proj.weight.grad, q_grad)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first):
    torch.manual_seed(2)
    ours = TransformerDecoderLayer(D, H, FF, dropout=0.0, norm_first=norm_first).double()
    ref = to_torch(ours)
    tgt = torch.randn(3, 6, D, dtype=torch.float64)
    memory = torch.randn(3, 9, D, dtype=torch.float64)
    tgt_mask = _padding_mask([6, 5, 3], 6)
    mem_mask = _padding_mask([9, 2, 6], 9)
    out = ours(tgt, memory, tgt_key_padding_mask=tgt_mask, memory_key_padding_mask=mem_mask, causal=True)
    causal = torch.ones(6, 6, dtype=torch.bool).triu(1)  # torch: True = may not attend
    expected = ref(tgt, memory, tgt_mask=causal, tgt_is_causal=True,
                   tgt_key_padding_mask=~tgt_mask, memory_key_padding_mask=~mem_mask)
    torch.testing.assert_close(out[tgt_mask], expected[tgt_mask])
    assert count_parameters(ours) == count_parameters(ref)


def test_encoder_causal_mask_prevents_leakage():
    torch.manual_seed(3)
    enc = TransformerEncoder(2, D, H, FF, dropout=0.0, norm_first=True).eval()
    x = torch.randn(2, 8, D)
    x2 = x.clone()
    x2[:, 5:] = torch.randn(2, 3, D)  # change the future
    y, y2 = enc(x, causal=True), enc(x2, causal=True)
    torch.testing.assert_close(y[:, :5], y2[:, :5])
    assert not torch.allclose(y[:, 5:], y2[:, 5:])


def test_seq2seq_decoder_is_causal():
    torch.manual_seed(4)
    model = Seq2SeqTransformer(20, 15, d_model=D, n_heads=H, num_encoder_layers=1, num_decoder_layers=2,
                               d_ff=FF, dropout=0.0).eval()
    src = torch.randint(3, 20, (2, 9))
    tgt = torch.randint(3, 15, (2, 7))
    tgt2 = tgt.clone()
    tgt2[:, 4:] = torch.randint(3, 15, (2, 3))
    a, b = model(src, tgt), model(src, tgt2)
    torch.testing.assert_close(a[:, :4], b[:, :4])


def test_padding_leaves_real_tokens_unchanged():
    torch.manual_seed(5)
    enc = TransformerEncoder(2, D, H, FF, dropout=0.0).eval()
    x = torch.randn(1, 5, D)
    padded = torch.cat([x, torch.randn(1, 4, D)], dim=1)  # garbage in the padded slots
    mask = _padding_mask([5], 9)
    torch.testing.assert_close(enc(x), enc(padded, key_padding_mask=mask)[:, :5])


def test_seq2seq_and_classifier_padding_invariance():
    torch.manual_seed(6)
    model = Seq2SeqTransformer(20, 15, d_model=D, n_heads=H, num_encoder_layers=1, num_decoder_layers=1,
                               d_ff=FF, dropout=0.0, pad_id=0).eval()
    src = torch.randint(3, 20, (1, 6))
    tgt = torch.randint(3, 15, (1, 4))
    src_padded = torch.cat([src, torch.zeros(1, 3, dtype=torch.long)], dim=1)
    tgt_padded = torch.cat([tgt, torch.zeros(1, 2, dtype=torch.long)], dim=1)
    torch.testing.assert_close(model(src, tgt), model(src_padded, tgt_padded)[:, :4])

    clf = EncoderClassifier(30, 3, d_model=D, n_heads=H, num_layers=2, d_ff=FF, dropout=0.0).eval()
    ids = torch.randint(1, 30, (1, 6))
    ids_padded = torch.cat([ids, torch.zeros(1, 5, dtype=torch.long)], dim=1)
    torch.testing.assert_close(clf(ids), clf(ids_padded))
    # an explicit attention_mask (ints, as tokenizers return) gives the same result
    torch.testing.assert_close(clf(ids_padded, (ids_padded != 0).long()), clf(ids))


def test_greedy_decode_agrees_with_teacher_forcing():
    torch.manual_seed(7)
    model = Seq2SeqTransformer(12, 10, d_model=D, n_heads=H, num_encoder_layers=1, num_decoder_layers=1,
                               d_ff=FF, dropout=0.0)
    src = torch.randint(3, 12, (4, 5))
    out = model.greedy_decode(src, bos_id=1, eos_id=2, max_len=6)
    assert out.shape[0] == 4 and 1 <= out.shape[1] <= 6
    assert model.training  # decoding restores the mode
    tgt_in = torch.cat([torch.ones(4, 1, dtype=torch.long), out[:, :-1]], dim=1)
    pred = model.eval()(src, tgt_in).argmax(-1)
    for row in range(4):
        ids = out[row].tolist()
        stop = ids.index(2) + 1 if 2 in ids else len(ids)
        assert pred[row, :stop].tolist() == ids[:stop]
        assert all(t == 0 for t in ids[stop:])  # padding after the end token


def test_cross_attention_weights_are_distributions():
    torch.manual_seed(8)
    model = Seq2SeqTransformer(12, 10, d_model=D, n_heads=H, num_encoder_layers=1, num_decoder_layers=2,
                               d_ff=FF, dropout=0.0)
    src = torch.tensor([[4, 5, 6, 0, 0]])
    weights = model.cross_attention(src, torch.tensor([[1, 4, 5]]))
    assert len(weights) == 2 and weights[0].shape == (1, H, 3, 5)
    torch.testing.assert_close(weights[1].sum(-1), torch.ones(1, H, 3))
    assert float(weights[0][..., 3:].abs().max()) == 0.0  # padding gets no attention


def test_sinusoidal_offsets_are_linear_maps():
    pe = sinusoidal_table(64, 16).double()
    k = 5
    freq = 10000.0 ** (-torch.arange(0, 16, 2, dtype=torch.float64) / 16)
    rot = torch.zeros(16, 16, dtype=torch.float64)  # block-diagonal rotation by k * freq_i
    for i, w in enumerate(freq):
        c, s = math.cos(k * w), math.sin(k * w)
        rot[2 * i:2 * i + 2, 2 * i:2 * i + 2] = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    torch.testing.assert_close(pe[:-k] @ rot, pe[k:])


def test_embedding_scaled_and_positions_added():
    emb = TokenEmbedding(10, 16)
    ids = torch.tensor([[1, 2, 3]])
    torch.testing.assert_close(emb(ids), emb.embedding(ids) * 4.0)
    pos = SinusoidalPositionalEncoding(16, max_len=8)
    x = torch.randn(2, 3, 16)
    torch.testing.assert_close(pos(x), x + sinusoidal_table(8, 16)[:3])
    assert LearnedPositionalEmbedding(16, 8)(x).shape == x.shape


def test_bad_input_raises_clear_errors():
    pos = SinusoidalPositionalEncoding(16, max_len=8)
    with pytest.raises(ValueError, match="longer than the positional table"):
        pos(torch.zeros(1, 9, 16))
    with pytest.raises(ValueError, match="longer than the learned"):
        LearnedPositionalEmbedding(16, 8)(torch.zeros(1, 9, 16))
    model = Seq2SeqTransformer(12, 10, d_model=D, n_heads=H, num_encoder_layers=1, num_decoder_layers=1,
                               d_ff=FF, max_len=16)
    with pytest.raises(IndexError, match="different vocabulary"):
        model(torch.tensor([[3, 12]]), torch.tensor([[1, 2]]))
    with pytest.raises(IndexError, match="target ids"):
        model(torch.tensor([[3, 4]]), torch.tensor([[1, 10]]))
    with pytest.raises(TypeError, match="integer"):
        model(torch.tensor([[3.0, 4.0]]), torch.tensor([[1, 2]]))
    with pytest.raises(ValueError, match="longer than"):
        model(torch.randint(3, 12, (1, 17)), torch.tensor([[1, 2]]))
    layer = TransformerEncoderLayer(D, H, FF)
    with pytest.raises(ValueError, match="d_model=32"):
        layer(torch.zeros(2, 3, 16))
    with pytest.raises(ValueError, match="key_padding_mask must have shape"):
        layer(torch.zeros(2, 3, D), key_padding_mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="bool"):
        layer(torch.zeros(2, 3, D), key_padding_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match="no real token"):
        masked_mean(torch.zeros(1, 3, 4), torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="d_model must be even"):
        sinusoidal_table(10, 7)


def test_tied_embeddings_count_once_and_train_step_runs():
    model = Seq2SeqTransformer(12, 10, d_model=D, n_heads=H, num_encoder_layers=1, num_decoder_layers=1,
                               d_ff=FF, tie_embeddings=True)
    assert model.generator.weight is model.tgt_embed.embedding.weight
    untied = Seq2SeqTransformer(12, 10, d_model=D, n_heads=H, num_encoder_layers=1, num_decoder_layers=1,
                                d_ff=FF, tie_embeddings=False)
    assert count_parameters(untied) - count_parameters(model) == 10 * D
    logits = model(torch.randint(3, 12, (2, 5)), torch.randint(3, 10, (2, 4)))
    loss = nn.functional.cross_entropy(logits.reshape(-1, 10), torch.randint(3, 10, (8,)))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
