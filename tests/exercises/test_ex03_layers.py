"""Exercise 3 (layer norm's backward, one AdamW step): the checks of
``minidiff.checks.ex03_layers``.
"""

import re

import numpy as np

import minidiff as md
from minidiff.checks import ex03_layers as E


def layernorm_backward_correct(x, weight, g, eps):
    xp = md.backend.xp_of(x)
    centered = x - x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / xp.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
    x_hat = centered * rstd
    g_hat = g * weight
    grad_x = rstd * (
        g_hat
        - g_hat.mean(axis=-1, keepdims=True)
        - x_hat * (g_hat * x_hat).mean(axis=-1, keepdims=True)
    )
    rows = tuple(range(x.ndim - 1))
    return grad_x, (g * x_hat).sum(axis=rows), g.sum(axis=rows)


def layernorm_backward_no_projection(x, weight, g, eps):
    """Forgets the - x_hat mean(g_hat x_hat) term of eq-layernorm-vjp."""
    grad_x, grad_w, grad_b = layernorm_backward_correct(x, weight, g, eps)
    xp = md.backend.xp_of(x)
    centered = x - x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / xp.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
    g_hat = g * weight
    return rstd * (g_hat - g_hat.mean(axis=-1, keepdims=True)), grad_w, grad_b


def layernorm_backward_unreduced(x, weight, g, eps):
    """Returns the weight and bias gradients per row, not summed over the rows."""
    grad_x, _, _ = layernorm_backward_correct(x, weight, g, eps)
    xp = md.backend.xp_of(x)
    centered = x - x.mean(axis=-1, keepdims=True)
    x_hat = centered / xp.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
    return grad_x, g * x_hat, g


def adamw_correct(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
    xp = md.backend.xp_of(p)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * (g * g)
    step = (m / (1 - beta1**t)) / (xp.sqrt(v / (1 - beta2**t)) + eps)
    return p * (1 - lr * weight_decay) - lr * step, m, v


def adamw_as_l2(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
    """Adam with L2 regularization: the decay enters the gradient, and so m and v."""
    return adamw_correct(p, g + weight_decay * p, m, v, t, lr, beta1, beta2, eps, 0.0)


def adamw_no_bias_correction(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
    xp = md.backend.xp_of(p)
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * (g * g)
    return p * (1 - lr * weight_decay) - lr * m / (xp.sqrt(v) + eps), m, v


def test_check_layernorm_backward_passes_a_correct_backward():
    verdict = E.check_layernorm_backward(layernorm_backward_correct)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith(
        "PASSED  exercise 3.1 (layer norm backward, eq-layernorm-vjp)"
    )


def test_check_layernorm_backward_fails_a_forgotten_projection():
    verdict = E.check_layernorm_backward(layernorm_backward_no_projection)
    assert verdict.status == "FAILED"
    assert "the smallest failing case found" in verdict.message
    assert "the gradient for x is wrong" in verdict.message
    assert "it must satisfy (eq-layernorm-vjp)" in verdict.message
    assert "x_hat mean(gh x_hat)" in verdict.message


def test_check_layernorm_backward_fails_unreduced_parameter_gradients():
    verdict = E.check_layernorm_backward(layernorm_backward_unreduced)
    assert verdict.status == "FAILED"
    assert "the gradient for weight has shape" in verdict.message


def test_check_layernorm_backward_not_done():
    def stub(x, weight, g, eps):
        raise NotImplementedError("Exercise 3.1: write the backward of layer normalization")

    verdict = E.check_layernorm_backward(stub)
    assert verdict.status == "NOT DONE" and "Exercise 3.1" in verdict.message


def test_check_adamw_step_passes_a_correct_step():
    verdict = E.check_adamw_step(adamw_correct)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 3.2 (one AdamW step, eq-adamw)")


def test_check_adamw_step_fails_l2_instead_of_decoupled_decay():
    verdict = E.check_adamw_step(adamw_as_l2)
    assert verdict.status == "FAILED"
    assert "the new p is wrong" in verdict.message
    assert "it must satisfy (eq-adamw)" in verdict.message
    # The shrunk case has decay switched on (without it the two updates agree).
    decay = re.search(r"weight_decay = ([0-9.e-]+)", verdict.message)
    assert decay and float(decay.group(1)) > 0, verdict.message


def test_check_adamw_step_fails_without_bias_correction():
    verdict = E.check_adamw_step(adamw_no_bias_correction)
    assert verdict.status == "FAILED" and "the new p is wrong" in verdict.message


def test_check_adamw_step_fails_a_float32_result():
    def float32_step(*args, **hyper):
        p, m, v = adamw_correct(*args, **hyper)
        return p.astype("float32"), m, v

    verdict = E.check_adamw_step(float32_step)
    assert verdict.status == "FAILED" and "must stay float64" in verdict.message


def test_adamw_closed_form_matches_the_library():
    """The check's two references agree: the closed form is one step of optim.AdamW."""
    rng = np.random.default_rng(0)
    p, g, m = rng.standard_normal((3, 4, 5))
    v = rng.random((4, 5))
    hyper = dict(lr=0.1, beta1=0.9, beta2=0.99, eps=1e-8, weight_decay=0.1)
    param = md.nn.Parameter(p, dtype=np.float64, device="cpu")
    param.grad = g.copy()
    optimizer = md.optim.AdamW([param], lr=0.1, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    optimizer.state[id(param)] = {"step": 6, "exp_avg": m.copy(), "exp_avg_sq": v.copy()}
    optimizer.step()
    want_p, want_m, want_v = E.adamw_closed_form(p, g, m, v, 7, **hyper)
    state = optimizer.state[id(param)]
    np.testing.assert_allclose(param.data, want_p, rtol=1e-12)
    np.testing.assert_allclose(state["exp_avg"], want_m, rtol=1e-12)
    np.testing.assert_allclose(state["exp_avg_sq"], want_v, rtol=1e-12)
