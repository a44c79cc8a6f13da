"""The checks behind exercises 9 and 10 (chapters 9 and 10): tubelets and guidance.

Exercise 9 asks for ``patchify`` with tubelets (:func:`check_patchify`: the token-order property
of eq-patchify, then equality with ``minidiff.models.uvit.patchify``) and for its inverse
(:func:`check_unpatchify`: exact inversion of the library's patchify, then equality with
``unpatchify``). Exercise 10 asks for classifier-free guidance (:func:`check_guidance`: the
convention w = 0 unconditional, w = 1 conditional, then eq-cfg for any w) and for the wrapper
that evaluates the conditional and null captions as one batch (:func:`check_batched_guidance`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import strategies as st

from ..autograd.tensor import Tensor
from ..diffusion.samplers import classifier_free_guidance
from ..models.uvit import patchify as library_patchify
from ..models.uvit import unpatchify as library_unpatchify
from . import strategies as S
from .exercises import _compare, _host, _show
from .grading import DEFAULT_EXAMPLES, Mismatch, Verdict, grade

# The equations the exercises check, as chapters 9 and 10 state them (shown when a check fails).
EQUATIONS = {
    "eq-patchify": "a clip (B, F, C, H, W) becomes (B, N, pt * p * p * C) with N = F/pt * H/p * "
    "W/p; token n = (t * H/p + i) * W/p + j holds x[:, t pt:(t+1) pt, :, i p:(i+1) p, "
    "j p:(j+1) p], its values in (frame, row, column, channel) order",
    "eq-unpatchify": "unpatchify(patchify(x)) == x exactly, for every clip x (the inverse only "
    "moves numbers)",
    "eq-cfg": "eps_w = eps_u + w (eps_c - eps_u): w = 0 gives eps_u (unconditional), w = 1 gives "
    "eps_c (conditional), w > 1 extrapolates away from eps_u",
    "batched-guidance": "guided(x, t) = eps_u + w (eps_c - eps_u) with eps_c = model(x, t, "
    "condition) and eps_u = model(x, t, null_condition), both from ONE call of model on a batch "
    "of 2B (x twice, t twice, the conditions stacked)",
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
        f"{w // case.patch} tokens)\nx = {_show(case.clip)}"
    )


def _as_array(what: str, got, shape: tuple) -> numpy.ndarray:
    if not isinstance(got, Tensor) and not (hasattr(got, "shape") and hasattr(got, "dtype")):
        raise Mismatch(f"{what} is a {type(got).__name__}, not an array")
    got = _host(got)
    if tuple(got.shape) != tuple(shape):
        raise Mismatch(f"{what} has shape {tuple(got.shape)}, but it should have shape {shape}")
    return got


def check_patchify(fn: Callable, exercise: str = "9.1", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(x, patch, tubelet)`` cuts the clip ``x`` (B, F, C, H, W) into tokens (B, N, pt p p C)
    (eq-patchify). First the token-order property, token by token, then equality with
    ``minidiff.models.uvit.patchify``."""

    def prop(case: _ClipCase):
        x, p, pt = case.clip, case.patch, case.tubelet
        b, f, c, h, w = x.shape
        rows, columns = h // p, w // p
        n = (f // pt) * rows * columns
        got = _as_array("the tokens", fn(x.copy(), p, pt), (b, n, pt * p * p * c))
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
                    f"expected: {_show(want[0])}\ngot:      {_show(got[0, token])}"
                )
        want = library_patchify(Tensor(x, dtype=numpy.float64), p, pt).numpy()
        _compare("the tokens (against minidiff.models.uvit.patchify)", got, want, 0.0, 0.0)

    return grade(
        exercise,
        "patchify with tubelets",
        "eq-patchify",
        prop,
        _clip_cases(),
        statement=EQUATIONS["eq-patchify"],
        describe=_describe_clip,
        max_examples=max_examples,
    )


def check_unpatchify(fn: Callable, exercise: str = "9.2", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(tokens, frames, channels, height, width, patch, tubelet)`` puts the tokens of the
    library's ``patchify`` back into the clip, exactly; then equality with ``unpatchify``."""

    def prop(case: _ClipCase):
        x, p, pt = case.clip, case.patch, case.tubelet
        b, f, c, h, w = x.shape
        tokens = library_patchify(Tensor(x, dtype=numpy.float64), p, pt).numpy()
        got = _as_array("the clip", fn(tokens.copy(), f, c, h, w, p, pt), x.shape)
        wrong = numpy.argwhere(got != x)
        if len(wrong):
            where = tuple(int(k) for k in wrong[0])
            raise Mismatch(
                f"unpatchify(patchify(x)) differs from x at {len(wrong)} of {x.size} entries; "
                f"the first is (b, f, c, h, w) = {where}: x has {x[where]!r} there, you put "
                f"{got[where]!r}"
            )
        want = library_unpatchify(Tensor(tokens, dtype=numpy.float64), f, c, h, w, p, pt).numpy()
        _compare("the clip (against minidiff.models.uvit.unpatchify)", got, want, 0.0, 0.0)

    return grade(
        exercise,
        "unpatchify, the exact inverse",
        "",
        prop,
        _clip_cases(),
        statement=EQUATIONS["eq-unpatchify"],
        describe=_describe_clip,
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 10: classifier-free guidance
# ============================================================================================


@st.composite
def _guidance_cases(draw):
    shape = draw(S.shapes(max_dims=3, min_side=1, max_side=3))
    eps_u, eps_c = draw(S.arrays(shape)), draw(S.arrays(shape))
    scale = draw(st.sampled_from([0.0, 1.0]) | st.floats(-1.0, 8.0))
    return eps_u, eps_c, scale


def check_guidance(fn: Callable, exercise: str = "10.1", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(eps_uncond, eps_cond, w)`` returns the guided prediction of eq-cfg: first the
    convention (w = 0 gives eps_uncond, w = 1 gives eps_cond), then any w against
    ``classifier_free_guidance``."""

    def prop(drawn):
        eps_u, eps_c, scale = drawn
        for fixed, want, name in ((0.0, eps_u, "eps_uncond"), (1.0, eps_c, "eps_cond")):
            got = _as_array(f"the result at w = {fixed:g}", fn(eps_u, eps_c, fixed), eps_u.shape)
            if not numpy.allclose(got, want, rtol=1e-12, atol=1e-12):
                raise Mismatch(
                    f"at w = {fixed:g} guidance must return {name} unchanged (the book's "
                    f"convention: w = 0 unconditional, w = 1 conditional)\n"
                    f"expected: {_show(want)}\ngot:      {_show(got)}"
                )
        got = _as_array("the guided prediction", fn(eps_u, eps_c, scale), eps_u.shape)
        want = classifier_free_guidance(eps_u, eps_c, scale)
        _compare(f"the guided prediction at w = {scale!r}", got, want, 1e-12, 1e-12)

    return grade(
        exercise,
        "classifier-free guidance",
        "eq-cfg",
        prop,
        _guidance_cases(),
        statement=EQUATIONS["eq-cfg"],
        describe=lambda d: f"eps_uncond = {_show(d[0])}\neps_cond = {_show(d[1])}\nw = {d[2]!r}",
        max_examples=max_examples,
    )


class _RecordingModel:
    """A stand-in network (x, t, condition) -> prediction that remembers each batch it saw; its
    output depends on x, t and the condition row, non-linearly, so no shortcut gives it."""

    def __init__(self):
        self.batches: list[int] = []

    def __call__(self, x, t, condition):
        x, t, condition = numpy.asarray(x), numpy.asarray(t), numpy.asarray(condition)
        if not (len(x) == len(t) == len(condition)):
            raise Mismatch(
                f"the model was called with {len(x)} clips, {len(t)} times and {len(condition)} "
                "conditions: x, t and the conditions must have the same batch size"
            )
        self.batches.append(len(x))
        gain = numpy.tanh(condition.sum(axis=1)).reshape((-1,) + (1,) * (x.ndim - 1))
        return numpy.sin(x) * (1.0 + gain) + 0.01 * t.reshape(gain.shape) + gain**2


@st.composite
def _batched_cases(draw):
    batch, width = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    x = draw(S.arrays((batch, 2, draw(st.integers(1, 3)))))
    t = numpy.array(draw(st.lists(st.integers(0, 999), min_size=batch, max_size=batch)))
    condition = draw(S.arrays((batch, width)))
    null = numpy.broadcast_to(draw(S.arrays((1, width))), (batch, width)).copy()
    scale = draw(st.sampled_from([0.0, 1.0, 2.0]) | st.floats(-1.0, 8.0))
    return x, t, condition, null, scale


def check_batched_guidance(
    fn: Callable, exercise: str = "10.2", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(model, condition, null_condition, w)`` returns a model ``(x, t) -> guided
    prediction`` that calls ``model(x, t, condition)`` ONCE, on a batch of 2B: x and t twice and
    the conditions (B, K) and null conditions (B, K) stacked; the result must equal eq-cfg."""

    def prop(drawn):
        x, t, condition, null, scale = drawn
        model = _RecordingModel()
        guided = fn(model, condition, null, scale)
        if not callable(guided):
            raise Mismatch(
                f"it should return a function (x, t) -> prediction, not a {type(guided).__name__}"
            )
        got = _as_array("the guided prediction", guided(x, t), x.shape)
        want = classifier_free_guidance(
            _RecordingModel()(x, t, null), _RecordingModel()(x, t, condition), scale
        )
        _compare(f"the guided prediction at w = {scale!r}", got, want, 1e-10, 1e-10)
        if model.batches != [2 * len(x)]:
            raise Mismatch(
                f"the values are right, but the model was called {len(model.batches)} time(s) "
                f"with batches of {model.batches}; it should be called once, with one batch of "
                f"2B = {2 * len(x)} (conditional and null rows together)"
            )

    return grade(
        exercise,
        "guidance in one batch",
        "eq-cfg",
        prop,
        _batched_cases(),
        statement=EQUATIONS["batched-guidance"],
        describe=lambda d: (
            f"x = {_show(d[0])}\nt = {d[1].tolist()}\ncondition = {_show(d[2])}\n"
            f"null_condition = {_show(d[3])}\nw = {d[4]!r}"
        ),
        max_examples=max_examples,
    )
