"""The checks of exercise 14 (chapter 14, longer videos by continuation).

The notebook ``exercises/src/ex14_continuation.md`` asks for the pieces of longer videos: the
seam frames (:func:`check_seam_frames`, against ``minidiff.metrics.continuation.seam_frames``),
conditioning by replacement (:func:`check_replacement`: unmasked entries untouched, masked ones
noised from the known clip; eq-replacement) and the acceleration error of a track
(:func:`check_acceleration_errors`, against
``minidiff.metrics.continuation.acceleration_errors`` and on free-flight parabolas;
eq-acceleration-error).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..metrics.continuation import acceleration_errors as library_acceleration_errors
from ..metrics.continuation import seam_frames as library_seam_frames
from . import strategies as S
from .compare import as_float64, compare, show
from .grading import DEFAULT_EXAMPLES, Mismatch, Verdict, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "14.1": [
        (
            "Each window after the first keeps `context` frames of the previous one and generates "
            "the rest."
        ),
        (
            "The first window ends at `window`; every later window advances by window - context "
            "frames."
        ),
        "list(range(window, total, window - context)).",
    ],
    "14.2": [
        (
            "Where the mask is True the entry is known: replace it by the known clip noised to the"
            " level of x_s."
        ),
        "Noising to level s is the closed form of exercise 6 with alpha_bar_s.",
        "where(mask, sqrt(alpha_bar_s) known + sqrt(1 - alpha_bar_s) noise, x_s).",
    ],
    "14.3": [
        "The acceleration at frame k is the second difference of the positions.",
        "a_k = p_{k+1} - 2 p_k + p_{k-1} for k = 1 .. frames - 2; compare it with (0, gravity).",
        (
            "a = positions[2:] - 2 * positions[1:-1] + positions[:-2]; return numpy.linalg.norm(a "
            "- [0, gravity], axis=1)."
        ),
    ],
}

# The equations exercise 14 checks, as chapter 14 states them (shown when a check fails).
EQUATIONS = {
    "seam-frames": "the windows after the first start every window - context frames and "
    "generate from their frame context on, so the seams are window, window + (window - "
    "context), ... (every one below total); context outside 1 .. window - 1 is a ValueError",
    "eq-replacement": "where mask is True, x_s becomes sqrt(alpha_bar_s) known + "
    "sqrt(1 - alpha_bar_s) noise; where it is False, x_s is left as it is",
    "eq-acceleration-error": "a_k = p_{k+1} - 2 p_k + p_{k-1} and error_k = |a_k - (0, g)| (the "
    "Euclidean length) for k = 1 .. frames - 2; NaN where a position it uses is NaN",
}


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
        forbid=("minidiff.metrics.continuation.seam_frames",),
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
        f"x_s = {show(x)}\nknown = {show(known)}\nmask = {show(mask)}\n"
        f"alpha_bar_s = {alpha_bar!r}\nnoise = {show(noise)}"
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
        got = as_float64("the new x_s", fn(*call), x.shape)
        changed = numpy.argwhere(~mask & (got != x))
        if len(changed):
            where = tuple(int(k) for k in changed[0])
            raise Mismatch(
                f"where mask is False, x_s must stay exactly as it was; {len(changed)} such "
                f"entries changed, the first at (b, f, c, h, w) = {where}: x_s had "
                f"{float(x[where])!r} there, you put {float(got[where])!r}"
            )
        compare("the new x_s", got, _replaced(*case), 1e-12, 1e-12)
        call = (x.copy(), known.copy(), mask.copy(), 1.0, noise.copy())
        got = as_float64("the new x_s at alpha_bar_s = 1", fn(*call), x.shape)
        if not numpy.array_equal(got[mask], known[mask]):
            raise Mismatch(
                "at alpha_bar_s = 1 (the end of sampling, no noise left) the masked entries "
                f"must be the known clip itself\nexpected: {show(known[mask])}\n"
                f"got:      {show(got[mask])}"
            )

    return grade(
        exercise,
        "conditioning by replacement",
        "eq-replacement",
        prop,
        _replacement_cases(),
        statement=EQUATIONS["eq-replacement"],
        describe=_describe_replacement,
        forbid=("minidiff.diffusion.samplers._noised",),
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
        f"positions = {show(positions)}\ngravity = {gravity!r}\nthen a free flight from "
        f"{show(start)} with velocity {show(velocity)} in the same gravity"
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
        got = as_float64("the array of errors", fn(given, gravity), (frames - 2,))
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
                    + f"\nexpected: {show(want)}\ngot:      {show(got)}"
                )
        seen = ~numpy.isnan(want)
        compare(
            "the array of errors",
            numpy.where(seen, got, 0.0),
            numpy.where(seen, want, 0.0),
            1e-10,
            1e-10,
        )
        k = numpy.arange(frames, dtype=numpy.float64)[:, None]
        flight = start + velocity * k + 0.5 * numpy.array([0.0, gravity]) * k * k
        got = as_float64("the array of errors", fn(flight.copy(), gravity), (frames - 2,))
        compare(
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
        forbid=("minidiff.metrics.continuation.acceleration_errors",),
        max_examples=max_examples,
    )
