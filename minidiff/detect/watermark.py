r"""A Tree-Ring-style watermark (after Wen et al. 2023): a secret key written into the Fourier
transform of the starting noise, and read back by running DDIM backwards from the clip.

**Writing the key.** Let :math:`\mathcal F` be the orthonormal 3-D DFT over (t, i, j) of each
channel of the noise z (shape (F, C, H, W)), and M a set of low frequencies, symmetric under
k -> -k, without the self-conjugate points (k = -k, e.g. the DC term). The key is the transform
of a secret noise draw z_key on M, and the watermarked noise (eq-tree-ring-key) is

.. math:: z_w = \mathcal F^{-1}\big[\mathbb 1_M\, \mathcal F z_{\text{key}}
          + \mathbb 1_{M^c}\, \mathcal F z\big] = P_M z_{\text{key}} + (I - P_M)\, z,

with :math:`P_M` the orthogonal projection onto the span of M's Fourier modes (real, since M is
symmetric). What the key changes: for one key, the |M| coordinates of z along those modes are
fixed instead of random (z_w is Gaussian with mean :math:`P_M z_{\text{key}}` and covariance
:math:`I - P_M`); averaged over keys, z_w is exactly N(0, I), and each pixel keeps unit
variance up to the fraction |M| / (FCHW) of fixed energy.

**Reading it.** Invert DDIM from the clip to an estimate :math:`\hat z` of its starting noise,
rescale it to unit mean square (inversion shrinks the noise it recovers, to a standard deviation
of 0.3-0.75 here, which would pull every clip towards the key, real ones included), and measure
the distance to the key on M (eq-key-distance):

.. math:: D = \sum_{k \in M} |(\mathcal F \hat z)_k - K_k|^2, \qquad K = \mathcal F z_{\text{key}}.

**Its null.** For plain noise z ~ N(0, I), each :math:`(\mathcal F z)_k`, k not self-conjugate,
has independent real and imaginary parts N(0, 1/2), and k and -k are conjugates. So
:math:`2 |(\mathcal F z)_k - K_k|^2` is a noncentral chi-square with 2 degrees of freedom and
noncentrality :math:`2|K_k|^2`, each pair {k, -k} counts twice in D, and (eq-key-null)

.. math:: D \sim \chi'^2_{\nu}(\lambda), \qquad \nu = |M|, \quad \lambda = \sum_{k\in M} |K_k|^2.

A watermarked clip lands near its key (small D); the p-value is the chance that plain noise
comes as close, :math:`p = P(\chi'^2_\nu(\lambda) \le D)` (:func:`noncentral_chi2_cdf`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy

from .. import backend
from ..diffusion import samplers
from ..errors import ShapeError
from ..world import from_signed, to_signed

AXES = (1, 3, 4)  # (t, i, j) of a batch (n, F, C, H, W)


@dataclass(frozen=True)
class WatermarkKey:
    """The key's region ``mask`` (bool (F, C, H, W), symmetric under k -> -k) and its values
    ``values`` (complex128 (F, C, H, W), zero off the mask)."""

    mask: numpy.ndarray
    values: numpy.ndarray

    @property
    def shape(self) -> tuple:
        return self.mask.shape

    @property
    def degrees_of_freedom(self) -> int:
        return int(self.mask.sum())

    @property
    def noncentrality(self) -> float:
        return float((numpy.abs(self.values[self.mask]) ** 2).sum())


def key_region(shape, radius: float = 3.0, time_radius: int = 1) -> numpy.ndarray:
    """M: the frequencies (f_t, f_i, f_j) with |f_t| <= ``time_radius`` and
    sqrt(f_i^2 + f_j^2) <= ``radius`` (signed, in cycles per clip), in every channel, less the
    self-conjugate points (each coordinate 0 or half the side). Bool (F, C, H, W)."""
    if len(shape) != 4:
        raise ShapeError(f"key_region: shape must be (frames, channels, height, width): {shape}")
    frames, channels, height, width = shape
    ft = numpy.fft.fftfreq(frames) * frames
    fi = numpy.fft.fftfreq(height) * height
    fj = numpy.fft.fftfreq(width) * width
    inside = (numpy.abs(ft)[:, None, None] <= time_radius) & (
        numpy.hypot(fi[:, None], fj[None, :])[None] <= radius
    )

    def self_conjugate(f, n):
        return (f == 0) | (2 * numpy.abs(f) == n)

    conjugate = (
        self_conjugate(ft, frames)[:, None, None]
        & self_conjugate(fi, height)[None, :, None]
        & self_conjugate(fj, width)[None, None, :]
    )
    region = inside & ~conjugate
    if not region.any():
        raise ValueError(f"key_region: radius {radius} and time_radius {time_radius} hold no mode")
    return numpy.broadcast_to(region[:, None], (frames, channels, height, width)).copy()


def _fft(z):
    return numpy.fft.fftn(numpy.asarray(z, dtype=numpy.float64), axes=AXES, norm="ortho")


def make_key(shape, radius: float = 3.0, time_radius: int = 1, seed: int = 0) -> WatermarkKey:
    """A secret key for noise of ``shape`` (F, C, H, W): the DFT of a seeded N(0, I) draw on the
    region of :func:`key_region` (eq-tree-ring-key)."""
    mask = key_region(shape, radius, time_radius)
    secret = numpy.random.default_rng([seed, 7]).standard_normal((1, *shape))
    values = numpy.where(mask, _fft(secret)[0], 0.0)
    return WatermarkKey(mask=mask, values=values)


def _batch(key: WatermarkKey, z, name: str) -> numpy.ndarray:
    z = numpy.asarray(backend.to_numpy(z))
    if z.ndim == len(key.shape):
        z = z[None]
    if z.shape[1:] != key.shape:
        raise ShapeError(f"{name}: noise of shape {z.shape[1:]} for a key of shape {key.shape}")
    return z


def watermark_noise(key: WatermarkKey, z) -> numpy.ndarray:
    """Plain noise ``z`` (n, F, C, H, W) with the key written in (eq-tree-ring-key); the dtype
    of ``z`` is kept."""
    z = _batch(key, z, "watermark_noise")
    spectrum = numpy.where(key.mask, key.values, _fft(z))
    return numpy.fft.ifftn(spectrum, axes=AXES, norm="ortho").real.astype(z.dtype)


def key_distance(key: WatermarkKey, z) -> numpy.ndarray:
    """D of every noise in ``z`` (n, F, C, H, W) from the key, on its region (eq-key-distance)."""
    z = _batch(key, z, "key_distance")
    difference = _fft(z) - key.values
    return (numpy.abs(difference) ** 2 * key.mask).sum(axis=(1, 2, 3, 4))


def standardize_noise(z) -> numpy.ndarray:
    """Each noise of ``z`` (n, ...) divided by its root mean square, so it has unit mean
    square as N(0, I) noise has (to within 1/sqrt(size))."""
    z = numpy.asarray(z, dtype=numpy.float64)
    rms = numpy.sqrt((z**2).reshape(len(z), -1).mean(axis=1))
    if numpy.any(rms == 0):
        raise ValueError("standardize_noise: a noise is all zeros")
    return z / rms.reshape((-1,) + (1,) * (z.ndim - 1))


def read_noise(key: WatermarkKey, z):
    """(D, log10 p) of every noise in ``z`` after :func:`standardize_noise`."""
    distances = key_distance(key, standardize_noise(_batch(key, z, "read_noise")))
    return distances, log10_p_value(key, distances)


def _log_poisson_pmf(i, mu: float):
    """log P(N = i) for N ~ Poisson(mu), for an array of counts i = 0, 1, ..., n - 1."""
    if mu <= 0:
        return numpy.where(i == 0, 0.0, -numpy.inf)
    log_factorials = numpy.concatenate([[0.0], numpy.cumsum(numpy.log(numpy.arange(1, i[-1] + 1)))])
    return -mu + i * math.log(mu) - log_factorials[i]


def _log_poisson_tails(mu: float, counts: int):
    """log P(N >= k) for k = 0 .. ``counts`` - 1, N ~ Poisson(mu), as one array: the log of
    the pmf summed from the far upper tail down, accurate far into either tail."""
    top = counts + int(mu + 20 * math.sqrt(mu) + 60)
    pmf = _log_poisson_pmf(numpy.arange(top), mu)
    return numpy.logaddexp.accumulate(pmf[::-1])[::-1][:counts]


def log_noncentral_chi2_cdf(x: float, dof: int, noncentrality: float) -> float:
    r"""log P(X <= x) for X ~ chi'^2_dof(lambda) with an even ``dof`` = 2m (eq-key-null), from
    the Poisson mixture of central chi-squares and the closed form of their even-dof CDFs:

    .. math:: P(X \le x) = \sum_{j \ge 0} e^{-\lambda/2} \frac{(\lambda/2)^j}{j!}\,
              P\big(\chi^2_{2(m+j)} \le x\big), \qquad
              P(\chi^2_{2n} \le x) = P\big(\mathrm{Poisson}(x/2) \ge n\big)."""
    if dof <= 0 or dof % 2:
        raise ValueError(f"dof must be a positive even number, got {dof}")
    if noncentrality < 0:
        raise ValueError(f"noncentrality must be >= 0, got {noncentrality}")
    if x <= 0:
        return -math.inf
    half = noncentrality / 2.0
    top = int(half + 12 * math.sqrt(half + 1.0) + 30)
    weights = _log_poisson_pmf(numpy.arange(top + 1), half)
    tails = _log_poisson_tails(x / 2.0, dof // 2 + top + 1)[dof // 2 :]
    return float(min(numpy.logaddexp.reduce(weights + tails), 0.0))


def noncentral_chi2_cdf(x: float, dof: int, noncentrality: float) -> float:
    """P(X <= x) for X ~ chi'^2_dof(lambda), ``dof`` even (eq-key-null)."""
    return math.exp(log_noncentral_chi2_cdf(x, dof, noncentrality))


def p_value(key: WatermarkKey, distances) -> numpy.ndarray:
    """The chance that plain noise lies as close to the key as each of ``distances`` (eq-key-null):
    small for a watermarked clip, uniform on [0, 1] for plain noise."""
    dof, noncentrality = key.degrees_of_freedom, key.noncentrality
    values = numpy.atleast_1d(numpy.asarray(distances, dtype=numpy.float64))
    return numpy.array([noncentral_chi2_cdf(float(d), dof, noncentrality) for d in values])


def log10_p_value(key: WatermarkKey, distances) -> numpy.ndarray:
    """log10 of :func:`p_value`, finite where the p-value itself underflows."""
    dof, noncentrality = key.degrees_of_freedom, key.noncentrality
    values = numpy.atleast_1d(numpy.asarray(distances, dtype=numpy.float64))
    logs = [log_noncentral_chi2_cdf(float(d), dof, noncentrality) for d in values]
    return numpy.array(logs) / math.log(10.0)


# --- with a text-to-video system --------------------------------------------------------------


def sample_from_noise(system, prompts, noise, steps: int = 25, guidance: float | None = None):
    """Clips (n, F, 3, H, W) in [0, 1] that ``system`` (a TextToVideo) makes for ``prompts``
    from the starting noise ``noise`` (n, F, 3, H, W): its DDIM sampler with guidance, as in
    ``system.sample``, but from the given noise."""
    prompts = list(prompts)
    noise = numpy.asarray(noise, dtype=numpy.float32)
    shape = (len(prompts), system.config.frames, 3, system.config.height, system.config.width)
    if noise.shape != shape:
        raise ShapeError(f"noise of shape {noise.shape} for {len(prompts)} prompts: need {shape}")
    guidance = system.preset.guidance if guidance is None else guidance
    x = samplers.ddim_sample(
        system.guided_model(prompts, guidance),
        system.schedule,
        shape,
        steps=steps,
        parameterization=system.target,
        clip_x0=1.0,
        x_T=backend.to_device(noise, system.encoder.device),
        progress=False,
    )
    return from_signed(backend.to_numpy(x))


def unconditional_model(system, batch: int):
    """``system``'s network with the null caption, as ``(x_t, t) -> prediction``: what the
    detector can run without knowing the prompt."""
    tokens, mask = system.encoder.null_condition(batch, system.encoder.max_length)

    def model(x, t):
        return system.model(x, t, tokens, mask).data

    return model


def invert_clips(system, clips, steps: int = 25, batch: int = 32) -> numpy.ndarray:
    """The starting noise DDIM inversion (eq-ddim-inversion) recovers from ``clips`` in [0, 1],
    run with the null caption and no guidance; float32 (n, F, 3, H, W)."""
    clips = numpy.asarray(clips, dtype=numpy.float32)
    if clips.ndim != 5:
        raise ShapeError(f"invert_clips: clips must be (n, F, 3, H, W), got {clips.shape}")
    out = []
    for start in range(0, len(clips), batch):
        part = backend.to_device(to_signed(clips[start : start + batch]), system.encoder.device)
        noise = samplers.ddim_invert(
            unconditional_model(system, len(part)),
            system.schedule,
            part,
            steps=steps,
            parameterization=system.target,
            progress=False,
        )
        out.append(backend.to_numpy(noise).astype(numpy.float32))
    return numpy.concatenate(out)
