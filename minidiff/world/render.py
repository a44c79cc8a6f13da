r"""Draw a trajectory as a clip: anti-aliased discs over a constant dark background.

A clip is a float32 array of shape (frames, 3, height, width) with values in [0, 1], channels in
RGB order; a pixel (row i, column j) is the unit square whose centre is ``(j + 1/2, i + 1/2)`` in
the simulator's pixel coordinates.

Anti-aliasing
-------------
Each pixel is painted with the fraction ``alpha`` of it that the disc covers, estimated from the
distance ``d`` between the pixel centre and the disc centre as a unit-wide ramp across the rim:

.. math:: \alpha = \mathrm{clip}(\rho - d + \tfrac12,\ 0,\ 1).

Summed over the plane, this ramp covers :math:`\pi(\rho^2 + 1/12)` rather than :math:`\pi\rho^2`
(integrate :math:`2\pi s\,\alpha(s)\,ds`: the inner disc gives :math:`\pi(\rho - 1/2)^2`, the
ramp :math:`\pi(\rho - 1/2) + \pi/3`), so the ramp is drawn at :math:`\rho = \sqrt{r^2 - 1/12}`
and the total coverage of a ball of radius ``r`` is its area :math:`\pi r^2`. A pixel whose
centre lies within :math:`\rho - 1/2` of the centre is fully covered and shows the ball's exact
colour. Balls are composited in order, later ones over earlier ones:
``image = (1 - alpha) * image + alpha * colour``.

The palette's colours are far apart in RGB (at least 0.5 from each other and from the background),
so that a tracker can tell them apart in noisy generated clips.

>>> clip = render_clip(numpy.array([[[8.0, 8.0]]]), [3.0], ["red"], height=16, width=16)
>>> clip.shape, clip.dtype, float(clip[0, 0, 8, 8] - clip[0, 0, 0, 0]) > 0.5
((1, 3, 16, 16), dtype('float32'), True)
"""

from __future__ import annotations

import numpy

from .. import backend
from .physics import Trajectory

PALETTE = {
    "red": (0.92, 0.18, 0.16),
    "green": (0.20, 0.80, 0.25),
    "blue": (0.22, 0.40, 1.00),
    "yellow": (0.96, 0.88, 0.18),
    "magenta": (0.90, 0.25, 0.90),
    "cyan": (0.15, 0.92, 0.90),
}
BACKGROUND = (0.08, 0.08, 0.10)


def colour_of(name: str) -> numpy.ndarray:
    """The RGB triple of a palette colour, as float64."""
    if name not in PALETTE:
        raise ValueError(f"unknown colour {name!r}; the palette has {sorted(PALETTE)}")
    return numpy.array(PALETTE[name], dtype=numpy.float64)


def render_clip(positions, radii, colours, height: int, width: int, background=BACKGROUND):
    """Paint discs at ``positions`` (frames, balls, 2) in (x, y) pixels with ``radii`` (balls,)
    and palette ``colours`` (names) over ``background``; returns (frames, 3, height, width)."""
    positions = numpy.asarray(positions, dtype=numpy.float64)
    frames = positions.shape[0]
    clip = numpy.empty((frames, 3, height, width), dtype=numpy.float64)
    clip[:] = numpy.asarray(background, dtype=numpy.float64)[None, :, None, None]
    centres_x = numpy.arange(width) + 0.5
    centres_y = numpy.arange(height) + 0.5
    for ball, (radius, name) in enumerate(zip(radii, colours)):
        ramp_radius = numpy.sqrt(max(radius * radius - 1.0 / 12.0, 0.0))
        dx = centres_x[None, None, :] - positions[:, ball, 0, None, None]
        dy = centres_y[None, :, None] - positions[:, ball, 1, None, None]
        alpha = numpy.clip(ramp_radius - numpy.sqrt(dx * dx + dy * dy) + 0.5, 0.0, 1.0)
        alpha = alpha[:, None]  # (frames, 1, height, width), broadcast over channels
        clip += alpha * (colour_of(name)[None, :, None, None] - clip)
    return clip.astype(numpy.float32)


def render(trajectory: Trajectory, background=BACKGROUND) -> numpy.ndarray:
    """The clip of a simulated trajectory, one pixel per unit of the world's box."""
    world = trajectory.world
    return render_clip(
        trajectory.positions,
        trajectory.radii,
        trajectory.colours,
        height=int(round(world.height)),
        width=int(round(world.width)),
        background=background,
    )


def to_signed(clips):
    """Map pixel values from [0, 1] to [-1, 1], the range the diffusion models work in."""
    return clips * 2.0 - 1.0


def from_signed(samples):
    """Map model samples from [-1, 1] back to [0, 1], clipping what overshoots; NumPy or CuPy
    arrays stay on their device."""
    xp = backend.xp_of(samples) if hasattr(samples, "shape") else numpy
    return xp.clip((xp.asarray(samples) + 1.0) * 0.5, 0.0, 1.0)
