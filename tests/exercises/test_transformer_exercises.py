"""Exercises 4 and 5 (attention, position encodings) and the checks behind them.

The notebooks themselves run in tests/exercises/test_exercises.py with every other exercise;
here the checks fail typical wrong answers (a softmax backward without its subtraction term, a
forgotten 1/sqrt(d), a mask ignored in the backward, an inverted mask, cosines before sines, a
wrong width split, a wrong token order) with the shrunk counterexample and the equation.
"""

import math

import numpy as np
import pytest

import minidiff as md
from minidiff.checks import grading
from minidiff.checks import transformer as T
from minidiff.nn import encodings


@pytest.fixture(autouse=True)
def fresh_verdicts():
    grading.reset()
    yield
    grading.reset()


# --- exercise 4.1: the backward of attention ------------------------------------------------------


def attention_backward(q, k, v, g, mask=None, *, subtract=True, scale_q=True, use_mask=True):
    """The backward of eq-attention-vjp; the keywords switch off one piece each, to make the
    mistakes students make."""
    xp = md.backend.xp_of(q)
    scale = 1.0 / math.sqrt(q.shape[-1])
    scores = (q @ k.swapaxes(-1, -2)) * scale
    if mask is not None and use_mask:
        scores = xp.where(mask, scores, -xp.inf) if mask.dtype == bool else scores + mask
    weights = xp.exp(scores - scores.max(axis=-1, keepdims=True))
    weights = weights / weights.sum(axis=-1, keepdims=True)
    grad_v = weights.swapaxes(-1, -2) @ g
    grad_weights = g @ v.swapaxes(-1, -2)
    if subtract:
        grad_weights = grad_weights - (grad_weights * weights).sum(axis=-1, keepdims=True)
    grad_scores = weights * grad_weights
    grad_q = (grad_scores @ k) * (scale if scale_q else 1.0)
    grad_k = (grad_scores.swapaxes(-1, -2) @ q) * scale
    return grad_q, grad_k, grad_v


def test_attention_check_passes_a_correct_backward():
    verdict = T.check_attention_backward(attention_backward)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 4.1 (attention backward, eq-attention-vjp)")


def test_attention_check_fails_without_the_softmax_subtraction():
    verdict = T.check_attention_backward(lambda *a: attention_backward(*a, subtract=False))
    assert verdict.status == "FAILED"
    assert "the smallest failing case found" in verdict.message
    assert "the gradient for q is wrong" in verdict.message
    assert "it must satisfy (eq-attention-vjp)" in verdict.message
    assert "dS = P * (dP - rowsum(dP * P))" in verdict.message


def test_attention_check_fails_without_the_scale_in_dq():
    verdict = T.check_attention_backward(lambda *a: attention_backward(*a, scale_q=False))
    assert verdict.status == "FAILED"
    assert "the gradient for q is wrong" in verdict.message
    # Shrunk to a case where the scale matters: d >= 2, so 1/sqrt(d) != 1.
    assert "q = [[0., 0.]]" in verdict.message or "(1, 2)" in verdict.message, verdict.message


def test_attention_check_fails_a_backward_that_ignores_the_mask():
    verdict = T.check_attention_backward(lambda *a: attention_backward(*a, use_mask=False))
    assert verdict.status == "FAILED"
    assert "mask = [[" in verdict.message


def test_attention_check_fails_a_float32_gradient():
    def float32(*args):
        grad_q, grad_k, grad_v = attention_backward(*args)
        return grad_q, grad_k.astype("float32"), grad_v

    verdict = T.check_attention_backward(float32)
    assert verdict.status == "FAILED" and "must stay float64" in verdict.message


def test_attention_check_not_done():
    def stub(q, k, v, g, mask=None):
        raise NotImplementedError("Exercise 4.1: write the backward of attention")

    verdict = T.check_attention_backward(stub)
    assert verdict.status == "NOT DONE" and "Exercise 4.1" in verdict.message


def test_attention_reference_agrees_with_autograd():
    """The hand-written backward used above is the library's autograd backward (float64)."""
    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 3, 4)) for _ in range(3))
    g = rng.standard_normal((2, 3, 4))
    mask = np.tril(np.ones((3, 3), dtype=bool))
    tensors = [md.tensor(a, dtype=np.float64, requires_grad=True) for a in (q, k, v)]
    md.nn.scaled_dot_product_attention(*tensors, mask).backward(g)
    for mine, tensor in zip(attention_backward(q, k, v, g, mask), tensors):
        np.testing.assert_allclose(mine, md.backend.to_numpy(tensor.grad), rtol=1e-12)


# --- exercise 4.2: the frame-causal mask --------------------------------------------------------


def frame_causal(frames, height, width):
    frame = np.arange(frames * height * width) // (height * width)
    return frame[:, None] >= frame[None, :]


def test_frame_causal_check_passes_and_matches_grid_positions():
    assert T.check_frame_causal_mask(frame_causal).passed
    t = encodings.grid_positions(3, 2, 2)[:, 0]
    np.testing.assert_array_equal(T.frame_causal_reference(3, 2, 2), t[:, None] >= t[None, :])


def test_frame_causal_check_fails_an_inverted_convention():
    verdict = T.check_frame_causal_mask(lambda *grid: ~frame_causal(*grid))
    assert verdict.status == "FAILED"
    assert "frames, height, width = 1, 1, 1" in verdict.message
    assert "True (a may attend to b)" in verdict.message


def test_frame_causal_check_fails_a_token_wise_causal_mask():
    """Causal over tokens instead of frames hides later patches of the same frame."""
    verdict = T.check_frame_causal_mask(
        lambda f, h, w: np.tril(np.ones((f * h * w, f * h * w), dtype=bool))
    )
    assert verdict.status == "FAILED" and "should be True" in verdict.message


def test_frame_causal_check_fails_a_float_mask():
    verdict = T.check_frame_causal_mask(lambda *grid: frame_causal(*grid).astype(float))
    assert verdict.status == "FAILED" and "must be boolean" in verdict.message


# --- exercise 5.1: the 1-D code -----------------------------------------------------------------


def sincos_1d(positions, dim, max_period=10000.0, *, exponent=2.0, cos_first=False):
    frequencies = max_period ** (-np.arange(dim // 2) * exponent / dim)
    angles = np.asarray(positions, dtype=np.float64)[:, None] * frequencies
    parts = [np.cos(angles), np.sin(angles)] if cos_first else [np.sin(angles), np.cos(angles)]
    return np.concatenate(parts, axis=1)


def test_sincos_1d_check_passes_a_correct_code():
    verdict = T.check_sincos_1d(sincos_1d)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 5.1 (1-D sincos code, eq-sincos)")


def test_sincos_1d_check_fails_cosines_first():
    """The dot products are the same either way: only the comparison with the library sees it."""
    verdict = T.check_sincos_1d(lambda *a: sincos_1d(*a, cos_first=True))
    assert verdict.status == "FAILED"
    assert "against minidiff.nn.encodings.sincos_1d" in verdict.message
    assert "it must satisfy (eq-sincos)" in verdict.message


def test_sincos_1d_check_fails_wrong_frequencies_on_the_dot_product():
    verdict = T.check_sincos_1d(lambda *a: sincos_1d(*a, exponent=1.0))
    assert verdict.status == "FAILED"
    assert "must depend on p - q alone" in verdict.message


def test_sincos_1d_check_fails_float32():
    verdict = T.check_sincos_1d(lambda *a: sincos_1d(*a).astype(np.float32))
    assert verdict.status == "FAILED" and "float64" in verdict.message


# --- exercise 5.2: the 3-D code -----------------------------------------------------------------


def sincos_3d(frames, height, width, dim, time_fraction=0.25, *, split=None, order="tij"):
    widths = split(dim) if split else encodings.split_width(dim, time_fraction)
    positions = encodings.grid_positions(frames, height, width)
    if order == "jit":  # the column varies slowest: not the order of patchify
        j, i, t = np.meshgrid(np.arange(width), np.arange(height), np.arange(frames), indexing="ij")
        positions = np.stack([t.ravel(), i.ravel(), j.ravel()], axis=1)
    parts = [sincos_1d(positions[:, axis], w) for axis, w in enumerate(widths) if w]
    return np.concatenate(parts, axis=1)


def _thirds(dim):
    third = dim // 3 // 2 * 2
    return third, third, dim - 2 * third


def test_sincos_3d_check_passes_a_correct_code():
    verdict = T.check_sincos_3d(sincos_3d)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 5.2 (3-D sincos code, eq-sincos-3d)")


def test_sincos_3d_check_fails_a_wrong_split():
    verdict = T.check_sincos_3d(lambda *a: sincos_3d(*a, split=_thirds))
    assert verdict.status == "FAILED"
    assert "differs from minidiff.nn.encodings.sincos_3d" in verdict.message
    assert "part of the split" in verdict.message
    assert "it must satisfy (eq-sincos-3d)" in verdict.message


def test_sincos_3d_check_fails_a_wrong_token_order():
    verdict = T.check_sincos_3d(lambda *a: sincos_3d(*a, order="jit"))
    assert verdict.status == "FAILED"
    assert "differs from minidiff.nn.encodings.sincos_3d" in verdict.message


def test_sincos_3d_check_fails_a_code_that_is_not_relative():
    """Squared positions give unique codes, but the dot product then depends on where."""

    def squared(frames, height, width, dim, time_fraction=0.25):
        d_t, d_i, d_j = encodings.split_width(dim, time_fraction)
        positions = encodings.grid_positions(frames, height, width) ** 2
        parts = [sincos_1d(positions[:, a], w) for a, w in enumerate((d_t, d_i, d_j)) if w]
        return np.concatenate(parts, axis=1)

    verdict = T.check_sincos_3d(squared)
    assert verdict.status == "FAILED"
    assert "the code is not relative" in verdict.message


def test_sincos_3d_check_not_done():
    def stub(frames, height, width, dim, time_fraction=0.25):
        raise NotImplementedError("Exercise 5.2: write the 3-D sinusoidal code")

    verdict = T.check_sincos_3d(stub)
    assert verdict.status == "NOT DONE" and "Exercise 5.2" in verdict.message
