"""The features of chapter 16: each equation's defining property."""

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.detect.features import (
    CHANGE_THRESHOLD,
    clip_features,
    frame_difference_stats,
    radial_bins,
    radial_power_spectrum,
    temporal_power_spectrum,
)
from minidiff.errors import ShapeError

SIZE = 16


def _cosine_clip(k: int, axis: str, frames: int = 4) -> numpy.ndarray:
    i = numpy.arange(SIZE)
    wave = 0.5 + 0.25 * numpy.cos(2 * numpy.pi * k * i / SIZE)
    frame = numpy.broadcast_to(wave[:, None] if axis == "rows" else wave[None, :], (SIZE, SIZE))
    return numpy.broadcast_to(frame, (frames, 3, SIZE, SIZE)).astype(numpy.float32)


@settings(max_examples=20)
@given(k=st.integers(1, SIZE // 2 - 1), axis=st.sampled_from(["rows", "columns"]))
def test_eq_radial_spectrum(k, axis):
    """A pure sinusoid of k cycles per frame puts all its non-DC power in the ring r = k."""
    spectrum = radial_power_spectrum(_cosine_clip(k, axis))[0]
    assert spectrum.dtype == numpy.float32
    assert int(numpy.argmax(spectrum[1:])) + 1 == k
    assert numpy.delete(spectrum, [0, k]).max() < 1e-6 * spectrum[k]


@settings(max_examples=20)
@given(seed=st.integers(0, 2**16))
def test_eq_radial_spectrum_parseval(seed):
    """sum_r |A_r| P(r) is each frame's energy sum_ij x_ij^2, averaged over frames, channels."""
    clip = numpy.random.default_rng(seed).random((1, 3, 2, SIZE, SIZE))
    counts = numpy.bincount(radial_bins(SIZE, SIZE).ravel())
    energy = (clip**2).sum(axis=(-2, -1)).mean()
    assert (counts * radial_power_spectrum(clip)[0]).sum() == pytest.approx(energy, rel=1e-5)


@settings(max_examples=20)
@given(f=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_eq_temporal_spectrum(f, seed):
    """A flicker of f cycles per clip peaks at f; Parseval holds along time."""
    frames = 8
    t = numpy.arange(frames)
    pixels = numpy.random.default_rng(seed).random((1, 3, 4, 4))
    clip = (pixels * (1 + numpy.cos(2 * numpy.pi * f * t / frames))[:, None, None, None]) / 2
    spectrum = temporal_power_spectrum(clip[None])[0]
    assert spectrum.shape == (frames // 2 + 1,)
    assert int(numpy.argmax(spectrum[1:])) + 1 == f
    # a real signal's full spectrum is the one-sided one with the inner bins counted twice
    weights = numpy.array([1, 2, 2, 2, 1])
    assert (weights * spectrum).sum() == pytest.approx((clip**2).sum(axis=0).mean(), rel=1e-5)


@given(
    step=st.floats(0.0, 0.15),
    start=st.floats(0.0, 0.2),
    frames=st.integers(2, 6),
    size=st.integers(1, 6),
)
def test_eq_frame_difference(step, start, frames, size):
    """A clip that steps by a constant c every frame (c = 0: a still clip) has mean, peak and rms
    difference c, no spread over frames, and changes everywhere iff c > tau; reversed in time,
    the same statistics."""
    ramp = start + step * numpy.arange(frames)[None, :, None, None, None]
    ramp = (ramp * numpy.ones((1, frames, 3, size, size))).astype(numpy.float32)
    stats = frame_difference_stats(ramp)[0]
    mean, spread, peak, rms, changed = stats
    assert (mean, peak, rms) == pytest.approx((step, step, step), abs=1e-6)
    assert spread == pytest.approx(0.0, abs=1e-6)
    if abs(step - CHANGE_THRESHOLD) > 1e-6:  # float32 rounding decides at the threshold itself
        assert changed == float(step > CHANGE_THRESHOLD)
    assert frame_difference_stats(ramp[:, ::-1].copy())[0] == pytest.approx(stats, abs=1e-6)


def test_clip_features_shape_and_dtype():
    clips = numpy.random.default_rng(0).random((3, 8, 3, SIZE, SIZE)).astype(numpy.float32)
    features = clip_features(clips)
    assert features.shape == (3, radial_bins(SIZE, SIZE).max() + 1 + 5 + 5)
    assert features.dtype == numpy.float32 and numpy.all(numpy.isfinite(features))
    assert numpy.array_equal(clip_features(clips[0]), features[:1])


def test_bad_input_is_a_clear_error():
    with pytest.raises(ShapeError, match="frames, channels"):
        radial_power_spectrum(numpy.zeros((4, 4)))
    with pytest.raises(TypeError, match="floats"):
        temporal_power_spectrum(numpy.zeros((1, 2, 3, 4, 4), dtype=numpy.uint8))
    with pytest.raises(ValueError, match="NaN"):
        frame_difference_stats(numpy.full((1, 2, 3, 4, 4), numpy.nan))
    with pytest.raises(ShapeError, match="2 frames"):
        frame_difference_stats(numpy.zeros((1, 1, 3, 4, 4)))
