"""The checks of exercise 10 (chapter 10, text conditioning): classifier-free guidance.

The notebook ``exercises/src/ex10_guidance.md`` asks for classifier-free guidance
(:func:`check_guidance`: the convention w = 0 unconditional, w = 1 conditional, then eq-cfg for
any w against ``minidiff.diffusion.samplers.classifier_free_guidance``) and for the wrapper that
evaluates the conditional and null captions as one batch (:func:`check_batched_guidance`, with a
stand-in network that records the batches it sees).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy
from hypothesis import strategies as st

from ..diffusion.samplers import classifier_free_guidance
from . import strategies as S
from .compare import as_array, compare, show
from .grading import DEFAULT_EXAMPLES, Mismatch, Verdict, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "10.1": [
        (
            "Guidance moves from the unconditional prediction towards the conditional one, by a "
            "factor w."
        ),
        (
            "At w = 0 it is the unconditional prediction and at w = 1 the conditional one; it is "
            "linear in w."
        ),
        "eps_uncond + w (eps_cond - eps_uncond).",
    ],
    "10.2": [
        (
            "Run the model once on a batch that holds every example twice: once with its caption, "
            "once with the null caption."
        ),
        (
            "Concatenate x with itself, t with itself and condition with null_condition, then "
            "split the output in two halves."
        ),
        (
            "return a function (x, t) -> classifier_free_guidance(second half, first half, w) of "
            "model(concat([x, x]), concat([t, t]), concat([condition, null]))."
        ),
    ],
}

# The equations exercise 10 checks, as chapter 10 states them (shown when a check fails).
EQUATIONS = {
    "eq-cfg": "eps_w = eps_u + w (eps_c - eps_u): w = 0 gives eps_u (unconditional), w = 1 gives "
    "eps_c (conditional), w > 1 extrapolates away from eps_u",
    "batched-guidance": "guided(x, t) = eps_u + w (eps_c - eps_u) with eps_c = model(x, t, "
    "condition) and eps_u = model(x, t, null_condition), both from ONE call of model on a batch "
    "of 2B (x twice, t twice, the conditions stacked)",
}


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
            got = as_array(f"the result at w = {fixed:g}", fn(eps_u, eps_c, fixed), eps_u.shape)
            if not numpy.allclose(got, want, rtol=1e-12, atol=1e-12):
                raise Mismatch(
                    f"at w = {fixed:g} guidance must return {name} unchanged (the book's "
                    f"convention: w = 0 unconditional, w = 1 conditional)\n"
                    f"expected: {show(want)}\ngot:      {show(got)}"
                )
        got = as_array("the guided prediction", fn(eps_u, eps_c, scale), eps_u.shape)
        want = classifier_free_guidance(eps_u, eps_c, scale)
        compare(f"the guided prediction at w = {scale!r}", got, want, 1e-12, 1e-12)

    return grade(
        exercise,
        "classifier-free guidance",
        "eq-cfg",
        prop,
        _guidance_cases(),
        statement=EQUATIONS["eq-cfg"],
        describe=lambda d: f"eps_uncond = {show(d[0])}\neps_cond = {show(d[1])}\nw = {d[2]!r}",
        forbid=("minidiff.diffusion.samplers.classifier_free_guidance",),
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
        got = as_array("the guided prediction", guided(x, t), x.shape)
        want = classifier_free_guidance(
            _RecordingModel()(x, t, null), _RecordingModel()(x, t, condition), scale
        )
        compare(f"the guided prediction at w = {scale!r}", got, want, 1e-10, 1e-10)
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
            f"x = {show(d[0])}\nt = {d[1].tolist()}\ncondition = {show(d[2])}\n"
            f"null_condition = {show(d[3])}\nw = {d[4]!r}"
        ),
        forbid=("minidiff.diffusion.samplers.guided",),
        max_examples=max_examples,
    )
