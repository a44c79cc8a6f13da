r"""Prediction from given frames, measured as PhyWorld does (Kang et al. 2024): a model is shown
the first k frames of a real clip and generates the rest; are the generated frames' velocity and
gravity those of the scene?

The balls are tracked through the whole clip (the given frames help link the tracks), and the
caption's motion is fitted, as in :mod:`minidiff.metrics.video`, to the **generated frames
only**, with their own frame times; so a model that copies the given frames and then stops
scores badly. For each clip:

* ``present`` (rate): every ball of the caption is found in every generated frame;
* ``velocity_error``: :math:`|\hat v - v| / |v|` over the generated frames (moves, and the
  horizontal part of "bounces to ...");
* ``gravity_error``: :math:`|\hat g - g| / g` over the generated frames (gravity motions).

Real clips measured the same way give the floor: the error of the tracker itself.
"""

from __future__ import annotations

from dataclasses import replace

import numpy

from ..world.captions import SceneSpec
from .intervals import summarize
from .tracking import as_clip, track
from .video import ball_physics, caption_tracks

NAMES = ("present", "velocity_error", "gravity_error")


def prediction_physics(clip, spec: SceneSpec, given: int) -> dict:
    """The quantities of the module docstring for one clip whose first ``given`` frames were
    given (None where a quantity does not apply or cannot be fitted)."""
    pixels = as_clip(clip)
    frames, _, _, width = pixels.shape
    if not 0 < given < frames:
        raise ValueError(f"given must be between 1 and {frames - 1} frames, got {given}")
    balls = caption_tracks(track(pixels), spec)
    report = dict.fromkeys(NAMES)
    report["present"] = all(trk is not None and trk.present[given:].all() for trk in balls)
    fits = []
    for trk in balls:
        if trk is None:
            continue
        generated = trk.present.copy()
        generated[:given] = False
        fits.append(ball_physics(replace(trk, present=generated), spec, frames, float(width)))
    for name in ("velocity_error", "gravity_error"):
        values = [fit[name] for fit in fits if name in fit]
        if values:
            report[name] = float(numpy.mean(values))
    return report


def evaluate_predictions(clips, specs, given: int) -> dict:
    """:func:`prediction_physics` over clips: ``{"clips": n, name: {"mean", "count", "low",
    "high"}}`` with 95% bootstrap intervals (eq-bootstrap), and under ``"values"`` each
    quantity's per-clip values (None where it does not apply), for ratios between splits."""
    if len(clips) != len(specs):
        raise ValueError(f"{len(clips)} clips but {len(specs)} specs")
    reports = [prediction_physics(clip, spec, given) for clip, spec in zip(clips, specs)]
    summary = {"clips": len(reports), **{n: summarize(r[n] for r in reports) for n in NAMES}}
    summary["values"] = {n: [r[n] for r in reports] for n in NAMES}
    return summary
