"""Exercises 8.3 to 8.5 (v, conversions, min-SNR): the checks of
``minidiff.checks.ex08_targets`` pass a right answer, fail typical mistakes with a shrunk case,
and say NOT DONE for the stub."""

import pytest

import minidiff as md
from minidiff.checks import ex08_targets as E

from .verdicts import assert_not_done, assert_shrunk_failure, by_name


def _a_s(alpha_bars, t, like):
    ab = alpha_bars[t].reshape((-1,) + (1,) * (like.ndim - 1))
    return ab**0.5, (1.0 - ab) ** 0.5


def v_correct(alpha_bars, x0, t, eps):
    a, s = _a_s(alpha_bars, t, x0)
    return a * eps - s * x0


def v_signs_swapped(alpha_bars, x0, t, eps):
    """s x0 - a eps: the derivative of the path run the other way."""
    a, s = _a_s(alpha_bars, t, x0)
    return s * x0 - a * eps


def v_coefficients_swapped(alpha_bars, x0, t, eps):
    """a x0 - s eps: the coefficients of x0 and eps exchanged."""
    a, s = _a_s(alpha_bars, t, x0)
    return s * eps - a * x0


def convert_correct(alpha_bars, x_t, t, prediction, parameterization):
    a, s = _a_s(alpha_bars, t, x_t)
    if parameterization == "eps":
        return (x_t - s * prediction) / a, prediction
    if parameterization == "x0":
        return prediction, (x_t - a * prediction) / s
    return a * x_t - s * prediction, s * x_t + a * prediction


def convert_v_without_rotation(alpha_bars, x_t, t, prediction, parameterization):
    """From v: x0 = x_t - s v, eps = x_t + a v (the factors on x_t forgotten)."""
    if parameterization != "v":
        return convert_correct(alpha_bars, x_t, t, prediction, parameterization)
    a, s = _a_s(alpha_bars, t, x_t)
    return x_t - s * prediction, x_t + a * prediction


def convert_x0_divides_by_a(alpha_bars, x_t, t, prediction, parameterization):
    """From x0: eps = (x_t - a x0) / a."""
    if parameterization != "x0":
        return convert_correct(alpha_bars, x_t, t, prediction, parameterization)
    a, _ = _a_s(alpha_bars, t, x_t)
    return prediction, (x_t - a * prediction) / a


def _snr(alpha_bars, t):
    ab = alpha_bars[t]
    return ab / (1.0 - ab)


def weights_correct(alpha_bars, t, gamma):
    xp = md.backend.xp_of(alpha_bars)
    snr = _snr(alpha_bars, t)
    capped = xp.minimum(snr, gamma)
    return xp.where(snr > 0, capped / xp.where(snr > 0, snr, 1.0), 1.0), capped, capped / (snr + 1)


def weights_v_over_snr(alpha_bars, t, gamma):
    """The eps multiplier used for v too."""
    w_eps, w_x0, _ = weights_correct(alpha_bars, t, gamma)
    return w_eps, w_x0, w_eps


def weights_uncapped_x0(alpha_bars, t, gamma):
    """w_x0 = SNR: the cap forgotten for the x0 loss."""
    w_eps, _, w_v = weights_correct(alpha_bars, t, gamma)
    return w_eps, _snr(alpha_bars, t), w_v


def weights_eps_zero_at_zero_snr(alpha_bars, t, gamma):
    """0 / 0 replaced by 0 instead of its limit 1."""
    xp = md.backend.xp_of(alpha_bars)
    w_eps, w_x0, w_v = weights_correct(alpha_bars, t, gamma)
    return xp.where(_snr(alpha_bars, t) > 0, w_eps, 0.0), w_x0, w_v


@pytest.mark.parametrize(
    "check, correct",
    [
        (E.check_v_target, v_correct),
        (E.check_to_x0_and_eps, convert_correct),
        (E.check_min_snr_weights, weights_correct),
    ],
    ids=by_name,
)
def test_checks_pass_a_right_answer(check, correct):
    verdict = check(correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "check, wrong, equation, says",
    [
        (E.check_v_target, v_signs_swapped, "eq-parameterizations", "central differences"),
        (E.check_v_target, v_coefficients_swapped, "eq-parameterizations", "central differences"),
        (E.check_to_x0_and_eps, convert_v_without_rotation, "eq-parameterizations", "give back"),
        (E.check_to_x0_and_eps, convert_x0_divides_by_a, "eq-parameterizations", "rebuild x_t"),
        (E.check_min_snr_weights, weights_v_over_snr, "eq-min-snr", "w_v |v - v_hat|^2"),
        (E.check_min_snr_weights, weights_uncapped_x0, "eq-min-snr", "w_x0 |x0 - x0_hat|^2"),
    ],
    ids=by_name,
)
def test_checks_fail_a_typical_mistake(check, wrong, equation, says):
    assert_shrunk_failure(check(wrong), equation, says)


def test_min_snr_weights_need_the_limit_at_zero_snr():
    verdict = E.check_min_snr_weights(weights_eps_zero_at_zero_snr)
    assert verdict.status == "FAILED" and "its limit, 1" in verdict.message, verdict.message


def test_not_done():
    assert_not_done(E.check_v_target, "Exercise 8.3: derive the velocity target", "8.3")
    assert_not_done(E.check_to_x0_and_eps, "Exercise 8.4: convert any prediction", "8.4")
    assert_not_done(E.check_min_snr_weights, "Exercise 8.5: derive the multipliers", "8.5")
