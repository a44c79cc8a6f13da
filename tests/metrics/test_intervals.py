"""Bootstrap intervals of rates and means (eq-bootstrap)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.metrics.intervals import bootstrap_interval, ratio_interval, summarize


@given(values=st.lists(st.floats(-10, 10), min_size=1, max_size=60), seed=st.integers(0, 99))
def test_eq_bootstrap_interval_holds_the_mean_and_repeats(values, seed):
    low, high = bootstrap_interval(values, seed=seed)
    mean = float(np.mean(values))
    assert low <= mean + 1e-9 and mean - 1e-9 <= high
    assert min(values) - 1e-9 <= low <= high <= max(values) + 1e-9
    assert bootstrap_interval(values, seed=seed) == (low, high)


def test_eq_bootstrap_covers_a_true_rate_about_95_percent_of_the_time():
    """Over 400 samples of 100 Bernoulli(0.3) draws, the 95% interval holds 0.3 in 90-99% of
    them, and its half-width is near the normal value 1.96 sqrt(p (1 - p) / n) = 0.09."""
    rng = np.random.default_rng(0)
    hits, widths = 0, []
    for seed in range(400):
        draws = rng.random(100) < 0.3
        low, high = bootstrap_interval(draws, resamples=1000, seed=seed)
        hits += low <= 0.3 <= high
        widths.append((high - low) / 2)
    assert 0.90 <= hits / 400 <= 0.99
    assert np.mean(widths) == pytest.approx(1.96 * np.sqrt(0.3 * 0.7 / 100), rel=0.1)


def test_summaries_skip_missing_values_and_say_how_many_there_were():
    summary = summarize([True, None, False, True])
    assert summary["count"] == 3 and summary["mean"] == pytest.approx(2 / 3)
    assert summary["low"] <= summary["mean"] <= summary["high"]
    assert summarize([None]) == {"mean": None, "count": 0, "low": None, "high": None}
    with pytest.raises(ValueError, match="level"):
        bootstrap_interval([1.0], level=1.5)


def test_eq_bootstrap_ratio_of_two_means():
    """The ratio of means, with both samples resampled: twice the errors give a ratio of 2 inside
    its interval; a sample against itself gives 1; an empty side gives None."""
    rng = np.random.default_rng(1)
    errors = rng.exponential(0.1, 200)
    doubled = ratio_interval(2 * rng.exponential(0.1, 300), errors)
    assert doubled["low"] < 2.0 < doubled["high"]  # the populations' ratio
    assert doubled["low"] <= doubled["mean"] <= doubled["high"]
    same = ratio_interval(errors, errors)
    assert same["mean"] == 1.0 and same["low"] < 1.0 < same["high"]
    assert ratio_interval([None], errors)["mean"] is None
