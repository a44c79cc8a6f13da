"""The noise watermark: what the key changes (eq-tree-ring-key), its distance (eq-key-distance)
and the distance's null (eq-key-null)."""

import math

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.detect import watermark as wm
from minidiff.errors import ShapeError

SHAPE = (4, 3, 8, 8)


def _noise(n, seed=0):
    return numpy.random.default_rng(seed).standard_normal((n, *SHAPE)).astype(numpy.float32)


def test_eq_tree_ring_key():
    """The keyed noise is real, float32 like its input, carries the key on M and the plain
    noise off it, and still looks like N(0, 1) pixel by pixel."""
    key = wm.make_key(SHAPE, radius=2, time_radius=1)
    assert numpy.array_equal(
        key.mask,
        key.mask[::-1, :, ::-1, ::-1]
        .take(numpy.arange(-1, SHAPE[0] - 1), axis=0)
        .take(numpy.arange(-1, 7), axis=2)
        .take(numpy.arange(-1, 7), axis=3),
    )  # symmetric under k -> -k
    z = _noise(64)
    keyed = wm.watermark_noise(key, z)
    assert keyed.dtype == numpy.float32 and keyed.shape == z.shape
    spectrum = numpy.fft.fftn(keyed.astype(numpy.float64), axes=wm.AXES, norm="ortho")
    assert numpy.allclose(spectrum[:, key.mask], key.values[key.mask], atol=1e-5)
    plain = numpy.fft.fftn(z.astype(numpy.float64), axes=wm.AXES, norm="ortho")
    assert numpy.allclose(spectrum[:, ~key.mask], plain[:, ~key.mask], atol=1e-4)
    assert abs(keyed.mean()) < 0.05 and keyed.std() == pytest.approx(1.0, abs=0.05)
    kurtosis = ((keyed - keyed.mean()) ** 4).mean() / keyed.var() ** 2
    assert kurtosis == pytest.approx(3.0, abs=0.15)


def test_eq_tree_ring_key_averaged_over_keys_is_white():
    """Averaged over keys the keyed noise is N(0, I): its per-pixel variance is 1 everywhere."""
    keyed = numpy.stack(
        [wm.watermark_noise(wm.make_key(SHAPE, seed=s), _noise(1, s))[0] for s in range(300)]
    )
    assert keyed.var(axis=0).mean() == pytest.approx(1.0, abs=0.03)
    assert abs(keyed.mean()) < 0.02


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), radius=st.sampled_from([1.0, 1.5, 2.0]))
def test_eq_key_distance(seed, radius):
    """(eq-key-distance) on drawn keys and noise: the squared distance of the noise's orthonormal
    Fourier coefficients to the key over the key's region, zero for noise carrying the key."""
    key = wm.make_key(SHAPE, radius=radius, seed=seed)
    z = _noise(3, seed=seed + 1)
    assert numpy.allclose(wm.key_distance(key, wm.watermark_noise(key, z)), 0.0, atol=1e-6)
    spectrum = numpy.fft.fftn(z.astype(numpy.float64), axes=wm.AXES, norm="ortho")
    expected = (numpy.abs(spectrum - key.values) ** 2)[:, key.mask].sum(axis=1)
    assert wm.key_distance(key, z) == pytest.approx(expected)


def test_eq_key_null():
    """D of plain noise has the noncentral chi-square's mean nu + lambda and variance
    2 (nu + 2 lambda), and its p-values are uniform."""
    key = wm.make_key(SHAPE, radius=2)
    distances = wm.key_distance(key, _noise(2000, seed=1))
    nu, lam = key.degrees_of_freedom, key.noncentrality
    assert nu % 2 == 0
    assert distances.mean() == pytest.approx(nu + lam, rel=0.02)
    assert distances.var() == pytest.approx(2 * (nu + 2 * lam), rel=0.1)
    p = wm.p_value(key, distances[:400])
    # Kolmogorov-Smirnov distance to U(0, 1); 0.068 is its 5% critical value at n = 400
    ks = numpy.max(numpy.abs(numpy.sort(p) - (numpy.arange(1, 401) - 0.5) / 400))
    assert ks < 0.068 + 0.5 / 400


def test_eq_key_null_tiny_for_watermarked_noise():
    """Before any sampling, keyed noise is read with a p-value far below 1e-10; plain noise is
    flagged at 1% about 1% of the time."""
    key = wm.make_key(SHAPE)
    keyed = wm.watermark_noise(key, _noise(8))
    _, log10_p = wm.read_noise(key, keyed + 0.3 * _noise(8, seed=5))
    assert numpy.all(log10_p < -10)
    _, plain = wm.read_noise(key, _noise(300, seed=2))
    assert (plain < -2).mean() < 0.04


@settings(max_examples=20)
@given(x=st.floats(0.01, 60), m=st.integers(1, 10))
def test_eq_key_null_central_case_is_the_closed_form(x, m):
    """With lambda = 0 the CDF is the even-dof chi-square's P(Poisson(x/2) >= m) =
    1 - e^{-x/2} sum_{i<m} (x/2)^i / i!, summed here over i >= m (no cancellation)."""
    terms = (i * math.log(x / 2) - x / 2 - math.lgamma(i + 1) for i in range(m, m + 300))
    closed = sum(math.exp(t) for t in terms)
    assert wm.noncentral_chi2_cdf(x, 2 * m, 0.0) == pytest.approx(closed, rel=1e-8, abs=1e-300)


def test_eq_key_null_against_monte_carlo():
    rng = numpy.random.default_rng(4)
    mean = rng.normal(size=6)  # noncentrality = |mean|^2 in 6 dimensions
    draws = ((rng.normal(size=(40000, 6)) + mean) ** 2).sum(axis=1)
    for x in numpy.quantile(draws, [0.01, 0.3, 0.7]):
        assert wm.noncentral_chi2_cdf(x, 6, float(mean @ mean)) == pytest.approx(
            (draws <= x).mean(), abs=0.006
        )


def test_bad_input_is_a_clear_error():
    key = wm.make_key(SHAPE)
    with pytest.raises(ShapeError, match="key of shape"):
        wm.watermark_noise(key, numpy.zeros((1, 4, 3, 8, 9)))
    with pytest.raises(ValueError, match="even"):
        wm.noncentral_chi2_cdf(1.0, 3, 0.0)
    with pytest.raises(ValueError, match="no mode"):
        wm.key_region((1, 1, 1, 1))
