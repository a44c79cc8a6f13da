"""Edits an adversary makes to a generated clip to hide where it came from, the same for every
detector: each maps clips (n, F, 3, H, W) in [0, 1] to clips of the same shape in [0, 1].

* ``noise``: add N(0, 0.05^2) to every pixel;
* ``blur``: the separable [1, 2, 1] / 4 kernel along rows and columns of every frame;
* ``crop``: keep the central 3/4 of every frame and resize it back (bilinear);
* ``flip``: mirror every frame left to right;
* ``frame_drop``: drop one frame and repeat its predecessor in its place;
* ``frame_reorder``: swap two adjacent frames;
* ``gif``: write the clip as a GIF (a 256-colour palette per frame, through imageio) and read it
  back;
* ``renoise``: noise the clip to t = 300 with the forward process (eq-closed-form) and denoise it
  with the model itself (unguided DDIM), a regeneration that keeps the content.
"""

from __future__ import annotations

import io as _io
import math

import imageio.v3 as iio
import numpy

from .. import backend
from ..diffusion import samplers
from ..errors import ShapeError
from ..world import from_signed, to_signed

NOISE_STD = 0.05
CROP = 0.75
RENOISE_T = 300


def _check(clips) -> numpy.ndarray:
    clips = numpy.asarray(clips)
    if clips.ndim != 5 or clips.shape[2] != 3:
        raise ShapeError(f"attacks take clips (n, F, 3, H, W), got shape {clips.shape}")
    return clips


def add_noise(clips, seed: int = 0, std: float = NOISE_STD):
    rng = numpy.random.default_rng([seed, 1])
    noisy = clips + std * rng.standard_normal(clips.shape)
    return numpy.clip(noisy, 0.0, 1.0).astype(clips.dtype)


def blur(clips, seed: int = 0):
    padded = numpy.pad(clips, [(0, 0)] * 3 + [(1, 1), (1, 1)], mode="edge")
    rows = (padded[..., :-2, :] + 2 * padded[..., 1:-1, :] + padded[..., 2:, :]) / 4
    return ((rows[..., :-2] + 2 * rows[..., 1:-1] + rows[..., 2:]) / 4).astype(clips.dtype)


def resize(frames, height: int, width: int):
    """Bilinear resize of the last two axes, pixel centres aligned (half-pixel convention)."""

    def weights(size_in, size_out):
        position = (numpy.arange(size_out) + 0.5) * size_in / size_out - 0.5
        position = numpy.clip(position, 0, size_in - 1)
        low = numpy.floor(position).astype(numpy.int64)
        high = numpy.minimum(low + 1, size_in - 1)
        return low, high, position - low

    low_i, high_i, a = weights(frames.shape[-2], height)
    low_j, high_j, b = weights(frames.shape[-1], width)
    rows = frames[..., low_i, :] * (1 - a)[:, None] + frames[..., high_i, :] * a[:, None]
    return rows[..., low_j] * (1 - b) + rows[..., high_j] * b


def crop_resize(clips, seed: int = 0, keep: float = CROP):
    height, width = clips.shape[-2:]
    h, w = max(1, round(height * keep)), max(1, round(width * keep))
    top, left = (height - h) // 2, (width - w) // 2
    cropped = clips[..., top : top + h, left : left + w]
    return numpy.clip(resize(cropped, height, width), 0.0, 1.0).astype(clips.dtype)


def flip(clips, seed: int = 0):
    return clips[..., ::-1].copy()


def frame_drop(clips, seed: int = 0):
    rng = numpy.random.default_rng([seed, 2])
    out = clips.copy()
    for index in range(len(clips)):
        dropped = int(rng.integers(1, clips.shape[1]))
        out[index, dropped] = out[index, dropped - 1]
    return out


def frame_reorder(clips, seed: int = 0):
    rng = numpy.random.default_rng([seed, 3])
    out = clips.copy()
    for index in range(len(clips)):
        first = int(rng.integers(0, clips.shape[1] - 1))
        out[index, [first, first + 1]] = out[index, [first + 1, first]]
    return out


def gif_round_trip(clips, seed: int = 0):
    out = numpy.empty_like(clips)
    for index, clip in enumerate(clips):
        frames = numpy.rint(numpy.clip(clip, 0, 1) * 255).astype(numpy.uint8).transpose(0, 2, 3, 1)
        buffer = _io.BytesIO()
        iio.imwrite(buffer, frames, extension=".gif")
        back = iio.imread(buffer.getvalue(), extension=".gif", index=None)
        out[index] = back[..., :3].transpose(0, 3, 1, 2).astype(clips.dtype) / 255.0
    return out


def renoise(clips, seed: int = 0, system=None, t: int = RENOISE_T, steps: int = 25):
    """Noise to ``t`` (eq-closed-form), then DDIM with ``system``'s unguided network on the
    timesteps of a ``steps``-step schedule that lie at or below ``t``."""
    if system is None:
        raise ValueError("the renoise attack needs the text-to-video system (system=...)")
    from .watermark import unconditional_model

    schedule = system.schedule
    rng = numpy.random.default_rng([seed, 4])
    a = schedule.alpha_bars[t]
    x = math.sqrt(a) * to_signed(clips) + math.sqrt(1 - a) * rng.standard_normal(clips.shape)
    x = x.astype(numpy.float32)
    seq = samplers.ddim_timesteps(len(schedule), steps)
    seq = numpy.unique(numpy.concatenate([seq[seq < t], [t]]))
    out = []
    for start in range(0, len(x), 32):
        part = backend.to_device(x[start : start + 32], system.encoder.device)
        denoised = samplers.ddim_sample(
            unconditional_model(system, len(part)),
            schedule,
            part.shape,
            timesteps=seq,
            parameterization=system.target,
            clip_x0=1.0,
            x_T=part,
            progress=False,
        )
        out.append(from_signed(backend.to_numpy(denoised)))
    return numpy.concatenate(out).astype(clips.dtype)


ATTACKS = {
    "noise": add_noise,
    "blur": blur,
    "crop": crop_resize,
    "flip": flip,
    "frame_drop": frame_drop,
    "frame_reorder": frame_reorder,
    "gif": gif_round_trip,
    "renoise": renoise,
}


def apply_attack(name: str, clips, seed: int = 0, system=None):
    """``clips`` after attack ``name`` (``"none"`` leaves them as they are)."""
    clips = _check(clips)
    if name == "none":
        return clips
    if name not in ATTACKS:
        raise ValueError(f"unknown attack {name!r}; known: none, {', '.join(ATTACKS)}")
    if name == "renoise":
        return renoise(clips, seed, system=system)
    return ATTACKS[name](clips, seed)
