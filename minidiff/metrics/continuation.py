r"""Measuring clips made longer by continuation, at their seams.

A model that makes ``W``-frame clips extends a video window by window: each new window keeps the
last ``C`` frames made so far as its first frames (the *context*) and generates ``W - C`` new
ones (book chapter 14). The first new frame of each window is a *seam*: the frames before it were
fixed when the window was sampled, the ones from it on were generated to agree with them. A seam
is good when nothing about the motion changes there.

Acceleration at a frame
-----------------------
For a ball's track ``p_k`` (pixels) the second difference ``a_k = p_{k+1} - 2 p_k + p_{k-1}`` is
its acceleration in pixels per frame squared. In this world it equals ``(0, g)`` in free flight
(``g`` the world's gravity in px/frame^2, 0 for the "moves" motions) and jumps only at wall
contacts. The *acceleration error* at frame ``k`` is ``|a_k - (0, g)|``, and the ball *jumps*
at ``k`` when that error exceeds ``JUMP`` box sides (0.8 px at 16 x 16: a tracked centroid is good
to a small fraction of a pixel, so only a real kink in the motion gets there). Seams are scored
by the jump rate at the frames on either side of a seam ``s`` (``k = s - 1`` and ``k = s``, the
two second differences that mix old and new frames) and compared with the jump rate at every
other frame, so a model is judged against itself. Real videos of the same scenes
(:func:`reference_video`) give the ceiling: their only jumps are wall bounces, which a long video
meets more often than an 8-frame clip, since the scenes of the world are placed so that a ball
crosses no side wall within one clip but not within two.

Windows across a seam
---------------------
The per-clip metrics of :mod:`minidiff.metrics.video` also run on the ``W``-frame window centred
on each seam, beside the same metrics on the first window (one sampled clip, no seam), so a seam
that breaks permanence or the fitted velocity shows up in the same units as everywhere else.
"""

from __future__ import annotations

import numpy

from ..world.captions import SceneSpec
from .intervals import summarize
from .tracking import detect, link
from .video import evaluate_clip

JUMP = 0.05  # least acceleration error counted as a jump, as a fraction of the box side
WINDOW_METRICS = ("permanence", "colour", "velocity_error", "gravity_error", "residual_px")


def reference_video(spec: SceneSpec, window: int, size: int, total: int) -> numpy.ndarray:
    """The real video of ``spec`` with the time step of a ``window``-frame clip, run on for
    ``total`` frames: (total, 3, size, size) float32 in [0, 1]."""
    return spec.render(window, size, total)


def seam_frames(total: int, window: int, context: int) -> list[int]:
    """The first generated frame of every window after the first, for a video of ``total``
    frames made from windows of ``window`` frames that keep ``context`` frames."""
    if not 0 < context < window:
        raise ValueError(f"context must be between 1 and {window - 1} frames, got {context}")
    return list(range(window, total, window - context))


def acceleration_errors(positions: numpy.ndarray, gravity: float) -> numpy.ndarray:
    """``|a_k - (0, g)|`` for k = 1 .. frames - 2 from positions (frames, 2) in pixels (NaN
    where the track is missing a frame); entry ``k - 1`` belongs to frame ``k``."""
    second = positions[2:] - 2.0 * positions[1:-1] + positions[:-2]
    second[:, 1] -= gravity
    return numpy.linalg.norm(second, axis=1)


def evaluate_video(video, spec: SceneSpec, window: int, context: int) -> dict:
    """Seam report of one long video (frames, 3, H, W) in [0, 1] prompted with ``spec``'s
    caption: ``seam_jumps`` and ``inner_jumps`` (the rate of jumps at the seams and elsewhere,
    over the caption's balls), ``permanence`` over the whole video, and
    ``first`` and ``across`` (the window metrics of :data:`WINDOW_METRICS` on the first window
    and averaged over the windows centred on each seam)."""
    video = numpy.asarray(video)
    total, size = video.shape[0], video.shape[-1]
    seams = seam_frames(total, window, context)
    detections = detect(video)
    tracks = link(detections.blobs)
    counts = numpy.array([len(found) for found in detections.blobs])
    gravity = spec.world(window, size).gravity
    at_seam = numpy.zeros(total - 2, dtype=bool)
    for s in seams:
        for k in (s - 1, s):
            if 1 <= k <= total - 2:
                at_seam[k - 1] = True
    seam, inner = [], []
    for colour in spec.colours:
        candidates = [t for t in tracks if t.colour == colour]
        if not candidates:
            continue
        best = max(candidates, key=lambda t: t.present.sum())
        errors = acceleration_errors(best.positions, gravity)
        measured = ~numpy.isnan(errors)
        jumps = errors > JUMP * size
        seam += list(jumps[at_seam & measured])
        inner += list(jumps[~at_seam & measured])
    windows = []
    for s in seams:
        start = min(max(s - window // 2, 0), total - window)
        windows.append(evaluate_clip(video[start : start + window], spec))
    first = evaluate_clip(video[:window], spec)
    across = {}
    for name in WINDOW_METRICS:
        values = [float(w[name]) for w in windows if w[name] is not None]
        across[name] = float(numpy.mean(values)) if values else None
    return {
        "seam_jumps": float(numpy.mean(seam)) if seam else None,
        "inner_jumps": float(numpy.mean(inner)) if inner else None,
        "permanence": bool(counts[0] > 0 and numpy.all(counts == counts[0])),
        "first": {name: _number(first[name]) for name in WINDOW_METRICS},
        "across": across,
    }


def _number(value):
    return None if value is None else float(value)


def evaluate_videos(videos, specs, window: int, context: int) -> dict:
    """:func:`evaluate_video` averaged over videos: every number as ``{"mean", "count", "low",
    "high"}`` (the count of videos where it could be measured and the 95% bootstrap interval of
    the mean), nested like one video's report."""
    if len(videos) != len(specs):
        raise ValueError(f"{len(videos)} videos but {len(specs)} specs")
    reports = [evaluate_video(v, s, window, context) for v, s in zip(videos, specs)]

    summary = {
        name: summarize(r[name] for r in reports)
        for name in ("seam_jumps", "inner_jumps", "permanence")
    }
    for part in ("first", "across"):
        summary[part] = {name: summarize(r[part][name] for r in reports) for name in WINDOW_METRICS}
    summary["videos"] = len(reports)
    return summary
