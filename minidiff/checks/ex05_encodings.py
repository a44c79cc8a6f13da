"""The checks of exercise 5 (chapter 5, spatio-temporal position encodings).

The notebook ``exercises/src/ex05_encodings.md`` asks for the sinusoidal encodings: the 1-D code
(:func:`check_sincos_1d`, eq-sincos) and the 3-D code of a (t, i, j) grid
(:func:`check_sincos_3d`, eq-sincos-3d). Each encoding is checked twice: for its *relative*
property (dot products of two codes depend only on the offset of the positions) and for equality
with ``minidiff.nn.encodings``, so that the student's code can replace the library's in a model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import strategies as st

from ..nn import encodings
from .compare import compare, host, show
from .grading import DEFAULT_EXAMPLES, Mismatch, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "5.1": [
        (
            "Half the channels are sines, half cosines, of the position times a geometric ladder "
            "of frequencies."
        ),
        (
            "The frequencies are max_period ** (-k / half) for k = 0 .. half - 1, with half = dim "
            "// 2."
        ),
        (
            "angles = positions[:, None] * freqs[None, :]; return concatenate([sin(angles), "
            "cos(angles)], axis=1)."
        ),
    ],
    "5.2": [
        (
            "Give time, height and width each a share of the channels, encode each coordinate in "
            "1-D, and put the three side by side."
        ),
        (
            "split_width(dim, time_fraction) gives the three widths; grid_positions gives each "
            "token's (frame, row, column)."
        ),
        (
            "concatenate([sincos_1d(pos[:, 0], dt), sincos_1d(pos[:, 1], dh), sincos_1d(pos[:, 2],"
            " dw)], axis=1)."
        ),
    ],
}

# The equations exercise 5 checks, as chapter 5 states them (shown when a check fails).
EQUATIONS = {
    "eq-sincos": "emb(p) = [sin(p w_0), ..., sin(p w_{h-1}), cos(p w_0), ..., cos(p w_{h-1})] "
    "with h = dim / 2 and w_k = max_period^(-2k / dim); then <emb(p), emb(q)> = "
    "sum_k cos(w_k (p - q))",
    "eq-sincos-3d": "P(t, i, j) = [emb_{d_t}(t), emb_{d_i}(i), emb_{d_j}(j)], (d_t, d_i, d_j) = "
    "split_width(dim, time_fraction), one row per token in (t, i, j) order (t slowest, j "
    "fastest); so <P(a), P(b)> depends only on the offset a - b",
}


# ============================================================================================
# exercise 5.1: the 1-D sinusoidal code
# ============================================================================================


def _as_codes(what: str, got, shape: tuple) -> numpy.ndarray:
    """``got`` as a host float64 array of ``shape``, or :class:`Mismatch` saying why not."""
    if not hasattr(got, "shape") or not hasattr(got, "dtype"):
        raise Mismatch(f"{what} is a {type(got).__name__}, not an array")
    got = host(got)
    if got.shape != shape:
        raise Mismatch(f"{what} has shape {got.shape}, but it should have shape {shape}")
    if got.dtype != numpy.float64:
        raise Mismatch(f"{what} has dtype {got.dtype}; the codes are float64")
    return got


@st.composite
def _sincos_1d_cases(draw):
    positions = draw(st.lists(st.integers(0, 60), min_size=2, max_size=6))
    dim = draw(st.sampled_from([2, 4, 6, 8, 16, 32]))
    max_period = draw(st.sampled_from([10000.0, 100.0]))
    return numpy.array(positions), dim, max_period


def check_sincos_1d(fn: Callable, exercise: str = "5.1", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(positions, dim, max_period)`` returns the (N, dim) float64 codes of eq-sincos.

    First the relative property: for every two positions p, q drawn, the dot product of their
    codes must be sum_k cos(w_k (p - q)); then each code must equal ``sincos_1d``'s to 1e-12.
    """

    def prop(drawn):
        positions, dim, max_period = drawn
        got = _as_codes("the code", fn(positions, dim, max_period), (len(positions), dim))
        frequencies = max_period ** (-numpy.arange(dim // 2) * 2.0 / dim)
        for a in range(len(positions)):
            for b in range(a + 1, len(positions)):
                p, q = int(positions[a]), int(positions[b])
                dot = float(got[a] @ got[b])
                want = float(numpy.cos(frequencies * (p - q)).sum())
                if not math.isclose(dot, want, rel_tol=1e-9, abs_tol=1e-9):
                    raise Mismatch(
                        f"<emb({p}), emb({q})> = {dot:.9g}, but sum_k cos(w_k (p - q)) = "
                        f"{want:.9g}: the dot product of two codes must depend on p - q alone"
                    )
        want = encodings.sincos_1d(positions, dim, max_period)
        compare("the code (against minidiff.nn.encodings.sincos_1d)", got, want, 1e-12, 1e-12)

    return grade(
        exercise,
        "1-D sincos code",
        "eq-sincos",
        prop,
        _sincos_1d_cases(),
        statement=EQUATIONS["eq-sincos"],
        describe=lambda drawn: (
            f"positions = {drawn[0].tolist()}\ndim = {drawn[1]}\nmax_period = {drawn[2]!r}"
        ),
        forbid=(
            "minidiff.nn.encodings.sincos_1d",
            "minidiff.nn.encodings.timestep_embedding",
        ),
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 5.2: the 3-D sinusoidal code of a (t, i, j) grid
# ============================================================================================


@dataclass(frozen=True)
class _GridCase:
    frames: int
    height: int
    width: int
    dim: int
    time_fraction: float


@st.composite
def _sincos_3d_cases(draw):
    frames, height, width = (draw(st.integers(1, side)) for side in (4, 4, 5))
    time_fraction = draw(st.sampled_from([0.25, 0.5, 0.0]))
    dim = draw(st.sampled_from([12, 16, 24, 32, 48, 64]))
    return _GridCase(frames, height, width, dim, time_fraction)


def _describe_grid(case: _GridCase) -> str:
    return (
        f"frames, height, width = {case.frames}, {case.height}, {case.width}\n"
        f"dim = {case.dim}, time_fraction = {case.time_fraction!r}  (split_width gives "
        f"(d_t, d_i, d_j) = {encodings.split_width(case.dim, case.time_fraction)})"
    )


def _not_relative(codes: numpy.ndarray, positions: numpy.ndarray) -> str | None:
    """Two pairs of tokens with the same offset b - a but different dot products <P(a), P(b)>,
    described for people; None if every offset has one dot product."""
    gram = codes @ codes.T
    offsets = (positions[None, :, :] - positions[:, None, :]).reshape(-1, 3)
    _, group = numpy.unique(offsets, axis=0, return_inverse=True)
    group = group.ravel()
    dots = gram.ravel()
    low = numpy.full(group.max() + 1, numpy.inf)
    high = numpy.full(group.max() + 1, -numpy.inf)
    numpy.minimum.at(low, group, dots)
    numpy.maximum.at(high, group, dots)
    spread = high - low
    worst = int(numpy.argmax(spread))
    if spread[worst] <= 1e-9 * max(1.0, numpy.abs(dots).max()):
        return None
    members = numpy.flatnonzero(group == worst)
    first = members[numpy.argmin(dots[members])]
    second = members[numpy.argmax(dots[members])]
    n = len(positions)
    (a, b), (a2, b2) = divmod(int(first), n), divmod(int(second), n)
    at = lambda token: tuple(int(x) for x in positions[token])  # noqa: E731
    return (
        f"tokens {a} and {b}, at {at(a)} and {at(b)}, have <P(a), P(b)> = {dots[first]:.9g}; "
        f"tokens {a2} and {b2}, at {at(a2)} and {at(b2)}, the same offset "
        f"{tuple(int(x) for x in offsets[first])}, have {dots[second]:.9g}: the dot product "
        "depends on more than the offset, so the code is not relative (or its rows are not in "
        "(t, i, j) token order)"
    )


def check_sincos_3d(fn: Callable, exercise: str = "5.2", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(frames, height, width, dim, time_fraction)`` returns the (N, dim) float64 codes of
    eq-sincos-3d, one row per token in (t, i, j) order.

    First the relative property on the student's codes: for every two pairs of tokens (a, b) and
    (a', b') of the grid with b - a = b' - a', <P(a), P(b)> = <P(a'), P(b')>; then equality with
    ``sincos_3d`` to 1e-12, naming the token and the part of the width (time, rows, columns)
    that differs.
    """

    def prop(case: _GridCase):
        n = case.frames * case.height * case.width
        got = _as_codes(
            "the code",
            fn(case.frames, case.height, case.width, case.dim, case.time_fraction),
            (n, case.dim),
        )
        positions = encodings.grid_positions(case.frames, case.height, case.width)
        problem = _not_relative(got, positions)
        if problem:
            raise Mismatch(problem)
        want = encodings.sincos_3d(
            case.frames, case.height, case.width, case.dim, case.time_fraction
        )
        wrong = numpy.argwhere(~numpy.isclose(got, want, rtol=1e-12, atol=1e-12))
        if len(wrong):
            row, column = (int(x) for x in wrong[0])
            d_t, d_i, _ = encodings.split_width(case.dim, case.time_fraction)
            part = "time" if column < d_t else "rows (i)" if column < d_t + d_i else "columns (j)"
            position = tuple(int(x) for x in positions[row])
            raise Mismatch(
                f"the code differs from minidiff.nn.encodings.sincos_3d at {len(wrong)} of "
                f"{want.size} entries; the first is token {row}, at (t, i, j) = {position}, "
                f"channel {column}, which belongs to the {part} part of the split "
                f"(d_t, d_i, d_j) = {encodings.split_width(case.dim, case.time_fraction)}\n"
                f"expected row: {show(want[row])}\n"
                f"got row:      {show(got[row])}"
            )

    return grade(
        exercise,
        "3-D sincos code",
        "eq-sincos-3d",
        prop,
        _sincos_3d_cases(),
        statement=EQUATIONS["eq-sincos-3d"],
        describe=_describe_grid,
        forbid=(
            "minidiff.nn.encodings.sincos_3d",
            "minidiff.nn.encodings.sincos_2d",
        ),
        max_examples=max_examples,
    )
