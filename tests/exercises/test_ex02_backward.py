"""Exercise 2 (backward functions): the checks of ``minidiff.checks.ex02_backward``.

``check_vjp`` fails a forgotten broadcast reduction with the shrunk counterexample, a gradient
off by 1%, a float32 gradient, an unstable logsumexp and a wrong softmax backward, and passes a
right backward.
"""

import re

import numpy as np

import minidiff as md
from minidiff.checks import ex02_backward as E


def _reference_sum_to(grad, shape):
    """The broadcast reduction written out here: the checks refuse ``md.sum_to`` itself."""
    grad = grad.sum(axis=tuple(range(grad.ndim - len(shape))))
    axes = tuple(axis for axis, size in enumerate(shape) if size == 1 and grad.shape[axis] != 1)
    return grad.sum(axis=axes, keepdims=True)


def mul_correct(g, a, b):
    return _reference_sum_to(g * b, a.shape), _reference_sum_to(g * a, b.shape)


def mul_no_reduction(g, a, b):
    return g * b, g * a


def mul_one_percent_off(g, a, b):
    return _reference_sum_to(g * b, a.shape), _reference_sum_to(1.01 * g * a, b.shape)


def mul_stub(g, a, b):
    raise NotImplementedError("Exercise 2.1: write the backward of mul (eq-vjp)")


def test_check_vjp_passes_a_correct_backward():
    verdict = E.check_vjp("2.1", mul_correct, op="mul", max_examples=30)
    assert verdict.passed and verdict.message.startswith("PASSED  exercise 2.1 (")
    assert verdict.message.endswith("random cases") and "eq-broadcast-reduce" in verdict.message


def test_check_vjp_fails_a_forgotten_reduction():
    verdict = E.check_vjp("2.1", mul_no_reduction, op="mul")
    assert verdict.status == "FAILED"
    assert "the smallest failing case found" in verdict.message
    assert "but a has shape" in verdict.message or "but b has shape" in verdict.message
    assert "eq-broadcast-reduce" in verdict.message
    # Shrunk: the inputs shown are tiny.
    shapes = re.findall(r"shape (\([0-9, ]*\))", verdict.message)
    assert shapes and all(np.prod(eval(s)) <= 2 for s in shapes[:3]), verdict.message


def test_check_vjp_fails_a_gradient_one_percent_off():
    verdict = E.check_vjp("2.1", mul_one_percent_off, op="mul")
    assert verdict.status == "FAILED"
    assert "the gradient for b is wrong" in verdict.message
    assert "expected:" in verdict.message and "got:" in verdict.message


def test_check_vjp_not_done():
    verdict = E.check_vjp("2.1", mul_stub, op="mul")
    assert verdict.status == "NOT DONE" and not verdict.passed
    assert verdict.message.startswith("NOT DONE exercise 2.1 (")
    assert "Exercise 2.1: write the backward of mul" in verdict.message


def test_check_vjp_fails_a_float32_gradient():
    def matmul_float32(g, a, b):
        return (
            (g @ b.swapaxes(-1, -2)).astype("float32"),
            _reference_sum_to(a.swapaxes(-1, -2) @ g, b.shape),
        )

    verdict = E.check_vjp("2.3", matmul_float32, op="matmul")
    assert verdict.status == "FAILED" and "float64" in verdict.message


def test_check_vjp_fails_an_unstable_logsumexp():
    def naive(g, x, axis, keepdims):
        xp = md.backend.xp_of(x)
        total = xp.exp(x).sum(axis=axis, keepdims=True)
        return g.reshape(total.shape) * xp.exp(x) / total

    verdict = E.check_vjp("2.6", naive, op="logsumexp")
    assert verdict.status == "FAILED"
    assert "1000." in verdict.message and "nan instead of" in verdict.message
    if md.default_device() == "cpu":  # CuPy does not warn on overflow
        assert "RuntimeWarning: overflow encountered in exp" in verdict.message


def test_check_vjp_fails_a_wrong_softmax_backward():
    def diagonal_only(g, s, axis):
        return g * s * (1 - s)

    verdict = E.check_vjp("2.5", diagonal_only, op="softmax")
    assert verdict.status == "FAILED" and "eq-softmax-vjp" in verdict.message
