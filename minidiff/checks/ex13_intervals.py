"""The checks of exercise 13 (chapter 13, measuring consistency and physics): how sure a rate is.

The notebook ``exercises/src/ex13_intervals.md`` asks for the percentile bootstrap (13.1,
:func:`check_bootstrap_interval`, eq-bootstrap), graded by what an interval must do, not by
comparison with a reference: it holds the sample mean, lies inside the data's range, repeats for a
seed, is about as wide as the normal approximation says, and covers a known rate in about the
promised share of repeated experiments. 13.2 asks how many clips make an interval narrow enough
(:func:`check_clips_needed`, eq-clips-needed), which needs the half-width of the interval worked
out and inverted; it is graded by the defining property of the answer (the smallest n that is
narrow enough). A solution that calls ``minidiff.metrics.intervals`` is refused: the library is
what the exercise rebuilds.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from statistics import NormalDist

import numpy
from hypothesis import strategies as st

from .grading import DEFAULT_EXAMPLES, Mismatch, Verdict, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "13.1": [
        (
            "Resample the values with replacement, as many as there are, take the mean; repeat; "
            "read the interval off the means."
        ),
        "rng = numpy.random.default_rng(seed); indices = rng.integers(0, n, size=(resamples, n)).",
        (
            "means = values[indices].mean(axis=1); return numpy.quantile(means, [(1 - level) / 2, "
            "(1 + level) / 2])."
        ),
    ],
    "13.2": [
        "Write the normal half-width as a function of n and solve half_width(n) <= h for n.",
        (
            "half_width(n) = z sqrt(p (1 - p) / n) with z the normal quantile at (1 + level) / 2 "
            "(statistics.NormalDist().inv_cdf)."
        ),
        "n = ceil(z^2 p (1 - p) / h^2), then adjust by one if rounding put you on the wrong side.",
    ],
}

EQUATIONS = {
    "eq-bootstrap": "draw n values with replacement from the n measured ones, average them, "
    "repeat B times; (low, high) are the (1 - level)/2 and (1 + level)/2 quantiles of the B "
    "averages",
    "eq-clips-needed": "the smallest whole n with z sqrt(p (1 - p) / n) <= half_width, where "
    "z is the standard normal quantile at (1 + level)/2",
}


# The library functions the exercise rebuilds; a solution that calls one is refused.
_LIBRARY = (
    "minidiff.metrics.intervals.bootstrap_interval",
    "minidiff.metrics.intervals.ratio_interval",
    "minidiff.metrics.intervals.summarize",
)


def _values():
    def sample(n):
        rates = st.lists(st.booleans(), min_size=n, max_size=n)
        reals = st.lists(
            st.floats(-5, 5, allow_nan=False).map(lambda x: round(x, 3)), min_size=n, max_size=n
        )
        return st.one_of(rates, reals).map(lambda v: numpy.asarray(v, dtype=numpy.float64))

    return st.tuples(
        st.integers(5, 80).flatmap(sample), st.sampled_from([0.8, 0.9, 0.95]), st.integers(0, 999)
    )


def check_bootstrap_interval(
    fn: Callable, exercise: str = "13.1", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(values, level, resamples, seed)`` returns the percentile-bootstrap interval (low,
    high) of the mean of ``values`` (eq-bootstrap)."""

    def interval(values, level, resamples, seed):
        low, high = fn(values, level, resamples, seed)
        return float(low), float(high)

    def prop(case):
        values, level, seed = case
        low, high = interval(values, level, 1000, seed)
        mean = float(values.mean())
        if not values.min() - 1e-9 <= low <= mean + 1e-9 <= high + 2e-9 <= values.max() + 3e-9:
            raise Mismatch(
                f"the interval ({low:.4f}, {high:.4f}) should hold the sample mean {mean:.4f} "
                f"and lie inside the values' range [{values.min():.4f}, {values.max():.4f}]"
            )
        spread = values.std()
        if len(values) >= 30 and spread > 0:
            normal = NormalDist().inv_cdf((1 + level) / 2) * spread / math.sqrt(len(values))
            if not 0.7 * normal <= (high - low) / 2 <= 1.3 * normal:
                raise Mismatch(
                    f"half-width {(high - low) / 2:.4f}, but for {len(values)} values of standard "
                    f"deviation {spread:.4f} the normal approximation gives about {normal:.4f}: "
                    "are the quantiles those of the level, taken over the resampled means?"
                )

    verdict = grade(
        exercise,
        "the bootstrap interval",
        "eq-bootstrap",
        prop,
        _values(),
        statement=EQUATIONS["eq-bootstrap"],
        describe=lambda c: (
            f"values = {numpy.round(c[0], 3).tolist()}\nlevel = {c[1]}, seed = {c[2]}"
        ),
        static_check=lambda: _repeats(interval) or _coverage(interval),
        forbid=_LIBRARY,
        max_examples=max_examples,
    )
    return verdict


def _repeats(interval) -> str | None:
    """The same values and seed must give the same interval (checked once, on fixed values:
    inside the drawn cases a random answer would make the search itself flaky)."""
    values = numpy.random.default_rng(7).standard_normal(50)
    first = interval(values, 0.95, 500, 3)
    if any(interval(values, 0.95, 500, 3) != first for _ in range(3)):
        return (
            "the same values and seed gave different intervals: draw every random number "
            "from np.random.default_rng(seed)"
        )
    return None


def _coverage(interval) -> str | None:
    """Repeat an experiment of 60 clips with a true rate of 0.31 many times: a 90% interval must
    hold 0.31 in 86-94% of them (about three standard errors either side for 600 repeats)."""
    rng = numpy.random.default_rng(13)
    hits, repeats, rate = 0, 600, 0.31
    for seed in range(repeats):
        draws = (rng.random(60) < rate).astype(numpy.float64)
        low, high = interval(draws, 0.9, 400, seed)
        hits += low <= rate <= high
    share = hits / repeats
    if not 0.86 <= share <= 0.94:
        return (
            f"over {repeats} experiments of 60 clips with a true rate of {rate}, your 90% "
            f"intervals held it in {share:.1%} of them; a 90% interval should, in about 90%"
        )
    return None


def check_clips_needed(
    fn: Callable, exercise: str = "13.2", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(p, half_width, level)`` returns the fewest clips n whose interval for a rate p has a
    half-width of at most ``half_width`` in the normal approximation (eq-clips-needed)."""
    cases = st.tuples(
        st.floats(0.02, 0.98).map(lambda x: round(x, 3)),
        st.floats(0.01, 0.3).map(lambda x: round(x, 3)),
        st.sampled_from([0.8, 0.9, 0.95, 0.99]),
    )

    def prop(case):
        p, width, level = case
        n = fn(p, width, level)
        if isinstance(n, bool) or not float(n).is_integer() or n < 1:
            raise Mismatch(f"the answer must be a whole number of clips, got {n!r}")
        n = int(n)
        z = NormalDist().inv_cdf((1 + level) / 2)

        def half(count):
            return z * math.sqrt(p * (1 - p) / count)

        if half(n) > width * (1 + 1e-9):
            raise Mismatch(f"with n = {n} clips the half-width is {half(n):.4f} > {width}")
        if n > 1 and half(n - 1) <= width * (1 - 1e-9):
            raise Mismatch(
                f"n = {n - 1} clips already give a half-width of {half(n - 1):.4f} <= {width}: "
                "the answer is the fewest clips that are enough"
            )

    return grade(
        exercise,
        "clips needed for an interval",
        "eq-clips-needed",
        prop,
        cases,
        statement=EQUATIONS["eq-clips-needed"],
        describe=lambda c: f"p = {c[0]}, half_width = {c[1]}, level = {c[2]}",
        forbid=_LIBRARY,
        max_examples=max_examples,
    )
