"""Attention: gradients, masks, permutation equivariance, the pre-LN block."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidiff as md
from minidiff.checks import strategies as S
from minidiff.nn import attention
from minidiff.nn.encodings import grid_positions


def host(t):
    return md.backend.to_numpy(t.data)


@given(data=st.data())
def test_attention_matches_definition_and_gradient(data):
    """(eq-attention) against a float64 NumPy evaluation, and its backward (eq-attention-vjp)
    against central differences, with and without a boolean mask."""
    n_q, n_k, d = (data.draw(st.integers(1, 4)) for _ in range(3))
    q, k, v = (data.draw(S.arrays((2, n, d))) for n in (n_q, n_k, n_k))
    mask = data.draw(
        st.none()
        | st.lists(st.booleans(), min_size=n_q * n_k, max_size=n_q * n_k).map(
            lambda m: np.array(m).reshape(n_q, n_k)
        )
    )
    if mask is not None:
        mask[:, 0] = True  # every query may attend somewhere
    logits = q @ np.swapaxes(k, -1, -2) / np.sqrt(d)
    if mask is not None:
        logits = np.where(mask, logits, -np.inf)
    weights = np.exp(logits - logits.max(-1, keepdims=True))
    expected = weights / weights.sum(-1, keepdims=True) @ v
    out = attention.scaled_dot_product_attention(
        S.to_tensor(q), S.to_tensor(k), S.to_tensor(v), mask
    )
    np.testing.assert_allclose(host(out), expected, rtol=1e-10, atol=1e-12)
    assert md.gradcheck(
        lambda a, b, c: attention.scaled_dot_product_attention(a, b, c, mask), q, k, v
    )


def test_float_mask_is_added_to_the_logits():
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((3, 4)) for _ in range(3))
    bias = rng.standard_normal((3, 3))
    out = attention.scaled_dot_product_attention(q, k, v[:3], bias)
    logits = q @ k[:3].T / 2 + bias
    w = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(host(out), (w / w.sum(-1, keepdims=True)) @ v[:3], rtol=1e-5)


def test_attention_without_positions_is_permutation_equivariant():
    md.manual_seed(0)
    layer = attention.MultiHeadAttention(8, 2)
    x = md.randn(2, 6, 8)
    perm = np.random.default_rng(1).permutation(6)
    out = host(layer(x))
    np.testing.assert_allclose(host(layer(x[:, perm])), out[:, perm], rtol=1e-5, atol=1e-6)


def test_same_frame_block_mask_equals_spatial_attention():
    """Full space-time attention with a same-frame mask = attention within each frame."""
    md.manual_seed(1)
    frames, h, w, d = 3, 2, 2, 8
    layer = attention.MultiHeadAttention(d, 2)
    x = md.randn(1, frames * h * w, d)
    t = grid_positions(frames, h, w)[:, 0]
    same_frame = t[:, None] == t[None, :]
    joint = host(layer(x, mask=same_frame))
    per_frame = host(layer(x.reshape(frames, h * w, d))).reshape(1, frames * h * w, d)
    np.testing.assert_allclose(joint, per_frame, rtol=1e-5, atol=1e-6)


def test_frame_causal_mask_hides_the_future():
    """With a frame-causal mask, frame f's output has exactly zero gradient from frames > f."""
    md.manual_seed(2)
    frames, h, w, d = 3, 2, 1, 4
    block = attention.TransformerBlock(d, 2)
    x = md.tensor(md.randn(1, frames * h * w, d).data, requires_grad=True)
    t = grid_positions(frames, h, w)[:, 0]
    causal = t[:, None] >= t[None, :]
    out = block(x, mask=causal)
    first_frame = t == 0
    out[:, first_frame].sum().backward()
    grad = md.backend.to_numpy(x.grad)[0]
    assert (grad[t > 0] == 0).all()
    assert np.abs(grad[t == 0]).sum() > 0


def test_multi_head_gradients_and_shapes():
    md.manual_seed(3)
    layer = attention.MultiHeadAttention(4, 2, dtype=np.float64)
    x = md.randn(2, 3, 4, dtype=np.float64)
    assert md.gradcheck(
        lambda x, w, b: _mha_with(layer, x, w, b), x, layer.qkv.weight, layer.qkv.bias
    )
    with pytest.raises(ValueError, match="divisible"):
        attention.MultiHeadAttention(6, 4)
    with pytest.raises(md.ShapeError):
        layer(md.randn(2, 3, 5, dtype=np.float64))


def _mha_with(layer, x, weight, bias):
    layer.qkv.weight, layer.qkv.bias = weight, bias
    return layer(x)


def test_zero_init_block_is_the_identity():
    block = attention.TransformerBlock(8, 2, zero_init=True)
    x = md.randn(2, 5, 8)
    np.testing.assert_array_equal(host(block(x)), host(x))


@pytest.mark.parametrize("d", [4, 64, 1024])
def test_scaling_keeps_logit_variance_at_one(d):
    """(eq-attention-scale): for q, k with independent unit-variance entries, Var(q . k) = d, so
    q . k / sqrt(d) has variance 1 whatever the width."""
    rng = np.random.default_rng(d)
    q, k = rng.standard_normal((20_000, d)), rng.standard_normal((20_000, d))
    logits = (q * k).sum(-1)
    assert logits.var() / d == pytest.approx(1.0, abs=0.05)
    assert (logits / np.sqrt(d)).var() == pytest.approx(1.0, abs=0.05)


def test_eq_adaln_block_starts_as_the_identity_and_then_modulates():
    """(eq-adaln): with the modulation Linear at zero every gate alpha is 0, so the block is the
    identity whatever the condition; with weights in it, the block is
    x + alpha1 Attn(LN1(x)(1 + gamma1) + beta1), then the same with the MLP."""
    md.manual_seed(0)
    block = attention.TransformerBlock(8, 2, modulated=True, dtype=np.float64)
    x, c = md.randn(2, 5, 8, dtype=np.float64), md.randn(2, 8, dtype=np.float64)
    np.testing.assert_array_equal(host(block(x, condition=c)), host(x))
    rng = np.random.default_rng(1)
    block.modulation.weight.data[...] = rng.standard_normal(block.modulation.weight.shape)
    block.modulation.bias.data[...] = rng.standard_normal(block.modulation.bias.shape)
    silu = host(c) / (1.0 + np.exp(-host(c)))
    parts = (silu @ host(block.modulation.weight) + host(block.modulation.bias)).reshape(2, 6, 1, 8)
    shift1, scale1, gate1, shift2, scale2, gate2 = (parts[:, k] for k in range(6))
    h = host(block.norm1(x)) * (1 + scale1) + shift1
    y = host(x) + gate1 * host(block.attn(md.tensor(h, dtype=np.float64)))
    h = host(block.norm2(md.tensor(y, dtype=np.float64))) * (1 + scale2) + shift2
    expected = y + gate2 * host(block.mlp(md.tensor(h, dtype=np.float64)))
    np.testing.assert_allclose(host(block(x, condition=c)), expected, rtol=1e-10, atol=1e-12)
    assert md.gradcheck(lambda a, b: block(a, condition=b), x, c, directions=3)


def test_a_block_says_which_condition_it_expected():
    x = md.randn(1, 3, 8)
    with pytest.raises(ValueError, match="not modulated"):
        attention.TransformerBlock(8, 2)(x, condition=md.randn(1, 8))
    with pytest.raises(ValueError, match="needs condition"):
        attention.TransformerBlock(8, 2, modulated=True)(x)


@pytest.mark.parametrize("kind", ["spatial", "temporal"])
def test_factorized_attention_is_joint_attention_under_the_group_mask(kind):
    """(eq-attention-cost) FactorizedAttention equals MultiHeadAttention with the same weights
    and chapter 9's mask: the extra tokens see and are seen by every token, a grid token sees
    its group only (its frame, or its (i, j) in every frame); a key the key mask hides, extra
    or grid token, stays hidden, and rotary positions apply to all tokens alike."""
    md.manual_seed(0)
    grid, extra, dim, heads = (3, 2, 2), 2, 8, 2
    n = extra + 12
    layer = attention.FactorizedAttention(dim, heads, grid, kind, dtype=np.float64)
    joint = attention.MultiHeadAttention(dim, heads, dtype=np.float64)
    joint.load_state_dict(layer.state_dict())
    x = md.randn(2, n, dim, dtype=np.float64)
    angles = np.random.default_rng(1).uniform(-3, 3, (n, dim // heads // 2))
    rope = (np.cos(angles), np.sin(angles))
    frame, position = np.divmod(np.arange(12), 4)
    group = frame if kind == "spatial" else position
    allowed = np.ones((n, n), dtype=bool)
    allowed[extra:, extra:] = group[:, None] == group[None, :]
    keys = np.ones((2, 1, 1, n), dtype=bool)
    keys[0, ..., 1] = False  # the second extra token
    keys[1, ..., extra + 5] = False  # the grid token at (t, i, j) = (1, 0, 1)
    np.testing.assert_allclose(
        host(layer(x, mask=keys, rope=rope)),
        host(joint(x, mask=allowed & keys, rope=rope)),
        rtol=1e-12,
        atol=1e-12,
    )
    with pytest.raises(md.ShapeError):
        layer(md.randn(2, 11, dim, dtype=np.float64))  # fewer tokens than the grid holds
