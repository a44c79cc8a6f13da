"""Exercises 7.3 and 7.4 (the KL and the variational bound): the checks of
``minidiff.checks.ex07_bound`` pass a right answer, fail typical mistakes with a shrunk case,
and say NOT DONE for the stubs."""

import math

import pytest

import minidiff as md
from minidiff.checks import ex07_bound as E

from .verdicts import assert_not_done, assert_shrunk_failure, by_name

LOG_TWO_PI = math.log(2 * math.pi)


def _per_example(values):
    return values.reshape(values.shape[0], -1).sum(axis=1)


def kl_correct(mean1, log_var1, mean2, log_var2):
    xp = md.backend.xp_of(mean1)
    spread = xp.exp(log_var1) + (mean1 - mean2) ** 2
    return _per_example(0.5 * (log_var2 - log_var1 + spread * xp.exp(-log_var2) - 1.0))


def kl_without_minus_one(mean1, log_var1, mean2, log_var2):
    """The -1 forgotten: the KL of a Gaussian with itself is then 1/2 per entry."""
    xp = md.backend.xp_of(mean1)
    spread = xp.exp(log_var1) + (mean1 - mean2) ** 2
    return _per_example(0.5 * (log_var2 - log_var1 + spread * xp.exp(-log_var2)))


def kl_log_ratio_reversed(mean1, log_var1, mean2, log_var2):
    """log(v1 / v2) in place of log(v2 / v1)."""
    xp = md.backend.xp_of(mean1)
    spread = xp.exp(log_var1) + (mean1 - mean2) ** 2
    return _per_example(0.5 * (log_var1 - log_var2 + spread * xp.exp(-log_var2) - 1.0))


def kl_mean_over_entries(mean1, log_var1, mean2, log_var2):
    """The entries averaged instead of added."""
    xp = md.backend.xp_of(mean1)
    spread = xp.exp(log_var1) + (mean1 - mean2) ** 2
    kl = 0.5 * (log_var2 - log_var1 + spread * xp.exp(-log_var2) - 1.0)
    return kl.reshape(kl.shape[0], -1).mean(axis=1)


def _posterior(betas, x0, x_t, t, variance_of=lambda beta, tilde: tilde):
    xp = md.backend.xp_of(x0)
    alphas = 1.0 - betas
    alpha_bars = xp.cumprod(alphas)
    prev = xp.concatenate([xp.ones(1), alpha_bars[:-1]])
    shape = (-1,) + (1,) * (x0.ndim - 1)
    beta, alpha = betas[t].reshape(shape), alphas[t].reshape(shape)
    ab, ab_prev = alpha_bars[t].reshape(shape), prev[t].reshape(shape)
    mean = (xp.sqrt(ab_prev) * beta * x0 + xp.sqrt(alpha) * (1.0 - ab_prev) * x_t) / (1.0 - ab)
    return mean, variance_of(beta, (1.0 - ab_prev) / (1.0 - ab) * beta)


def prior_correct(betas, x0):
    xp = md.backend.xp_of(x0)
    ab = xp.cumprod(1.0 - betas)[-1]
    return kl_correct(xp.sqrt(ab) * x0, xp.log(1.0 - ab) + 0.0 * x0, 0.0 * x0, 0.0 * x0)


def prior_missing(betas, x0):
    """L_T left out of the bound."""
    return md.backend.xp_of(x0).zeros(x0.shape[0])


def _term(betas, x0, x_t, t, model_mean, model_log_var, log_two_pi=LOG_TWO_PI, **kw):
    xp = md.backend.xp_of(x0)
    mean, variance = _posterior(betas, x0, x_t, t, **kw)
    log_var = xp.log(xp.where(variance > 0, variance, 1.0))
    kl = kl_correct(mean, log_var, model_mean, model_log_var)
    squared = (x0 - model_mean) ** 2 * xp.exp(-model_log_var)
    decoder = _per_example(0.5 * (log_two_pi + model_log_var + squared))
    return xp.where(t == 0, decoder, kl)


def term_correct(betas, x0, x_t, t, model_mean, model_log_var):
    return _term(betas, x0, x_t, t, model_mean, model_log_var)


def term_decoder_without_log_two_pi(betas, x0, x_t, t, model_mean, model_log_var):
    """The decoder's density without its normalizing 0.5 log(2 pi)."""
    return _term(betas, x0, x_t, t, model_mean, model_log_var, log_two_pi=0.0)


def term_posterior_variance_beta(betas, x0, x_t, t, model_mean, model_log_var):
    """The forward step's beta in place of the posterior's beta tilde."""
    return _term(betas, x0, x_t, t, model_mean, model_log_var, variance_of=lambda beta, tilde: beta)


def term_kl_at_the_first_step(betas, x0, x_t, t, model_mean, model_log_var):
    """A KL at t = 0 too, against the posterior's variance of 0."""
    xp = md.backend.xp_of(x0)
    mean, variance = _posterior(betas, x0, x_t, t)
    return kl_correct(mean, xp.log(variance), model_mean, model_log_var)


def test_kl_passes_a_right_answer():
    verdict = E.check_gaussian_kl(kl_correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "wrong, says",
    [
        (kl_without_minus_one, "the KL of a Gaussian with itself"),
        (kl_log_ratio_reversed, "the KL per example"),
        (kl_mean_over_entries, "the KL per example"),
    ],
    ids=by_name,
)
def test_kl_fails_a_typical_mistake(wrong, says):
    assert_shrunk_failure(E.check_gaussian_kl(wrong), "eq-gaussian-kl", says)


def test_bound_passes_a_right_answer():
    verdict = E.check_vlb(term_correct, prior_correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "term, prior, says",
    [
        (term_decoder_without_log_two_pi, prior_correct, "the bound L"),
        (term_posterior_variance_beta, prior_correct, "the bound L"),
        (term_correct, prior_missing, "the bound L"),
    ],
    ids=by_name,
)
def test_bound_fails_a_typical_mistake(term, prior, says):
    assert_shrunk_failure(E.check_vlb(term, prior), "eq-vlb", says)


def test_bound_says_why_a_first_step_kl_is_not_finite():
    verdict = E.check_vlb(term_kl_at_the_first_step, prior_correct)
    assert verdict.status == "FAILED" and "the smallest failing case found" in verdict.message
    assert "is not finite" in verdict.message and "decoder" in verdict.message, verdict.message


def test_not_done():
    assert_not_done(E.check_gaussian_kl, "Exercise 7.3: derive the KL of two Gaussians", "7.3")
    assert_not_done(
        lambda stub: E.check_vlb(stub, stub), "Exercise 7.4: write the terms of the bound", "7.4"
    )
