"""Which frames of a clip are given: the random frame masks of masked training.

One network learns text-to-video, prediction, continuation and interpolation when each training
clip comes with a mask of *known* frames, drawn from a mix of kinds (the idea of MCVD, Voleti et
al. 2022): known frames enter the network clean and are excluded from the loss (eq-masked-loss),
the rest are noised and predicted. At sampling time the same network then takes any frames it is
given (text-to-video is the mask with no known frame).

Kinds of mask, for F frames (k drawn uniformly from 1 .. F - 1):

=========  ========================================================
``none``   no frame known: text-to-video
``first``  frames 0 .. k-1 known: prediction and continuation
``last``   frames F-k .. F-1 known: what came before
``random`` each frame known with probability 1/2, at least one not
=========  ========================================================
"""

from __future__ import annotations

import numpy

KINDS = ("none", "first", "last", "random")


def check_mix(mix: dict) -> dict:
    """``mix`` (kind -> probability) checked: known kinds, non-negative, summing to 1."""
    unknown = set(mix) - set(KINDS)
    if unknown:
        raise ValueError(f"frame mask kinds {sorted(unknown)} are not among {KINDS}")
    if any(p < 0 for p in mix.values()) or not numpy.isclose(sum(mix.values()), 1.0):
        raise ValueError(f"frame mask probabilities must be >= 0 and sum to 1, got {mix}")
    return dict(mix)


def draw_frame_masks(rng: numpy.random.Generator, batch: int, frames: int, mix: dict):
    """(batch, frames) bool masks of known frames, one kind per clip drawn from ``mix``; every
    mask leaves at least one frame unknown. Drawn on the host from ``rng``."""
    mix = check_mix(mix)
    if frames < 2:
        raise ValueError(f"frame masks need clips of at least 2 frames, got {frames}")
    kinds = rng.choice(len(KINDS), size=batch, p=[mix.get(kind, 0.0) for kind in KINDS])
    counts = rng.integers(1, frames, size=batch)
    coins = rng.random((batch, frames)) < 0.5
    index = numpy.arange(frames)
    masks = numpy.zeros((batch, frames), dtype=bool)
    first, last, random = (kinds == KINDS.index(kind) for kind in ("first", "last", "random"))
    masks[first] = index[None, :] < counts[first, None]
    masks[last] = index[None, :] >= frames - counts[last, None]
    chosen = coins[random]
    full = chosen.all(axis=1)
    chosen[full, rng.integers(0, frames, size=int(full.sum()))] = False
    masks[random] = chosen
    return masks
