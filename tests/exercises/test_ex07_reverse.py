"""Exercise 7 (the posterior and its noise form): the checks of ``minidiff.checks.ex07_reverse``
pass a right answer and fail typical mistakes, shrunk.
"""

import pytest

import minidiff as md
from minidiff.checks import ex07_reverse as E

from .verdicts import assert_not_done, assert_shrunk_failure, by_name


def _per_example(values, like):
    return values.reshape((-1,) + (1,) * (like.ndim - 1))


def _coefficients(betas, t, like):
    xp = md.backend.xp_of(betas)
    alphas = 1.0 - betas
    alpha_bars = xp.cumprod(alphas)
    alpha_bars_prev = xp.concatenate([xp.ones(1), alpha_bars[:-1]])
    return tuple(_per_example(a[t], like) for a in (betas, alphas, alpha_bars, alpha_bars_prev))


def q_posterior_correct(betas, x0, x_t, t):
    xp = md.backend.xp_of(x0)
    beta, alpha, ab, ab_prev = _coefficients(betas, t, x0)
    mean = (xp.sqrt(ab_prev) * beta * x0 + xp.sqrt(alpha) * (1.0 - ab_prev) * x_t) / (1.0 - ab)
    return mean, (1.0 - ab_prev) / (1.0 - ab) * beta


def q_posterior_variance_beta(betas, x0, x_t, t):
    """The forward step's variance beta instead of beta tilde."""
    mean, _ = q_posterior_correct(betas, x0, x_t, t)
    return mean, _coefficients(betas, t, x0)[0]


def q_posterior_mean_with_alpha_bar(betas, x0, x_t, t):
    """sqrt(alpha_bar_t) instead of sqrt(alpha_bar_{t-1}) on x0."""
    xp = md.backend.xp_of(x0)
    beta, alpha, ab, ab_prev = _coefficients(betas, t, x0)
    mean = (xp.sqrt(ab) * beta * x0 + xp.sqrt(alpha) * (1.0 - ab_prev) * x_t) / (1.0 - ab)
    return mean, (1.0 - ab_prev) / (1.0 - ab) * beta


def mean_from_eps_correct(betas, x_t, t, eps):
    xp = md.backend.xp_of(x_t)
    beta, alpha, ab, _ = _coefficients(betas, t, x_t)
    return (x_t - beta / xp.sqrt(1.0 - ab) * eps) / xp.sqrt(alpha)


def mean_from_eps_sqrt_beta(betas, x_t, t, eps):
    """sqrt(beta) instead of beta / sqrt(1 - alpha_bar) on eps."""
    xp = md.backend.xp_of(x_t)
    beta, alpha, _, _ = _coefficients(betas, t, x_t)
    return (x_t - xp.sqrt(beta) * eps) / xp.sqrt(alpha)


@pytest.mark.parametrize(
    "check, correct",
    [
        (E.check_q_posterior, q_posterior_correct),
        (E.check_posterior_mean_from_eps, mean_from_eps_correct),
    ],
    ids=by_name,
)
def test_diffusion_checks_pass_a_correct_answer(check, correct):
    verdict = check(correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "check, wrong, equation, says",
    [
        (E.check_q_posterior, q_posterior_variance_beta, "eq-posterior", "the variance"),
        (E.check_q_posterior, q_posterior_mean_with_alpha_bar, "eq-posterior", "the mean"),
        (E.check_posterior_mean_from_eps, mean_from_eps_sqrt_beta, "eq-posterior-mean-eps", "mean"),
    ],
    ids=by_name,
)
def test_diffusion_checks_fail_a_typical_mistake(check, wrong, equation, says):
    assert_shrunk_failure(check(wrong), equation, says)


def test_diffusion_checks_not_done():
    assert_not_done(
        E.check_q_posterior, "Exercise 7.1: write the posterior (eq-posterior)", "Exercise 7.1"
    )
