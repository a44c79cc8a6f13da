"""The check of exercise 5.3 (chapter 5, rotary position encodings, eq-rope).

The notebook ``exercises/src/ex05_encodings.md`` asks for ``rope(x, positions, max_period)``,
which rotates each consecutive pair (x_{2k}, x_{2k+1}) of a token's vector by the angle
p w_k, w_k = max_period^(-2k / d). :func:`check_rope` tests what the rotation is for: the
rotated dot product <rope(q, m), rope(k, n)> is the same after shifting both positions by s,
and lengths are kept. Both hold for other conventions too (pairing x_k with x_{k + d/2}, the
opposite sense of rotation), so the check last compares with the book's convention, computed
independently here with complex numbers: pair k is the complex number x_{2k} + i x_{2k+1},
multiplied by e^{i p w_k}.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import strategies as st

from . import strategies as S
from .compare import compare, host, show
from .grading import DEFAULT_EXAMPLES, Mismatch, grade

EQUATIONS = {
    "eq-rope": "pair k = (x_{2k}, x_{2k+1}) of the token at position p is rotated "
    "counter-clockwise by p w_k, w_k = max_period^(-2k / d); then <R(m w) q, R(n w) k> depends "
    "on n - m only, and every length is kept",
}

HINTS = {
    "5.3": [
        "Split the last axis into pairs: x.reshape(..., d // 2, 2) gives a = x[..., 0] and "
        "b = x[..., 1], one entry per pair.",
        "The angles form an (N, d / 2) table, the outer product of the positions and the "
        "frequencies w_k, exactly as in 5.1.",
        "A counter-clockwise rotation by theta sends (a, b) to (a cos theta - b sin theta, "
        "a sin theta + b cos theta); stack the two on a new last axis and reshape back to d.",
    ],
}

LIBRARY = {
    "5.3": (
        "minidiff.nn.encodings.apply_rope",
        "minidiff.nn.encodings.rope_3d",
        "minidiff.kernels.plain.rotate_pairs",
    ),
}


@dataclass(frozen=True)
class _RopeCase:
    queries: numpy.ndarray
    keys: numpy.ndarray
    query_positions: numpy.ndarray
    key_positions: numpy.ndarray
    shift: int
    max_period: float


@st.composite
def _rope_cases(draw):
    n = draw(st.integers(1, 3))
    dim = draw(st.sampled_from([2, 4, 6, 8, 16]))
    positions = st.lists(st.integers(0, 40), min_size=n, max_size=n)
    return _RopeCase(
        draw(S.arrays((n, dim), -2.0, 2.0)),
        draw(S.arrays((n, dim), -2.0, 2.0)),
        numpy.array(draw(positions)),
        numpy.array(draw(positions)),
        draw(st.integers(1, 30)),
        draw(st.sampled_from([10000.0, 100.0, 10.0])),
    )


def _describe(case: _RopeCase) -> str:
    return (
        f"queries q = {show(case.queries)}\n"
        f"keys k = {show(case.keys)}\n"
        f"query positions m = {show(case.query_positions)}\n"
        f"key positions n = {show(case.key_positions)}\n"
        f"shift s = {case.shift}, max_period = {case.max_period!r}"
    )


def _by_complex_numbers(x: numpy.ndarray, positions, max_period: float) -> numpy.ndarray:
    """eq-rope computed as (x_{2k} + i x_{2k+1}) e^{i p w_k}, back to real pairs."""
    dim = x.shape[-1]
    frequencies = max_period ** (-numpy.arange(dim // 2) * 2.0 / dim)
    pairs = x[..., 0::2] + 1j * x[..., 1::2]
    turned = pairs * numpy.exp(1j * numpy.outer(positions, frequencies))
    return numpy.stack([turned.real, turned.imag], axis=-1).reshape(x.shape)


def _rotated(fn, what, x, positions, max_period):
    got = fn(x.copy(), positions.copy(), max_period)
    if not hasattr(got, "shape") or not hasattr(got, "dtype"):
        raise Mismatch(f"{what} is a {type(got).__name__}, not an array")
    got = host(got)
    if got.shape != x.shape:
        raise Mismatch(f"{what} has shape {got.shape}, but it should have the input's {x.shape}")
    if got.dtype != numpy.float64:
        raise Mismatch(f"{what} has dtype {got.dtype}; from float64 inputs it must stay float64")
    return got


def check_rope(fn: Callable, exercise: str = "5.3", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(x, positions, max_period)`` rotates the pairs of each row of the (N, d) array ``x``
    by its position (eq-rope).

    Three properties, in this order: lengths are kept (|rope(q, m)| = |q|, to 1e-12); the
    scores <rope(q, m), rope(k, n)> do not change when both positions shift by s (to 1e-9);
    and the rotation is the book's, pair (x_{2k}, x_{2k+1}) turned counter-clockwise by p w_k,
    which the check computes independently with complex numbers (to 1e-12).
    """

    def prop(case: _RopeCase):
        q, k, m, n, s = (
            case.queries,
            case.keys,
            case.query_positions,
            case.key_positions,
            case.shift,
        )
        period = case.max_period
        q_m = _rotated(fn, "rope(q, m)", q, m, period)
        k_n = _rotated(fn, "rope(k, n)", k, n, period)
        compare(
            "the length |rope(q, m)| (a rotation keeps lengths, so it must be |q|)",
            numpy.linalg.norm(q_m, axis=-1),
            numpy.linalg.norm(q, axis=-1),
            1e-12,
            1e-12,
        )
        q_shifted = _rotated(fn, "rope(q, m + s)", q, m + s, period)
        k_shifted = _rotated(fn, "rope(k, n + s)", k, n + s, period)
        compare(
            "the scores <rope(q, m + s), rope(k, n + s)> (they must equal the unshifted "
            "<rope(q, m), rope(k, n)>, given as expected, since only n - m may matter)",
            numpy.einsum("id,id->i", q_shifted, k_shifted),
            numpy.einsum("id,id->i", q_m, k_n),
            1e-9,
            1e-9,
        )
        compare(
            "rope(q, m) (against pairs (x_{2k}, x_{2k+1}) turned counter-clockwise by m w_k, "
            "computed as complex numbers)",
            q_m,
            _by_complex_numbers(q, m, period),
            1e-12,
            1e-12,
        )

    return grade(
        exercise,
        "rotary position encoding",
        "eq-rope",
        prop,
        _rope_cases(),
        statement=EQUATIONS["eq-rope"],
        describe=_describe,
        forbid=LIBRARY.get("5.3", ()),
        max_examples=max_examples,
    )
