"""The checks behind exercises 4 and 5 (chapters 4 and 5): attention and position encodings.

Exercise 4 asks for the backward of scaled dot-product attention
(:func:`check_attention_backward`, against float64 central differences of the library's
``scaled_dot_product_attention``) and for a frame-causal mask over space-time tokens
(:func:`check_frame_causal_mask`). Exercise 5 asks for the sinusoidal encodings: the 1-D code
(:func:`check_sincos_1d`) and the 3-D code of a (t, i, j) grid (:func:`check_sincos_3d`). Each
encoding is checked twice: for its *relative* property (dot products of two codes depend only on
the offset of the positions) and for equality with ``minidiff.nn.encodings``, so that the
student's code can replace the library's in a model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import strategies as st

from .. import backend
from ..nn import encodings
from ..nn.attention import scaled_dot_product_attention
from . import strategies as S
from .exercises import _compare, _compare_vjp, _host, _show
from .gradients import Case, OpSpec
from .grading import DEFAULT_EXAMPLES, Mismatch, Verdict, grade

# The equations the exercises check, as chapters 4 and 5 state them (shown when a check fails).
EQUATIONS = {
    "eq-attention-vjp": "with S = Q K^T / sqrt(d) (plus the mask), P = softmax(S) along each "
    "row, O = P V and G = dL/dO: dV = P^T G;  dP = G V^T;  dS = P * (dP - rowsum(dP * P));  "
    "dQ = dS K / sqrt(d);  dK = dS^T Q / sqrt(d)",
    "frame-causal": "mask[a, b] = True (a may attend to b) exactly when frame(b) <= frame(a), "
    "tokens in (t, i, j) order: token n has frame n // (height * width)",
    "eq-sincos": "emb(p) = [sin(p w_0), ..., sin(p w_{h-1}), cos(p w_0), ..., cos(p w_{h-1})] "
    "with h = dim / 2 and w_k = max_period^(-2k / dim); then <emb(p), emb(q)> = "
    "sum_k cos(w_k (p - q))",
    "eq-sincos-3d": "P(t, i, j) = [emb_{d_t}(t), emb_{d_i}(i), emb_{d_j}(j)], (d_t, d_i, d_j) = "
    "split_width(dim, time_fraction), one row per token in (t, i, j) order (t slowest, j "
    "fastest); so <P(a), P(b)> depends only on the offset a - b",
}


# ============================================================================================
# exercise 4.1: the backward of attention
# ============================================================================================

# The library's forward, differentiated numerically: the reference for exercise 4.1.
_ATTENTION = OpSpec(
    "scaled_dot_product_attention",
    lambda q, k, v, mask: scaled_dot_product_attention(q, k, v, mask),
    st.nothing(),
)


@st.composite
def _attention_cases(draw):
    """q (..., n_q, d), k (..., n_k, d), v (..., n_k, d_v) with the same leading axes, g of the
    output's shape, and no mask, a boolean mask (every query allowed at least one key) or an
    additive float mask, of shape (n_q, n_k)."""
    lead = draw(S.shapes(max_dims=2, min_side=1, max_side=2))
    n_q, n_k, d, d_v = (draw(st.integers(1, 4)) for _ in range(4))
    q = draw(S.arrays((*lead, n_q, d)))
    k = draw(S.arrays((*lead, n_k, d)))
    v = draw(S.arrays((*lead, n_k, d_v)))
    g = draw(S.arrays((*lead, n_q, d_v)))
    kind = draw(st.sampled_from(["none", "boolean", "additive"]))
    if kind == "boolean":
        mask = numpy.array(
            draw(st.lists(st.booleans(), min_size=n_q * n_k, max_size=n_q * n_k)), dtype=bool
        ).reshape(n_q, n_k)
        allowed = draw(st.lists(st.integers(0, n_k - 1), min_size=n_q, max_size=n_q))
        mask[numpy.arange(n_q), allowed] = True
    elif kind == "additive":
        mask = draw(S.arrays((n_q, n_k)))
    else:
        mask = None
    return Case((q, k, v), {"mask": mask}), g


def _describe_attention(drawn) -> str:
    case, g = drawn
    lines = [f"{name} = {_show(a)}" for name, a in zip("qkv", case.arrays)]
    mask = case.params["mask"]
    lines.append("mask = None" if mask is None else f"mask = {_show(mask)}")
    lines.append(f"g = {_show(g)}")
    return "\n".join(lines)


def check_attention_backward(
    fn: Callable, exercise: str = "4.1", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(q, k, v, g, mask)`` returns (dL/dq, dL/dk, dL/dv) for
    O = softmax(q k^T / sqrt(d) + mask) v and g = dL/dO (eq-attention-vjp).

    ``mask`` is None, a boolean array (True = may attend) or a float array added to the logits.
    The expected values are float64 central differences of the library's
    ``scaled_dot_product_attention``, for L = <g, O>; the gradients must have their input's
    shape, stay float64 and on the inputs' device, and match to ``1e-6 + 1e-6 |expected|``.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(drawn):
        case, g = drawn
        mask = case.params["mask"]
        returned = fn(
            *(xp.array(a) for a in case.arrays),
            xp.array(g),
            None if mask is None else xp.array(mask),
        )
        _compare_vjp(returned, ("q", "k", "v"), _ATTENTION, case, g, device)

    return grade(
        exercise,
        "attention backward",
        "eq-attention-vjp",
        prop,
        _attention_cases(),
        statement=EQUATIONS["eq-attention-vjp"],
        describe=_describe_attention,
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 4.2: a frame-causal mask over space-time tokens
# ============================================================================================


def frame_causal_reference(frames: int, height: int, width: int) -> numpy.ndarray:
    """mask[a, b] = frame(b) <= frame(a), tokens in (t, i, j) order (True = may attend)."""
    frame = encodings.grid_positions(frames, height, width)[:, 0]
    return frame[:, None] >= frame[None, :]


def check_frame_causal_mask(
    fn: Callable, exercise: str = "4.2", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(frames, height, width)`` returns the boolean (N, N) mask, N = frames * height *
    width, that lets a token attend to every token of its own frame and of earlier frames."""

    def prop(grid):
        frames, height, width = grid
        got = fn(frames, height, width)
        if not hasattr(got, "shape") or not hasattr(got, "dtype"):
            raise Mismatch(f"the mask is a {type(got).__name__}, not an array")
        got = _host(got)
        want = frame_causal_reference(frames, height, width)
        if got.shape != want.shape:
            raise Mismatch(
                f"the mask has shape {got.shape}, but it should have shape {want.shape}: "
                "one row per query token, one column per key token"
            )
        if got.dtype != bool:
            raise Mismatch(
                f"the mask has dtype {got.dtype}; it must be boolean (a float mask is added "
                "to the logits, which means something else)"
            )
        wrong = numpy.argwhere(got != want)
        if len(wrong):
            a, b = (int(n) for n in wrong[0])
            position = encodings.grid_positions(frames, height, width)
            raise Mismatch(
                f"the mask is wrong at {len(wrong)} of {want.size} entries; the first, "
                f"mask[{a}, {b}], is {bool(got[a, b])}: query token {a} sits at (t, i, j) = "
                f"{tuple(int(x) for x in position[a])} and key token {b} at "
                f"{tuple(int(x) for x in position[b])}, so it should be {bool(want[a, b])}"
            )

    return grade(
        exercise,
        "frame-causal mask",
        "",
        prop,
        st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),
        statement=EQUATIONS["frame-causal"],
        describe=lambda grid: "frames, height, width = {}, {}, {}".format(*grid),
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 5.1: the 1-D sinusoidal code
# ============================================================================================


def _as_codes(what: str, got, shape: tuple) -> numpy.ndarray:
    """``got`` as a host float64 array of ``shape``, or :class:`Mismatch` saying why not."""
    if not hasattr(got, "shape") or not hasattr(got, "dtype"):
        raise Mismatch(f"{what} is a {type(got).__name__}, not an array")
    got = _host(got)
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
        _compare("the code (against minidiff.nn.encodings.sincos_1d)", got, want, 1e-12, 1e-12)

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
                f"expected row: {_show(want[row])}\n"
                f"got row:      {_show(got[row])}"
            )

    return grade(
        exercise,
        "3-D sincos code",
        "eq-sincos-3d",
        prop,
        _sincos_3d_cases(),
        statement=EQUATIONS["eq-sincos-3d"],
        describe=_describe_grid,
        max_examples=max_examples,
    )
