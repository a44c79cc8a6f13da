"""The checks behind exercises 11 and 14 (chapters 11 and 14): reading clips back, and seams.

Exercise 11 asks for the measurements the metrics of ``minidiff.metrics`` are built on: a blob's
weighted area and centroid (:func:`check_blob_measure`: exact against a reference on drawn mix
fractions, then the true centre and area of discs drawn by ``minidiff.world.render.render_clip``),
the least-squares velocity of a straight track (:func:`check_velocity_fit`: exact on lines, then
``numpy.linalg.lstsq`` on noisy tracks) and gravity from one flight (:func:`check_gravity_fit`:
exact on parabolas, then ``lstsq`` on noisy heights; eq-gravity-fit). Exercise 14 asks for the
pieces of longer videos by continuation: the seam frames (:func:`check_seam_frames`, against
``minidiff.metrics.continuation.seam_frames``), conditioning by replacement
(:func:`check_replacement`: unmasked entries untouched, masked ones noised from the known clip;
eq-replacement) and the acceleration error of a track (:func:`check_acceleration_errors`,
against ``minidiff.metrics.continuation.acceleration_errors`` and on free-flight parabolas;
eq-acceleration-error).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..autograd.tensor import Tensor
from ..metrics.continuation import acceleration_errors as library_acceleration_errors
from ..metrics.continuation import seam_frames as library_seam_frames
from ..world.render import render_clip
from . import strategies as S
from .exercises import _compare, _host, _show
from .grading import DEFAULT_EXAMPLES, Mismatch, Verdict, grade

# The equations the exercises check, as chapters 11 and 14 state them (shown when a check fails).
EQUATIONS = {
    "blob-measure": "with w = clip(alpha, 0, 1): area = sum(w) and centroid (x, y) = "
    "sum(w * (column + 0.5, row + 0.5)) / sum(w); pixel (row i, column j) covers "
    "[j, j+1) x [i, i+1), so its centre is (j + 0.5, i + 0.5)",
    "velocity-fit": "v is the slope of the least-squares line p(t) = p0 + v t, one per "
    "coordinate: v = sum((t - mean t)(p - mean p)) / sum((t - mean t)^2)",
    "eq-gravity-fit": "g_hat = 2a, with a the t^2 coefficient of the least-squares parabola "
    "y = a t^2 + b t + c through the heights",
    "seam-frames": "the windows after the first start every window - context frames and "
    "generate from their frame context on, so the seams are window, window + (window - "
    "context), ... (every one below total); context outside 1 .. window - 1 is a ValueError",
    "eq-replacement": "where mask is True, x_s becomes sqrt(alpha_bar_s) known + "
    "sqrt(1 - alpha_bar_s) noise; where it is False, x_s is left as it is",
    "eq-acceleration-error": "a_k = p_{k+1} - 2 p_k + p_{k-1} and error_k = |a_k - (0, g)| (the "
    "Euclidean length) for k = 1 .. frames - 2; NaN where a position it uses is NaN",
}


def _as_array(what: str, got, shape: tuple) -> numpy.ndarray:
    if not isinstance(got, Tensor) and not (hasattr(got, "shape") and hasattr(got, "dtype")):
        raise Mismatch(f"{what} is a {type(got).__name__}, not an array")
    got = numpy.asarray(_host(got), dtype=numpy.float64)
    if tuple(got.shape) != tuple(shape):
        raise Mismatch(f"{what} has shape {tuple(got.shape)}, but it should have shape {shape}")
    return got


def _as_number(what: str, got) -> float:
    if isinstance(got, Tensor):
        got = got.data
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
    text = f"alpha = {_show(case.alpha)}"
    if case.disc is not None:
        x, y = case.disc.centre
        text += (
            f"\nthen a disc of radius {case.disc.radius!r} centred at (x, y) = ({x!r}, {y!r}), "
            f"drawn by render_clip on a 16 x 16 frame: alpha = {_show(case.disc.alpha)}"
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
    return area, _as_array("the centroid", centroid, (2,))


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
        _compare("the area", numpy.array(area), numpy.array(want_area), 1e-12, 1e-12)
        try:
            _compare("the centroid (x, y)", centroid, want_centroid, 1e-12, 1e-12)
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
                f"the disc's centroid {_show(centroid)} is {off:.3g} px from its centre "
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
        f"t = {_show(t)}\nthe line: p0 = {_show(p0)}, v = {_show(v)}, so positions = "
        f"{_show(p0 + t[:, None] * v)}\nnoise added to the positions for the second call = "
        f"{_show(noise)}"
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
        got = _as_array("the velocity", fn(t.copy(), line.copy()), (2,))
        _compare("the velocity (points exactly on a line)", got, v, 1e-9, 1e-9)
        noisy = line + noise
        got = _as_array("the velocity", fn(t.copy(), noisy.copy()), (2,))
        want = _lstsq_velocity(t, noisy)
        _compare("the velocity (noisy points, against numpy.linalg.lstsq)", got, want, 1e-9, 1e-9)

    return grade(
        exercise,
        "velocity by least squares",
        "",
        prop,
        _line_cases(),
        statement=EQUATIONS["velocity-fit"],
        describe=_describe_line,
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
        f"t = {_show(t)}\nthe flight: y = {y0!r} + {v0!r} t + {g!r} t^2 / 2 (g = {g!r}), so "
        f"y = {_show(y0 + v0 * t + 0.5 * g * t * t)}\nnoise added to y for the second call = "
        f"{_show(noise)}"
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
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 14.1: the seam frames
# ============================================================================================


@st.composite
def _seam_cases(draw):
    window = draw(st.integers(2, 16))
    context = draw(st.integers(1, window - 1))
    total = draw(st.integers(window, window + 6 * (window - context) + 3))
    wrong = draw(st.integers(-2, 0) | st.integers(window, window + 2))
    return total, window, context, wrong


def check_seam_frames(
    fn: Callable, exercise: str = "14.1", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(total, window, context)`` lists the seams, the first generated frame of every
    window after the first, as ``minidiff.metrics.continuation.seam_frames`` does; a context
    outside 1 .. window - 1 raises ValueError."""

    def prop(case):
        total, window, context, wrong = case
        returned = fn(total, window, context)
        try:
            got = [s.item() if hasattr(s, "item") else s for s in returned]
        except TypeError:
            raise Mismatch(
                f"it should return a list of frame numbers, not a {type(returned).__name__}"
            ) from None
        want = library_seam_frames(total, window, context)
        if got != want:
            raise Mismatch(
                f"seam_frames(total={total}, window={window}, context={context}) is wrong\n"
                f"expected: {want}\ngot:      {got}"
            )
        try:
            returned = fn(total, window, wrong)
        except ValueError:
            return
        raise Mismatch(
            f"seam_frames(total={total}, window={window}, context={wrong}) should raise "
            f"ValueError (context must be between 1 and window - 1 = {window - 1}), but it "
            f"returned {returned!r}"
        )

    return grade(
        exercise,
        "the seam frames",
        "",
        prop,
        _seam_cases(),
        statement=EQUATIONS["seam-frames"],
        describe=lambda c: (
            f"total = {c[0]}, window = {c[1]}, context = {c[2]}\n"
            f"then context = {c[3]}, which must raise ValueError"
        ),
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 14.2: conditioning by replacement
# ============================================================================================


@st.composite
def _replacement_cases(draw):
    shape = (
        draw(st.integers(1, 2)),
        draw(st.integers(1, 4)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 3)),
        draw(st.integers(1, 3)),
    )
    x, known, noise = draw(S.arrays(shape)), draw(S.arrays(shape)), draw(S.arrays(shape))
    if draw(st.booleans()):
        # As in continuation: the first frames of every clip are known.
        mask = numpy.zeros(shape, dtype=bool)
        mask[:, : draw(st.integers(0, shape[1]))] = True
    else:
        mask = draw(hnp.arrays(bool, shape))
    alpha_bar = draw(st.sampled_from([1.0, 0.5]) | S.floats(0.0, 1.0))
    return x, known, mask, alpha_bar, noise


def _describe_replacement(case) -> str:
    x, known, mask, alpha_bar, noise = case
    return (
        f"x_s = {_show(x)}\nknown = {_show(known)}\nmask = {_show(mask)}\n"
        f"alpha_bar_s = {alpha_bar!r}\nnoise = {_show(noise)}"
    )


def _replaced(x, known, mask, alpha_bar, noise) -> numpy.ndarray:
    noised = math.sqrt(alpha_bar) * known + math.sqrt(1.0 - alpha_bar) * noise
    return numpy.where(mask, noised, x)


def check_replacement(
    fn: Callable, exercise: str = "14.2", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(x_s, known, mask, alpha_bar_s, noise)`` returns ``x_s`` with the masked entries
    replaced by a sample of q(x_s | known) (eq-replacement): unmasked entries bit for bit as they
    were, masked ones as the reference, and the known clip itself at alpha_bar_s = 1."""

    def prop(case):
        x, known, mask, alpha_bar, noise = case
        call = (x.copy(), known.copy(), mask.copy(), alpha_bar, noise.copy())
        got = _as_array("the new x_s", fn(*call), x.shape)
        changed = numpy.argwhere(~mask & (got != x))
        if len(changed):
            where = tuple(int(k) for k in changed[0])
            raise Mismatch(
                f"where mask is False, x_s must stay exactly as it was; {len(changed)} such "
                f"entries changed, the first at (b, f, c, h, w) = {where}: x_s had "
                f"{float(x[where])!r} there, you put {float(got[where])!r}"
            )
        _compare("the new x_s", got, _replaced(*case), 1e-12, 1e-12)
        call = (x.copy(), known.copy(), mask.copy(), 1.0, noise.copy())
        got = _as_array("the new x_s at alpha_bar_s = 1", fn(*call), x.shape)
        if not numpy.array_equal(got[mask], known[mask]):
            raise Mismatch(
                "at alpha_bar_s = 1 (the end of sampling, no noise left) the masked entries "
                f"must be the known clip itself\nexpected: {_show(known[mask])}\n"
                f"got:      {_show(got[mask])}"
            )

    return grade(
        exercise,
        "conditioning by replacement",
        "eq-replacement",
        prop,
        _replacement_cases(),
        statement=EQUATIONS["eq-replacement"],
        describe=_describe_replacement,
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 14.3: acceleration errors
# ============================================================================================


@st.composite
def _track_cases(draw):
    frames = draw(st.integers(3, 10))
    positions = draw(S.arrays((frames, 2), 0.0, 32.0))
    missing = draw(hnp.arrays(bool, (frames,), elements=st.booleans()))
    positions[missing] = numpy.nan
    gravity = draw(st.sampled_from([0.0]) | S.floats(0.01, 1.5))
    start, velocity = draw(S.arrays((2,), 0.0, 32.0)), draw(S.arrays((2,), -3.0, 3.0))
    return positions, gravity, start, velocity


def _describe_track(case) -> str:
    positions, gravity, start, velocity = case
    return (
        f"positions = {_show(positions)}\ngravity = {gravity!r}\nthen a free flight from "
        f"{_show(start)} with velocity {_show(velocity)} in the same gravity"
    )


def check_acceleration_errors(
    fn: Callable, exercise: str = "14.3", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(positions, gravity)`` returns ``|a_k - (0, g)|`` for k = 1 .. frames - 2
    (eq-acceleration-error), NaN where the track is missing a frame it uses: against
    ``minidiff.metrics.continuation.acceleration_errors``, then 0 on free-flight parabolas."""

    def prop(case):
        positions, gravity, start, velocity = case
        frames = len(positions)
        given = positions.copy()
        got = _as_array("the array of errors", fn(given, gravity), (frames - 2,))
        if not numpy.array_equal(given, positions, equal_nan=True):
            raise Mismatch("your function changed the positions it was given; work on a copy")
        want = library_acceleration_errors(positions.copy(), gravity)
        for k in range(frames - 2):
            if numpy.isnan(want[k]) != numpy.isnan(got[k]):
                raise Mismatch(
                    f"entry {k} (frame {k + 1}) should be "
                    + (
                        "NaN: a position it uses is missing (NaN)"
                        if numpy.isnan(want[k])
                        else f"{want[k]!r}, not NaN: frames {k} to {k + 2} are all there"
                    )
                    + f"\nexpected: {_show(want)}\ngot:      {_show(got)}"
                )
        seen = ~numpy.isnan(want)
        _compare(
            "the array of errors",
            numpy.where(seen, got, 0.0),
            numpy.where(seen, want, 0.0),
            1e-10,
            1e-10,
        )
        k = numpy.arange(frames, dtype=numpy.float64)[:, None]
        flight = start + velocity * k + 0.5 * numpy.array([0.0, gravity]) * k * k
        got = _as_array("the array of errors", fn(flight.copy(), gravity), (frames - 2,))
        _compare(
            f"the array of errors of a free flight (a_k = (0, {gravity!r}) at every frame)",
            got,
            numpy.zeros(frames - 2),
            0.0,
            1e-9,
        )

    return grade(
        exercise,
        "acceleration errors",
        "eq-acceleration-error",
        prop,
        _track_cases(),
        statement=EQUATIONS["eq-acceleration-error"],
        describe=_describe_track,
        max_examples=max_examples,
    )
