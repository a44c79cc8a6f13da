"""Exercise 6 (the closed form and one step of the forward chain): the checks of
``minidiff.checks.ex06_forward`` pass a right answer and fail typical mistakes, shrunk.
"""

import pytest

import minidiff as md
from minidiff.checks import ex06_forward as E

from .verdicts import assert_not_done, assert_shrunk_failure, by_name


def _per_example(values, like):
    return values.reshape((-1,) + (1,) * (like.ndim - 1))


def q_sample_correct(alpha_bars, x0, t, noise):
    xp = md.backend.xp_of(x0)
    alpha_bar = _per_example(alpha_bars[t], x0)
    return xp.sqrt(alpha_bar) * x0 + xp.sqrt(1.0 - alpha_bar) * noise


def q_sample_without_root(alpha_bars, x0, t, noise):
    """alpha_bar instead of sqrt(alpha_bar) as the signal's coefficient."""
    xp = md.backend.xp_of(x0)
    alpha_bar = _per_example(alpha_bars[t], x0)
    return alpha_bar * x0 + xp.sqrt(1.0 - alpha_bar) * noise


def q_sample_one_step_late(alpha_bars, x0, t, noise):
    """Reads the book's alpha_bar_t at code index t - 1 (alpha_bar_0 = 1): one step too few."""
    xp = md.backend.xp_of(x0)
    previous = xp.concatenate([xp.ones(1), alpha_bars[:-1]])
    alpha_bar = _per_example(previous[t], x0)
    return xp.sqrt(alpha_bar) * x0 + xp.sqrt(1.0 - alpha_bar) * noise


def q_step_correct(betas, x_prev, t, noise):
    xp = md.backend.xp_of(x_prev)
    beta = _per_example(betas[t], x_prev)
    return xp.sqrt(1.0 - beta) * x_prev + xp.sqrt(beta) * noise


def q_step_variance_beta_squared(betas, x_prev, t, noise):
    """Noise scaled by beta instead of sqrt(beta)."""
    xp = md.backend.xp_of(x_prev)
    beta = _per_example(betas[t], x_prev)
    return xp.sqrt(1.0 - beta) * x_prev + beta * noise


def q_step_without_shrinking(betas, x_prev, t, noise):
    """The variance-exploding step: no sqrt(1 - beta) factor."""
    xp = md.backend.xp_of(x_prev)
    return x_prev + xp.sqrt(_per_example(betas[t], x_prev)) * noise


@pytest.mark.parametrize(
    "check, correct",
    [
        (E.check_q_sample, q_sample_correct),
        (E.check_q_step, q_step_correct),
    ],
    ids=by_name,
)
def test_diffusion_checks_pass_a_correct_answer(check, correct):
    verdict = check(correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "check, wrong, equation, says",
    [
        (E.check_q_sample, q_sample_without_root, "eq-closed-form", "composed steps"),
        (E.check_q_sample, q_sample_one_step_late, "eq-closed-form", "x_t"),
        (E.check_q_step, q_step_variance_beta_squared, "eq-forward-step", "variance"),
        (E.check_q_step, q_step_without_shrinking, "eq-forward-step", "x_t"),
    ],
    ids=by_name,
)
def test_diffusion_checks_fail_a_typical_mistake(check, wrong, equation, says):
    assert_shrunk_failure(check(wrong), equation, says)


def test_diffusion_checks_not_done():
    assert_not_done(
        E.check_q_sample,
        "Exercise 6.1: write the closed form q_sample (eq-closed-form)",
        "Exercise 6.1",
    )


def test_q_sample_check_shows_the_schedule_and_the_index_convention():
    verdict = E.check_q_sample(q_sample_without_root)
    assert "schedule = " in verdict.message and "t = 0 is the book's step 1" in verdict.message
