"""Energy distance and RBF-MMD: the U-statistics against double loops, closed forms for
Gaussians, their symmetries, and their power to see a small shift."""

import math

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minidiff.metrics import energy_distance, median_bandwidth, mmd_rbf


def brute_energy(a, b):
    n, m = len(a), len(b)
    dist = lambda x, y: math.sqrt(sum((float(p) - float(q)) ** 2 for p, q in zip(x, y)))
    cross = sum(dist(x, y) for x in a for y in b) / (n * m)
    within_a = sum(dist(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    within_b = sum(dist(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    return 2 * cross - within_a - within_b


def brute_mmd(a, b, h):
    n, m = len(a), len(b)
    k = lambda x, y: math.exp(-sum((float(p) - float(q)) ** 2 for p, q in zip(x, y)) / (2 * h * h))
    within_a = sum(k(a[i], a[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    within_b = sum(k(b[i], b[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    cross = sum(k(x, y) for x in a for y in b) / (n * m)
    return within_a + within_b - 2 * cross


def brute_median(a, b):
    z = numpy.concatenate([a, b]).astype(numpy.float64)
    return float(
        numpy.median(
            [numpy.linalg.norm(z[i] - z[j]) for i in range(len(z)) for j in range(i + 1, len(z))]
        )
    )


@pytest.mark.parametrize("dim", [1, 3, 40])  # 40: the Gram-matrix path for many dimensions
def test_match_double_loops(dim):
    rng = numpy.random.default_rng(dim)
    a, b = rng.normal(size=(7, dim)), rng.normal(0.5, 2.0, size=(5, dim))
    assert energy_distance(a, b) == pytest.approx(brute_energy(a, b), rel=1e-10, abs=1e-12)
    assert mmd_rbf(a, b, bandwidth=1.3) == pytest.approx(brute_mmd(a, b, 1.3), rel=1e-10)
    h = brute_median(a, b)
    assert median_bandwidth(a, b) == pytest.approx(h, rel=1e-12)
    assert mmd_rbf(a, b) == pytest.approx(brute_mmd(a, b, h), rel=1e-10)


def test_chunking_does_not_change_the_sums():
    rng = numpy.random.default_rng(1)
    a, b = rng.normal(size=(300, 2)), rng.normal(size=(200, 2))
    for chunk in (1, 7, 199, 1 << 22):
        assert energy_distance(a, b, chunk_entries=chunk) == pytest.approx(
            energy_distance(a, b), rel=1e-12
        )
        assert mmd_rbf(a, b, 0.7, chunk_entries=chunk) == pytest.approx(
            mmd_rbf(a, b, 0.7), rel=1e-12
        )


def test_float32_inputs_are_accumulated_in_float64():
    rng = numpy.random.default_rng(2)
    a, b = rng.normal(size=(500, 2)).astype(numpy.float32), rng.normal(size=(400, 2))
    a64 = a.astype(numpy.float64)
    assert energy_distance(a, b) == energy_distance(a64, b)
    assert mmd_rbf(a, b) == mmd_rbf(a64, b)


def test_energy_distance_matches_its_closed_form_for_shifted_gaussians():
    # 1-D N(0, 1) against N(mu, 1): X - Y ~ N(-mu, 2), X - X' ~ N(0, 2), and for D ~ N(mu, s^2)
    # E|D| = s sqrt(2/pi) exp(-mu^2 / (2 s^2)) + mu (1 - 2 Phi(-mu / s)).
    mu, s = 1.0, math.sqrt(2.0)
    phi = 0.5 * (1 + math.erf(-mu / s / math.sqrt(2)))
    cross = s * math.sqrt(2 / math.pi) * math.exp(-(mu**2) / (2 * s * s)) + mu * (1 - 2 * phi)
    exact = 2 * cross - 2 * s * math.sqrt(2 / math.pi)
    rng = numpy.random.default_rng(3)
    estimate = energy_distance(rng.normal(size=4000), rng.normal(mu, 1.0, size=4000))
    assert estimate == pytest.approx(exact, abs=0.03)


def test_mmd_matches_its_closed_form_for_shifted_gaussians():
    # For 1-D N(0, 1) and N(mu, 1) with k = exp(-d^2 / (2 h^2)):
    # E k(X, X') = h / sqrt(h^2 + 2), E k(X, Y) = that times exp(-mu^2 / (2 (h^2 + 2))).
    mu, h = 1.0, 1.0
    base = h / math.sqrt(h * h + 2)
    exact = 2 * base * (1 - math.exp(-(mu**2) / (2 * (h * h + 2))))
    rng = numpy.random.default_rng(4)
    estimate = mmd_rbf(rng.normal(size=4000), rng.normal(mu, 1.0, size=4000), bandwidth=h)
    assert estimate == pytest.approx(exact, abs=0.01)


def test_zero_in_expectation_for_the_same_law():
    # U-statistics are unbiased: the mean over replicates is zero within its standard error.
    rng = numpy.random.default_rng(5)
    for metric in (energy_distance, mmd_rbf):
        values = [metric(rng.normal(size=(200, 2)), rng.normal(size=(300, 2))) for _ in range(40)]
        standard_error = numpy.std(values) / math.sqrt(len(values))
        assert abs(numpy.mean(values)) < 4 * standard_error


def test_detects_a_shift_of_a_fifth_of_a_standard_deviation():
    rng = numpy.random.default_rng(6)
    same = [rng.normal(size=(2000, 2)) for _ in range(3)]
    shifted = rng.normal(size=(2000, 2)) + numpy.array([0.2, 0.0])
    assert energy_distance(same[0], shifted) > 10 * abs(energy_distance(same[0], same[1]))
    assert energy_distance(same[0], shifted) > 10 * abs(energy_distance(same[1], same[2]))
    assert mmd_rbf(same[0], shifted) > 4 * abs(mmd_rbf(same[0], same[1]))
    assert mmd_rbf(same[0], shifted) > 4 * abs(mmd_rbf(same[1], same[2]))
    assert energy_distance(same[0], shifted) > 0 and mmd_rbf(same[0], shifted) > 0


clouds = st.integers(2, 12).flatmap(
    lambda n: arrays(numpy.float64, (n, 2), elements=st.floats(-10, 10, width=32))
)


@given(clouds, clouds)
def test_symmetric(a, b):
    assert energy_distance(a, b) == pytest.approx(energy_distance(b, a), rel=1e-9, abs=1e-9)
    if median_bandwidth(a, b) > 0:
        assert mmd_rbf(a, b) == pytest.approx(mmd_rbf(b, a), rel=1e-9, abs=1e-9)


@given(clouds, clouds, st.tuples(st.floats(-100, 100), st.floats(-100, 100)))
def test_translation_invariant(a, b, shift):
    shift = numpy.array(shift)
    assert energy_distance(a + shift, b + shift) == pytest.approx(
        energy_distance(a, b), rel=1e-7, abs=1e-7
    )
    assert mmd_rbf(a + shift, b + shift, bandwidth=2.0) == pytest.approx(
        mmd_rbf(a, b, bandwidth=2.0), rel=1e-7, abs=1e-7
    )


@given(clouds)
def test_a_sample_against_itself_is_not_positive(a):
    # With the diagonal excluded, D^2(a, a) = 2 mean_{all pairs} - 2 mean_{i != j} <= 0.
    assert energy_distance(a, a) <= 1e-9


def test_bad_inputs_are_clear_errors():
    a = numpy.zeros((5, 2))
    with pytest.raises(ValueError, match="same dimension"):
        energy_distance(a, numpy.zeros((5, 3)))
    with pytest.raises(ValueError, match="at least 2 points"):
        mmd_rbf(a, numpy.zeros((1, 2)))
    with pytest.raises(ValueError, match="shape"):
        energy_distance(numpy.zeros((2, 2, 2)), a)
    with pytest.raises(ValueError, match="bandwidth must be positive"):
        mmd_rbf(a, a + 1.0, bandwidth=0.0)
