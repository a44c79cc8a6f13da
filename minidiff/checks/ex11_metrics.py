"""The checks of exercise 11 (chapter 11, a physics world): reading clips back.

The notebook ``exercises/src/ex11_metrics.md`` asks for the measurements the metrics of
``minidiff.metrics`` are built on: a blob's weighted area and centroid
(:func:`check_blob_measure`: exact against a reference on drawn mix fractions, then the true
centre and area of discs drawn by ``minidiff.world.render.render_clip``), the least-squares
velocity of a straight track (:func:`check_velocity_fit`: exact on lines, then
``numpy.linalg.lstsq`` on noisy tracks) and gravity from one flight (:func:`check_gravity_fit`:
exact on parabolas, then ``lstsq`` on noisy heights; eq-gravity-fit).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..autograd.tensor import unwrap
from ..world.render import render_clip
from . import strategies as S
from .compare import as_float64, compare, show
from .grading import DEFAULT_EXAMPLES, Mismatch, Verdict, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "11.1": [
        (
            "Each pixel covers a fraction alpha of the blob; the area is the total coverage and "
            "the centroid the coverage-weighted mean of pixel centres."
        ),
        (
            "Pixel (row, column) has its centre at (column + 0.5, row + 0.5); build those with "
            "numpy.indices or arange."
        ),
        (
            "area = alpha.sum(); centroid = ((alpha * (cols + 0.5)).sum(), (alpha * (rows + "
            "0.5)).sum()) / area."
        ),
    ],
    "11.2": [
        "Fit p = p0 + v t by least squares, separately for x and y.",
        "The least-squares slope is cov(t, p) / var(t).",
        (
            "tc = t - t.mean(); v = (tc[:, None] * (positions - positions.mean(0))).sum(0) / (tc *"
            " tc).sum()."
        ),
    ],
    "11.3": [
        "Fit y = a t^2 + b t + c by least squares; the acceleration is the second derivative.",
        "Build the design matrix with columns t^2, t, 1 and solve with numpy.linalg.lstsq.",
        (
            "a = numpy.linalg.lstsq(numpy.stack([t*t, t, numpy.ones_like(t)], 1), y, "
            "rcond=None)[0][0]; return 2 * a."
        ),
    ],
}

# The equations exercise 11 checks, as chapter 11 states them (shown when a check fails).
EQUATIONS = {
    "blob-measure": "with w = clip(alpha, 0, 1): area = sum(w) and centroid (x, y) = "
    "sum(w * (column + 0.5, row + 0.5)) / sum(w); pixel (row i, column j) covers "
    "[j, j+1) x [i, i+1), so its centre is (j + 0.5, i + 0.5)",
    "velocity-fit": "v is the slope of the least-squares line p(t) = p0 + v t, one per "
    "coordinate: v = sum((t - mean t)(p - mean p)) / sum((t - mean t)^2)",
    "eq-gravity-fit": "g_hat = 2a, with a the t^2 coefficient of the least-squares parabola "
    "y = a t^2 + b t + c through the heights",
}


def _as_number(what: str, got) -> float:
    got = unwrap(got)
    if numpy.ndim(got) != 0:
        raise Mismatch(f"{what} should be one number, but it has shape {numpy.shape(got)}")
    try:
        return float(got)
    except (TypeError, ValueError):
        raise Mismatch(f"{what} should be a number, not a {type(got).__name__}") from None


# ============================================================================================
# exercise 11.1: the weighted blob measurement
# ============================================================================================


def _blob_reference(alpha: numpy.ndarray) -> tuple[float, numpy.ndarray]:
    """Area sum(w) and centroid sum(w (column + 1/2, row + 1/2)) / sum(w), w = clip(alpha)."""
    w = numpy.clip(alpha, 0.0, 1.0)
    rows, columns = numpy.indices(alpha.shape)
    area = float(w.sum())
    centroid = numpy.array([(w * (columns + 0.5)).sum(), (w * (rows + 0.5)).sum()]) / area
    return area, centroid


@dataclass(frozen=True)
class _Disc:
    radius: float
    centre: tuple[float, float]
    alpha: numpy.ndarray


@dataclass(frozen=True)
class _BlobCase:
    alpha: numpy.ndarray
    disc: _Disc | None  # checked after alpha, when there is one


@st.composite
def _blob_cases(draw):
    height, width = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    # Empty pixels, full ones and partial ones; a little outside [0, 1] too, as a noisy
    # generated clip gives.
    value = st.sampled_from([0.0, 1.0]) | S.floats(-0.3, 1.3)
    alpha = draw(hnp.arrays(numpy.float64, (height, width), elements=value))
    # The blob has at least one pixel it covers, so that its area is not zero.
    i, j = draw(st.integers(0, height - 1)), draw(st.integers(0, width - 1))
    alpha[i, j] = draw(S.floats(0.25, 1.0))
    return _BlobCase(alpha, draw(st.none() | _rendered_discs()))


@st.composite
def _rendered_discs(draw):
    size = 16
    radius = draw(S.floats(1.5, 4.0))
    x = draw(S.floats(radius + 1.0, size - radius - 1.0))
    y = draw(S.floats(radius + 1.0, size - radius - 1.0))
    # One blue ball over a black background: the blue channel (1.0 in the palette) is alpha.
    clip = render_clip([[(x, y)]], [radius], ["blue"], size, size, background=(0.0, 0.0, 0.0))
    return _Disc(radius, (x, y), clip[0, 2].astype(numpy.float64))


def _describe_blob(case: _BlobCase) -> str:
    text = f"alpha = {show(case.alpha)}"
    if case.disc is not None:
        x, y = case.disc.centre
        text += (
            f"\nthen a disc of radius {case.disc.radius!r} centred at (x, y) = ({x!r}, {y!r}), "
            f"drawn by render_clip on a 16 x 16 frame: alpha = {show(case.disc.alpha)}"
        )
    return text


def _measured(got) -> tuple[float, numpy.ndarray]:
    if not isinstance(got, tuple | list) or len(got) != 2:
        raise Mismatch(
            f"it should return two things, (area, centroid), as a tuple; it returned "
            f"{type(got).__name__}"
            + (f" of length {len(got)}" if isinstance(got, tuple | list) else "")
        )
    area = _as_number("the area", got[0])
    centroid = got[1]
    if isinstance(centroid, tuple | list):
        centroid = numpy.array(centroid, dtype=numpy.float64)
    return area, as_float64("the centroid", centroid, (2,))


# A rendered disc of radius 1.5 to 4 is measured within 0.055 px and 5.2% of its area, wherever
# it sits on the grid (the linear ramp of the coverage is not the exact covered fraction).
DISC_CENTRE_PX, DISC_AREA_FRACTION = 0.06, 0.06


def check_blob_measure(
    fn: Callable, exercise: str = "11.1", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(alpha)`` returns ``(area, centroid)`` of the blob with mix fractions ``alpha``
    (H, W): first equality with the weighted sums on drawn maps, then the true area and centre
    of discs drawn by ``render_clip``."""

    def measure(alpha: numpy.ndarray) -> tuple[float, numpy.ndarray]:
        area, centroid = _measured(fn(alpha.copy()))
        want_area, want_centroid = _blob_reference(alpha)
        compare("the area", numpy.array(area), numpy.array(want_area), 1e-12, 1e-12)
        try:
            compare("the centroid (x, y)", centroid, want_centroid, 1e-12, 1e-12)
        except Mismatch as wrong:
            hint = ""
            if numpy.allclose(centroid + 0.5, want_centroid, rtol=1e-9, atol=1e-9):
                hint = (
                    "\nit is half a pixel short in x and in y: a pixel's centre is at "
                    "(column + 0.5, row + 0.5), not at (column, row)"
                )
            elif numpy.allclose(centroid[::-1], want_centroid, rtol=1e-9, atol=1e-9):
                hint = "\nx and y are swapped: x counts columns, y counts rows"
            raise Mismatch(f"{wrong}{hint}") from None
        return area, centroid

    def prop(case: _BlobCase):
        measure(case.alpha)
        if case.disc is None:
            return
        area, centroid = measure(case.disc.alpha)
        true_area = math.pi * case.disc.radius**2
        off = float(numpy.hypot(*(centroid - numpy.array(case.disc.centre))))
        if off > DISC_CENTRE_PX:
            raise Mismatch(
                f"the disc's centroid {show(centroid)} is {off:.3g} px from its centre "
                f"{case.disc.centre}; a rendered disc is measured within {DISC_CENTRE_PX} px"
            )
        if abs(area - true_area) > DISC_AREA_FRACTION * true_area:
            raise Mismatch(
                f"the disc's area {area:.6g} px^2 is {abs(area / true_area - 1):.1%} away from "
                f"pi r^2 = {true_area:.6g} px^2; a rendered disc is measured within "
                f"{DISC_AREA_FRACTION:.0%}"
            )

    return grade(
        exercise,
        "a blob's area and centroid",
        "",
        prop,
        _blob_cases(),
        statement=EQUATIONS["blob-measure"],
        describe=_describe_blob,
        forbid=(
            "minidiff.metrics.tracking.detect",
            "minidiff.metrics.tracking.track",
            "minidiff.checks.ex11_metrics._blob_reference",
        ),
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 11.2: the constant-velocity fit
# ============================================================================================


@st.composite
def _line_cases(draw):
    n = draw(st.integers(2, 8))
    frames = draw(st.lists(st.integers(0, 20), min_size=n, max_size=n, unique=True))
    t = numpy.array(sorted(frames), dtype=numpy.float64)
    p0 = draw(S.arrays((2,), -10.0, 40.0))
    v = draw(S.arrays((2,), -3.0, 3.0))
    noise = draw(S.arrays((n, 2), -1.0, 1.0))
    return t, p0, v, noise


def _describe_line(case) -> str:
    t, p0, v, noise = case
    return (
        f"t = {show(t)}\nthe line: p0 = {show(p0)}, v = {show(v)}, so positions = "
        f"{show(p0 + t[:, None] * v)}\nnoise added to the positions for the second call = "
        f"{show(noise)}"
    )


def _lstsq_velocity(t: numpy.ndarray, positions: numpy.ndarray) -> numpy.ndarray:
    design = numpy.stack([numpy.ones_like(t), t], axis=1)
    return numpy.linalg.lstsq(design, positions, rcond=None)[0][1]


def check_velocity_fit(
    fn: Callable, exercise: str = "11.2", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(t, positions)`` returns the least-squares velocity (2,) of ``p(t) = p0 + v t``:
    exactly ``v`` on points of a line, then ``numpy.linalg.lstsq``'s slope on noisy points."""

    def prop(case):
        t, p0, v, noise = case
        line = p0 + t[:, None] * v
        got = as_float64("the velocity", fn(t.copy(), line.copy()), (2,))
        compare("the velocity (points exactly on a line)", got, v, 1e-9, 1e-9)
        noisy = line + noise
        got = as_float64("the velocity", fn(t.copy(), noisy.copy()), (2,))
        want = _lstsq_velocity(t, noisy)
        compare("the velocity (noisy points, against numpy.linalg.lstsq)", got, want, 1e-9, 1e-9)

    return grade(
        exercise,
        "velocity by least squares",
        "",
        prop,
        _line_cases(),
        statement=EQUATIONS["velocity-fit"],
        describe=_describe_line,
        forbid=("minidiff.metrics.video._fit_line",),
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 11.3: gravity from one flight
# ============================================================================================


@st.composite
def _flight_cases(draw):
    n = draw(st.integers(3, 10))
    frames = draw(st.lists(st.integers(0, 15), min_size=n, max_size=n, unique=True))
    t = numpy.array(sorted(frames), dtype=numpy.float64)
    y0, v0 = draw(S.floats(0.0, 32.0)), draw(S.floats(-4.0, 4.0))
    g = draw(S.floats(0.05, 2.0))
    noise = draw(S.arrays((n,), -1.0, 1.0))
    return t, y0, v0, g, noise


def _describe_flight(case) -> str:
    t, y0, v0, g, noise = case
    return (
        f"t = {show(t)}\nthe flight: y = {y0!r} + {v0!r} t + {g!r} t^2 / 2 (g = {g!r}), so "
        f"y = {show(y0 + v0 * t + 0.5 * g * t * t)}\nnoise added to y for the second call = "
        f"{show(noise)}"
    )


def _lstsq_gravity(t: numpy.ndarray, y: numpy.ndarray) -> float:
    design = numpy.stack([t * t, t, numpy.ones_like(t)], axis=1)
    return 2.0 * float(numpy.linalg.lstsq(design, y, rcond=None)[0][0])


def _compare_gravity(what: str, got: float, want: float, tolerance: float) -> None:
    if abs(got - want) <= tolerance * (1.0 + abs(want)):
        return
    hint = ""
    if abs(2.0 * got - want) <= tolerance * (1.0 + abs(want)):
        hint = (
            "\nthat is half the right value: a is the coefficient of t^2, and y = y0 + v0 t + "
            "g t^2 / 2 makes g = 2a"
        )
    raise Mismatch(f"{what} is wrong\nexpected: {want!r}\ngot:      {got!r}{hint}")


def check_gravity_fit(
    fn: Callable, exercise: str = "11.3", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(t, y)`` returns ``g_hat = 2a`` from the least-squares parabola ``y = a t^2 + b t +
    c`` (eq-gravity-fit): exactly ``g`` on a parabola, then ``lstsq``'s on noisy heights."""

    def prop(case):
        t, y0, v0, g, noise = case
        y = y0 + v0 * t + 0.5 * g * t * t
        got = _as_number("g_hat", fn(t.copy(), y.copy()))
        _compare_gravity("g_hat (heights exactly on the parabola)", got, g, 1e-7)
        noisy = y + noise
        got = _as_number("g_hat", fn(t.copy(), noisy.copy()))
        want = _lstsq_gravity(t, noisy)
        _compare_gravity("g_hat (noisy heights, against numpy.linalg.lstsq)", got, want, 1e-7)

    return grade(
        exercise,
        "gravity from a parabola",
        "eq-gravity-fit",
        prop,
        _flight_cases(),
        statement=EQUATIONS["eq-gravity-fit"],
        describe=_describe_flight,
        forbid=("minidiff.metrics.video._fit_flight",),
        max_examples=max_examples,
    )
