"""Exercise 4 (attention): the checks of ``minidiff.checks.ex04_attention``.

The checks fail typical wrong answers (a softmax backward without its subtraction term, a
forgotten 1/sqrt(d), a mask ignored in the backward, an inverted mask, a token-wise causal
mask) with the shrunk counterexample and the equation.
"""

import math

import numpy as np

import minidiff as md
from minidiff.checks import ex04_attention as E
from minidiff.nn import encodings

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
    verdict = E.check_attention_backward(attention_backward)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 4.1 (attention backward, eq-attention-vjp)")


def test_attention_check_fails_without_the_softmax_subtraction():
    verdict = E.check_attention_backward(lambda *a: attention_backward(*a, subtract=False))
    assert verdict.status == "FAILED"
    assert "the smallest failing case found" in verdict.message
    assert "the gradient for q is wrong" in verdict.message
    assert "it must satisfy (eq-attention-vjp)" in verdict.message
    assert "dS = P * (dP - rowsum(dP * P))" in verdict.message


def test_attention_check_fails_without_the_scale_in_dq():
    verdict = E.check_attention_backward(lambda *a: attention_backward(*a, scale_q=False))
    assert verdict.status == "FAILED"
    assert "the gradient for q is wrong" in verdict.message
    # Shrunk to a case where the scale matters: d >= 2, so 1/sqrt(d) != 1.
    assert "q = [[0., 0.]]" in verdict.message or "(1, 2)" in verdict.message, verdict.message


def test_attention_check_fails_a_backward_that_ignores_the_mask():
    verdict = E.check_attention_backward(lambda *a: attention_backward(*a, use_mask=False))
    assert verdict.status == "FAILED"
    assert "mask = [[" in verdict.message


def test_attention_check_fails_a_float32_gradient():
    def float32(*args):
        grad_q, grad_k, grad_v = attention_backward(*args)
        return grad_q, grad_k.astype("float32"), grad_v

    verdict = E.check_attention_backward(float32)
    assert verdict.status == "FAILED" and "must stay float64" in verdict.message


def test_attention_check_not_done():
    def stub(q, k, v, g, mask=None):
        raise NotImplementedError("Exercise 4.1: write the backward of attention")

    verdict = E.check_attention_backward(stub)
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
    assert E.check_frame_causal_mask(frame_causal).passed
    t = encodings.grid_positions(3, 2, 2)[:, 0]
    np.testing.assert_array_equal(E.frame_causal_reference(3, 2, 2), t[:, None] >= t[None, :])


def test_frame_causal_check_fails_an_inverted_convention():
    verdict = E.check_frame_causal_mask(lambda *grid: ~frame_causal(*grid))
    assert verdict.status == "FAILED"
    assert "frames, height, width = 1, 1, 1" in verdict.message
    assert "True (a may attend to b)" in verdict.message


def test_frame_causal_check_fails_a_token_wise_causal_mask():
    """Causal over tokens instead of frames hides later patches of the same frame."""
    verdict = E.check_frame_causal_mask(
        lambda f, h, w: np.tril(np.ones((f * h * w, f * h * w), dtype=bool))
    )
    assert verdict.status == "FAILED" and "should be True" in verdict.message


def test_frame_causal_check_fails_a_float_mask():
    verdict = E.check_frame_causal_mask(lambda *grid: frame_causal(*grid).astype(float))
    assert verdict.status == "FAILED" and "must be boolean" in verdict.message
