r"""Features of a clip that a student can derive: where its energy sits in spatial and temporal
frequency, and how much it changes from frame to frame.

Clips are float arrays (n, F, C, H, W) in [0, 1] (a single clip (F, C, H, W) is also accepted);
every feature is computed per clip on the host in float64 and returned as float32. Generated
clips differ from rendered ones in exactly these places: a denoiser leaves too little or too much
energy at high spatial frequencies (Corvi et al. 2023 find the traces in the spectrum), and its
frames flicker or move too smoothly, which the temporal spectrum and the frame differences see.
"""

from __future__ import annotations

import numpy

from ..errors import ShapeError

CHANGE_THRESHOLD = 0.1  # a pixel "changed" when it moves by more than this between frames


def _clips(clips, name: str) -> numpy.ndarray:
    """``clips`` as float64 (n, F, C, H, W); a single clip gets a leading axis of one."""
    array = numpy.asarray(clips)
    if array.ndim == 4:
        array = array[None]
    if array.ndim != 5:
        raise ShapeError(
            f"{name}: clips must be (n, frames, channels, height, width) or one clip "
            f"(frames, channels, height, width), got shape {array.shape}"
        )
    if not numpy.issubdtype(array.dtype, numpy.floating):
        raise TypeError(f"{name}: clips must be floats in [0, 1], got dtype {array.dtype}")
    if not numpy.all(numpy.isfinite(array)):
        raise ValueError(f"{name}: clips hold NaN or inf")
    return array.astype(numpy.float64)


def radial_bins(height: int, width: int) -> numpy.ndarray:
    """The integer radius r(u, v) = round(sqrt(u^2 + v^2)) of every 2-D FFT frequency, with u and
    v the signed frequencies in cycles per frame (numpy's fftfreq times the side), shape (H, W)."""
    u = numpy.fft.fftfreq(height) * height
    v = numpy.fft.fftfreq(width) * width
    return numpy.rint(numpy.hypot(u[:, None], v[None, :])).astype(numpy.int64)


def radial_power_spectrum(clips) -> numpy.ndarray:
    r"""The azimuthally averaged power spectrum of every frame (eq-radial-spectrum):

    .. math:: P(r) = \frac{1}{|A_r|} \sum_{(u, v) \in A_r} \frac{|\hat x(u, v)|^2}{HW},
              \qquad A_r = \{(u, v) : \operatorname{round}\sqrt{u^2 + v^2} = r\},

    with :math:`\hat x` the 2-D DFT of one channel of one frame, averaged over the clip's frames
    and channels. Returns (n, R + 1) float32, R = round(sqrt((H/2)^2 + (W/2)^2)). With the 1/HW
    normalisation, Parseval gives :math:`\sum_r |A_r| P(r) = \sum_{ij} x_{ij}^2` per frame.
    """
    array = _clips(clips, "radial_power_spectrum")
    height, width = array.shape[-2:]
    power = numpy.abs(numpy.fft.fft2(array)) ** 2 / (height * width)
    power = power.mean(axis=(1, 2))  # over frames and channels: (n, H, W)
    bins = radial_bins(height, width).ravel()
    counts = numpy.bincount(bins)
    sums = numpy.stack([numpy.bincount(bins, weights=p.ravel()) for p in power])
    return (sums / counts).astype(numpy.float32)


def temporal_power_spectrum(clips) -> numpy.ndarray:
    r"""The temporal power spectrum of a clip (eq-temporal-spectrum): the 1-D DFT along time of
    every pixel's trajectory, its power averaged over pixels and channels,

    .. math:: S(f) = \frac{1}{C H W} \sum_{c, i, j} \frac{|\hat x_{c i j}(f)|^2}{F},
              \qquad \hat x_{cij}(f) = \sum_{t=0}^{F-1} x_{t c i j}\, e^{-2\pi i f t / F},

    for f = 0..F//2 (a real signal's spectrum is symmetric). Returns (n, F//2 + 1) float32. S(0)
    is the power of each pixel's temporal mean; the rest is motion and flicker.
    """
    array = _clips(clips, "temporal_power_spectrum")
    frames = array.shape[1]
    power = numpy.abs(numpy.fft.rfft(array, axis=1)) ** 2 / frames
    return power.mean(axis=(2, 3, 4)).astype(numpy.float32)


def frame_difference_stats(clips, threshold: float = CHANGE_THRESHOLD) -> numpy.ndarray:
    r"""Statistics of the differences between consecutive frames (eq-frame-difference):
    with :math:`d_t = x_{t+1} - x_t` and :math:`m_t = \operatorname{mean}_{cij} |d_t|`,

    .. math:: \Big(\ \bar m = \tfrac{1}{F-1}\textstyle\sum_t m_t,\ \
              \operatorname{std}_t m_t,\ \ \max_t m_t,\ \
              \sqrt{\operatorname{mean}_{tcij} d_t^2},\ \
              \operatorname{mean}_{tcij} \mathbb 1[|d_t| > \tau]\ \Big).

    The mean is how much moves, the spread over t how evenly (flicker makes it uneven), the
    root mean square weighs large jumps, and the last is the fraction of pixels that change by
    more than ``threshold`` (tau). Returns (n, 5) float32; clips need at least two frames.
    """
    array = _clips(clips, "frame_difference_stats")
    if array.shape[1] < 2:
        raise ShapeError(f"frame_difference_stats needs at least 2 frames, got {array.shape[1]}")
    differences = numpy.diff(array, axis=1)
    per_frame = numpy.abs(differences).mean(axis=(2, 3, 4))  # m_t: (n, F - 1)
    stats = [
        per_frame.mean(axis=1),
        per_frame.std(axis=1),
        per_frame.max(axis=1),
        numpy.sqrt((differences**2).mean(axis=(1, 2, 3, 4))),
        (numpy.abs(differences) > threshold).mean(axis=(1, 2, 3, 4)),
    ]
    return numpy.stack(stats, axis=1).astype(numpy.float32)


FLOOR = 1e-8  # keeps the log of an empty band finite


def clip_features(clips) -> numpy.ndarray:
    """The detector's input: log radial spectrum, log temporal spectrum and frame-difference
    statistics side by side, (n, R + 1 + F//2 + 1 + 5) float32."""
    return numpy.concatenate(
        [
            numpy.log(radial_power_spectrum(clips) + FLOOR),
            numpy.log(temporal_power_spectrum(clips) + FLOOR),
            frame_difference_stats(clips),
        ],
        axis=1,
    ).astype(numpy.float32)
