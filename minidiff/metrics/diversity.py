r"""How varied a set of clips is: the spread of what a prompt leaves open.

A caption fixes some properties of a clip and leaves the rest to chance: "a red ball moves
right" fixes the colour and the direction, not the size, the starting point or the speed. A
model that follows prompts should show less variety the more a prompt says, as the world's own
clips do. These measures are computed on a set of clips made for one prompt, from the *main
ball* of each clip (its longest track, see :mod:`minidiff.metrics.tracking`):

* ``colour_entropy``: the entropy in bits of the main ball's colour over the set,
  :math:`H = -\sum_c p_c \log_2 p_c` (eq-colour-entropy), 0 when every clip shows the same
  colour and :math:`\log_2 k` for :math:`k` colours equally often.
* ``size_cv``: the coefficient of variation (std / mean) over the set of the main ball's mean
  area.
* ``start_spread`` and ``motion_spread``: the root-mean-square distance, in box sides, of the
  main ball's first position and of its displacement (last minus first position) from their means
  over the set, :math:`\sqrt{\operatorname{tr} \operatorname{Cov}}` (eq-spread).
* ``pixel_distance``: the mean root-mean-square difference between two clips of the set, over
  all pairs: a measure that needs no tracker.

Clips in which no ball is found are left out of the ball measures and counted in ``found``.
"""

from __future__ import annotations

import itertools

import numpy

from .tracking import as_clip, track


def main_ball(clip) -> dict | None:
    """The longest track of a clip: its colour, mean area, first and last seen position."""
    tracks = track(clip)
    if not tracks:
        return None
    best = max(tracks, key=lambda t: t.present.sum())
    seen = numpy.flatnonzero(best.present)
    return {
        "colour": best.colour,
        "area": float(numpy.nanmean(best.areas)),
        "start": best.positions[seen[0]],
        "end": best.positions[seen[-1]],
    }


def colour_entropy(colours) -> float:
    """Entropy in bits of the empirical distribution of ``colours`` (eq-colour-entropy)."""
    _, counts = numpy.unique(numpy.asarray(colours), return_counts=True)
    p = counts / counts.sum()
    return float(abs((p * numpy.log2(p)).sum()))  # abs: one colour gives 0, not -0


def spread(points) -> float:
    """sqrt(trace of the covariance) of points (n, d): the RMS distance from their mean
    (eq-spread); population covariance, so one point has spread 0."""
    points = numpy.asarray(points, dtype=numpy.float64)
    return float(numpy.sqrt(((points - points.mean(axis=0)) ** 2).sum(axis=1).mean()))


def diversity(clips) -> dict:
    """The measures of the module docstring for clips (n, frames, 3, H, W) in [0, 1]."""
    clips = [as_clip(clip) for clip in clips]
    box = float(clips[0].shape[-1])
    balls = [b for b in (main_ball(clip) for clip in clips) if b is not None]
    pairs = list(itertools.combinations(range(len(clips)), 2))
    distance = [float(numpy.sqrt(((clips[i] - clips[j]) ** 2).mean())) for i, j in pairs]
    result = {"clips": len(clips), "found": len(balls)}
    result["pixel_distance"] = float(numpy.mean(distance)) if distance else 0.0
    if balls:
        areas = numpy.array([b["area"] for b in balls])
        result["colour_entropy"] = colour_entropy([b["colour"] for b in balls])
        result["size_cv"] = float(areas.std() / areas.mean())
        result["start_spread"] = spread([b["start"] for b in balls]) / box
        result["motion_spread"] = spread([b["end"] - b["start"] for b in balls]) / box
    return result
