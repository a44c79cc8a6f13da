"""Exercise 13 (how sure a measured rate is): the checks of ``minidiff.checks.ex13_intervals``.

A right answer passes, typical wrong ones fail, and a solution that calls the library it rebuilds
is refused.
"""

import math
from statistics import NormalDist

import numpy as np
import pytest

from minidiff.checks import ex13_intervals as E
from minidiff.metrics.intervals import bootstrap_interval


def percentile(values, level, resamples, seed, lower=None, replace=True, seeded=True):
    rng = np.random.default_rng(seed if seeded else None)
    if replace:
        draws = rng.integers(0, len(values), size=(resamples, len(values)))
    else:
        draws = np.stack([rng.permutation(len(values)) for _ in range(resamples)])
    means = values[draws].mean(axis=1)
    low = (1 - level) / 2 if lower is None else lower
    return tuple(np.quantile(means, [low, 1 - low]))


def test_a_right_bootstrap_passes():
    assert E.check_bootstrap_interval(percentile).passed


@pytest.mark.parametrize(
    "wrong, says",
    [
        (lambda v, lv, b, s: percentile(v, lv, b, s, lower=1 - lv), "half-width"),  # level as tail
        (lambda v, lv, b, s: percentile(v, lv, b, s, replace=False), "half-width"),  # no resampling
        (lambda v, lv, b, s: percentile(v, lv, b, s, seeded=False), "seed"),
        (lambda v, lv, b, s: bootstrap_interval(v, lv, b, s), "calling minidiff.metrics.intervals"),
    ],
)
def test_wrong_bootstraps_fail_with_the_reason(wrong, says):
    verdict = E.check_bootstrap_interval(wrong)
    assert not verdict.passed and says in verdict.message


def test_an_interval_that_is_too_narrow_fails_the_coverage():
    """Half the resamples' spread: a case-by-case check of 0.7-1.3 x the normal width would let
    0.7 through, the coverage of repeated experiments does not."""

    def narrow(values, level, resamples, seed):
        low, high = percentile(values, level, resamples, seed)
        middle = (low + high) / 2
        return middle - 0.8 * (middle - low), middle + 0.8 * (high - middle)

    verdict = E.check_bootstrap_interval(narrow)
    assert not verdict.passed and "intervals held it in" in verdict.message


def clips(p, h, level, rounding=math.ceil):
    z = NormalDist().inv_cdf((1 + level) / 2)
    n = rounding(z * z * p * (1 - p) / h**2)
    while rounding is math.ceil and z * math.sqrt(p * (1 - p) / n) > h:
        n += 1
    while rounding is math.ceil and n > 1 and z * math.sqrt(p * (1 - p) / (n - 1)) <= h:
        n -= 1
    return max(n, 1)


def test_clips_needed_right_and_wrong():
    assert E.check_clips_needed(clips).passed
    floor = E.check_clips_needed(lambda p, h, lv: clips(p, h, lv, math.floor))
    assert not floor.passed and "half-width is" in floor.message
    doubled = E.check_clips_needed(lambda p, h, lv: 2 * clips(p, h, lv))
    assert not doubled.passed and "fewest clips" in doubled.message
    z_of_level = E.check_clips_needed(
        lambda p, h, lv: math.ceil(NormalDist().inv_cdf(lv) ** 2 * p * (1 - p) / h**2)
    )
    assert not z_of_level.passed
