"""The checks of exercise 16 (chapter 16, telling generated clips from real ones).

The notebook ``exercises/src/ex16_detect.md`` asks for the radial power spectrum of every frame of
a clip (16.1, :func:`check_radial_spectrum`, eq-radial-spectrum) and for the p-value with which
the watermark's key is found in a clip's recovered noise (16.2, :func:`check_key_p_value`,
eq-key-distance and eq-key-null). Both are graded against ``minidiff.detect`` and by the
properties the chapter states:

* 16.1: on drawn clips (1 to 3 clips of 1 to 4 frames, 1 to 3 channels, sides 4 to 12, float64
  in [0, 1]) the spectrum must have one bin per integer radius, put all the power of constant
  frames in bin 0, be unchanged when the frames are rolled circularly, share out each frame's
  energy over the rings (Parseval: sum_r |A_r| P(r) is the frame's sum of squares, averaged over
  frames and channels), and equal ``radial_power_spectrum``.
* 16.2: for a drawn key (a region M of low frequencies and its values K) the p-value of noise
  carrying the key must be tiny, the p-values of 64 draws of plain N(0, I) noise must be uniform
  on [0, 1] (a Kolmogorov-Smirnov distance below the bound that plain uniform draws exceed with
  chance 1e-6; the draws are seeded by the case, so a verdict is reproducible), and each must
  equal P(chi'^2_nu(lambda) <= D) as ``minidiff.detect.watermark`` computes it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import strategies as st

from ..detect import features, watermark
from .compare import as_float64, compare, show
from .grading import DEFAULT_EXAMPLES, Mismatch, grade

EQUATIONS = {
    "eq-radial-spectrum": "P(r) = (1 / |A_r|) sum over (u, v) in A_r of |x^(u, v)|^2 / (H W), "
    "A_r = {(u, v) : round(sqrt(u^2 + v^2)) = r} with u, v the signed frequencies, for r = 0 "
    "up to the largest radius; averaged over the clip's frames and channels, so that "
    "sum_r |A_r| P(r) = sum_ij x_ij^2 (Parseval)",
    "eq-key-null": "p = P(chi'^2_nu(lambda) <= D), with D = sum over k in M of "
    "|(F z)_k - K_k|^2 (F the orthonormal 3-D DFT over (t, i, j)), nu = |M| and "
    "lambda = sum over k in M of |K_k|^2; P(chi'^2_2m(lambda) <= x) = sum over j >= 0 of "
    "Poisson(j; lambda / 2) P(Poisson(x / 2) >= m + j)",
}

HINTS = {
    "16.1": [
        "np.fft.fft2 transforms the last two axes of the whole (n, F, C, H, W) array at once. "
        "Entry (u, v) of the transform is the frequency u cycles per frame for u <= H / 2 and "
        "u - H above: the signed frequencies are np.fft.fftfreq(H) * H.",
        "Compute the power |x^|^2 / (H W) of every frequency, average it over the frames and "
        "channels (axes 1 and 2), and label every frequency with its ring "
        "r = np.rint(np.hypot(u[:, None], v[None, :])).astype(int), of shape (H, W).",
        "With bins = r.ravel(), np.bincount(bins) is |A_r| and np.bincount(bins, "
        "weights=power[c].ravel()) the sum of clip c's power over each ring: the spectrum of "
        "clip c is their ratio. Round, do not truncate: the frequency (2, 2), at radius "
        "sqrt(8) = 2.83, belongs to ring 3, where int() would put it in ring 2.",
    ],
    "16.2": [
        "First D: transform z with np.fft.fftn(z, axes=(0, 2, 3), norm='ortho') (time, rows and "
        "columns, every channel on its own; orthonormal so that plain noise keeps unit "
        "variance), and add |transform - key|^2 over the entries where mask is True.",
        "The null's parameters come from the key alone: nu = mask.sum() (each of k and -k "
        "counts, so nu is even, nu = 2 m) and lambda = the sum of |key|^2 over the mask.",
        "p = sum over j of exp(-lambda / 2) (lambda / 2)^j / j! times P(Poisson(D / 2) >= m + j), "
        "and P(Poisson(mu) >= n) = 1 - sum over i < n of exp(-mu) mu^i / i!. Sum j from 0 to "
        "lambda / 2 + 12 sqrt(lambda / 2 + 1) + 30, where the Poisson weights have died out.",
    ],
}

LIBRARY = {
    "16.1": (
        "minidiff.detect.features.radial_power_spectrum",
        "minidiff.detect.features.radial_bins",
    ),
    "16.2": (
        "minidiff.detect.watermark.p_value",
        "minidiff.detect.watermark.key_distance",
        "minidiff.detect.watermark.noncentral_chi2_cdf",
        "minidiff.detect.watermark.log_noncentral_chi2_cdf",
        "minidiff.detect.watermark.log10_p_value",
        "minidiff.detect.watermark.read_noise",
    ),
}

# ============================================================================================
# exercise 16.1: the radial power spectrum
# ============================================================================================


def _clip_cases():
    shapes = st.tuples(
        st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(4, 12),
        st.integers(4, 12),
    )  # fmt: skip
    return st.tuples(shapes, st.integers(0, 2**16), st.integers(1, 11), st.integers(1, 11))


def _clips(case) -> numpy.ndarray:
    shape, seed, _, _ = case
    return numpy.random.default_rng(seed).random(shape).round(3)


def _describe_clips(case) -> str:
    (n, frames, channels, height, width), _, di, dj = case
    return (
        f"{n} clip{'s' if n > 1 else ''} of {frames} frame{'s' if frames > 1 else ''}, "
        f"{channels} channel{'s' if channels > 1 else ''}, H = {height}, W = {width}: "
        f"clips of shape {(n, frames, channels, height, width)}\n"
        f"clips = {show(_clips(case))}\n"
        f"the rolled clips are rolled by ({di % height}, {dj % width}) pixels"
    )


def _spectrum(fn, clips, what: str) -> numpy.ndarray:
    n, height, width = len(clips), *clips.shape[-2:]
    bins = int(features.radial_bins(height, width).max()) + 1
    return as_float64(what, fn(clips.copy()), (n, bins))


def check_radial_spectrum(
    fn: Callable, exercise: str = "16.1", max_examples: int = DEFAULT_EXAMPLES
):
    """``fn(clips)`` returns the radial power spectrum P(r) of float64 ``clips``
    (n, F, C, H, W), averaged over each clip's frames and channels: (n, R + 1), one entry per
    integer radius r = 0 .. R, R the largest radius of a frequency (eq-radial-spectrum).

    In this order: constant frames' power all in bin 0 (H W c^2), the same spectrum for clips
    rolled circularly in i and j, Parseval (sum_r |A_r| P(r) equals the mean over frames and
    channels of the frame's sum of squares, to 1e-9 relative), and ``radial_power_spectrum``'s
    values (float32, so to 1e-6 relative).
    """

    def prop(case):
        clips = _clips(case)
        height, width = clips.shape[-2:]
        counts = numpy.bincount(features.radial_bins(height, width).ravel())
        got = _spectrum(fn, clips, "the spectrum")
        constant = numpy.broadcast_to(clips[..., :1, :1], clips.shape)
        flat = numpy.zeros((len(clips), len(counts)))
        flat[:, 0] = height * width * (clips[..., 0, 0] ** 2).mean(axis=(1, 2))
        compare(
            "the spectrum of constant frames, every pixel of a frame's channel c equal to its "
            "first one (all their power is at frequency (0, 0): bin 0 holds H W c^2, averaged "
            "over frames and channels, the other bins nothing)",
            _spectrum(fn, numpy.ascontiguousarray(constant), "the spectrum of constant frames"),
            flat,
            1e-9,
            1e-9 * height * width,
        )
        _, _, di, dj = case
        rolled = numpy.roll(clips, (di, dj), axis=(3, 4))
        compare(
            "the spectrum of the rolled clips (against the spectrum of the clips: a circular "
            "shift changes only the phase of each frequency, not its power)",
            _spectrum(fn, rolled, "the spectrum of the rolled clips"),
            got,
            1e-9,
            1e-12,
        )
        energy = (clips**2).sum(axis=(3, 4)).mean(axis=(1, 2))
        compare(
            "sum_r |A_r| P(r), the energy the rings share out (against each clip's sum of "
            "squares x_ij^2 over a frame, averaged over its frames and channels: Parseval)",
            got @ counts,
            energy,
            1e-9,
            1e-12,
        )
        compare(
            "the spectrum (against radial_power_spectrum, to its float32 precision)",
            got,
            features.radial_power_spectrum(clips).astype(numpy.float64),
            1e-6,
            1e-9,
        )

    return grade(
        exercise,
        "the radial power spectrum",
        "eq-radial-spectrum",
        prop,
        _clip_cases(),
        statement=EQUATIONS["eq-radial-spectrum"],
        describe=_describe_clips,
        forbid=LIBRARY.get("16.1", ()),
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 16.2: the watermark's p-value
# ============================================================================================

PLAIN_DRAWS = 64
# The Kolmogorov-Smirnov distance that n uniform draws exceed with chance at most 1e-6 (the
# Dvoretzky-Kiefer-Wolfowitz bound 2 exp(-2 n eps^2) = 1e-6).
KS_BOUND = math.sqrt(math.log(2.0 / 1e-6) / (2 * PLAIN_DRAWS))
TINY = 1e-6


@dataclass(frozen=True)
class _KeyCase:
    shape: tuple
    radius: float
    time_radius: int
    seed: int

    def key(self) -> watermark.WatermarkKey:
        return watermark.make_key(self.shape, self.radius, self.time_radius, seed=self.seed)

    def plain(self) -> numpy.ndarray:
        rng = numpy.random.default_rng([self.seed, 16])
        return rng.standard_normal((PLAIN_DRAWS, *self.shape))


def _key_cases():
    shapes = st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(4, 8), st.integers(4, 8))
    return st.builds(
        _KeyCase, shapes, st.sampled_from([1.0, 1.5, 2.0]), st.integers(0, 1),
        st.integers(0, 2**16),
    )  # fmt: skip


def _describe_key(case: _KeyCase) -> str:
    key = case.key()
    return (
        f"noise of shape (F, C, H, W) = {case.shape}; the key's region M holds the frequencies "
        f"with |f_t| <= {case.time_radius} and sqrt(f_i^2 + f_j^2) <= {case.radius} "
        f"(make_key(shape, radius={case.radius}, time_radius={case.time_radius}, "
        f"seed={case.seed}))\n"
        f"nu = |M| = {key.degrees_of_freedom}, lambda = sum |K_k|^2 = {key.noncentrality:.6g}"
    )


def _p_value(fn, z, key, what: str) -> float:
    got = fn(z.copy(), key.mask.copy(), key.values.copy())
    try:
        value = float(numpy.asarray(got, dtype=numpy.float64).reshape(()))
    except (TypeError, ValueError):
        raise Mismatch(f"{what} must be one number, got {type(got).__name__} {got!r}") from None
    if not 0.0 <= value <= 1.0:
        raise Mismatch(f"{what} is {value!r}, but a p-value is a probability, in [0, 1]")
    return value


def check_key_p_value(fn: Callable, exercise: str = "16.2", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(z, mask, key)`` returns the p-value P(chi'^2_nu(lambda) <= D) of the noise ``z``
    (float64 (F, C, H, W)) against the key ``key`` (complex128, zero off ``mask``, the key's
    region: bool (F, C, H, W)), D its distance to the key on the mask (eq-key-distance,
    eq-key-null).

    In this order: noise carrying the key (``watermark_noise``) has p < 1e-6; the p-values of
    64 draws of plain N(0, I) noise are uniform (Kolmogorov-Smirnov distance below
    :data:`KS_BOUND`); each equals the library's to 1e-6 relative, 1e-9 absolute.
    """

    def prop(case: _KeyCase):
        key, plain = case.key(), case.plain()
        keyed = watermark.watermark_noise(key, plain[0])[0]
        p = _p_value(fn, keyed, key, "the p-value of noise carrying the key")
        if not p < TINY:
            distance = float(watermark.key_distance(key, keyed)[0])
            raise Mismatch(
                f"the p-value of noise carrying the key (watermark_noise(key, z) of a plain "
                f"draw z) is {p:.6g}, but it should be tiny (below {TINY:g}): its distance to "
                f"the key on M is D = {distance:.3g}, far closer than plain noise comes, so "
                "almost no plain noise is as close. The p-value is the lower tail, "
                "P(chi'^2 <= D); check too that the transform is orthonormal and over "
                "(t, i, j) only"
            )
        got = numpy.array([_p_value(fn, z, key, "a p-value of plain noise") for z in plain])
        ranked = numpy.sort(got)
        steps = numpy.arange(1, PLAIN_DRAWS + 1) / PLAIN_DRAWS
        distance = float(numpy.maximum(steps - ranked, ranked - (steps - 1 / PLAIN_DRAWS)).max())
        if distance > KS_BOUND:
            deciles = numpy.histogram(got, bins=10, range=(0.0, 1.0))[0]
            raise Mismatch(
                f"the p-values of {PLAIN_DRAWS} draws of plain N(0, I) noise are not uniform "
                f"on [0, 1]: their Kolmogorov-Smirnov distance from the uniform distribution "
                f"is {distance:.3f}, above {KS_BOUND:.3f}, which uniform draws exceed with "
                f"chance 1e-6. How many fall in each tenth of [0, 1]: {deciles.tolist()} "
                f"(about {PLAIN_DRAWS / 10:.1f} each); their median is "
                f"{numpy.median(got):.3g}. Plain noise's D has mean nu + lambda = "
                f"{key.degrees_of_freedom + key.noncentrality:.4g}"
            )
        distances = watermark.key_distance(key, plain)
        compare(
            "the p-values of plain noise (against P(chi'^2_nu(lambda) <= D) for the draws' "
            f"distances D = {show(distances.round(3))})",
            got,
            watermark.p_value(key, distances),
            1e-6,
            1e-9,
        )

    return grade(
        exercise,
        "the watermark's p-value",
        "eq-key-null",
        prop,
        _key_cases(),
        statement=EQUATIONS["eq-key-null"],
        describe=_describe_key,
        forbid=LIBRARY.get("16.2", ()),
        max_examples=max_examples,
    )
