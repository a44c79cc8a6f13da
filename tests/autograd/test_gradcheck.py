"""The gradient checker itself: its error is second order, and it catches wrong backwards."""

import numpy as np
import pytest

import minidiff as md
from minidiff.autograd.tensor import Tensor


def test_central_difference_error_is_second_order():
    """(eq-central-difference): halving eps divides the truncation error by about 4."""
    x0 = 0.7
    f = lambda v: float(md.tensor([v], dtype=np.float64).exp().sum().item())  # noqa: E731
    exact = np.exp(x0)
    errors = [abs((f(x0 + eps) - f(x0 - eps)) / (2 * eps) - exact) for eps in (1e-2, 5e-3, 2.5e-3)]
    ratios = [errors[0] / errors[1], errors[1] / errors[2]]
    assert all(3.8 < r < 4.2 for r in ratios), ratios
    # eq-central-difference predicts error ~ eps^2 f'''(x) / 6
    np.testing.assert_allclose(errors[0], 1e-4 * exact / 6, rtol=1e-2)


def _scaled_backward_op(x, scale, at=None):
    """y = 3 x, with a backward that is wrong by ``scale`` (everywhere, or only at ``at``)."""

    def backward(g):
        grad = 3.0 * g
        if at is None:
            return (grad * scale,)
        grad = grad.copy()
        grad[at] *= scale
        return (grad,)

    return Tensor.from_op(3.0 * x.data, (x,), backward, "scaled")


def test_gradcheck_accepts_a_correct_backward():
    assert md.gradcheck(lambda x: _scaled_backward_op(x, 1.0), md.randn(3, 4))


def test_gradcheck_catches_a_one_percent_error():
    with pytest.raises(md.GradcheckError):
        md.gradcheck(lambda x: _scaled_backward_op(x, 1.01), md.randn(3, 4))


def test_gradcheck_names_the_worst_entry():
    with pytest.raises(md.GradcheckError, match=r"input 0 \(shape \(3, 4\)\) at index \(1, 2\)"):
        md.gradcheck(lambda x: _scaled_backward_op(x, 1.5, at=(1, 2)), md.randn(3, 4))


def test_gradcheck_random_directions_on_large_inputs():
    x = md.randn(100, 100)
    assert md.gradcheck(lambda x: (x * x).tanh(), x, directions=2)
    with pytest.raises(md.GradcheckError, match="random direction"):
        md.gradcheck(lambda x: _scaled_backward_op(x, 1.01), x)


def test_gradcheck_rejects_float32_inside():
    with pytest.raises(md.GradcheckError, match="float32"):
        md.gradcheck(lambda x: x.astype(np.float32) * 2.0, md.randn(3))


def test_gradcheck_leaves_the_callers_array_alone():
    x = md.randn(2, 3, dtype=np.float64)
    before = x.data.copy()
    md.gradcheck(lambda t: t.exp(), x)
    np.testing.assert_array_equal(md.backend.to_numpy(x.data), md.backend.to_numpy(before))
