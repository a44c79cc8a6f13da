"""The checks behind the exercise notebooks, built on :mod:`minidiff.checks.grading`.

Exercise 1 (chapter 1) asks for device-agnostic array code: :func:`check_device_agnostic` runs
the student's function on float32 inputs on every available device and compares it with a
float64 NumPy reference. Exercise 2 (chapter 2) asks for backward functions:
:func:`check_vjp` compares them with central differences in float64 on the very cases the test
suite checks the library's own ops on (``OP_SPECS``), so notebooks and tests share one source.
Exercise 3 (chapter 3) asks for the backward of layer normalization
(:func:`check_layernorm_backward`, against central differences of the library's ``layer_norm``)
and for one AdamW step (:func:`check_adamw_step`, against the closed form and against
``minidiff.optim.AdamW``). Exercises 6 to 8 (chapters 6 to 8) ask for the diffusion formulas:
the closed form and one step of the forward chain (:func:`check_q_sample`,
:func:`check_q_step`, against the library and against Monte Carlo runs of the chain), the
posterior and its noise form (:func:`check_q_posterior`, :func:`check_posterior_mean_from_eps`,
against Bayes' rule by completing the square), and the DDIM step (:func:`check_ddim_sigma`,
:func:`check_ddim_step`, against DDPM's step at eta = 1 and the closed form at eta = 0).
"""

from __future__ import annotations

import inspect
import io
import math
import textwrap
import tokenize
from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import assume
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .. import backend
from ..autograd import ops
from ..autograd.tensor import Tensor
from ..diffusion import process, samplers, schedules
from ..nn import Parameter
from ..nn import functional as nn_functional
from ..optim import AdamW
from . import strategies as S
from .gradients import OP_SPECS, Case, OpSpec, forward_value, numeric_vjp
from .grading import DEFAULT_EXAMPLES, Mismatch, Verdict, grade

# The equations the exercises check, as the book states them (shown when a check fails).
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
    "eq-layernorm-vjp": "with r = 1 / sqrt(var(x) + eps), x_hat = (x - mean(x)) r and "
    "gh = g * weight, means over the last axis: dL/dx = r (gh - mean(gh) - x_hat mean(gh x_hat)); "
    "dL/dweight = g x_hat and dL/dbias = g, each summed over every axis but the last",
    "eq-adamw": "m' = b1 m + (1 - b1) g;  v' = b2 v + (1 - b2) g^2;  m_hat = m' / (1 - b1^t);  "
    "v_hat = v' / (1 - b2^t);  p' = p (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps): the decay "
    "multiplies p and never enters m or v",
    "eq-forward-step": "x_t = sqrt(1 - beta) x_prev + sqrt(beta) noise, with beta = betas[t] "
    "for each example, shaped (B, 1, ..., 1) to broadcast over the example's entries",
    "eq-closed-form": "x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) noise, with alpha_bar = "
    "alpha_bars[t] for each example (code index t is the book's step t + 1): the law of t + 1 "
    "steps of the chain in one jump",
    "eq-posterior": "with beta = betas[t], alpha = 1 - beta, ab = alpha_bars[t] and ab_prev = "
    "alpha_bars[t - 1] (1 at t = 0): mean = sqrt(ab_prev) beta / (1 - ab) x0 + sqrt(alpha) "
    "(1 - ab_prev) / (1 - ab) x_t and variance = beta tilde = (1 - ab_prev) / (1 - ab) beta",
    "eq-posterior-mean-eps": "mean = (x_t - beta / sqrt(1 - alpha_bar) eps) / sqrt(alpha), with "
    "beta = betas[t], alpha = 1 - beta, alpha_bar = alpha_bars[t]",
    "eq-ddim-sigma": "sigma = eta sqrt((1 - a_s) / (1 - a_t)) sqrt(1 - a_t / a_s), with "
    "a = alpha_bars (a_s = 1 for s = -1)",
    "eq-ddim-step": "x_s = sqrt(a_s) x0 + sqrt(1 - a_s - sigma^2) eps + sigma noise, with "
    "a = alpha_bars (a_s = 1 for s = -1) and sigma from (eq-ddim-sigma)",
}

# Six significant digits show a wrong value and keep a small array on one line.
_PRINT = dict(precision=6, separator=", ", max_line_width=10_000, floatmode="maxprec")


def _show(array) -> str:
    """An array for people: its values when it is small, otherwise its shape and range."""
    array = numpy.asarray(array)
    if array.size <= 24:
        text = numpy.array2string(array, **_PRINT)
    else:
        text = f"{array.size} values in [{array.min():.6g}, {array.max():.6g}]"
    return f"{text}  (shape {array.shape}, {array.dtype})"


def _host(value):
    """A NumPy array from what a student returned (an array on any device, or a Tensor)."""
    if isinstance(value, Tensor):
        value = value.data
    return backend.to_numpy(value)


def _compare(what: str, got, expected, rtol: float, atol: float) -> None:
    """Raise :class:`Mismatch` unless |got - expected| <= atol + rtol |expected| everywhere."""
    if got.shape != expected.shape:
        raise Mismatch(f"{what} has shape {got.shape}, but it should have shape {expected.shape}")
    with numpy.errstate(invalid="ignore", over="ignore"):
        error = numpy.abs(got.astype(numpy.float64) - expected)
        bad = ~(error <= atol + rtol * numpy.abs(expected))
    if bad.any():
        ranked = numpy.where(bad, numpy.nan_to_num(error, nan=numpy.inf), -1.0)
        worst = numpy.unravel_index(numpy.argmax(ranked), expected.shape)
        off = (
            f"is off by {error[worst]:.3g}"
            if numpy.isfinite(error[worst])
            else f"is {got[worst]} instead of {expected[worst]:.6g}"
        )
        raise Mismatch(
            f"{what} is wrong at {bad.sum()} of {bad.size} entries; the worst, at index "
            f"{tuple(int(i) for i in worst)}, {off}\n"
            f"expected: {_show(expected)}\n"
            f"got:      {_show(got)}"
        )


# ============================================================================================
# exercise 2: vector-Jacobian products
# ============================================================================================


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
        lines = [f"{n} = {_show(a + shift)}" for n, a in zip(names, case.arrays)]
        lines += [f"{k} = {v!r}" for k, v in case.params.items()]
        lines.append(f"g = {_show(g)}")
        return "\n".join(lines)

    return describe


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
            _compare(what, _host(grad), want, rtol, atol)

    return grade(
        exercise,
        title or how.title,
        how.equation,
        prop,
        _vjp_cases(op, where or how.where, shifts or how.shifts),
        statement=EQUATIONS[how.equation],
        describe=_describe_vjp(how.inputs),
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 1: device-agnostic array code
# ============================================================================================

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
        lines = [f"{n} = {_show(a.astype(numpy.float32))}" for n, a in zip(names, case.arrays)]
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
    max_examples: int = DEFAULT_EXAMPLES,
) -> Verdict:
    """Check that ``fn`` is right, keeps float32, and stays on its input's device.

    For each drawn case (float64 host arrays named ``inputs``, and keyword ``params``), the
    arrays are cast to float32 and put on each available device; ``fn(*arrays, **params)`` must
    return an array (not a scalar) of dtype float32 on that device, matching
    ``reference(*arrays, **params)`` computed in float64 on the same float32 values. Then its
    source must not name NumPy or CuPy (nor loop, unless ``allow_loops``).
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
            _compare(f"the result on the {device}", _host(got), want, rtol, atol)

    return grade(
        exercise,
        title,
        equation,
        prop,
        cases,
        statement=statement,
        describe=_describe_arrays(inputs),
        max_examples=max_examples,
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
        title="sum_to",
        inputs=("grad",),
        equation="eq-broadcast-reduce",
        statement=EQUATIONS["eq-broadcast-reduce"],
        rtol=1e-5,
        atol=1e-5,
    )


# ============================================================================================
# exercise 3: the backward of layer normalization, and one AdamW step
# ============================================================================================


def _check_result(what: str, got, shape: tuple, device: str) -> numpy.ndarray:
    """``got`` as a host array after checking that it is an array of ``shape``, float64, on
    ``device``; raise :class:`Mismatch` otherwise."""
    if isinstance(got, Tensor):
        got = got.data
    if not hasattr(got, "shape") or not hasattr(got, "dtype"):
        raise Mismatch(f"{what} is a {type(got).__name__}, not an array")
    if backend.device_of(got) != device:
        raise Mismatch(
            f"{what} is on the {backend.device_of(got)}, but the inputs are on the {device}: "
            "build it with the input's array module, xp = md.backend.xp_of(x)"
        )
    if tuple(got.shape) != tuple(shape):
        raise Mismatch(f"{what} has shape {tuple(got.shape)}, but it should have shape {shape}")
    if got.dtype != numpy.float64:
        raise Mismatch(
            f"{what} has dtype {got.dtype}; from float64 inputs it must stay float64 "
            "(a float32 constant or cast loses precision)"
        )
    return _host(got)


def _compare_vjp(returned, names: tuple, spec, case: Case, g, device: str) -> None:
    """Check a student's gradients (one per input, named ``grad_<name>``) against float64
    central differences of ``spec`` at ``case`` with cotangent ``g``, to 1e-6."""
    grads = _results(returned, tuple(f"grad_{name}" for name in names))
    for name, like, got, want in zip(names, case.arrays, grads, numeric_vjp(spec, case, g)):
        what = f"the gradient for {name}"
        _compare(what, _check_result(what, got, like.shape, device), want, 1e-6, 1e-6)


def _results(returned, names: tuple) -> tuple:
    if not isinstance(returned, tuple | list) or len(returned) != len(names):
        raise Mismatch(
            f"it should return {len(names)} arrays, ({', '.join(names)}), as a tuple; it "
            f"returned {type(returned).__name__}"
            + (f" of length {len(returned)}" if isinstance(returned, tuple | list) else "")
        )
    return tuple(returned)


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
            f"x = {_show(x)}",
            f"weight = {_show(weight)}",
            f"g = {_show(g)}",
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
        _compare_vjp(returned, ("x", "weight", "bias"), _LAYER_NORM, case, g, device)

    return grade(
        exercise,
        "layer norm backward",
        "eq-layernorm-vjp",
        prop,
        _layernorm_cases(),
        statement=EQUATIONS["eq-layernorm-vjp"],
        describe=_describe_layernorm,
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
    lines = [f"{name} = {_show(getattr(case, name))}" for name in ("p", "g", "m", "v")]
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
    return tuple(_host(a) for a in (param.data, state["exp_avg"], state["exp_avg_sq"]))


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
            _check_result(f"the new {name}", a, case.p.shape, device)
            for name, a in zip(("p", "m", "v"), _results(returned, ("p", "m", "v")))
        ]
        want = adamw_closed_form(case.p, case.g, case.m, case.v, case.t, **case.hyper)
        library = _adamw_library(case, device)
        for name, mine, closed, ours in zip(("p", "m", "v"), got, want, library):
            _compare(f"the new {name}", mine, closed, 1e-9, 1e-12)
            _compare(f"the new {name} (against minidiff.optim.AdamW)", mine, ours, 1e-9, 1e-12)

    return grade(
        exercise,
        "one AdamW step",
        "eq-adamw",
        prop,
        _adamw_cases(),
        statement=EQUATIONS["eq-adamw"],
        describe=_describe_adamw,
        max_examples=max_examples,
    )


# ============================================================================================
# exercises 6, 7 and 8: the forward chain, the posterior, and the DDIM step
# ============================================================================================
# Schedules are small (T <= 100) so that a Monte Carlo run of the whole chain costs little, and
# include zero terminal SNR (alpha_bar_T = 0, beta_T = 1), the edge case of every formula.

_SCHEDULES = {
    "linear(50, scale_to_T=True)": lambda: schedules.linear(50, scale_to_T=True),
    "cosine(20)": lambda: schedules.cosine(20),
    "cosine(100)": lambda: schedules.cosine(100),
    "sigmoid(40)": lambda: schedules.sigmoid(40),
    "rescale_zero_terminal_snr(cosine(30))": lambda: schedules.rescale_zero_terminal_snr(
        schedules.cosine(30)
    ),
}
_BUILT: dict = {}


def _schedule(name: str):
    if name not in _BUILT:
        _BUILT[name] = _SCHEDULES[name]()
    return _BUILT[name]


@dataclass(frozen=True)
class _DiffusionCase:
    """A schedule (by name), a batch of data-shaped arrays, and timesteps (one per example)."""

    schedule: str
    arrays: dict
    t: numpy.ndarray
    params: dict

    @property
    def sched(self):
        return _schedule(self.schedule)


@st.composite
def _diffusion_cases(draw, names: tuple, keep_alpha_positive: bool = False):
    """Arrays named ``names`` of one shape (B, ...) with B in 1..3, and integer timesteps t of
    shape (B,) valid for the drawn schedule (with alpha_t > 0 if ``keep_alpha_positive``)."""
    schedule = draw(st.sampled_from(sorted(_SCHEDULES)))
    sched = _schedule(schedule)
    batch = draw(st.integers(1, 3))
    rest = draw(S.shapes(max_dims=2, min_side=1, max_side=3))
    shape = (batch, *rest)
    top = len(sched) - 1
    if keep_alpha_positive and sched.alphas[top] == 0:
        top -= 1
    t = numpy.array(draw(st.lists(st.integers(0, top), min_size=batch, max_size=batch)))
    arrays = {name: draw(S.arrays(shape, -2.0, 2.0)) for name in names}
    return _DiffusionCase(schedule, arrays, t, {})


def _describe_diffusion(case: _DiffusionCase) -> str:
    lines = [f"schedule = {case.schedule}  (T = {len(case.sched)})"]
    lines += [f"{name} = {_show(a)}" for name, a in case.arrays.items()]
    lines.append(f"t = {case.t.tolist()}  (code indices: t = 0 is the book's step 1)")
    lines += [f"{k} = {v!r}" for k, v in case.params.items()]
    return "\n".join(lines)


def _per_example(values: numpy.ndarray, like: numpy.ndarray) -> numpy.ndarray:
    """One value per example, shaped (B, 1, ..., 1) to broadcast against ``like``."""
    return values.reshape(values.shape + (1,) * (like.ndim - 1))


def _chain_coefficients(sched, t: numpy.ndarray):
    """sqrt(alpha_bar) and 1 - alpha_bar at code index t, by composing t + 1 steps of the chain
    (eq-forward-step) on the mean coefficient and the variance, not from alpha_bars."""
    mean, var = numpy.ones(t.shape), numpy.zeros(t.shape)
    for step in range(int(t.max()) + 1):
        active = step <= t
        beta = sched.betas[step]
        mean = numpy.where(active, numpy.sqrt(1.0 - beta) * mean, mean)
        var = numpy.where(active, (1.0 - beta) * var + beta, var)
    return mean, var


def _moments_agree(what: str, samples, mean, var, reference: str) -> None:
    """Raise :class:`Mismatch` unless the sample mean and variance of ``samples`` (n, ...) are
    within six standard errors of ``mean`` and ``var`` (per entry)."""
    n = samples.shape[0]
    got_mean, got_var = samples.mean(axis=0), samples.var(axis=0)
    mean_tol = 6.0 * numpy.sqrt(var / n) + 1e-12
    var_tol = 6.0 * var * numpy.sqrt(2.0 / n) + 1e-12
    for name, got, want, tol in (
        ("mean", got_mean, mean, mean_tol),
        ("variance", got_var, var, var_tol),
    ):
        want = numpy.broadcast_to(want, got.shape)
        bad = numpy.abs(got - want) > numpy.broadcast_to(tol, got.shape)
        if bad.any():
            i = tuple(int(k) for k in numpy.argwhere(bad)[0])
            allowed = numpy.broadcast_to(tol, got.shape)[i]
            entry = f" of entry {i}" if i else ""
            raise Mismatch(
                f"{what}: over {n} draws, the {name}{entry} is {got[i]:.6g}, but "
                f"{reference} gives {want[i]:.6g} (allowed: +-{allowed:.2g})"
            )


_MONTE_CARLO_DRAWS = 2000


def check_q_sample(fn: Callable, exercise: str = "6.1", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(alpha_bars, x0, t, noise)`` returns x_t by the closed form (eq-closed-form).

    It must agree (to 1e-9 relative) with the composed chain's mean coefficient and variance,
    computed by running the recursion of (eq-forward-step), and with the library's ``q_sample``;
    and over 2000 fresh noises its moments must match those of 2000 runs of the chain, one step
    at a time, from the first example.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: _DiffusionCase):
        sched, x0, noise, t = case.sched, case.arrays["x0"], case.arrays["noise"], case.t
        got = fn(xp.asarray(sched.alpha_bars), xp.array(x0), xp.asarray(t), xp.array(noise))
        got = _check_result("x_t", got, x0.shape, device)
        mean, var = _chain_coefficients(sched, t)
        chain = _per_example(mean, x0) * x0 + _per_example(numpy.sqrt(var), x0) * noise
        _compare("x_t (against t + 1 composed steps of the chain)", got, chain, 1e-9, 1e-12)
        library = process.q_sample(sched, x0, t, noise)
        _compare("x_t (against minidiff's q_sample)", got, library, 1e-9, 1e-12)
        # Monte Carlo: the student's jump against the chain walked one step at a time.
        rng = numpy.random.default_rng(int(t[0]))
        n = _MONTE_CARLO_DRAWS
        start = numpy.broadcast_to(x0[:1], (n, *x0.shape[1:]))
        fresh = rng.standard_normal(start.shape)
        jumps = _host(
            fn(
                xp.asarray(sched.alpha_bars),
                xp.array(start),
                xp.asarray(numpy.full(n, t[0])),
                xp.array(fresh),
            )
        )
        walked = numpy.array(start)
        for step in range(int(t[0]) + 1):
            beta = sched.betas[step]
            walked = numpy.sqrt(1 - beta) * walked + numpy.sqrt(beta) * rng.standard_normal(
                start.shape
            )
        _moments_agree(
            f"x_t for the first example (t = {t[0]})",
            jumps,
            walked.mean(axis=0),
            walked.var(axis=0),
            f"walking the chain {int(t[0]) + 1} steps",
        )

    return grade(
        exercise,
        "the closed form q_sample",
        "eq-closed-form",
        prop,
        _diffusion_cases(("x0", "noise")),
        statement=EQUATIONS["eq-closed-form"],
        describe=_describe_diffusion,
        max_examples=max_examples,
    )


def check_q_step(fn: Callable, exercise: str = "6.2", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(betas, x_prev, t, noise)`` returns one Markov step x_t (eq-forward-step).

    It must agree with the formula and with the library's ``q_step`` (to 1e-9 relative); and
    composing it from step 0 to t over 2000 runs must give the moments of the closed form,
    sqrt(alpha_bar_t) x_0 and 1 - alpha_bar_t.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: _DiffusionCase):
        sched, x, noise, t = case.sched, case.arrays["x_prev"], case.arrays["noise"], case.t
        betas = xp.asarray(sched.betas)
        got = fn(betas, xp.array(x), xp.asarray(t), xp.array(noise))
        got = _check_result("x_t", got, x.shape, device)
        beta = _per_example(sched.betas[t], x)
        _compare("x_t", got, numpy.sqrt(1 - beta) * x + numpy.sqrt(beta) * noise, 1e-9, 1e-12)
        _compare(
            "x_t (against minidiff's q_step)", got, process.q_step(sched, x, t, noise), 1e-9, 1e-12
        )
        rng = numpy.random.default_rng(int(t[0]))
        n = _MONTE_CARLO_DRAWS
        start = numpy.broadcast_to(x[:1], (n, *x.shape[1:]))
        walked = xp.array(start)
        for step in range(int(t[0]) + 1):
            walked = fn(
                betas,
                walked,
                xp.asarray(numpy.full(n, step)),
                xp.asarray(rng.standard_normal(start.shape)),
            )
        a_bar = sched.alpha_bars[t[0]]
        _moments_agree(
            f"composing your step from t = 0 to t = {t[0]}, starting at the first example",
            _host(walked),
            numpy.sqrt(a_bar) * start[0],
            numpy.full(start.shape[1:], 1.0 - a_bar),
            "the closed form (eq-closed-form)",
        )

    return grade(
        exercise,
        "one step q_step",
        "eq-forward-step",
        prop,
        _diffusion_cases(("x_prev", "noise")),
        statement=EQUATIONS["eq-forward-step"],
        describe=_describe_diffusion,
        max_examples=max_examples,
    )


def _bayes_posterior(sched, x0, x_t, t):
    """Mean and variance of q(x_{t-1} | x_t, x0) from completing the square in the product
    q(x_t | x_{t-1}) q(x_{t-1} | x0): precision alpha / beta + 1 / (1 - ab_prev), mean =
    (sqrt(alpha) x_t / beta + sqrt(ab_prev) x0 / (1 - ab_prev)) / precision; at t = 0 the
    second factor is a point mass at x0, so the posterior is x0 with variance 0."""
    beta = _per_example(sched.betas[t], x0)
    alpha = 1.0 - beta
    ab_prev = _per_example(sched.alpha_bars_prev[t], x0)
    first = ab_prev == 1.0
    spread = numpy.where(first, 1.0, 1.0 - ab_prev)
    precision = alpha / beta + 1.0 / spread
    mean = (numpy.sqrt(alpha) * x_t / beta + numpy.sqrt(ab_prev) * x0 / spread) / precision
    variance = numpy.broadcast_to(1.0 / precision, x0.shape)
    return numpy.where(first, x0, mean), numpy.where(first, 0.0, variance)


def check_q_posterior(fn: Callable, exercise: str = "7.1", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(betas, x0, x_t, t)`` returns (mean, variance) of q(x_{t-1} | x_t, x0) (eq-posterior);
    the variance may have shape (B, 1, ..., 1) or the data's shape.

    Both must agree (to 1e-9 relative) with Bayes' rule by completing the square, computed
    independently as precision and precision-weighted mean, and with the library's
    ``q_posterior``.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: _DiffusionCase):
        sched, x0, x_t, t = case.sched, case.arrays["x0"], case.arrays["x_t"], case.t
        returned = fn(xp.asarray(sched.betas), xp.array(x0), xp.array(x_t), xp.asarray(t))
        mean, variance = _results(returned, ("mean", "variance"))
        mean = _check_result("the mean", mean, x0.shape, device)
        if not hasattr(variance, "shape"):
            raise Mismatch(f"the variance is a {type(variance).__name__}, not an array")
        try:
            full = xp.broadcast_to(variance, x0.shape)
        except ValueError:
            raise Mismatch(
                f"the variance has shape {tuple(variance.shape)}, which does not broadcast to "
                f"the data's shape {x0.shape}: give one value per example, shaped (B, 1, ..., 1)"
            ) from None
        variance = _check_result("the variance", full, x0.shape, device)
        want_mean, want_var = _bayes_posterior(sched, x0, x_t, t)
        _compare("the variance (against Bayes' rule)", variance, want_var, 1e-9, 1e-15)
        _compare("the mean (against Bayes' rule)", mean, want_mean, 1e-9, 1e-12)
        lib_mean, lib_var, _ = process.q_posterior(sched, x0, x_t, t)
        _compare(
            "the variance (against minidiff's q_posterior)",
            variance,
            numpy.broadcast_to(lib_var, x0.shape),
            1e-9,
            1e-15,
        )
        _compare("the mean (against minidiff's q_posterior)", mean, lib_mean, 1e-9, 1e-12)

    return grade(
        exercise,
        "the posterior q(x_{t-1} | x_t, x_0)",
        "eq-posterior",
        prop,
        _diffusion_cases(("x0", "x_t")),
        statement=EQUATIONS["eq-posterior"],
        describe=_describe_diffusion,
        max_examples=max_examples,
    )


def check_posterior_mean_from_eps(
    fn: Callable, exercise: str = "7.2", max_examples: int = DEFAULT_EXAMPLES
):
    """``fn(betas, x_t, t, eps)`` returns the posterior mean written through the noise
    (eq-posterior-mean-eps).

    With x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps it must equal the posterior mean of
    x0 by Bayes' rule, and it must agree with the library's ``posterior_mean_from_eps`` (to
    1e-9 relative), for any x_t and eps.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: _DiffusionCase):
        sched, x0, eps, t = case.sched, case.arrays["x0"], case.arrays["eps"], case.t
        x_t = process.q_sample(sched, x0, t, eps)
        got = fn(xp.asarray(sched.betas), xp.array(x_t), xp.asarray(t), xp.array(eps))
        got = _check_result("the mean", got, x0.shape, device)
        want, _ = _bayes_posterior(sched, x0, x_t, t)
        _compare(
            "the mean (against Bayes' rule with x0 = (x_t - sqrt(1 - alpha_bar) eps) / "
            "sqrt(alpha_bar))",
            got,
            want,
            1e-7,
            1e-9,
        )
        library = process.posterior_mean_from_eps(sched, x_t, t, eps)
        _compare("the mean (against minidiff's posterior_mean_from_eps)", got, library, 1e-9, 1e-12)

    return grade(
        exercise,
        "the posterior mean from the noise",
        "eq-posterior-mean-eps",
        prop,
        _diffusion_cases(("x0", "eps"), keep_alpha_positive=True),
        statement=EQUATIONS["eq-posterior-mean-eps"],
        describe=_describe_diffusion,
        max_examples=max_examples,
    )


@st.composite
def _ddim_cases(draw, names: tuple = ()):
    """A schedule, a step from code index t down to s (-1 <= s < t; s = -1 is the data), eta,
    and arrays named ``names`` of one shape."""
    schedule = draw(st.sampled_from(sorted(_SCHEDULES)))
    T = len(_schedule(schedule))
    t = draw(st.integers(0, T - 1))
    s = draw(st.integers(-1, t - 1))
    eta = draw(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)))
    shape = draw(S.shapes(min_dims=1, max_dims=2, min_side=1, max_side=3))
    arrays = {name: draw(S.arrays(shape, -2.0, 2.0)) for name in names}
    return _DiffusionCase(schedule, arrays, numpy.array([t]), {"t": t, "s": s, "eta": eta})


def _describe_ddim(case: _DiffusionCase) -> str:
    lines = [f"schedule = {case.schedule}  (T = {len(case.sched)})"]
    lines += [f"{name} = {_show(a)}" for name, a in case.arrays.items()]
    lines += [f"{k} = {v!r}" for k, v in case.params.items()]
    lines.append("(code indices: t = 0 is the book's step 1; s = -1 is the data, alpha_bar = 1)")
    return "\n".join(lines)


def _number(what: str, value) -> float:
    if isinstance(value, Tensor):
        value = value.data
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Mismatch(f"{what} should be a number, got {type(value).__name__}") from None


def check_ddim_sigma(fn: Callable, exercise: str = "8.1", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(alpha_bars, t, s, eta)`` returns the DDIM noise level sigma (eq-ddim-sigma) for a
    step from code index t down to s (s = -1: the data, alpha_bar = 1).

    It must agree with the library's ``ddim_sigma``; with eta = 1 on a single step (s = t - 1)
    sigma^2 must be the DDPM posterior variance beta tilde (eq-posterior); with eta = 0 it must
    be 0; and it must be proportional to eta.
    """

    def prop(case: _DiffusionCase):
        sched, p = case.sched, case.params
        t, s, eta = p["t"], p["s"], p["eta"]
        got = _number("sigma", fn(sched.alpha_bars.copy(), t, s, eta))
        want = samplers.ddim_sigma(sched, t, s, eta)
        _compare(
            "sigma (against minidiff's ddim_sigma)",
            numpy.array(got),
            numpy.array(want),
            1e-9,
            1e-12,
        )
        one = _number("sigma", fn(sched.alpha_bars.copy(), t, t - 1, 1.0))
        _compare(
            f"sigma^2 for eta = 1 and s = t - 1 = {t - 1} (against beta tilde, eq-posterior)",
            numpy.array(one**2),
            numpy.array(sched.posterior_variance[t]),
            1e-9,
            1e-15,
        )
        zero = _number("sigma", fn(sched.alpha_bars.copy(), t, s, 0.0))
        _compare("sigma for eta = 0", numpy.array(zero), numpy.array(0.0), 0.0, 0.0)
        unit = _number("sigma", fn(sched.alpha_bars.copy(), t, s, 1.0))
        _compare(
            "sigma (against eta times sigma at eta = 1)",
            numpy.array(got),
            numpy.array(eta * unit),
            1e-9,
            1e-12,
        )

    return grade(
        exercise,
        "the DDIM noise level sigma",
        "eq-ddim-sigma",
        prop,
        _ddim_cases(),
        statement=EQUATIONS["eq-ddim-sigma"],
        describe=_describe_ddim,
        max_examples=max_examples,
    )


def check_ddim_step(fn: Callable, exercise: str = "8.2", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(alpha_bars, x0, eps, t, s, eta, noise)`` returns x_s of one DDIM step from code
    index t down to s, from the predicted x0 and eps (eq-ddim-step).

    It must agree with the library's ``ddim_step``; keep the marginal q(x_s | x0): coefficient
    sqrt(a_s) on x0, and the squares of the coefficients on eps and noise adding to 1 - a_s;
    with eta = 0 move along the closed form (x_s = sqrt(a_s) x0 + sqrt(1 - a_s) eps, the same
    eps, so that sampling can be run backwards: inversion); and with eta = 1 on one step be
    DDPM's step: the posterior mean (eq-posterior) plus sqrt(beta tilde) noise.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: _DiffusionCase):
        sched, p = case.sched, case.params
        t, s, eta = p["t"], p["s"], p["eta"]
        x0, eps, noise = (case.arrays[k] for k in ("x0", "eps", "noise"))
        a_s = sched.alpha_bars[s] if s >= 0 else 1.0
        zeros, ones = numpy.zeros(x0.shape), numpy.ones(x0.shape)

        def step(x0_, eps_, noise_, t_=t, s_=s, eta_=eta):
            got = fn(
                sched.alpha_bars.copy(),
                xp.array(x0_),
                xp.array(eps_),
                t_,
                s_,
                eta_,
                xp.array(noise_),
            )
            return _check_result("x_s", got, x0.shape, device)

        got = step(x0, eps, noise)
        library = samplers.ddim_step(sched, x0, eps, t, s, eta, noise)
        _compare("x_s (against minidiff's ddim_step)", got, library, 1e-9, 1e-12)
        on_x0 = step(ones, zeros, zeros)
        on_eps = step(zeros, ones, zeros)
        on_noise = step(zeros, zeros, ones)
        _compare(
            "the coefficient of x0 (it must be sqrt(a_s))",
            on_x0,
            math.sqrt(a_s) * ones,
            1e-9,
            1e-12,
        )
        _compare(
            "(coefficient of eps)^2 + (coefficient of noise)^2, the variance of x_s given x0 "
            "(it must be 1 - a_s, the closed form's)",
            on_eps**2 + on_noise**2,
            (1.0 - a_s) * ones,
            1e-9,
            1e-12,
        )
        deterministic = step(x0, eps, noise, eta_=0.0)
        _compare(
            "x_s for eta = 0 (against sqrt(a_s) x0 + sqrt(1 - a_s) eps: deterministic DDIM "
            "keeps the noise, which is what makes inversion possible)",
            deterministic,
            math.sqrt(a_s) * x0 + math.sqrt(1.0 - a_s) * eps,
            1e-9,
            1e-12,
        )
        tt = numpy.array([t])
        x_t = process.q_sample(sched, x0[None], tt, eps[None])[0]
        posterior_mean, _, _ = process.q_posterior(sched, x0[None], x_t[None], tt)
        ddpm = posterior_mean[0] + math.sqrt(sched.posterior_variance[t]) * noise
        _compare(
            f"x_s for eta = 1 and s = t - 1 = {t - 1} (against DDPM's step: the posterior mean "
            "plus sqrt(beta tilde) noise)",
            step(x0, eps, noise, s_=t - 1, eta_=1.0),
            ddpm,
            1e-9,
            1e-12,
        )

    return grade(
        exercise,
        "one DDIM step",
        "eq-ddim-step",
        prop,
        _ddim_cases(("x0", "eps", "noise")),
        statement=EQUATIONS["eq-ddim-step"],
        describe=_describe_ddim,
        max_examples=max_examples,
    )
