r"""Find the balls in a clip and follow them from frame to frame.

Works on clips of shape (frames, 3, height, width) in [0, 1] (values outside are clipped, since
generated samples overshoot), with the palette and background of :mod:`minidiff.world.render`.

Detection, per frame
--------------------
A rendered pixel is a mix ``p = b + alpha (c - b)`` of the background ``b`` and a ball colour
``c`` (see the renderer's anti-aliasing). For each palette colour the tracker computes

* the mix fraction ``alpha_c = <p - b, c - b> / |c - b|^2``, the projection of the pixel onto the
  segment from the background to that colour, and
* the residual ``|p - b - clip(alpha_c, 0, 1) (c - b)|``, the pixel's distance from that segment.

A pixel is a *core* pixel of colour ``c`` when the segment of ``c`` is the nearest to it (the
smallest residual), that residual is at most ``MAX_RESIDUAL``, and ``alpha_c > 1/2`` (the ball
covers most of the pixel). Nearest *segment*, not nearest colour: a half-covered cyan pixel is
nearer to green than to cyan or to the background, but it lies on the cyan segment.

Core pixels of one colour that touch (8-connectivity) form a blob; pixels next to a blob with
``alpha_c >= FRINGE_ALPHA`` and a small residual are its *fringe*, the faint anti-aliased rim.
Over core and fringe pixels, with weights ``w = clip(alpha_c, 0, 1)``,

.. math:: \text{area} = \sum w, \qquad \text{centroid} = \frac{\sum w\,(x, y)}{\sum w},

which for a rendered disc are its area :math:`\pi r^2` and its centre, to a small fraction of a
pixel, wherever the disc sits on the pixel grid. A blob's colour is the mean of its fully covered
pixels (``alpha_c >= SOLID_ALPHA``), or of its most covered pixel if none is. Blobs smaller than
``min_area`` (by default ``MIN_AREA_FRACTION`` of the smallest ball of the world) are dropped:
isolated noisy pixels are not balls.

Thresholds, and why: palette colours are at least 0.53 apart and at least 0.5 from the
background, so Gaussian noise of standard deviation 0.1 per channel (a residual of about 0.14,
the noise across the segment's direction) mostly stays under ``MAX_RESIDUAL = 0.25`` and rarely
moves a pixel onto another colour's segment; a lone noisy pixel weighs at most 1 plus a faint
rim, usually under the default ``min_area`` (about 2 px^2 at 16 x 16). Measured on 300 clips of
8 x 16 x 16 with such noise added, every ball is still found in every frame at std 0.1; at 0.15
balls start to drop out of single frames.

Connected components
--------------------
Each core pixel starts labelled with its own flat index. Every round, a pixel takes the smallest
label in its 3 x 3 neighbourhood among pixels of its mask, then follows its label once
("pointer jumping": the label names a pixel of the same component, which may already hold a
smaller one). When nothing changes, each component carries the index of its first pixel. Pointer
jumping makes the number of rounds grow like the logarithm of a component's size rather than its
diameter; all frames and colours are labelled at once.

Tracking
--------
Blobs are linked across frames per colour: each track predicts its next position from its last
two (constant velocity), and predicted tracks and new blobs are paired greedily, nearest first;
an unpaired blob starts a new track. A colour appears once in a scene of this world, so a real
clip gives one track per ball, present in every frame.

>>> from minidiff.world import make_dataset
>>> clips, captions, specs = make_dataset(1, seed=0)
>>> tracks = track(clips[0])
>>> sorted(t.colour for t in tracks) == sorted(specs[0].colours)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy

from .. import backend
from ..world.captions import SIZES
from ..world.render import BACKGROUND, PALETTE

MAX_RESIDUAL = 0.25  # largest distance of a ball pixel from its background-to-colour segment
FRINGE_ALPHA = 0.05  # smallest mix fraction counted in a blob's anti-aliased rim
SOLID_ALPHA = 0.9  # mix fraction of a pixel the ball fully covers, for its colour
MIN_AREA_FRACTION = 0.3  # default smallest blob, as a fraction of the smallest ball's area


@dataclass(frozen=True)
class Blob:
    """One detected ball in one frame: palette ``colour`` name, ``centroid`` (x, y) in pixels
    (the world's coordinates), ``area`` in px^2, number of core ``pixels``, mean ``rgb``."""

    frame: int
    colour: str
    centroid: tuple[float, float]
    area: float
    pixels: int
    rgb: tuple[float, float, float]


@dataclass(frozen=True)
class Detections:
    """The blobs of every frame, and ``support`` (frames, height, width): the pixels that
    belong to some blob, core or fringe."""

    blobs: list[list[Blob]]
    support: numpy.ndarray


@dataclass
class Track:
    """One ball followed through a clip: ``present`` (frames,) and, NaN where absent,
    ``positions`` (frames, 2), ``areas`` (frames,) and ``rgb`` (frames, 3)."""

    colour: str
    present: numpy.ndarray
    positions: numpy.ndarray
    areas: numpy.ndarray
    rgb: numpy.ndarray


def as_clip(clip) -> numpy.ndarray:
    """A clip as a float64 NumPy array (frames, 3, height, width), clipped to [0, 1]."""
    data = clip.data if hasattr(clip, "requires_grad") else clip
    data = numpy.asarray(backend.to_numpy(data), dtype=numpy.float64)
    if data.ndim != 4 or data.shape[1] != 3:
        raise ValueError(f"a clip must have shape (frames, 3, height, width), got {data.shape}")
    return numpy.clip(data, 0.0, 1.0)


def _neighbourhood(planes, fill, reduce):
    """``reduce`` (numpy.minimum or numpy.maximum) over each pixel's 3 x 3 neighbourhood in the
    last two axes, treating pixels outside the frame as ``fill``."""
    height, width = planes.shape[-2:]
    pad = [(0, 0)] * (planes.ndim - 2) + [(1, 1), (1, 1)]
    padded = numpy.pad(planes, pad, constant_values=fill)
    result = planes.copy()
    for di in range(3):
        for dj in range(3):
            reduce(result, padded[..., di : di + height, dj : dj + width], out=result)
    return result


def connected_components(mask: numpy.ndarray) -> numpy.ndarray:
    """8-connected components of a boolean ``mask`` (..., height, width), labelled separately in
    every leading index: each pixel of a component gets the flat index of the component's first
    pixel; pixels outside the mask get ``mask.size``."""
    none = mask.size
    flat_index = numpy.arange(none).reshape(mask.shape)
    labels = numpy.where(mask, flat_index, none)
    while True:
        smallest = numpy.where(mask, _neighbourhood(labels, none, numpy.minimum), none)
        lookup = numpy.append(smallest.ravel(), none)
        jumped = lookup[smallest]
        if numpy.array_equal(jumped, labels):
            return labels
        labels = jumped


def default_min_area(height: int, width: int) -> float:
    """``MIN_AREA_FRACTION`` of the area of the world's smallest ball at this frame size."""
    radius = min(SIZES.values()) * min(height, width)
    return MIN_AREA_FRACTION * numpy.pi * radius * radius


def detect(clip, min_area: float | None = None) -> Detections:
    """The blobs of each frame of ``clip`` (frames, 3, height, width); see the module docstring."""
    pixels = as_clip(clip).transpose(0, 2, 3, 1)  # (frames, height, width, 3)
    frames, height, width, _ = pixels.shape
    if min_area is None:
        min_area = default_min_area(height, width)
    names = list(PALETTE)
    colours = numpy.array([PALETTE[name] for name in names])
    background = numpy.array(BACKGROUND)
    spans = colours - background  # (colours, 3)

    offsets = pixels - background
    alpha = (
        numpy.einsum("fhwc,kc->kfhw", offsets, spans)
        / numpy.sum(spans**2, axis=1)[:, None, None, None]
    )
    on_segment = numpy.clip(alpha, 0.0, 1.0)[..., None] * spans[:, None, None, None, :]
    residual = numpy.linalg.norm(offsets[None] - on_segment, axis=-1)  # (colours, f, h, w)
    nearest = numpy.argmin(residual, axis=0) == numpy.arange(len(names))[:, None, None, None]
    close = residual <= MAX_RESIDUAL
    core = nearest & close & (alpha > 0.5)

    labels = connected_components(core)  # (colours, frames, height, width)
    none = core.size
    # the rim: pixels of no core whose colour leans towards a neighbouring blob's colour
    rim = close & (alpha >= FRINGE_ALPHA) & ~core.any(axis=0)[None]
    grown = _neighbourhood(numpy.where(core, labels, -1), -1, numpy.maximum)
    labels = numpy.where(rim & (grown >= 0), grown, labels)
    member = labels < none

    weight = numpy.where(member, numpy.clip(alpha, 0.0, 1.0), 0.0)
    ids, inverse = numpy.unique(labels[member], return_inverse=True)
    ys, xs = numpy.nonzero(member)[2:]
    w = weight[member]
    area = numpy.bincount(inverse, weights=w, minlength=len(ids))
    sum_x = numpy.bincount(inverse, weights=w * (xs + 0.5), minlength=len(ids))
    sum_y = numpy.bincount(inverse, weights=w * (ys + 0.5), minlength=len(ids))
    core_count = numpy.bincount(inverse, weights=core[member], minlength=len(ids))

    solid = member & (alpha >= SOLID_ALPHA)
    colour_plane, frame_of, _, _ = numpy.unravel_index(ids, labels.shape)
    blobs: list[list[Blob]] = [[] for _ in range(frames)]
    support = numpy.zeros((frames, height, width), dtype=bool)
    for n, label in enumerate(ids):
        if area[n] < min_area:
            continue
        k, f = colour_plane[n], frame_of[n]
        in_blob = labels[k, f] == label
        chosen = in_blob & solid[k, f]
        if not chosen.any():
            chosen = alpha[k, f] == numpy.max(numpy.where(in_blob, alpha[k, f], -numpy.inf))
        rgb = pixels[f][chosen].mean(axis=0)
        support[f] |= in_blob
        blobs[f].append(
            Blob(
                frame=int(f),
                colour=names[k],
                centroid=(float(sum_x[n] / area[n]), float(sum_y[n] / area[n])),
                area=float(area[n]),
                pixels=int(core_count[n]),
                rgb=(float(rgb[0]), float(rgb[1]), float(rgb[2])),
            )
        )
    return Detections(blobs=blobs, support=support)


def link(blobs: list[list[Blob]]) -> list[Track]:
    """Join per-frame blobs into tracks, per colour, nearest predicted position first."""
    frames = len(blobs)
    tracks: list[Track] = []
    for frame, found in enumerate(blobs):
        pairs = []
        for t, trk in enumerate(tracks):
            seen = numpy.flatnonzero(trk.present[:frame])
            if len(seen) == 0:
                continue
            predicted = trk.positions[seen[-1]]
            if len(seen) >= 2:
                step = (trk.positions[seen[-1]] - trk.positions[seen[-2]]) / (seen[-1] - seen[-2])
                predicted = predicted + step * (frame - seen[-1])
            for b, blob in enumerate(found):
                if blob.colour == trk.colour:
                    distance = float(numpy.hypot(*(numpy.array(blob.centroid) - predicted)))
                    pairs.append((distance, t, b))
        used_tracks, used_blobs = set(), set()
        for _, t, b in sorted(pairs):
            if t not in used_tracks and b not in used_blobs:
                used_tracks.add(t)
                used_blobs.add(b)
                _record(tracks[t], found[b])
        for b, blob in enumerate(found):
            if b not in used_blobs:
                tracks.append(
                    Track(
                        colour=blob.colour,
                        present=numpy.zeros(frames, dtype=bool),
                        positions=numpy.full((frames, 2), numpy.nan),
                        areas=numpy.full(frames, numpy.nan),
                        rgb=numpy.full((frames, 3), numpy.nan),
                    )
                )
                _record(tracks[-1], blob)
    return tracks


def _record(track_: Track, blob: Blob) -> None:
    track_.present[blob.frame] = True
    track_.positions[blob.frame] = blob.centroid
    track_.areas[blob.frame] = blob.area
    track_.rgb[blob.frame] = blob.rgb


def track(clip, min_area: float | None = None) -> list[Track]:
    """Detect and link: the tracks of a clip (frames, 3, height, width) in [0, 1]."""
    return link(detect(clip, min_area).blobs)
