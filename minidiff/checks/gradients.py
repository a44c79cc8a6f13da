"""One registry of differentiable ops and the inputs to check them on.

Each :class:`OpSpec` says how to call an op, which inputs to draw (hypothesis), and which inputs to
reject because the op is not differentiable there (kinks of relu/abs/clip, ties of max/min,
zeros of a divisor). The test suite checks every op of the registry with :func:`check_gradient`
(float64 central differences, book eq. ``eq-central-difference``); exercise notebooks check a
student's backward against the same cases with
:func:`~minidiff.checks.ex02_backward.check_vjp`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from .. import backend
from ..autograd import ops
from ..autograd.gradcheck import gradcheck
from ..autograd.tensor import Tensor
from . import strategies as S


@dataclass(frozen=True)
class Case:
    """Inputs for one check: float64 host arrays (differentiated) and fixed keyword arguments."""

    arrays: tuple
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class OpSpec:
    """How to check one op: ``fn(*tensors, **params)``, the inputs to draw, the ones to avoid."""

    name: str
    fn: Callable
    cases: st.SearchStrategy
    valid: Callable[[Case], bool] = lambda case: True
    derivative: str = ""


def _one(shape=None, low=-3.0, high=3.0, **params):
    """Cases with one array (of a drawn shape unless ``shape`` is a strategy) and fixed params."""
    return S.arrays(shape or S.shapes(), low, high).map(lambda a: Case((a,), dict(params)))


def _two(low=-3.0, high=3.0, min_side=0):
    """Cases with two arrays of mutually broadcastable shapes."""

    @st.composite
    def draw(d):
        sa, sb = d(S.broadcastable_shapes(2, min_side))
        return Case((d(S.arrays(sa, low, high)), d(S.arrays(sb, low, high))))

    return draw()


@st.composite
def _reduction(draw, min_side=0, allow_none=True, allow_tuple=True, single_axis=False, **extra):
    shape = draw(S.shapes(min_dims=1 if single_axis else 0, min_side=min_side))
    axis, keepdims = draw(S.axis_and_keepdims(len(shape), allow_none, allow_tuple))
    params = {"axis": axis} if single_axis else {"axis": axis, "keepdims": keepdims}
    return Case((draw(S.arrays(shape)),), {**params, **extra})


@st.composite
def _matmul(draw):
    batch_a, batch_b = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=2, max_side=3).map(
            lambda b: b.input_shapes
        )
    )
    n, k, m = (draw(st.integers(0, 4)) for _ in range(3))
    vector_left, vector_right = draw(st.booleans()), draw(st.booleans())
    shape_a = (k,) if vector_left else (*batch_a, n, k)
    shape_b = (k,) if vector_right else (*batch_b, k, m)
    return Case((draw(S.arrays(shape_a)), draw(S.arrays(shape_b))))


@st.composite
def _getitem(draw):
    kind = draw(st.sampled_from(["basic", "integers", "mask"]))
    shape = draw(S.shapes(min_dims=1, min_side=1 if kind == "integers" else 0))
    if kind == "basic":
        index = draw(hnp.basic_indices(shape, allow_newaxis=True, allow_ellipsis=True))
    elif kind == "integers":
        index = draw(hnp.integer_array_indices(shape, result_shape=S.shapes(max_dims=2)))
    else:
        index = draw(hnp.arrays(bool, shape))
    return Case((draw(S.arrays(shape)),), {"index": index})


@st.composite
def _reshape(draw):
    shape = draw(S.shapes())
    sizes = list(shape)
    draw(st.randoms()).shuffle(sizes)
    new_shape = tuple(sizes) + (1,) * draw(st.integers(0, 1))
    return Case((draw(S.arrays(shape)),), {"shape": new_shape})


@st.composite
def _transpose(draw):
    shape = draw(S.shapes())
    axes = tuple(draw(st.permutations(range(len(shape)))))
    return Case((draw(S.arrays(shape)),), {"axes": axes})


@st.composite
def _swapaxes(draw):
    shape = draw(S.shapes(min_dims=1))
    a1, a2 = (draw(st.integers(-len(shape), len(shape) - 1)) for _ in range(2))
    return Case((draw(S.arrays(shape)),), {"axis1": a1, "axis2": a2})


@st.composite
def _broadcast_to(draw):
    small, big = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=1, max_dims=S.MAX_DIMS, max_side=S.MAX_SIDE)
    )
    return Case((draw(S.arrays(small[0])),), {"shape": big})


@st.composite
def _concatenate(draw):
    shape = draw(S.shapes(min_dims=1))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    pieces = []
    for _ in range(draw(st.integers(1, 3))):
        piece_shape = list(shape)
        piece_shape[axis] = draw(st.integers(0, 3))
        pieces.append(draw(S.arrays(tuple(piece_shape))))
    return Case(tuple(pieces), {"axis": axis})


@st.composite
def _stack(draw):
    shape = draw(S.shapes())
    count = draw(st.integers(1, 3))
    axis = draw(st.integers(-len(shape) - 1, len(shape)))
    return Case(tuple(draw(S.arrays(shape)) for _ in range(count)), {"axis": axis})


@st.composite
def _split(draw):
    shape = list(draw(S.shapes(min_dims=1, min_side=1)))
    axis = draw(st.integers(0, len(shape) - 1))
    if draw(st.booleans()):
        sections = draw(st.integers(1, 3))
        shape[axis] = sections * draw(st.integers(1, 2))
        where = sections
    else:
        where = sorted(draw(st.lists(st.integers(0, shape[axis]), max_size=3)))
    return Case((draw(S.arrays(tuple(shape))),), {"where": where, "axis": axis})


@st.composite
def _pad(draw):
    shape = draw(S.shapes())
    widths = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in shape)
    return Case((draw(S.arrays(shape)),), {"pad_width": widths, "value": draw(S.floats())})


@st.composite
def _where(draw):
    sc, sa, sb = draw(S.broadcastable_shapes(3))
    condition = draw(hnp.arrays(bool, sc))
    return Case((draw(S.arrays(sa)), draw(S.arrays(sb))), {"condition": condition})


@st.composite
def _pow_tensor(draw):
    sa, sb = draw(S.broadcastable_shapes(2))
    return Case((draw(S.arrays(sa, 0.2, 3.0)), draw(S.arrays(sb, -2.0, 2.0))))


@st.composite
def _clip(draw):
    low, high = sorted(draw(st.lists(S.floats(-2, 2), min_size=2, max_size=2)))
    return Case((draw(S.arrays(S.shapes())),), {"low": low, "high": high})


@st.composite
def _var(draw):
    case = draw(_reduction())
    shape = case.arrays[0].shape
    axes = ops.normalize_axes(case.params["axis"], len(shape))
    count = int(numpy.prod([shape[a] for a in axes]))
    ddof = draw(st.integers(0, 1))
    return Case(case.arrays, {**case.params, "ddof": ddof if count > ddof else 0})


def _var_valid(case: Case) -> bool:
    shape = case.arrays[0].shape
    axes = ops.normalize_axes(case.params["axis"], len(shape))
    return int(numpy.prod([shape[a] for a in axes])) > case.params["ddof"]


def _extremum_valid(case: Case) -> bool:
    a, b = numpy.broadcast_arrays(*case.arrays)
    return S.away_from(a - b, [0.0])


def _extreme_reduce_valid(case: Case) -> bool:
    (x,) = case.arrays
    return x.size > 0 and S.distinct(x)


OP_SPECS: dict[str, OpSpec] = {
    spec.name: spec
    for spec in [
        OpSpec("add", ops.add, _two(), derivative="1, 1"),
        OpSpec("sub", ops.sub, _two(), derivative="1, -1"),
        OpSpec("mul", ops.mul, _two(), derivative="b, a"),
        OpSpec(
            "div",
            ops.div,
            _two(),
            lambda c: S.away_from(c.arrays[1], [0.0], 0.2),
            derivative="1/b, -a/b^2",
        ),
        OpSpec("neg", ops.neg, _one(), derivative="-1"),
        OpSpec(
            "pow_scalar",
            lambda x, p: ops.pow(x, p),
            st.tuples(S.arrays(S.shapes(), 0.2, 3.0), st.sampled_from([2, 3, 0.5, -1.0, 1.7])).map(
                lambda t: Case((t[0],), {"p": t[1]})
            ),
            derivative="p x^(p-1)",
        ),
        OpSpec("pow_tensor", ops.pow, _pow_tensor(), derivative="b a^(b-1), a^b log a"),
        OpSpec("matmul", ops.matmul, _matmul(), derivative="G B^T, A^T G"),
        OpSpec("exp", ops.exp, _one(), derivative="e^x"),
        OpSpec("log", ops.log, _one(low=0.1), derivative="1/x"),
        OpSpec("sqrt", ops.sqrt, _one(low=0.1), derivative="1/(2 sqrt x)"),
        OpSpec("tanh", ops.tanh, _one(), derivative="1 - tanh^2"),
        OpSpec("sigmoid", ops.sigmoid, _one(low=-8.0, high=8.0), derivative="s (1 - s)"),
        OpSpec(
            "relu",
            ops.relu,
            _one(),
            lambda c: S.away_from(c.arrays[0], [0.0]),
            derivative="[x > 0]",
        ),
        OpSpec("gelu_tanh", lambda x: ops.gelu(x, "tanh"), _one(), derivative="tanh form"),
        OpSpec("gelu_exact", lambda x: ops.gelu(x, "none"), _one(), derivative="Phi + x phi"),
        OpSpec("silu", ops.silu, _one(), derivative="s (1 + x (1 - s))"),
        OpSpec(
            "abs", ops.abs, _one(), lambda c: S.away_from(c.arrays[0], [0.0]), derivative="sign x"
        ),
        OpSpec(
            "clip",
            lambda x, low, high: ops.clip(x, low, high),
            _clip(),
            lambda c: S.away_from(c.arrays[0], [c.params["low"], c.params["high"]]),
            derivative="[low <= x <= high]",
        ),
        OpSpec("maximum", ops.maximum, _two(), _extremum_valid, derivative="[a > b], [b > a]"),
        OpSpec("minimum", ops.minimum, _two(), _extremum_valid, derivative="[a < b], [b < a]"),
        OpSpec(
            "where",
            lambda a, b, condition: ops.where(condition, a, b),
            _where(),
            derivative="[c], [not c]",
        ),
        OpSpec("sum", ops.sum, _reduction(), derivative="1"),
        OpSpec("mean", ops.mean, _reduction(min_side=1), derivative="1/n"),
        OpSpec("var", ops.var, _var(), _var_valid, derivative="2 (x - mean) / (n - ddof)"),
        OpSpec(
            "max", ops.max, _reduction(min_side=1), _extreme_reduce_valid, derivative="[x = max]"
        ),
        OpSpec(
            "min", ops.min, _reduction(min_side=1), _extreme_reduce_valid, derivative="[x = min]"
        ),
        OpSpec(
            "logsumexp",
            ops.logsumexp,
            _reduction(min_side=1, allow_none=False),
            derivative="softmax",
        ),
        OpSpec(
            "softmax",
            ops.softmax,
            _reduction(min_side=1, allow_none=False, allow_tuple=False, single_axis=True),
            derivative="s (g - <g, s>)",
        ),
        OpSpec(
            "log_softmax",
            ops.log_softmax,
            _reduction(min_side=1, allow_none=False, allow_tuple=False, single_axis=True),
            derivative="g - s sum g",
        ),
        OpSpec(
            "reshape", lambda x, shape: ops.reshape(x, shape), _reshape(), derivative="reshape back"
        ),
        OpSpec(
            "transpose",
            lambda x, axes: ops.transpose(x, axes),
            _transpose(),
            derivative="inverse permutation",
        ),
        OpSpec("swapaxes", ops.swapaxes, _swapaxes(), derivative="swap back"),
        OpSpec(
            "broadcast_to",
            lambda x, shape: ops.broadcast_to(x, shape),
            _broadcast_to(),
            derivative="sum_to",
        ),
        OpSpec("getitem", ops.getitem, _getitem(), derivative="scatter-add"),
        OpSpec(
            "concatenate",
            lambda *xs, axis: ops.concatenate(xs, axis),
            _concatenate(),
            derivative="split",
        ),
        OpSpec("stack", lambda *xs, axis: ops.stack(xs, axis), _stack(), derivative="unstack"),
        OpSpec(
            "split",
            lambda x, where, axis: ops.concatenate(
                [p * float(i + 1) for i, p in enumerate(ops.split(x, where, axis))], axis
            ),
            _split(),
            derivative="concatenate",
        ),
        OpSpec(
            "pad",
            lambda x, pad_width, value: ops.pad(x, pad_width, value),
            _pad(),
            derivative="slice",
        ),
    ]
}


def _strided(array) -> tuple:
    """A non-contiguous view of ``array``'s values: every other entry of a twice-wider array."""
    wide = numpy.repeat(array, 2, axis=-1)
    return wide, (Ellipsis, slice(None, None, 2))


def check_gradient(spec: OpSpec, case: Case, strided: bool = False, **tolerances) -> bool:
    """Gradient-check ``spec.fn`` at ``case`` in float64 (raises GradcheckError on a mismatch).

    With ``strided=True`` each input of at least one axis reaches the op as a non-contiguous view.
    """
    arrays = list(case.arrays)
    views = [None] * len(arrays)
    if strided:
        for i, a in enumerate(arrays):
            if a.ndim:
                arrays[i], views[i] = _strided(a)

    def fn(*tensors):
        inputs = [t if v is None else ops.getitem(t, v) for t, v in zip(tensors, views)]
        return spec.fn(*inputs, **case.params)

    return gradcheck(fn, *[S.to_tensor(a) for a in arrays], **tolerances)


def numeric_vjp(spec: OpSpec, case: Case, cotangent, eps: float = 1e-6) -> list:
    """dL/d(input) for L = <cotangent, op(inputs)>, by central differences (host float64)."""
    grads = []
    for i, array in enumerate(case.arrays):
        grad = numpy.zeros_like(array)
        for entry in numpy.ndindex(array.shape):
            values = []
            for sign in (1.0, -1.0):
                moved = [a.copy() for a in case.arrays]
                moved[i][entry] += sign * eps
                out = spec.fn(*[S.to_tensor(a) for a in moved], **case.params)
                values.append(float((backend.to_numpy(out.data) * cotangent).sum()))
            grad[entry] = (values[0] - values[1]) / (2 * eps)
        grads.append(grad)
    return grads


def forward_value(spec: OpSpec, case: Case) -> numpy.ndarray:
    """The op's output at ``case`` as a host float64 array."""
    out = spec.fn(*[S.to_tensor(a) for a in case.arrays], **case.params)
    return backend.to_numpy(out.data) if isinstance(out, Tensor) else numpy.asarray(out)
