"""The checks of exercise 2 (chapter 2, automatic differentiation): backward functions.

The notebook ``exercises/src/ex02_backward.md`` asks for the vector-Jacobian products (eq-vjp) of
mul and div with broadcasting, batched matmul, sum, softmax and a logsumexp that stays stable for
large inputs. :func:`check_vjp` compares each with float64 central differences
(:func:`~minidiff.checks.gradients.numeric_vjp`) on the very cases the test suite checks the
library's own ops on (``OP_SPECS``), so notebooks and tests share one source; ``BACKWARDS`` says
how each op's backward is called.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import assume
from hypothesis import strategies as st

from .. import backend
from ..autograd.tensor import Tensor
from . import strategies as S
from .compare import compare, host, show
from .gradients import OP_SPECS, Case, forward_value, numeric_vjp
from .grading import DEFAULT_EXAMPLES, Mismatch, Verdict, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "2.1": [
        (
            "Differentiate <g, a * b> entry by entry with respect to a, then with respect to b; "
            "broadcast inputs need their gradient summed back to their shape."
        ),
        (
            "d<g, a b>/da = g b, before the broadcast reduction; write sum_to first and use it on "
            "both gradients."
        ),
        "return sum_to(g * b, a.shape), sum_to(g * a, b.shape).",
    ],
    "2.2": [
        "Differentiate a / b with respect to a and to b separately, as in 2.1.",
        "d(a/b)/da = 1/b and d(a/b)/db = -a / b^2; multiply by g and reduce to each input's shape.",
        "return sum_to(g / b, a.shape), sum_to(-g * a / (b * b), b.shape).",
    ],
    "2.3": [
        (
            "Write <g, a b> as a sum over i, j, k of g_ij a_ik b_kj and differentiate by a_ik, "
            "then by b_kj."
        ),
        (
            "The result has the shape of each input: (n, k) for a, (k, m) for b; only one product "
            "of g with the other input (transposed) has that shape. For batched inputs, transpose "
            "the last two axes and reduce broadcast batch axes."
        ),
        (
            "grad_a = g @ swapaxes(b, -1, -2), grad_b = swapaxes(a, -1, -2) @ g, each passed "
            "through sum_to to its input's shape."
        ),
    ],
    "2.4": [
        "Every input entry that was summed into an output entry receives that entry's g unchanged.",
        (
            "If keepdims was False, put the reduced axes back (length 1) with expand_dims, then "
            "broadcast to x_shape."
        ),
        (
            "axes = the reduced axes (all of them when axis is None, normalized to be "
            "non-negative); if not keepdims: g = xp.expand_dims(g, axes); return "
            "xp.broadcast_to(g, x_shape) (a copy if you will write into it)."
        ),
    ],
    "2.5": [
        (
            "Write the Jacobian of softmax: ds_i/dx_j = s_i (delta_ij - s_j), and contract it with"
            " g without building it."
        ),
        "Contracting gives s * g minus s times a sum over the axis of something.",
        "return s * (g - (g * s).sum(axis=axis, keepdims=True)).",
    ],
    "2.6": [
        "The derivative of logsumexp along the axis is a familiar function of x.",
        (
            "d logsumexp(x)/dx = softmax(x), computed stably (subtract the max); g needs its "
            "reduced axis back if keepdims was False."
        ),
        (
            "y = m + log(exp(x - m).sum(axis, keepdims=True)) with m = x.max(axis, keepdims=True);"
            " s = exp(x - y), the stable softmax; if not keepdims: g = xp.expand_dims(g, axis); "
            "return g * s."
        ),
    ],
}

# The equations exercise 2 checks, as chapter 2 states them (shown when a check fails).
EQUATIONS = {
    "eq-vjp": "dL/dx_j = sum_i g_i dy_i/dx_j, with g = dL/dy (a vector-Jacobian product)",
    "eq-broadcast-reduce": "if x was broadcast to y, dL/dx is dL/dy summed over the broadcast "
    "copies: over the leading axes broadcasting added and the axes where x has size 1",
    "eq-matmul-vjp": "for Y = A B: dL/dA = G B^T and dL/dB = A^T G (transposing the last two "
    "axes), each summed back to its input's shape over broadcast batch axes",
    "eq-softmax-vjp": "for s = softmax(x): dL/dx = s * (g - sum_j g_j s_j), the sum along the "
    "softmax axis",
    "eq-logsumexp-stable": "logsumexp(x) = m + log sum_i exp(x_i - m) with m = max_i x_i; its "
    "gradient is softmax(x) = exp(x - logsumexp(x)), which never overflows",
}


@dataclass(frozen=True)
class _Backward:
    """How a student's backward for one op is called and what it is about."""

    title: str
    equation: str
    inputs: tuple
    # (student_backward, g, inputs on the device, params, output) -> what the student returns:
    # one gradient for a one-input op, else a tuple of them
    call: Callable
    where: Callable[[Case], bool] = lambda case: True
    shifts: tuple = (0.0,)


def _matrices(case: Case) -> bool:
    """Both operands have at least two axes (1-d operands are reshaped by matmul's forward)."""
    return min(a.ndim for a in case.arrays) >= 2


BACKWARDS = {
    "mul": _Backward(
        "mul backward, with broadcasting",
        "eq-broadcast-reduce",
        ("a", "b"),
        lambda bw, g, xs, params, out: bw(g, *xs),
    ),
    "div": _Backward(
        "div backward, with broadcasting",
        "eq-vjp",
        ("a", "b"),
        lambda bw, g, xs, params, out: bw(g, *xs),
    ),
    "matmul": _Backward(
        "batched matmul backward",
        "eq-matmul-vjp",
        ("a", "b"),
        lambda bw, g, xs, params, out: bw(g, *xs),
        where=_matrices,
    ),
    "sum": _Backward(
        "sum backward",
        "eq-vjp",
        ("x",),
        lambda bw, g, xs, params, out: bw(g, xs[0].shape, params["axis"], params["keepdims"]),
    ),
    "softmax": _Backward(
        "softmax backward",
        "eq-softmax-vjp",
        ("x",),
        lambda bw, g, xs, params, out: bw(g, out, params["axis"]),
    ),
    "logsumexp": _Backward(
        "logsumexp backward, stable for large x",
        "eq-logsumexp-stable",
        ("x",),
        lambda bw, g, xs, params, out: bw(g, xs[0], params["axis"], params["keepdims"]),
        shifts=(0.0, 1000.0),
    ),
}


@st.composite
def _vjp_cases(draw, op: str, where: Callable[[Case], bool], shifts: tuple):
    """A case of ``OP_SPECS[op]`` that ``where`` accepts, a cotangent g of the output's shape,
    and a shift for the inputs."""
    spec = OP_SPECS[op]
    case = draw(spec.cases)
    assume(spec.valid(case) and where(case))
    g = draw(S.arrays(forward_value(spec, case).shape))
    return case, g, draw(st.sampled_from(shifts))


def _describe_vjp(names: tuple):
    def describe(drawn) -> str:
        case, g, shift = drawn
        lines = [f"{n} = {show(a + shift)}" for n, a in zip(names, case.arrays)]
        lines += [f"{k} = {v!r}" for k, v in case.params.items()]
        lines.append(f"g = {show(g)}")
        return "\n".join(lines)

    return describe


# The library functions each backward re-derives: the op itself (whose backward it is), the
# autograd that would run that backward, and the helpers the exercise also asks for.
_OPS = "minidiff.autograd.ops."
_BACKWARD = "minidiff.autograd.tensor.Tensor.backward"
FORBID = {
    "mul": (_OPS + "mul", _OPS + "sum_to", _BACKWARD),
    "div": (_OPS + "div", _OPS + "sum_to", _BACKWARD),
    "matmul": (_OPS + "matmul", _BACKWARD),
    "sum": (_OPS + "sum", _BACKWARD),
    "softmax": (_OPS + "softmax", _OPS + "log_softmax", _BACKWARD),
    "logsumexp": (_OPS + "logsumexp", _OPS + "softmax", _BACKWARD),
}


def check_vjp(
    exercise: str,
    student_backward: Callable,
    op: str,
    *,
    where: Callable[[Case], bool] | None = None,
    shifts: tuple | None = None,
    title: str = "",
    rtol: float = 1e-6,
    atol: float = 1e-6,
    max_examples: int = DEFAULT_EXAMPLES,
) -> Verdict:
    """Check a student's backward of ``op`` against central differences (eq-vjp), in float64.

    For inputs x and a cotangent g drawn from ``OP_SPECS[op]``, the student's gradients must
    match dL/dx for L = <g, op(x)> computed by :func:`~minidiff.checks.gradients.numeric_vjp`,
    entry by entry within ``atol + rtol |expected|``, with each input's shape and dtype and on
    its device. ``where`` narrows the cases. One of ``shifts`` is added to every input the
    student sees, for ops whose gradient does not change under a shift (softmax, logsumexp):
    large inputs then test numerical stability while the expected values stay those at the
    drawn inputs. Both default to the op's entry in ``BACKWARDS``; ``title`` replaces its
    title in the verdict.
    """
    how = BACKWARDS[op]
    spec = OP_SPECS[op]
    device = backend.default_device()

    def prop(drawn):
        case, g, shift = drawn
        xp = backend.module_for(device)
        inputs = tuple(xp.asarray(a + shift) for a in case.arrays)
        out = spec.fn(*[Tensor(x, dtype=numpy.float64) for x in inputs], **case.params).data
        # Copies, so that a backward that writes into g cannot change the expected values.
        grads = how.call(student_backward, xp.array(g), inputs, case.params, out)
        if len(inputs) == 1:
            grads = (grads,)
        elif not isinstance(grads, tuple | list) or len(grads) != len(inputs):
            raise Mismatch(
                f"the backward should return {len(inputs)} gradient(s), one per input "
                f"({', '.join(how.inputs)}), as a tuple; it returned {type(grads).__name__}"
            )
        expected = numeric_vjp(spec, case, g)
        for name, x, grad, want in zip(how.inputs, inputs, grads, expected):
            what = f"the gradient for {name}"
            if not hasattr(grad, "shape"):
                raise Mismatch(f"{what} is a {type(grad).__name__}, not an array")
            if backend.device_of(grad) != device:
                raise Mismatch(
                    f"{what} is on the {backend.device_of(grad)} but {name} is on "
                    f"the {device}: build it with the input's array module"
                )
            if grad.shape != x.shape:
                raise Mismatch(
                    f"{what} has shape {tuple(grad.shape)}, but {name} has shape {x.shape}: "
                    "a gradient has its input's shape; when the input was broadcast, sum over "
                    "the broadcast axes (eq-broadcast-reduce)"
                )
            if grad.dtype != numpy.float64:
                raise Mismatch(
                    f"{what} has dtype {grad.dtype}; from float64 inputs it must "
                    "stay float64 (a float32 constant or cast loses precision)"
                )
            compare(what, host(grad), want, rtol, atol)

    return grade(
        exercise,
        title or how.title,
        how.equation,
        prop,
        _vjp_cases(op, where or how.where, shifts or how.shifts),
        statement=EQUATIONS[how.equation],
        describe=_describe_vjp(how.inputs),
        forbid=FORBID.get(op, (_BACKWARD,)),
        max_examples=max_examples,
    )
