"""The checks of exercise 9 (chapter 9, U-ViT for images and video): tubelets.

The notebook ``exercises/src/ex09_patches.md`` asks for ``patchify`` with tubelets
(:func:`check_patchify`: the token-order property of eq-patchify, then equality with
``minidiff.models.uvit.patchify``) and for its inverse (:func:`check_unpatchify`: exact inversion
of the library's patchify, then equality with ``unpatchify``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import strategies as st

from ..autograd.tensor import Tensor
from ..models.uvit import patchify as library_patchify
from ..models.uvit import unpatchify as library_unpatchify
from . import strategies as S
from .compare import as_array, compare, show
from .grading import DEFAULT_EXAMPLES, Mismatch, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "9.1": [
        (
            "Split each spatial axis into (count, patch) and the time axis into (count, tubelet), "
            "then move the counts to the front."
        ),
        (
            "reshape to (B, F/tubelet, tubelet, C, H/patch, patch, W/patch, patch), transpose so "
            "the three counts come before the within-patch axes, reshape to (B, tokens, values)."
        ),
        (
            "Compare the order of values in one token with the library's printout above: the "
            "within-token order is (tubelet, C, patch, patch)."
        ),
    ],
    "9.2": [
        "Undo 9.1 step by step in reverse: reshape, inverse transpose, reshape.",
        "The inverse of a transpose by axes p is a transpose by numpy.argsort(p).",
        (
            "reshape tokens to (B, F/tubelet, H/patch, W/patch, tubelet, C, patch, patch), "
            "transpose back, reshape to (B, F, C, H, W)."
        ),
    ],
}

# The equations exercise 9 checks, as chapter 9 states them (shown when a check fails).
EQUATIONS = {
    "eq-patchify": "a clip (B, F, C, H, W) becomes (B, N, pt * p * p * C) with N = F/pt * H/p * "
    "W/p; token n = (t * H/p + i) * W/p + j holds x[:, t pt:(t+1) pt, :, i p:(i+1) p, "
    "j p:(j+1) p], its values in (frame, row, column, channel) order",
    "eq-unpatchify": "unpatchify(patchify(x)) == x exactly, for every clip x (the inverse only "
    "moves numbers)",
}


@dataclass(frozen=True)
class _ClipCase:
    clip: numpy.ndarray
    patch: int
    tubelet: int


@st.composite
def _clip_cases(draw):
    patch, tubelet = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    b, c = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    grid = [draw(st.integers(1, 3)) for _ in range(3)]
    shape = (b, grid[0] * tubelet, c, grid[1] * patch, grid[2] * patch)
    # Distinct values, so that a value in the wrong place cannot go unnoticed.
    clip = numpy.arange(numpy.prod(shape), dtype=numpy.float64).reshape(shape)
    clip = clip + draw(S.arrays(shape, 0.0, 0.5))
    return _ClipCase(clip, patch, tubelet)


def _describe_clip(case: _ClipCase) -> str:
    b, f, c, h, w = case.clip.shape
    return (
        f"a clip of shape (B, F, C, H, W) = {case.clip.shape}, patch = {case.patch}, "
        f"tubelet = {case.tubelet}  (grid of {f // case.tubelet} x {h // case.patch} x "
        f"{w // case.patch} tokens)\nx = {show(case.clip)}"
    )


def check_patchify(fn: Callable, exercise: str = "9.1", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(x, patch, tubelet)`` cuts the clip ``x`` (B, F, C, H, W) into tokens (B, N, pt p p C)
    (eq-patchify). First the token-order property, token by token, then equality with
    ``minidiff.models.uvit.patchify``."""

    def prop(case: _ClipCase):
        x, p, pt = case.clip, case.patch, case.tubelet
        b, f, c, h, w = x.shape
        rows, columns = h // p, w // p
        n = (f // pt) * rows * columns
        got = as_array("the tokens", fn(x.copy(), p, pt), (b, n, pt * p * p * c))
        for token in range(n):
            t, rest = divmod(token, rows * columns)
            i, j = divmod(rest, columns)
            piece = x[:, t * pt : (t + 1) * pt, :, i * p : (i + 1) * p, j * p : (j + 1) * p]
            want = piece.transpose(0, 1, 3, 4, 2).reshape(b, -1)
            if not numpy.array_equal(got[:, token], want):
                raise Mismatch(
                    f"token {token} should be the tubelet at (t, i, j) = {(t, i, j)}: frames "
                    f"{t * pt}..{(t + 1) * pt - 1}, rows {i * p}..{(i + 1) * p - 1}, columns "
                    f"{j * p}..{(j + 1) * p - 1}, values in (frame, row, column, channel) order\n"
                    f"expected: {show(want[0])}\ngot:      {show(got[0, token])}"
                )
        want = library_patchify(Tensor(x, dtype=numpy.float64), p, pt).numpy()
        compare("the tokens (against minidiff.models.uvit.patchify)", got, want, 0.0, 0.0)

    return grade(
        exercise,
        "patchify with tubelets",
        "eq-patchify",
        prop,
        _clip_cases(),
        statement=EQUATIONS["eq-patchify"],
        describe=_describe_clip,
        forbid=("minidiff.models.uvit.patchify",),
        max_examples=max_examples,
    )


def check_unpatchify(fn: Callable, exercise: str = "9.2", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(tokens, frames, channels, height, width, patch, tubelet)`` puts the tokens of the
    library's ``patchify`` back into the clip, exactly; then equality with ``unpatchify``."""

    def prop(case: _ClipCase):
        x, p, pt = case.clip, case.patch, case.tubelet
        b, f, c, h, w = x.shape
        tokens = library_patchify(Tensor(x, dtype=numpy.float64), p, pt).numpy()
        got = as_array("the clip", fn(tokens.copy(), f, c, h, w, p, pt), x.shape)
        wrong = numpy.argwhere(got != x)
        if len(wrong):
            where = tuple(int(k) for k in wrong[0])
            raise Mismatch(
                f"unpatchify(patchify(x)) differs from x at {len(wrong)} of {x.size} entries; "
                f"the first is (b, f, c, h, w) = {where}: x has {x[where]!r} there, you put "
                f"{got[where]!r}"
            )
        want = library_unpatchify(Tensor(tokens, dtype=numpy.float64), f, c, h, w, p, pt).numpy()
        compare("the clip (against minidiff.models.uvit.unpatchify)", got, want, 0.0, 0.0)

    return grade(
        exercise,
        "unpatchify, the exact inverse",
        "",
        prop,
        _clip_cases(),
        statement=EQUATIONS["eq-unpatchify"],
        describe=_describe_clip,
        forbid=("minidiff.models.uvit.unpatchify",),
        max_examples=max_examples,
    )
