"""LayerNorm, cross-entropy, MSE and dropout: values, invariants and gradients."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minidiff as md
from minidiff.checks import strategies as S
from minidiff.nn import functional as F


def host(a):
    return md.backend.to_numpy(a.data if isinstance(a, md.Tensor) else a)


def _layer_norm64(x, eps=1e-5):
    x = np.asarray(x, dtype=np.float64)
    mu = x.mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(((x - mu) ** 2).mean(-1, keepdims=True) + eps)


@given(
    x=S.arrays(S.shapes(min_dims=1, min_side=2), -1.0, 1.0), offset=st.sampled_from([1e2, 1e3, 3e3])
)
def test_layernorm_shift_invariant_in_float32(x, offset):
    """(eq-layernorm) is invariant to adding a constant c; with two-pass variance this holds in
    float32 for large c (one pass, E[x^2] - E[x]^2, loses every digit when c^2 >> var)."""
    shifted = (x + offset).astype(np.float32)
    spread = shifted.std(axis=-1)
    if (spread < 0.1).any():  # keep rows with real spread: LN of a near-constant row is noise
        return
    out = host(F.layer_norm(md.tensor(shifted)))
    assert out.dtype == np.float32
    # float32 rounds the mean itself by up to a unit in the last place of c: that error, relative
    # to the spread, is the best any float32 LayerNorm can do
    tolerance = 4 * float(np.spacing(np.float32(offset))) / float(spread.min())
    np.testing.assert_allclose(out, _layer_norm64(shifted), atol=tolerance)


def test_one_pass_variance_breaks_where_two_pass_holds():
    """Why (eq-layernorm) computes the variance in two passes: E[x^2] - E[x]^2 in float32
    cancels catastrophically once the offset c is large against the spread."""
    x = (np.random.default_rng(0).uniform(-1, 1, (64, 16)) + 3e3).astype(np.float32)
    exact = x.astype(np.float64).var(-1)
    one_pass = (x**2).mean(-1) - x.mean(-1) ** 2
    two_pass = ((x - x.mean(-1, keepdims=True)) ** 2).mean(-1)
    assert np.abs(one_pass - exact).max() > exact.max()  # the error exceeds the variance itself
    np.testing.assert_allclose(two_pass, exact, rtol=1e-3)


@given(data=st.data())
def test_layernorm_vjp_formula(data):
    """(eq-layernorm-vjp) against central differences, with and without scale and shift."""
    shape = data.draw(S.shapes(min_dims=1, min_side=1))
    x = data.draw(S.arrays(shape))
    if (x.std(axis=-1) < 1e-2).any() and shape[-1] > 1:
        return
    affine = data.draw(st.booleans())
    d = shape[-1]
    if affine:
        w, b = data.draw(S.arrays((d,))), data.draw(S.arrays((d,)))
        assert md.gradcheck(lambda x, w, b: F.layer_norm(x, w, b), x, w, b)
    else:
        assert md.gradcheck(lambda x: F.layer_norm(x), x)


@given(data=st.data())
def test_cross_entropy_matches_log_softmax(data):
    """(eq-softmax-cross-entropy): loss_n = logsumexp(z_n) - z_n[y_n] = -log_softmax(z_n)[y_n]."""
    n, classes = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 6))
    z = data.draw(S.arrays((n, classes), -50, 50))
    y = data.draw(hnp.arrays(np.int64, n, elements=st.integers(0, classes - 1)))
    loss = host(F.cross_entropy(S.to_tensor(z), y, reduction="none"))
    reference = -host(md.log_softmax(S.to_tensor(z), -1))[np.arange(n), y]
    np.testing.assert_allclose(loss, reference, rtol=1e-12, atol=1e-12)
    mean = F.cross_entropy(S.to_tensor(z), y).item()
    np.testing.assert_allclose(mean, reference.mean(), rtol=1e-12)


@given(data=st.data())
def test_cross_entropy_vjp_is_softmax_minus_onehot(data):
    """(eq-softmax-cross-entropy-vjp): d loss_n / d z_n = softmax(z_n) - onehot(y_n)."""
    batch = data.draw(hnp.array_shapes(min_dims=1, max_dims=2, max_side=3))
    classes = data.draw(st.integers(1, 5))
    z = data.draw(S.arrays((*batch, classes)))
    y = data.draw(hnp.arrays(np.int64, batch, elements=st.integers(0, classes - 1)))
    logits = S.to_tensor(z, requires_grad=True)
    F.cross_entropy(logits, y, reduction="sum").backward()
    expected = host(md.softmax(S.to_tensor(z), -1)) - np.eye(classes)[y]
    np.testing.assert_allclose(md.backend.to_numpy(logits.grad), expected, atol=1e-12)
    assert md.gradcheck(lambda t: F.cross_entropy(t, y), z)


def test_cross_entropy_is_stable_for_huge_logits():
    z = md.tensor([[1e4, 0.0, -1e4]])
    assert np.isfinite(F.cross_entropy(z, [1]).item())
    np.testing.assert_allclose(F.cross_entropy(z, [1]).item(), 1e4, rtol=1e-6)


def test_cross_entropy_shifts_a_row_whose_maximum_is_infinite_by_zero():
    """The shift is ``stable_shift``'s (minidiff/kernels/plain.py): 0 where a row's maximum is
    not finite. Beside a +inf logit a class has probability 0, so its loss is +inf, not NaN from
    inf - inf (and no RuntimeWarning); the other rows are untouched."""
    z = md.tensor([[np.inf, 0.0, -1.0], [1.0, 2.0, 3.0]])
    loss = F.cross_entropy(z, [1, 2], reduction="none").numpy()
    assert loss[0] == np.inf
    np.testing.assert_allclose(loss[1], -md.log_softmax(z[1]).numpy()[2], rtol=1e-6)


def test_cross_entropy_errors_name_the_problem():
    with pytest.raises(md.ShapeError, match=r"target classes must be in \[0, 3\)"):
        F.cross_entropy(md.zeros(2, 3), [0, 3])
    with pytest.raises(md.DTypeError, match="class indices"):
        F.cross_entropy(md.zeros(2, 3), np.array([0.0, 1.0]))
    with pytest.raises(md.ShapeError, match="need targets of shape"):
        F.cross_entropy(md.zeros(2, 3), [0, 1, 2])


@given(data=st.data())
def test_weighted_mse_matches_definition(data):
    shape, weight_shape = data.draw(S.broadcastable_shapes(2, min_side=1))
    shape = np.broadcast_shapes(shape, weight_shape)
    p, t = data.draw(S.arrays(shape)), data.draw(S.arrays(shape))
    w = data.draw(S.arrays(weight_shape, 0, 2))
    loss = F.mse_loss(S.to_tensor(p), S.to_tensor(t), weight=S.to_tensor(w)).item()
    np.testing.assert_allclose(loss, (w * (p - t) ** 2).mean(), rtol=1e-12, atol=1e-15)
    assert md.gradcheck(lambda a: F.mse_loss(a, S.to_tensor(t), weight=S.to_tensor(w)), p)


def test_dropout_keeps_the_expectation_and_is_identity_in_eval():
    md.manual_seed(0)
    x = md.ones(200_000)
    y = F.dropout(x, 0.25, training=True).numpy()
    assert set(np.unique(y)) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.01 and abs(y.mean() - 1.0) < 0.01
    assert F.dropout(x, 0.25, training=False) is x
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        F.dropout(x, 1.0)
