"""Exercise 8 (the DDIM noise level and step): the checks of ``minidiff.checks.ex08_ddim`` pass
a right answer and fail typical mistakes, shrunk.
"""

import math

import pytest

from minidiff.checks import ex08_ddim as E

from .verdicts import assert_not_done, assert_shrunk_failure, by_name


def ddim_sigma_correct(alpha_bars, t, s, eta):
    a_t, a_s = alpha_bars[t], (alpha_bars[s] if s >= 0 else 1.0)
    return eta * math.sqrt((1.0 - a_s) / (1.0 - a_t) * (1.0 - a_t / a_s))


def ddim_sigma_missing_ratio(alpha_bars, t, s, eta):
    """Forgets the factor sqrt((1 - a_s) / (1 - a_t))."""
    a_t, a_s = alpha_bars[t], (alpha_bars[s] if s >= 0 else 1.0)
    return eta * math.sqrt(1.0 - a_t / a_s)


def _ddim_step(sigma_fn, eps_coefficient):
    def step(alpha_bars, x0, eps, t, s, eta, noise):
        a_s = alpha_bars[s] if s >= 0 else 1.0
        sigma = sigma_fn(alpha_bars, t, s, eta)
        return math.sqrt(a_s) * x0 + eps_coefficient(a_s, sigma) * eps + sigma * noise

    return step


ddim_step_correct = _ddim_step(
    ddim_sigma_correct, lambda a_s, sigma: math.sqrt(max(1.0 - a_s - sigma**2, 0.0))
)
# Keeps sqrt(1 - a_s) on eps whatever sigma: the noise is counted twice when eta > 0.
ddim_step_noise_counted_twice = _ddim_step(
    ddim_sigma_correct, lambda a_s, sigma: math.sqrt(1 - a_s)
)
# A correct step built on a wrong sigma.
ddim_step_wrong_sigma = _ddim_step(
    ddim_sigma_missing_ratio, lambda a_s, sigma: math.sqrt(max(1.0 - a_s - sigma**2, 0.0))
)


@pytest.mark.parametrize(
    "check, correct",
    [
        (E.check_ddim_sigma, ddim_sigma_correct),
        (E.check_ddim_step, ddim_step_correct),
    ],
    ids=by_name,
)
def test_diffusion_checks_pass_a_correct_answer(check, correct):
    verdict = check(correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "check, wrong, equation, says",
    [
        (E.check_ddim_sigma, ddim_sigma_missing_ratio, "eq-ddim-sigma", "beta tilde"),
        (E.check_ddim_step, ddim_step_noise_counted_twice, "eq-ddim-step", "1 - a_s"),
        (E.check_ddim_step, ddim_step_wrong_sigma, "eq-ddim-step", "x_s"),
    ],
    ids=by_name,
)
def test_diffusion_checks_fail_a_typical_mistake(check, wrong, equation, says):
    assert_shrunk_failure(check(wrong), equation, says)


def test_diffusion_checks_not_done():
    stub_message = "Exercise 8.1: write the DDIM noise level (eq-ddim-sigma)"
    for check in (E.check_ddim_sigma, E.check_ddim_step):
        assert_not_done(check, stub_message, "Exercise 8.1")


def test_ddim_step_check_fails_a_float32_result():
    def float32_step(*args):
        return ddim_step_correct(*args).astype("float32")

    verdict = E.check_ddim_step(float32_step)
    assert verdict.status == "FAILED" and "must stay float64" in verdict.message
