"""The checks of exercise 4 (chapter 4, attention and the transformer).

The notebook ``exercises/src/ex04_attention.md`` asks for the backward of scaled dot-product
attention (:func:`check_attention_backward`, eq-attention-vjp, against float64 central
differences of the library's ``scaled_dot_product_attention``) and for a frame-causal mask over
space-time tokens (:func:`check_frame_causal_mask`, against :func:`frame_causal_reference`, built
from ``minidiff.nn.encodings.grid_positions``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy
from hypothesis import strategies as st

from .. import backend
from ..nn import encodings
from ..nn.attention import scaled_dot_product_attention
from . import strategies as S
from .compare import compare_vjp, host, show
from .gradients import Case, OpSpec
from .grading import DEFAULT_EXAMPLES, Mismatch, Verdict, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "4.1": [
        (
            "Recompute the forward (scores, masked softmax, output) and go back through it one "
            "product at a time."
        ),
        (
            "dV = P^T g; dP = g V^T; the softmax backward gives dS = P (dP - sum(dP P) along the "
            "keys); then dQ and dK come from S = Q K^T / sqrt(d)."
        ),
        (
            "dV = P^T @ G; dP = G @ V^T; dS = P * (dP - (dP * P).sum(-1, keepdims=True)); dQ = dS "
            "@ K / sqrt(d); dK = dS^T @ Q / sqrt(d) (^T: swapaxes(-1, -2)); masked entries have P "
            "= 0 and need no special case."
        ),
    ],
    "4.2": [
        "A token may attend to every token of its own frame and of the earlier frames.",
        (
            "With grid_positions, each token has a frame index; compare every query's frame with "
            "every key's frame by broadcasting."
        ),
        "f = grid_positions(frames, height, width)[:, 0]; return f[:, None] >= f[None, :].",
    ],
}

# The equations exercise 4 checks, as chapter 4 states them (shown when a check fails).
EQUATIONS = {
    "eq-attention-vjp": "with S = Q K^T / sqrt(d) (plus the mask), P = softmax(S) along each "
    "row, O = P V and G = dL/dO: dV = P^T G;  dP = G V^T;  dS = P * (dP - rowsum(dP * P));  "
    "dQ = dS K / sqrt(d);  dK = dS^T Q / sqrt(d)",
    "frame-causal": "mask[a, b] = True (a may attend to b) exactly when frame(b) <= frame(a), "
    "tokens in (t, i, j) order: token n has frame n // (height * width)",
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
    lines = [f"{name} = {show(a)}" for name, a in zip("qkv", case.arrays)]
    mask = case.params["mask"]
    lines.append("mask = None" if mask is None else f"mask = {show(mask)}")
    lines.append(f"g = {show(g)}")
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
        compare_vjp(returned, ("q", "k", "v"), _ATTENTION, case, g, device)

    return grade(
        exercise,
        "attention backward",
        "eq-attention-vjp",
        prop,
        _attention_cases(),
        statement=EQUATIONS["eq-attention-vjp"],
        describe=_describe_attention,
        forbid=(
            "minidiff.nn.attention.scaled_dot_product_attention",
            "minidiff.nn.attention.attention_weights",
            "minidiff.autograd.tensor.Tensor.backward",
        ),
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
        got = host(got)
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
        forbid=("minidiff.checks.ex04_attention.frame_causal_reference",),
        max_examples=max_examples,
    )
