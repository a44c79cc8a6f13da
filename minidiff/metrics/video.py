r"""Does a clip show what its caption asks for, consistently, and with this world's physics?

Each clip is measured against the :class:`~minidiff.world.captions.SceneSpec` it was made or
prompted from, through the tracks of :mod:`minidiff.metrics.tracking`. Positions are in pixels
and times in frames, the simulator's units, so fitted velocities and accelerations compare
directly with the world's. A ball of the caption is matched to the longest track of its colour.

Prompt fidelity (each a yes or no per clip, reported as a rate)
---------------------------------------------------------------
* ``colour``: the colours with a track present in at least half the frames are exactly the
  caption's colours.
* ``count``: the median number of blobs per frame equals the number of balls in the caption.
* ``direction``: every ball travels the caption's way. With ``d`` the displacement from its first
  to its last seen position, ``u`` the caption's direction and ``L`` the box side: "moves ..."
  needs ``d . u >= TRAVEL L`` and ``d . u >= |d x u|`` (within 45 degrees of ``u``); "bounces to
  the left/right" needs ``d_x u_x >= TRAVEL L``; "falls and bounces" needs the ball to sink by
  ``TRAVEL L`` at some frame and to drift sideways less than ``TRAVEL L``.
* ``bounce``: a bounce is seen (below) exactly when the caption says the ball bounces.
* ``all``: the four together.

Bounces are read from the vertical second difference
``a_k = y_{k+1} - 2 y_k + y_{k-1}``: in free flight it is the constant ``g``, and across a floor
contact it drops by about ``(1 + e) |v|``; a bounce is a run of ``k`` with
``a_k < -BOUNCE_DROP L``.

Consistency
-----------
* ``permanence`` (rate): the number of blobs is the same, and not zero, in every frame.
* ``size_cv``: the coefficient of variation std/mean of a ball's area over the frames (0 for a
  rigid ball), averaged over the caption's balls.
* ``colour_std``: the standard deviation over frames of a ball's colour, averaged over channels
  and balls.
* ``flicker``: the standard deviation over time of pixels that no blob ever touches (nor their
  neighbours), averaged over those pixels and channels; 0 for a still background.

Physics (for balls seen in at least ``MIN_FIT_FRAMES`` frames)
--------------------------------------------------------------
The model of the caption's motion is fitted by least squares to the track.

* "moves ...": constant velocity, ``p(t) = p_0 + v t``.
* Gravity motions: ``x(t) = x_0 + v_x t``, and between bounces ``y(t) = a t^2 + b_j t + c_j``
  with one curvature ``a`` shared by all flight segments ``j``; the estimated gravity is
  :math:`\hat g = 2a`. A bounce falls between two frames, but which two is ambiguous from the
  second differences, so every candidate split is fitted and the smallest residual wins.

From the fits:

* ``residual_px``: the root-mean-square distance between the track and the fit, in pixels.
* ``velocity_error``: :math:`|\hat v - v| / |v|` with ``v`` the spec's velocity (the whole vector
  for "moves", the horizontal part for "bounces to ..."; none for "falls and bounces").
* ``gravity_error``: :math:`|\hat g - g| / g`, and ``gravity_ratio``: :math:`\hat g / g`.
* At each bounce between segments ``j`` and ``j+1`` (each with at least two frames): the contact
  time ``t*`` where the two parabolas meet, ``(b_j - b_{j+1}) t* = c_{j+1} - c_j``, the vertical
  velocities ``v^- = 2a t* + b_j`` and ``v^+ = 2a t* + b_{j+1}``; ``reflection_flip`` (rate) is
  ``v^- > 0 > v^+`` (down, then up) and ``restitution_error`` is :math:`|-v^+/v^- - e|`.

:func:`evaluate_clips` averages each quantity over the clips where it applies and reports that
number of clips beside it and its 95% bootstrap interval, as ``{"mean", "count", "low",
"high"}`` (``mean`` is None when no clip applies), so a rate over 3 clips is not mistaken for one
over 300.
"""

from __future__ import annotations

import itertools

import numpy

from ..world.captions import DIRECTIONS, GRAVITY_MOTIONS, SceneSpec
from .intervals import summarize
from .tracking import Track, as_clip, detect, link

TRAVEL = 0.1  # least travel, as a fraction of the box side, that counts as moving
BOUNCE_DROP = 0.05  # least drop of the vertical second difference at a bounce, box fraction
MIN_FIT_FRAMES = 4  # fewest frames a track needs for a physics fit

GROUPS = {
    "fidelity": ("colour", "count", "direction", "bounce", "all"),
    "consistency": ("permanence", "size_cv", "colour_std", "flicker"),
    "physics": (
        "residual_px",
        "velocity_error",
        "gravity_error",
        "gravity_ratio",
        "restitution_error",
        "reflection_flip",
    ),
}


def bounce_runs(y: numpy.ndarray, box: float) -> list[list[int]]:
    """Runs of frames ``k`` whose second difference drops below ``-BOUNCE_DROP box``."""
    second = y[2:] - 2.0 * y[1:-1] + y[:-2]
    frames = [k + 1 for k in numpy.flatnonzero(second < -BOUNCE_DROP * box)]
    runs: list[list[int]] = []
    for k in frames:
        if runs and k == runs[-1][-1] + 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    return runs


def _fit_flight(t, y, boundaries):
    """Least-squares fit of ``y = a t^2 + b_j t + c_j`` with segment ``j`` starting at index
    ``boundaries[j-1]``; returns (a, [(b_j, c_j)], residuals)."""
    segment = numpy.searchsorted(numpy.asarray(boundaries), numpy.arange(len(t)), side="right")
    count = len(boundaries) + 1
    design = numpy.zeros((len(t), 1 + 2 * count))
    design[:, 0] = t * t
    design[numpy.arange(len(t)), 1 + 2 * segment] = t
    design[numpy.arange(len(t)), 2 + 2 * segment] = 1.0
    solution = numpy.linalg.lstsq(design, y, rcond=None)[0]
    lines = [(solution[1 + 2 * j], solution[2 + 2 * j]) for j in range(count)]
    return solution[0], lines, y - design @ solution, segment


def _fit_line(t, values):
    """Least-squares ``values = p0 + v t`` per column; returns (v, residuals)."""
    design = numpy.stack([numpy.ones_like(t), t], axis=1)
    solution = numpy.linalg.lstsq(design, values, rcond=None)[0]
    return solution[1], values - design @ solution


def ball_physics(trk: Track, spec: SceneSpec, frames: int, box: float) -> dict:
    """Fit the caption's motion to one ball's track; see the module docstring."""
    seen = numpy.flatnonzero(trk.present)
    if len(seen) < MIN_FIT_FRAMES:
        return {}
    t = seen.astype(numpy.float64)
    xy = trk.positions[seen]
    true_velocity = spec.velocity(frames, int(box))
    result: dict = {}
    if spec.motion not in GRAVITY_MOTIONS:
        velocity, residual = _fit_line(t, xy)
        result["residual_px"] = float(numpy.sqrt(numpy.mean(numpy.sum(residual**2, axis=1))))
        speed = numpy.linalg.norm(true_velocity)
        if speed > 0.0:
            result["velocity_error"] = float(numpy.linalg.norm(velocity - true_velocity) / speed)
        return result
    vx, x_residual = _fit_line(t, xy[:, 0])
    if true_velocity[0] != 0.0:
        result["velocity_error"] = float(abs(vx - true_velocity[0]) / abs(true_velocity[0]))
    # each run of low second differences is one bounce, and it splits the track after one of
    # the frames k - 1 .. k_last of the run: try every choice, keep the best fit
    runs = bounce_runs(xy[:, 1], box)
    choices = [range(run[0], run[-1] + 2) for run in runs]
    best = None
    for boundaries in itertools.product(*choices):
        if any(b <= a for a, b in zip(boundaries, boundaries[1:])):
            continue
        fit = _fit_flight(t, xy[:, 1], list(boundaries))
        if best is None or numpy.sum(fit[2] ** 2) < numpy.sum(best[2] ** 2):
            best = fit
    curvature, lines, y_residual, segment = best
    squared = numpy.mean(x_residual**2 + y_residual**2)
    result["residual_px"] = float(numpy.sqrt(squared))
    gravity = spec.world(frames, int(box)).gravity
    if gravity > 0.0:
        result["gravity_error"] = float(abs(2.0 * curvature - gravity) / gravity)
        result["gravity_ratio"] = float(2.0 * curvature / gravity)
    flips, errors = [], []
    sizes = numpy.bincount(segment, minlength=len(lines))
    for j in range(len(lines) - 1):
        (b_before, c_before), (b_after, c_after) = lines[j], lines[j + 1]
        if sizes[j] < 2 or sizes[j + 1] < 2 or b_before == b_after:
            continue
        contact = (c_after - c_before) / (b_before - b_after)
        v_before = 2.0 * curvature * contact + b_before
        v_after = 2.0 * curvature * contact + b_after
        flips.append(v_before > 0.0 > v_after)
        if v_before != 0.0:
            errors.append(abs(-v_after / v_before - spec.restitution))
    if flips:
        result["reflection_flip"] = float(numpy.mean(flips))
    if errors:
        result["restitution_error"] = float(numpy.mean(errors))
    return result


def _direction_ok(trk: Track, motion: str, box: float) -> bool:
    seen = numpy.flatnonzero(trk.present)
    if len(seen) < 2:
        return False
    xy = trk.positions[seen]
    d = xy[-1] - xy[0]
    u = numpy.array(DIRECTIONS[motion])
    least = TRAVEL * box
    if motion.startswith("moves"):
        along = float(d @ u)
        across = abs(float(d[0] * u[1] - d[1] * u[0]))
        return along >= least and along >= across
    if motion.startswith("bounces"):
        return float(d[0] * u[0]) >= least
    sink = float(numpy.max(xy[:, 1]) - xy[0, 1])
    return sink >= least and abs(float(d[0])) < least


def caption_tracks(tracks: list[Track], spec: SceneSpec) -> list[Track | None]:
    """For each ball of the caption, the longest track of its colour (None if there is none)."""
    balls = []
    for colour in spec.colours:
        candidates = [trk for trk in tracks if trk.colour == colour]
        balls.append(max(candidates, key=lambda trk: trk.present.sum()) if candidates else None)
    return balls


def evaluate_clip(clip, spec: SceneSpec) -> dict:
    """Every per-clip quantity of the module docstring, flat: name -> number, bool or None
    (None where it does not apply or cannot be measured)."""
    pixels = as_clip(clip)
    frames, _, height, width = pixels.shape
    box = float(width)
    detections = detect(pixels)
    tracks = link(detections.blobs)
    counts = numpy.array([len(found) for found in detections.blobs])
    report: dict = dict.fromkeys(name for names in GROUPS.values() for name in names)

    lasting = {trk.colour for trk in tracks if trk.present.sum() >= frames / 2}
    report["colour"] = lasting == set(spec.colours)
    report["count"] = bool(round(float(numpy.median(counts))) == spec.count)
    balls = caption_tracks(tracks, spec)
    report["direction"] = all(
        trk is not None and _direction_ok(trk, spec.motion, box) for trk in balls
    )
    bounces = "bounce" in spec.motion
    report["bounce"] = all(
        trk is not None and (len(bounce_runs(trk.positions[trk.present][:, 1], box)) > 0) == bounces
        for trk in balls
    )
    report["all"] = all(report[name] for name in ("colour", "count", "direction", "bounce"))

    report["permanence"] = bool(counts[0] > 0 and numpy.all(counts == counts[0]))
    found = [trk for trk in balls if trk is not None and trk.present.sum() >= 2]
    if found:
        report["size_cv"] = float(
            numpy.mean([numpy.nanstd(t.areas) / numpy.nanmean(t.areas) for t in found])
        )
        report["colour_std"] = float(
            numpy.mean([numpy.mean(numpy.nanstd(t.rgb, axis=0)) for t in found])
        )
    background = ~_grow(detections.support.any(axis=0))
    if background.any():
        report["flicker"] = float(numpy.mean(numpy.std(pixels, axis=0)[:, background]))

    fits = [ball_physics(trk, spec, frames, box) for trk in balls if trk is not None]
    for name in GROUPS["physics"]:
        values = [fit[name] for fit in fits if name in fit]
        if values:
            report[name] = float(numpy.mean(values))
    return report


def _grow(mask: numpy.ndarray) -> numpy.ndarray:
    """``mask`` dilated by one pixel (8-neighbourhood)."""
    padded = numpy.pad(mask, 1)
    height, width = mask.shape
    grown = numpy.zeros_like(mask)
    for di in range(3):
        for dj in range(3):
            grown |= padded[di : di + height, dj : dj + width]
    return grown


def evaluate_clips(clips, specs) -> dict:
    """Aggregate :func:`evaluate_clip` over clips (n, frames, 3, height, width) in [0, 1] and
    their specs: ``{"clips": n, group: {name: {"mean", "count", "low", "high"}}}``, with the
    groups "fidelity", "consistency" and "physics": each number's mean over the clips where it
    applies, their count and the 95% bootstrap interval of the mean (eq-bootstrap). Plain
    Python numbers: JSON-able."""
    if len(clips) != len(specs):
        raise ValueError(f"{len(clips)} clips but {len(specs)} specs")
    reports = [evaluate_clip(clip, spec) for clip, spec in zip(clips, specs)]
    summary: dict = {"clips": len(reports)}
    for group, names in GROUPS.items():
        summary[group] = {name: summarize(r[name] for r in reports) for name in names}
    return summary
