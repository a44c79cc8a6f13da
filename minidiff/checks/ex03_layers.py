"""The checks of exercise 3 (chapter 3, layers, losses and optimizers): layer norm and AdamW.

The notebook ``exercises/src/ex03_layers.md`` asks for the backward of layer normalization
(:func:`check_layernorm_backward`, eq-layernorm-vjp, against float64 central differences of the
library's ``layer_norm``) and for one AdamW step (:func:`check_adamw_step`, eq-adamw, against the
closed form :func:`adamw_closed_form` and against one step of ``minidiff.optim.AdamW``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import assume
from hypothesis import strategies as st

from .. import backend
from ..nn import Parameter
from ..nn import functional as nn_functional
from ..optim import AdamW
from . import strategies as S
from .compare import compare, compare_vjp, float64_result, host, show, unpack_results
from .gradients import Case, OpSpec
from .grading import DEFAULT_EXAMPLES, Verdict, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "3.1": [
        (
            "Split the layer norm into steps (mean, centred x, variance, xhat, y = w xhat + b) and"
            " push g back through each, like a graph."
        ),
        (
            "dbias sums g and dweight sums g * xhat over every axis but the last; for x, dL/dxhat "
            "= g w, and the standardization's backward has three terms."
        ),
        (
            "dxhat = g * w; dx = (dxhat - dxhat.mean(-1, keepdims=True) - xhat * (dxhat * "
            "xhat).mean(-1, keepdims=True)) / sqrt(var + eps); dweight = (g * xhat).sum(rows) and "
            "dbias = g.sum(rows), rows = tuple(range(x.ndim - 1)); return dx, dweight, dbias."
        ),
    ],
    "3.2": [
        (
            "Keep the two moving averages first (from g only: the decay is decoupled, it touches "
            "p, never m or v), then correct their bias, then step."
        ),
        (
            "For a constant gradient g, unroll m_t = (1 - b1) sum_{s=1..t} b1**(t-s) g from m_0 = "
            "0: the geometric series gives m_t = (1 - b1**t) g, so the correction divides m by "
            "1 - b1**t; v likewise by 1 - b2**t."
        ),
        (
            "m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g*g; p = p * (1 - lr wd) - lr (m / (1 - "
            "b1**t)) / (sqrt(v / (1 - b2**t)) + eps); return p, m, v."
        ),
    ],
}

# The equations exercise 3 checks, as chapter 3 states them (shown when a check fails).
EQUATIONS = {
    "eq-layernorm-vjp": "with r = 1 / sqrt(var(x) + eps), x_hat = (x - mean(x)) r and "
    "gh = g * weight, means over the last axis: dL/dx = r (gh - mean(gh) - x_hat mean(gh x_hat)); "
    "dL/dweight = g x_hat and dL/dbias = g, each summed over every axis but the last",
    "eq-adamw": "m' = b1 m + (1 - b1) g;  v' = b2 v + (1 - b2) g^2;  m_hat = m' / (1 - b1^t);  "
    "v_hat = v' / (1 - b2^t);  p' = p (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps): the decay "
    "multiplies p and never enters m or v",
}


# The library's forward, differentiated numerically: the reference for exercise 3.1.
_LAYER_NORM = OpSpec(
    "layer_norm",
    lambda x, weight, bias, eps: nn_functional.layer_norm(x, weight, bias, eps),
    st.nothing(),
)


@st.composite
def _layernorm_cases(draw):
    """x of shape (..., d) with d >= 1 (any leading axes, maybe empty), weight, bias and g, and
    an eps; rows with two or more features are kept away from zero variance, where 1/sqrt(var
    + eps) is huge and central differences lose their accuracy."""
    lead = draw(S.shapes(max_dims=2, max_side=3))
    d = draw(st.integers(1, 5))
    x = draw(S.arrays((*lead, d)))
    if d > 1:
        assume(x.size == 0 or bool((x.var(axis=-1) > 0.05).all()))
    weight = draw(S.arrays((d,), -2.0, 2.0))
    bias = draw(S.arrays((d,)))
    g = draw(S.arrays((*lead, d)))
    eps = draw(st.sampled_from([1e-5, 0.1]))
    return Case((x, weight, bias), {"eps": eps}), g


def _describe_layernorm(drawn) -> str:
    case, g = drawn
    x, weight, _ = case.arrays
    return "\n".join(
        [
            f"x = {show(x)}",
            f"weight = {show(weight)}",
            f"g = {show(g)}",
            f"eps = {case.params['eps']!r}",
        ]
    )


def check_layernorm_backward(
    fn: Callable, exercise: str = "3.1", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(x, weight, g, eps)`` returns (dL/dx, dL/dweight, dL/dbias) for
    y = layer_norm(x, weight, bias, eps) over the last axis and g = dL/dy (eq-layernorm-vjp).

    The expected values are float64 central differences of the library's ``layer_norm``
    forward, for L = <g, y>; the gradients must have their input's shape, stay float64 and on
    the inputs' device, and match to ``1e-6 + 1e-6 |expected|``.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(drawn):
        case, g = drawn
        x, weight, bias = case.arrays
        eps = case.params["eps"]
        returned = fn(xp.array(x), xp.array(weight), xp.array(g), eps)
        compare_vjp(returned, ("x", "weight", "bias"), _LAYER_NORM, case, g, device)

    return grade(
        exercise,
        "layer norm backward",
        "eq-layernorm-vjp",
        prop,
        _layernorm_cases(),
        statement=EQUATIONS["eq-layernorm-vjp"],
        describe=_describe_layernorm,
        forbid=(
            "minidiff.nn.functional.layer_norm",
            "minidiff.autograd.tensor.Tensor.backward",
        ),
        max_examples=max_examples,
    )


@dataclass(frozen=True)
class _AdamWCase:
    p: numpy.ndarray
    g: numpy.ndarray
    m: numpy.ndarray
    v: numpy.ndarray
    t: int
    hyper: dict


@st.composite
def _adamw_cases(draw):
    """One step of AdamW: parameters, gradients and moments of one shape, the step number t
    (1 for the first step, where the moments are still zero) and hyper-parameters."""
    shape = draw(S.shapes())
    t = draw(st.sampled_from([1, 2, 3, 10, 1000]))
    p, g = draw(S.arrays(shape)), draw(S.arrays(shape))
    if t == 1:
        m = v = numpy.zeros(shape)
    else:
        m, v = draw(S.arrays(shape, -1.0, 1.0)), draw(S.arrays(shape, 0.0, 4.0))
    hyper = {
        "lr": draw(st.sampled_from([1e-3, 0.1, 0.5])),
        "beta1": draw(st.sampled_from([0.9, 0.5, 0.0])),
        "beta2": draw(st.sampled_from([0.999, 0.9])),
        "eps": draw(st.sampled_from([1e-8, 0.1])),
        "weight_decay": draw(st.sampled_from([0.0, 0.01, 0.5])),
    }
    return _AdamWCase(p, g, m, v, t, hyper)


def _describe_adamw(case: _AdamWCase) -> str:
    lines = [f"{name} = {show(getattr(case, name))}" for name in ("p", "g", "m", "v")]
    lines.append(f"t = {case.t}")
    lines += [f"{k} = {v!r}" for k, v in case.hyper.items()]
    return "\n".join(lines)


def adamw_closed_form(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay):
    """One AdamW step (eq-adamw) on host float64 arrays: the new (p, m, v)."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g * g
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    p = p * (1 - lr * weight_decay) - lr * m_hat / (numpy.sqrt(v_hat) + eps)
    return p, m, v


def _adamw_library(case: _AdamWCase, device: str):
    """The same step taken by ``minidiff.optim.AdamW``, its state set to the case's moments."""
    h = case.hyper
    param = Parameter(case.p, dtype=numpy.float64, device=device)
    param.grad = backend.to_device(case.g.copy(), device)
    optimizer = AdamW(
        [param],
        lr=h["lr"],
        betas=(h["beta1"], h["beta2"]),
        eps=h["eps"],
        weight_decay=h["weight_decay"],
    )
    if case.t > 1:
        optimizer.state[id(param)] = {
            "step": case.t - 1,
            "exp_avg": backend.to_device(case.m.copy(), device),
            "exp_avg_sq": backend.to_device(case.v.copy(), device),
        }
    optimizer.step()
    state = optimizer.state[id(param)]
    return tuple(host(a) for a in (param.data, state["exp_avg"], state["exp_avg_sq"]))


def check_adamw_step(
    fn: Callable, exercise: str = "3.2", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(p, g, m, v, t, lr, beta1, beta2, eps, weight_decay)`` returns the new (p, m, v)
    after AdamW's step number ``t`` (eq-adamw), from the moments m, v after step t - 1.

    The result must match the closed form and one step of ``minidiff.optim.AdamW`` on the same
    data, to ``1e-12 + 1e-9 |expected|``, keeping the inputs' shape, float64 and device.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: _AdamWCase):
        inputs = [xp.array(a) for a in (case.p, case.g, case.m, case.v)]
        returned = fn(*inputs, case.t, **case.hyper)
        got = [
            float64_result(f"the new {name}", a, case.p.shape, device)
            for name, a in zip(("p", "m", "v"), unpack_results(returned, ("p", "m", "v")))
        ]
        want = adamw_closed_form(case.p, case.g, case.m, case.v, case.t, **case.hyper)
        library = _adamw_library(case, device)
        for name, mine, closed, ours in zip(("p", "m", "v"), got, want, library):
            compare(f"the new {name}", mine, closed, 1e-9, 1e-12)
            compare(f"the new {name} (against minidiff.optim.AdamW)", mine, ours, 1e-9, 1e-12)

    return grade(
        exercise,
        "one AdamW step",
        "eq-adamw",
        prop,
        _adamw_cases(),
        statement=EQUATIONS["eq-adamw"],
        describe=_describe_adamw,
        forbid=("minidiff.optim.AdamW.step",),
        max_examples=max_examples,
    )
