"""The checks of exercise 15 (chapter 15, performance): a fused op, and a timing function.

The notebook ``exercises/src/ex15_fusion.md`` asks in 15.1 for SiLU, x sigma(x), written as one
op with its own backward (:func:`check_silu_fused`): its value and its gradient are compared with
the library's ``minidiff.autograd.ops.silu`` and with float64 central differences of the
student's own forward; the output must be a single graph node whose only parent is x, that keeps
no more than one array of x's size besides x and the output; and float32 in must give float32 out
and a float32 gradient. Exercise 15.2 asks for ``time_it(fn, repeats, clock)``, the median time
of ``repeats`` calls (:func:`check_time_it`): it is run with a fake clock that only moves when
``fn`` runs, by drawn amounts, so the check knows the exact answer and never depends on the
machine's speed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy
from hypothesis import strategies as st

from .. import backend
from ..autograd import ops
from ..autograd.tensor import Tensor, topological_order, unwrap
from . import strategies as S
from .compare import compare, host, show
from .gradients import Case, OpSpec, numeric_vjp
from .grading import DEFAULT_EXAMPLES, Mismatch, Verdict, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "15.1": [
        (
            "Compute sigma(x) once in the forward, keep it for the backward, and write d(x "
            "sigma(x))/dx by hand."
        ),
        (
            "d/dx [x sigma(x)] = sigma + x sigma (1 - sigma); a numerically safe sigma is 0.5 (1 +"
            " tanh(x / 2))."
        ),
        (
            "backward(g) returns (g * s * (1 + d * (1 - s)),); return Tensor.from_op(d * s, (x,), "
            "backward, 'silu_fused')."
        ),
    ],
    "15.2": [
        "Time each call on its own, with the clock you are given, and keep every duration.",
        "start = clock(); fn(); durations.append(clock() - start), repeats times.",
        "return float(numpy.median(durations)).",
    ],
}

# What the exercises must satisfy, as exercise 15 states it (shown when a check fails).
STATEMENTS = {
    "silu-fused": "silu(x) = x sigma(x) with sigma(x) = 1 / (1 + exp(-x)); its backward is "
    "g sigma(x) (1 + x (1 - sigma(x))); one graph node whose only parent is x, keeping at most "
    "one array of x's size besides x and the output; float32 in gives float32 out and a float32 "
    "gradient",
    "time-it": "time_it(fn, repeats, clock) calls fn exactly `repeats` times, times each call "
    "with clock() just before and just after it, and returns the median of those times in "
    "seconds as a float (for an even count, the mean of the two middle times)",
}


# ============================================================================================
# exercise 15.1: SiLU as one fused op
# ============================================================================================


def _arrays_in(function, depth: int = 0) -> list:
    """The arrays a backward function keeps alive through its closure (and the closures of the
    functions it keeps), tensors counted by their data."""
    found = []
    for cell in getattr(function, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # a cell not filled yet
            continue
        value = unwrap(value)
        if hasattr(value, "nbytes") and hasattr(value, "shape"):
            found.append(value)
        elif callable(value) and hasattr(value, "__closure__") and depth < 3:
            found.extend(_arrays_in(value, depth + 1))
    return found


def _extra_bytes(node, x_data, out_data) -> int:
    """Bytes the node's backward keeps besides x and the output (each array counted once)."""
    seen, total = {id(x_data), id(out_data)}, 0
    for array in _arrays_in(node.backward):
        if id(array) not in seen:
            seen.add(id(array))
            total += int(array.nbytes)
    return total


def _graph_ops(out: Tensor) -> list:
    """The op names of the nodes that made ``out``, from the inputs to the output."""
    return [t.grad_fn.op for t in topological_order(out) if t.grad_fn is not None]


def _as_tensor(what: str, got, shape: tuple, dtype) -> Tensor:
    if not isinstance(got, Tensor):
        raise Mismatch(
            f"{what} is a {type(got).__name__}, not a minidiff Tensor: wrap the result with "
            "Tensor.from_op(out, (x,), backward, 'silu_fused')"
        )
    if got.shape != tuple(shape):
        raise Mismatch(f"{what} has shape {got.shape}, but x has shape {tuple(shape)}")
    if got.dtype != dtype:
        raise Mismatch(
            f"{what} has dtype {got.dtype} from a {numpy.dtype(dtype).name} x: "
            f"{numpy.dtype(dtype).name} must stay {numpy.dtype(dtype).name} (a NumPy float64 "
            "constant such as np.float64(1.0) or np.exp(1.0), or a cast, changes the dtype)"
        )
    return got


@st.composite
def _silu_cases(draw):
    shape = draw(S.shapes())
    return draw(S.arrays(shape, -8.0, 8.0)), draw(S.arrays(shape))


def _describe_silu(case) -> str:
    x, g = case
    return f"x = {show(x)}\ng = {show(g)}  (the gradient of the loss with respect to the output)"


def _library_silu(x: numpy.ndarray, g: numpy.ndarray, device: str):
    """silu(x) and its gradient g * dsilu/dx from ``minidiff.autograd.ops.silu``, in float64."""
    leaf = Tensor(x, requires_grad=True, dtype=numpy.float64, device=device)
    out = ops.silu(leaf)
    out.backward(backend.module_for(device).asarray(g))
    return host(out.data), host(leaf.grad)


def check_silu_fused(
    fn: Callable, exercise: str = "15.1", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(x)`` is SiLU, x sigma(x), as one graph node with its own backward.

    In float64 on drawn x and output gradients g: the value and g * dsilu/dx (by backward) must
    match ``minidiff.autograd.ops.silu`` to 1e-10 and float64 central differences of ``fn``'s
    own forward to 1e-6; the output's node must have x as its only parent and keep at most one
    array of x's size besides x and the output. In float32: float32 out and a float32 gradient,
    close to the float64 values.
    """
    device = backend.default_device()
    xp = backend.module_for(device)
    spec = OpSpec("silu_fused", fn, st.nothing())

    def prop(case):
        x, g = case
        want_out, want_grad = _library_silu(x, g, device)

        # float64: the value, the graph, the memory kept, the gradient
        leaf = Tensor(x.copy(), requires_grad=True, dtype=numpy.float64, device=device)
        out = _as_tensor("silu_fused(x)", fn(leaf), x.shape, numpy.float64)
        compare("silu_fused(x)", host(out.data), want_out, 1e-10, 1e-12)
        node = out.grad_fn
        if node is None:
            raise Mismatch(
                "silu_fused(x) recorded no graph node for an x that requires a gradient: "
                "make the output with Tensor.from_op(out, (x,), backward, 'silu_fused')"
            )
        if len(node.parents) != 1 or node.parents[0] is not leaf:
            made = _graph_ops(out)
            raise Mismatch(
                f"silu_fused(x) recorded {len(made)} graph nodes ({', '.join(made)}); a fused op "
                "records exactly one, whose only parent is x itself: compute the forward on "
                "arrays (x.data), then call Tensor.from_op(out, (x,), backward, 'silu_fused')"
            )
        extra = _extra_bytes(node, leaf.data, out.data)
        if extra > leaf.data.nbytes:
            raise Mismatch(
                f"the node keeps {extra} bytes of arrays besides x and the output, but its "
                f"backward needs only sigma(x), one array of x's size ({leaf.data.nbytes} "
                "bytes): keep sigma(x) and x, and compute the rest inside backward"
            )
        out.backward(xp.asarray(g))
        if leaf.grad is None:
            raise Mismatch("after backward, x.grad is None: backward returned no gradient")
        grad = leaf.grad
        if grad.dtype != numpy.float64:
            raise Mismatch(f"the gradient has dtype {grad.dtype}; from a float64 x it must too")
        expected = numeric_vjp(spec, Case((x,)), g)[0]
        compare(
            "the gradient for x (against central differences)", host(grad), expected, 1e-6, 1e-6
        )
        compare("the gradient for x (against ops.silu)", host(grad), want_grad, 1e-10, 1e-12)

        # float32: no upcast anywhere, the same values to float32 precision
        leaf32 = Tensor(x.astype(numpy.float32), requires_grad=True, device=device)
        out32 = _as_tensor("silu_fused(x) of a float32 x", fn(leaf32), x.shape, numpy.float32)
        out32.backward(xp.asarray(g.astype(numpy.float32)))
        if leaf32.grad is None or leaf32.grad.dtype != numpy.float32:
            got = None if leaf32.grad is None else leaf32.grad.dtype
            raise Mismatch(
                f"the gradient of a float32 x has dtype {got}: float32 must stay float32 (a "
                "NumPy float64 constant in backward upcasts the gradient)"
            )
        rounded = x.astype(numpy.float32).astype(numpy.float64)
        want_out32, want_grad32 = _library_silu(rounded, g, device)
        compare("silu_fused(x) of a float32 x", host(out32.data), want_out32, 1e-5, 1e-5)
        compare("the gradient of a float32 x", host(leaf32.grad), want_grad32, 1e-4, 1e-4)

    return grade(
        exercise,
        "SiLU as one fused op",
        "",
        prop,
        _silu_cases(),
        statement=STATEMENTS["silu-fused"],
        describe=_describe_silu,
        forbid=("minidiff.autograd.ops.silu",),
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 15.2: the median time of repeated calls
# ============================================================================================

# Durations are multiples of 1/1024 s, exact in binary, so the fake clock's differences are exact.
_TICK = 1.0 / 1024


@st.composite
def _timing_cases(draw):
    repeats = draw(st.integers(1, 9))
    ticks = draw(st.lists(st.integers(1, 4096), min_size=repeats, max_size=repeats))
    return repeats, ticks


def _describe_timing(case) -> str:
    repeats, ticks = case
    seconds = ", ".join(repr(t * _TICK) for t in ticks)
    return f"repeats = {repeats}; the calls of fn take, in order, [{seconds}] seconds"


def _hint(got: float, durations: list, want: float) -> str:
    """What a wrong result looks like it is, if it looks like something."""
    ordered = sorted(durations)

    def near(value):
        return math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-12)

    if near(sum(durations) / len(durations)):
        return (
            "that is the mean of the times, not their median: one slow call (the machine busy "
            "with something else) moves the mean but not the median"
        )
    if near(sum(durations)):
        return "that is the total time of all the calls, not the median of the per-call times"
    if len(ordered) % 2 == 0 and near(ordered[len(ordered) // 2]):
        return (
            "for an even number of times the median is the mean of the two middle ones "
            "(as numpy.median and statistics.median compute it)"
        )
    if near(ordered[0]):
        return "that is the smallest time, not the median"
    if near(1000 * want):
        return "that is the median in milliseconds; return seconds"
    if abs(got) < want / 100:
        return (
            "that looks like real time: measure with the clock you are given, clock(), not "
            "with time.perf_counter() directly"
        )
    return ""


def check_time_it(
    fn: Callable, exercise: str = "15.2", max_examples: int = DEFAULT_EXAMPLES
) -> Verdict:
    """``fn(work, repeats, clock=clock)`` returns the median seconds of ``repeats`` calls of
    ``work``. The clock is fake: it stands still except while ``work`` runs, when it moves by a
    drawn duration, so the right answer is the median of the drawn durations, exactly.
    """

    def prop(case):
        repeats, ticks = case
        durations = [t * _TICK for t in ticks]
        now = [1000.0]
        calls = [0]

        def clock() -> float:
            return now[0]

        def work() -> None:
            calls[0] += 1
            # a call beyond the expected ones takes one second, so it shows in the result too
            now[0] += durations[calls[0] - 1] if calls[0] <= repeats else 1.0

        got = fn(work, repeats, clock=clock)
        if calls[0] != repeats:
            raise Mismatch(
                f"fn was called {calls[0]} times for repeats = {repeats}: time_it must call it "
                "exactly `repeats` times (warm up before calling time_it, not inside it)"
            )
        if isinstance(got, bool) or not isinstance(got, float | numpy.floating):
            raise Mismatch(
                f"time_it returned a {type(got).__name__}; it should return the median time "
                "in seconds as a float"
            )
        got, want = float(got), float(numpy.median(durations))
        if not math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-12):
            hint = _hint(got, durations, want)
            raise Mismatch(
                f"time_it returned {got!r} s, but the median of the times is {want!r} s"
                + (f"\n{hint}" if hint else "")
            )

    return grade(
        exercise,
        "the median time of repeated calls",
        "",
        prop,
        _timing_cases(),
        statement=STATEMENTS["time-it"],
        describe=_describe_timing,
        max_examples=max_examples,
    )
