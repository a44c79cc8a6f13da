"""Invariants of softmax, log_softmax and logsumexp, their stable forms, and reductions over no
entries refused."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidiff as md
from minidiff.checks import strategies as S

rows = S.arrays(S.shapes(min_dims=1, min_side=1), -30.0, 30.0)


def host(t):
    return md.backend.to_numpy(t.data)


@given(x=rows)
def test_softmax_sums_to_one(x):
    s = host(md.softmax(S.to_tensor(x), axis=-1))
    np.testing.assert_allclose(s.sum(axis=-1), 1.0, rtol=1e-12)
    assert (s >= 0).all()


@given(x=rows, shift=S.floats(-1e3, 1e3))
def test_softmax_shift_invariant(x, shift):
    """(eq-softmax): softmax(x + c) = softmax(x), so subtracting max x changes nothing."""
    a = host(md.softmax(S.to_tensor(x), axis=-1))
    b = host(md.softmax(S.to_tensor(x + shift), axis=-1))
    np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(a, e / e.sum(axis=-1, keepdims=True), rtol=1e-12, atol=1e-15)


@given(x=rows)
def test_log_softmax_exp_equals_softmax(x):
    t = S.to_tensor(x)
    np.testing.assert_allclose(
        np.exp(host(md.log_softmax(t, -1))), host(md.softmax(t, -1)), rtol=1e-12, atol=1e-300
    )


@given(data=st.data())
def test_softmax_vjp_formula(data):
    """(eq-softmax-vjp): dL/dx = s * (g - <g, s>) = J^T g with J = diag(s) - s s^T."""
    n = data.draw(st.integers(1, 6))
    x0, g = data.draw(S.arrays((n,))), data.draw(S.arrays((n,)))
    x = S.to_tensor(x0, requires_grad=True)
    s = md.softmax(x, axis=-1)
    s.backward(md.tensor(g, dtype=np.float64).data)
    s0 = host(s)
    jacobian = np.diag(s0) - np.outer(s0, s0)
    np.testing.assert_allclose(md.backend.to_numpy(x.grad), jacobian.T @ g, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(
        md.backend.to_numpy(x.grad), s0 * (g - g @ s0), rtol=1e-10, atol=1e-14
    )


@given(
    x=S.arrays(S.shapes(min_dims=1, max_dims=1, min_side=1, max_side=8), -5.0, 5.0),
    big=st.sampled_from([1e3, 1e4, 3e4]),
)
def test_logsumexp_stable_for_huge_inputs(x, big):
    """(eq-logsumexp-stable): m + log sum e^{x - m} stays finite where e^x overflows.

    In float32 e^{89} already overflows; the shifted form is exact up to rounding.
    """
    shifted = (x + big).astype(np.float32)
    out = host(md.logsumexp(md.tensor(shifted), axis=-1))
    assert out.dtype == np.float32 and np.isfinite(out).all()
    reference = big + math.log(math.fsum(math.exp(v) for v in x.astype(np.float32).astype(float)))
    assert abs(float(out) - reference) <= 4 * np.spacing(np.float32(reference))
    # and the same input through log(sum(exp(x))) overflows: the shift is what makes it work
    with np.errstate(over="ignore"):
        assert not np.isfinite(np.log(np.exp(shifted).sum()))


@given(x=rows)
def test_logsumexp_gradient_is_softmax(x):
    t = S.to_tensor(x, requires_grad=True)
    md.logsumexp(t, axis=-1).sum().backward()
    np.testing.assert_allclose(
        md.backend.to_numpy(t.grad), host(md.softmax(S.to_tensor(x), -1)), rtol=1e-12, atol=1e-300
    )


def test_softmax_of_minus_infinity_masks():
    s = host(md.softmax(md.tensor([0.0, -np.inf, 0.0]), axis=-1))
    np.testing.assert_array_equal(s, [0.5, 0.0, 0.5])


def test_logsumexp_gradient_keeps_float32_precision_far_from_zero():
    x = md.tensor(np.array([1000.0, 1000.0, 990.0], dtype=np.float32), requires_grad=True)
    x.logsumexp().backward()
    e = np.exp(np.array([0.0, 0.0, -10.0]))
    np.testing.assert_allclose(md.backend.to_numpy(x.grad), e / e.sum(), rtol=4e-7)


@pytest.mark.parametrize(
    ("op", "shape", "axis"),
    [
        ("softmax", (3, 0), -1),
        ("log_softmax", (0,), -1),
        ("log_softmax", (0, 4), 0),
        ("mean", (0,), None),
        ("mean", (2, 0), 1),
        ("max", (0, 3), 0),
    ],
)
def test_reducing_over_no_entries_is_a_shape_error(op, shape, axis):
    """softmax, log_softmax and the mean of nothing would be NaN or undefined: refused by name."""
    x = md.zeros(*shape)
    with pytest.raises(md.ShapeError, match=rf"{op} over axis .* of a tensor of shape"):
        getattr(md, op)(x, axis=axis)


@pytest.mark.parametrize("op", ["softmax", "log_softmax", "mean"])
def test_an_empty_batch_beside_non_empty_reduced_axes_is_fine(op):
    out = getattr(md, op)(md.zeros(0, 4), axis=-1)
    assert out.shape == ((0, 4) if "softmax" in op else (0,))
