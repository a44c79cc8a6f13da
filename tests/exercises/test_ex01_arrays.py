"""Exercise 1 (device-agnostic array code): the checks of ``minidiff.checks.ex01_arrays``.

Each check fails a typical wrong answer (a float64 upcast, a NumPy call, a Python loop, a
scalar where an array is due, a softmax that overflows) and passes a right one; the static
check reads functions without a readable source too.
"""

import numpy as np

import minidiff as md
from minidiff.checks import ex01_arrays as E


def standardize_float64(x, axis=-1, eps=1e-5):
    xp = md.backend.xp_of(x)
    x = x.astype(xp.float64)
    centered = x - x.mean(axis=axis, keepdims=True)
    return centered / xp.sqrt((centered * centered).mean(axis=axis, keepdims=True) + eps)


def standardize_numpy(x, axis=-1, eps=1e-5):
    centered = x - x.mean(axis=axis, keepdims=True)
    return centered / np.sqrt((centered * centered).mean(axis=axis, keepdims=True) + eps)


def test_device_agnostic_fails_a_float64_upcast():
    verdict = E.check_standardize(standardize_float64)
    assert verdict.status == "FAILED" and "float32 must stay float32" in verdict.message


def test_device_agnostic_fails_a_numpy_call():
    verdict = E.check_standardize(standardize_numpy)
    assert verdict.status == "FAILED" and "names an array module directly: np" in verdict.message


def test_device_agnostic_fails_a_loop():
    def pairwise_loop(x, y):
        xp = md.backend.xp_of(x)
        rows = [((x[i] - y) ** 2).sum(axis=-1) for i in range(x.shape[0])]
        return xp.stack(rows) if rows else xp.zeros((0, len(y)), dtype=x.dtype)

    verdict = E.check_pairwise_sq_dists(pairwise_loop)
    assert verdict.status == "FAILED" and "loops in Python: for" in verdict.message


def test_device_agnostic_fails_a_scalar_result():
    def sum_to_scalar(grad, shape):
        lead = grad.ndim - len(shape)
        stretched = tuple(
            lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
        )
        return grad.sum(axis=tuple(range(lead)) + stretched, keepdims=True).reshape(shape)

    verdict = E.check_sum_to(sum_to_scalar)
    assert verdict.status == "FAILED" and "not a numpy.ndarray" in verdict.message
    assert "shape (), float32" in verdict.message


def test_device_agnostic_fails_an_unstable_softmax():
    def softmax_naive(x, axis=-1):
        e = md.backend.xp_of(x).exp(x)
        return e / e.sum(axis=axis, keepdims=True)

    verdict = E.check_softmax(softmax_naive)
    assert verdict.status == "FAILED" and "nan instead of" in verdict.message
    if md.default_device() == "cpu":
        assert "RuntimeWarning: overflow encountered in exp" in verdict.message


def test_device_agnostic_passes_a_correct_function():
    def softmax(x, axis=-1):
        xp = md.backend.xp_of(x)
        e = xp.exp(x - x.max(axis=axis, keepdims=True))
        return e / e.sum(axis=axis, keepdims=True)

    assert E.check_softmax(softmax).passed


def test_static_check_without_source():
    """A function with no readable source is judged by the names its compiled code uses."""
    namespace = {}
    exec("import numpy as np\ndef f(x):\n    return [np.sum(v) for v in x]", namespace)
    assert "names an array module directly: np" in E.static_problems(namespace["f"])
    exec("def g(x):\n    return x.sum()", namespace)
    assert E.static_problems(namespace["g"]) is None
