"""The checks of exercise 1 (chapter 1, arrays on CPU and GPU): device-agnostic array code.

The notebook ``exercises/src/ex01_arrays.md`` asks for four functions written once for NumPy and
CuPy: standardization (:func:`check_standardize`), pairwise squared distances by broadcasting,
without loops (:func:`check_pairwise_sq_dists`), a stable softmax (:func:`check_softmax`,
eq-logsumexp-stable) and the broadcast reduction ``sum_to`` (:func:`check_sum_to`,
eq-broadcast-reduce). :func:`check_device_agnostic` runs each on float32 inputs on every available
device and compares it with a float64 NumPy reference (for the last two, the library's
``ops.softmax`` and ``ops.sum_to``); :func:`static_problems` then reads the code for a named
NumPy or CuPy and for Python loops.
"""

from __future__ import annotations

import inspect
import io
import textwrap
import tokenize
from collections.abc import Callable

import numpy
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .. import backend
from ..autograd import ops
from ..autograd.tensor import Tensor
from . import ex02_backward
from . import strategies as S
from .compare import compare, host, show
from .gradients import Case
from .grading import DEFAULT_EXAMPLES, Mismatch, Verdict, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "1.1": [
        (
            "Take the mean and the variance along `axis` with `keepdims=True`, so they broadcast "
            "back against x."
        ),
        (
            "xp = md.backend.xp_of(x); mean = x.mean(axis=axis, keepdims=True); var = ((x - mean) "
            "** 2).mean(...); the variance has no Bessel correction."
        ),
        (
            "return (x - mean) / xp.sqrt(var + eps), with mean and var kept along axis "
            "(keepdims=True)."
        ),
    ],
    "1.2": [
        (
            "Expand ||x_i - y_j||^2 = ||x_i||^2 - 2 x_i . y_j + ||y_j||^2: every term is an array "
            "op, no loop."
        ),
        (
            "The squared norms are (x * x).sum(axis=1, keepdims=True), shape (N, 1), and (y * "
            "y).sum(axis=1), shape (M,); the middle term is x @ y.T."
        ),
        (
            "(x * x).sum(1, keepdims=True) - 2 * x @ y.T + (y * y).sum(1); clip tiny negatives "
            "with xp.maximum(d, 0) so rounding cannot give a negative distance."
        ),
    ],
    "1.3": [
        (
            "exp overflows for large inputs; softmax does not change when you subtract the same "
            "number from every entry along the axis."
        ),
        "Subtract x.max(axis=axis, keepdims=True) before the exponential.",
        "e = xp.exp(x - x.max(axis, keepdims=True)); return e / e.sum(axis, keepdims=True).",
    ],
    "1.4": [
        (
            "Broadcasting adds leading axes and stretches axes of length 1; the reduction undoes "
            "both, by summing."
        ),
        (
            "First sum away the extra leading axes (grad.ndim - len(shape) of them), then sum with"
            " keepdims=True over every axis where shape has 1 but grad does not."
        ),
        (
            "g = grad.sum(axis=tuple(range(grad.ndim - len(shape)))); then axes = tuple(i for i, n"
            " in enumerate(shape) if n == 1 and g.shape[i] != 1); return g.sum(axis=axes, "
            "keepdims=True) (or g itself when axes is empty)."
        ),
    ],
}

_MODULE_NAMES = {"np", "numpy", "cp", "cupy"}
_LOOP_WORDS = {"for", "while"}


def _code_tokens(fn: Callable):
    """(line, token) for every name in ``fn``'s source, skipping comments and strings."""
    source = textwrap.dedent(inspect.getsource(fn))
    first = fn.__code__.co_firstlineno
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME:
            yield first + token.start[0] - 1, token.string


def _compiled_names(code) -> set:
    """Global and attribute names used by ``code`` and the functions nested in it."""
    names = set(code.co_names)
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _compiled_names(const)
    return names


def static_problems(fn: Callable, allow_loops: bool = True) -> str | None:
    """Why ``fn``'s code is not device-agnostic (or loops when it should not), or None.

    Code that names ``np``/``numpy`` (or ``cp``/``cupy``) works on one device only; the array
    module must come from the data: ``xp = md.backend.xp_of(x)``.
    """
    try:
        names = list(_code_tokens(fn))
    except (OSError, TypeError, SyntaxError, tokenize.TokenError):
        # No source to read (a function typed at a plain Python prompt, a lambda inside a longer
        # line): fall back on the names the compiled code refers to.
        names = [(fn.__code__.co_firstlineno, n) for n in _compiled_names(fn.__code__)]
    modules = [(line, n) for line, n in names if n in _MODULE_NAMES]
    if modules:
        used = ", ".join(f"{n} (line {line})" for line, n in modules)
        return (
            f"{fn.__name__} names an array module directly: {used}. Use the input's module, "
            "xp = md.backend.xp_of(x), so the same code runs on NumPy and CuPy."
        )
    loops = [(line, n) for line, n in names if n in _LOOP_WORDS]
    if loops and not allow_loops:
        used = ", ".join(f"{n} (line {line})" for line, n in loops)
        return (
            f"{fn.__name__} loops in Python: {used}. Use broadcasting instead: one array "
            "expression does the work of the loop, on the device."
        )
    return None


def _devices() -> list:
    """The default device first, then the other one when it is usable."""
    first = backend.default_device()
    others = [d for d in backend.DEVICES if d != first and (d == "cpu" or backend.gpu_available())]
    return [first, *others]


def _describe_arrays(names: tuple):
    def describe(case: Case) -> str:
        lines = [f"{n} = {show(a.astype(numpy.float32))}" for n, a in zip(names, case.arrays)]
        lines += [f"{k} = {v!r}" for k, v in case.params.items()]
        return "\n".join(lines)

    return describe


def check_device_agnostic(
    exercise: str,
    fn: Callable,
    reference: Callable,
    cases: st.SearchStrategy,
    *,
    title: str,
    inputs: tuple,
    equation: str = "",
    statement: str = "",
    rtol: float = 1e-5,
    atol: float = 1e-6,
    allow_loops: bool = True,
    forbid: tuple[str, ...] = (),
    max_examples: int = DEFAULT_EXAMPLES,
) -> Verdict:
    """Check that ``fn`` is right, keeps float32, and stays on its input's device.

    For each drawn case (float64 host arrays named ``inputs``, and keyword ``params``), the
    arrays are cast to float32 and put on each available device; ``fn(*arrays, **params)`` must
    return an array (not a scalar) of dtype float32 on that device, matching
    ``reference(*arrays, **params)`` computed in float64 on the same float32 values. Then its
    source must not name NumPy or CuPy (nor loop, unless ``allow_loops``). ``forbid`` names the
    library functions it must not call (see :func:`~minidiff.checks.grading.grade`).
    """

    def prop(case: Case):
        exact = [a.astype(numpy.float32) for a in case.arrays]
        want = numpy.asarray(reference(*[a.astype(numpy.float64) for a in exact], **case.params))
        for device in _devices():
            xp = backend.module_for(device)
            got = fn(*[xp.array(a) for a in exact], **case.params)
            if not isinstance(got, xp.ndarray):
                raise Mismatch(
                    f"on the {device} it returned a {type(got).__module__}.{type(got).__name__}, "
                    f"not a {xp.__name__}.ndarray. NumPy gives a scalar where a reduction "
                    "leaves no axis (and for any arithmetic on such a scalar), CuPy a 0-d array: "
                    "keep axes with keepdims=True, or return the input when nothing is reduced."
                )
            if got.dtype != numpy.float32:
                raise Mismatch(
                    f"on the {device}, float32 inputs gave a {got.dtype} result; "
                    "float32 must stay float32 (a float64 constant or cast upcasts)"
                )
            compare(f"the result on the {device}", host(got), want, rtol, atol)

    return grade(
        exercise,
        title,
        equation,
        prop,
        cases,
        statement=statement,
        describe=_describe_arrays(inputs),
        max_examples=max_examples,
        forbid=forbid,
        static_check=lambda: static_problems(fn, allow_loops),
    )


# --- the tasks of exercise 1: inputs and float64 references ----------------------------------


@st.composite
def _one_axis(draw, low=-3.0, high=3.0, min_side=0, **params):
    shape = draw(S.shapes(min_dims=1, min_side=min_side))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    return Case((draw(S.arrays(shape, low, high)),), {"axis": axis, **params})


def _standardize_reference(x, axis, eps):
    centered = x - x.mean(axis=axis, keepdims=True)
    return centered / numpy.sqrt((centered**2).mean(axis=axis, keepdims=True) + eps)


def check_standardize(fn: Callable, exercise: str = "1.1") -> Verdict:
    """``fn(x, axis, eps)`` = (x - mean) / sqrt(var + eps) along ``axis``, device-agnostic."""
    return check_device_agnostic(
        exercise,
        fn,
        _standardize_reference,
        _one_axis(min_side=1, eps=1e-5),
        forbid=(
            "minidiff.autograd.ops.var",
            "minidiff.nn.functional.layer_norm",
            "minidiff.checks.ex01_arrays._standardize_reference",
        ),
        title="standardize",
        inputs=("x",),
        statement="(x - mean(x)) / sqrt(var(x) + eps) along axis, var without Bessel's correction",
        rtol=1e-3,
        atol=1e-3,
    )


@st.composite
def _point_sets(draw):
    n, m, d = (draw(st.integers(0, 4)) for _ in range(3))
    return Case((draw(S.arrays((n, d))), draw(S.arrays((m, d)))))


def _pairwise_reference(x, y):
    return ((x[:, None, :] - y[None, :, :]) ** 2).sum(axis=-1)


def check_pairwise_sq_dists(fn: Callable, exercise: str = "1.2") -> Verdict:
    """``fn(x, y)``[i, j] = sum_k (x[i, k] - y[j, k])^2 by broadcasting, without loops."""
    return check_device_agnostic(
        exercise,
        fn,
        _pairwise_reference,
        _point_sets(),
        forbid=("minidiff.checks.ex01_arrays._pairwise_reference",),
        title="pairwise squared distances",
        inputs=("x", "y"),
        statement="D[i, j] = sum_k (x[i, k] - y[j, k])^2, shape (n, m)",
        rtol=1e-5,
        atol=1e-5,
        allow_loops=False,
    )


@st.composite
def _softmax_cases(draw):
    shape = list(draw(S.shapes(min_dims=1)))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    # The softmax axis is never empty: there is no maximum to subtract from nothing.
    shape[axis] = max(shape[axis], 1)
    # Large offsets overflow exp unless the maximum is subtracted first.
    offset = draw(st.sampled_from([0.0, 100.0, -100.0, 1000.0]))
    return Case((draw(S.arrays(tuple(shape))) + offset,), {"axis": axis})


def _softmax_reference(x, axis):
    return ops.softmax(Tensor(x, dtype=numpy.float64, device="cpu"), axis).data


def check_softmax(fn: Callable, exercise: str = "1.3") -> Verdict:
    """``fn(x, axis)`` = exp(x - m) / sum exp(x - m), m the maximum along ``axis``."""
    return check_device_agnostic(
        exercise,
        fn,
        _softmax_reference,
        _softmax_cases(),
        forbid=(
            "minidiff.autograd.ops.softmax",
            "minidiff.autograd.ops.log_softmax",
            "minidiff.autograd.ops.logsumexp",
            "minidiff.checks.ex01_arrays._softmax_reference",
        ),
        title="stable softmax",
        inputs=("x",),
        equation="eq-logsumexp-stable",
        statement="softmax(x) = exp(x - m) / sum_j exp(x_j - m), m = max_j x_j, so that no "
        "exponent is positive and nothing overflows",
        rtol=1e-5,
        atol=1e-6,
    )


@st.composite
def _sum_to_cases(draw):
    (small,), big = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=1, max_dims=S.MAX_DIMS, max_side=S.MAX_SIDE)
    )
    return Case((draw(S.arrays(big)),), {"shape": small})


def check_sum_to(fn: Callable, exercise: str = "1.4") -> Verdict:
    """``fn(grad, shape)`` sums ``grad`` over the axes broadcasting added (eq-broadcast-reduce)."""
    return check_device_agnostic(
        exercise,
        fn,
        ops.sum_to,
        _sum_to_cases(),
        forbid=("minidiff.autograd.ops.sum_to",),
        title="sum_to",
        inputs=("grad",),
        equation="eq-broadcast-reduce",
        # sum_to is the reduction of chapter 2's backward rules
        statement=ex02_backward.EQUATIONS["eq-broadcast-reduce"],
        rtol=1e-5,
        atol=1e-5,
    )
