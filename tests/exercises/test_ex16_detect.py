"""Exercise 16 (the radial power spectrum and the watermark's p-value): the checks of
``minidiff.checks.ex16_detect`` pass a right answer, fail typical mistakes with a shrunk case and
the property they break, and say NOT DONE for the stub."""

import math

import numpy as np
import pytest

from minidiff.checks import ex16_detect as E

from .verdicts import assert_not_done, by_name


def _rings(height, width, signed=True, rounded=True):
    u = np.fft.fftfreq(height) * height if signed else np.arange(height)
    v = np.fft.fftfreq(width) * width if signed else np.arange(width)
    radius = np.hypot(u[:, None], v[None, :])
    return (np.rint(radius) if rounded else np.floor(radius)).astype(int).ravel()


def spectrum_correct(
    clips, normalise=True, ring_mean=True, signed=True, rounded=True, power=None, average=True
):
    height, width = clips.shape[-2:]
    if not average:
        clips = clips.mean(axis=(1, 2), keepdims=True)
    spectrum = np.fft.fft2(clips)
    power = np.abs(spectrum) ** 2 if power is None else power(spectrum)
    power = (power / (height * width if normalise else 1)).mean(axis=(1, 2))
    bins = _rings(height, width, signed, rounded)
    counts = np.bincount(bins) if ring_mean else 1
    return np.stack([np.bincount(bins, weights=p.ravel()) / counts for p in power])


def spectrum_all_correct(clips):
    return spectrum_correct(clips)


def spectrum_not_normalised(clips):
    """|x^|^2 without the 1 / HW."""
    return spectrum_correct(clips, normalise=False)


def spectrum_real_part(clips):
    """Re(x^)^2 for the power: it depends on the phase."""
    return spectrum_correct(clips, power=lambda s: s.real**2)


def spectrum_ring_sums(clips):
    """The sum over each ring, not its mean."""
    return spectrum_correct(clips, ring_mean=False)


def spectrum_truncated_radius(clips):
    """int(radius) for the ring: (2, 2), at 2.83, lands in ring 2."""
    return spectrum_correct(clips, rounded=False)


def spectrum_unsigned_frequencies(clips):
    """Index u for the frequency, not u - H above H / 2."""
    return spectrum_correct(clips, signed=False)


def spectrum_of_the_mean_frame(clips):
    """The frames and channels averaged before the transform, not their power after."""
    return spectrum_correct(clips, average=False)


def spectrum_energy_in_bin_zero(clips):
    """Every frame's energy in bin 0: Parseval, constant frames and shifts hold, rings not."""
    height, width = clips.shape[-2:]
    out = np.zeros((len(clips), _rings(height, width).max() + 1))
    out[:, 0] = (clips**2).sum(axis=(3, 4)).mean(axis=(1, 2))
    return out


def test_radial_spectrum_passes_a_right_answer():
    verdict = E.check_radial_spectrum(spectrum_all_correct)
    assert verdict.passed, verdict.message


def _fails_saying(verdict, label: str, says: str) -> None:
    """A FAILED verdict with its shrunk case, the equation it breaks and the message ``says``."""
    assert verdict.status == "FAILED" and "the smallest failing case found" in verdict.message
    assert f"it must satisfy ({label})" in verdict.message
    assert says in verdict.message, verdict.message


@pytest.mark.parametrize(
    "wrong, says",
    [
        (spectrum_not_normalised, "the spectrum of constant frames"),
        (spectrum_of_the_mean_frame, "the spectrum of constant frames"),
        (spectrum_real_part, "the spectrum of the rolled clips"),
        (spectrum_ring_sums, "the energy the rings share out"),
        (spectrum_truncated_radius, "the spectrum has shape"),
        (spectrum_unsigned_frequencies, "the spectrum has shape"),
        (spectrum_energy_in_bin_zero, "against radial_power_spectrum"),
    ],
    ids=by_name,
)
def test_radial_spectrum_fails_a_typical_mistake(wrong, says):
    _fails_saying(E.check_radial_spectrum(wrong), "eq-radial-spectrum", says)


def test_the_mean_frame_fails_only_on_frames_that_differ():
    """Transforming the mean frame is right for a clip of one frame of one channel, so the
    counterexample must have more."""
    verdict = E.check_radial_spectrum(spectrum_of_the_mean_frame)
    assert "1 clip of 1 frame, 1 channel," not in verdict.message, verdict.message


def _log_poisson(counts, mu):
    """log P(N = i) for N ~ Poisson(mu), for the counts i = 0 .. counts - 1."""
    i = np.arange(counts)
    if mu <= 0:
        return np.where(i == 0, 0.0, -np.inf)
    log_factorials = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, counts)))])
    return -mu + i * math.log(mu) - log_factorials


def p_value_correct(
    z, mask, key, norm="ortho", upper=False, central=False, pairs=False, terms=None, half_d=False
):
    transform = np.fft.fftn(z, axes=(0, 2, 3), norm=norm)
    distance = float((np.abs(transform - key) ** 2)[mask].sum()) / (2 if half_d else 1)
    m = int(mask.sum()) // (4 if pairs else 2)
    half = 0.0 if central else float((np.abs(key[mask]) ** 2).sum()) / 2
    top = int(half + 12 * math.sqrt(half + 1) + 30) if terms is None else terms
    below = np.cumsum(np.exp(_log_poisson(m + top, distance / 2)))  # P(Poisson(D / 2) < n + 1)
    tails = np.maximum(1.0 - np.concatenate([[0.0], below])[m : m + top], 0.0)
    p = min(float(np.exp(_log_poisson(top, half)) @ tails), 1.0)
    return 1.0 - p if upper else p


def p_value_all_correct(z, mask, key):
    return p_value_correct(z, mask, key)


def p_value_upper_tail(z, mask, key):
    """P(chi'^2 >= D): plain noise still gives uniform p-values, the key's noise p = 1."""
    return p_value_correct(z, mask, key, upper=True)


def p_value_unnormalised_transform(z, mask, key):
    """np.fft.fftn without norm='ortho': the noise's transform is sqrt(FHW) times too large."""
    return p_value_correct(z, mask, key, norm="backward")


def p_value_central(z, mask, key):
    """The central chi-square: lambda = 0."""
    return p_value_correct(z, mask, key, central=True)


def p_value_pairs_counted_once(z, mask, key):
    """nu = |M| / 2, counting each pair {k, -k} once."""
    return p_value_correct(z, mask, key, pairs=True)


def p_value_half_distance(z, mask, key):
    """D halved, as if each pair {k, -k} counted once in the distance but twice in nu."""
    return p_value_correct(z, mask, key, half_d=True)


def p_value_few_terms(z, mask, key):
    """The Poisson mixture cut after 3 terms."""
    return p_value_correct(z, mask, key, terms=3)


def test_key_p_value_passes_a_right_answer():
    verdict = E.check_key_p_value(p_value_all_correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "wrong, says",
    [
        (p_value_upper_tail, "the p-value of noise carrying the key"),
        (p_value_unnormalised_transform, "the p-value of noise carrying the key"),
        (p_value_central, "the p-values of plain noise (against"),
        (p_value_pairs_counted_once, "the p-values of plain noise (against"),
        (p_value_half_distance, "are not uniform"),
        (p_value_few_terms, "the p-values of plain noise (against"),
    ],
    ids=by_name,
)
def test_key_p_value_fails_a_typical_mistake(wrong, says):
    _fails_saying(E.check_key_p_value(wrong), "eq-key-null", says)


def test_the_uniformity_bound_is_the_dkw_bound_at_one_in_a_million():
    n = E.PLAIN_DRAWS
    assert 2 * math.exp(-2 * n * E.KS_BOUND**2) == pytest.approx(1e-6)


def test_not_done():
    assert_not_done(E.check_radial_spectrum, "Exercise 16.1: the radial power spectrum", "16.1")
    assert_not_done(E.check_key_p_value, "Exercise 16.2: the watermark's p-value", "16.2")
