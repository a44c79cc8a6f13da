"""Differentiable ops. Each op computes its forward and, right beside it, its backward.

The backward of an op maps ``g`` = dL/d(out) to dL/d(input) for every input: a vector-Jacobian
product (book eq. ``eq-vjp``). Inputs that were broadcast in the forward pass receive a gradient
summed back to their own shape by one helper, :func:`sum_to` (book eq. ``eq-broadcast-reduce``).

Ops never call ``numpy`` on data: ``xp = xp_of(array)`` picks NumPy or CuPy per array.
Python-float constants in the formulas are "weak" scalars, so float32 stays float32.
"""

from __future__ import annotations

import math

import numpy

from .. import backend, kernels, parallel
from ..errors import ShapeError
from ..kernels.plain import stable_shift
from .tensor import Tensor, as_floating, as_tensor, coerce, unwrap

# ============================================================================================
# helpers
# ============================================================================================


def sum_to(grad, shape: tuple):
    """Sum ``grad`` over the axes that broadcasting added or stretched, giving ``shape``.

    Implements (eq-broadcast-reduce): if x of shape ``shape`` was broadcast to y, every copy of
    x_i contributed to y, so dL/dx_i is the sum of dL/dy over the copies.
    """
    if grad.shape == tuple(shape):
        return grad
    lead = grad.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, n in enumerate(shape) if n == 1 and grad.shape[lead + i] != 1
    )
    return grad.sum(axis=axes, keepdims=True).reshape(shape)


def _broadcast_shape(op: str, *shapes) -> tuple:
    try:
        return tuple(numpy.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(
            f"{op}: shapes {' and '.join(str(tuple(s)) for s in shapes)} do not broadcast"
        ) from None


def normalize_axes(axis, ndim: int) -> tuple:
    """``axis`` (None, int or tuple, negatives allowed) as a sorted tuple of non-negative axes,
    or a :class:`ShapeError` for an axis out of range or repeated: how every reduction reads
    its ``axis``."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int | numpy.integer) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"repeated axis in {axis}")
    return tuple(sorted(out))


def _unreduce(g, in_shape: tuple, axes: tuple):
    """Give a reduced gradient its reduced axes back as size 1, ready to broadcast."""
    return g.reshape(tuple(1 if i in axes else n for i, n in enumerate(in_shape)))


def _operands(a, b, op: str):
    """Both operands as tensors of one dtype when either is floating (see ``coerce``)."""
    if not isinstance(a, Tensor):
        a = coerce(a, b, op) if isinstance(b, Tensor) else Tensor(a)
    b = coerce(b, a, op)
    if b.dtype.kind == "f" and a.dtype.kind != "f":
        a = coerce(a, b, op)
    return a, b


def _binary(a, b, op: str):
    """Operands of an elementwise op: coerced, and checked to broadcast together."""
    a, b = _operands(a, b, op)
    _broadcast_shape(op, a.shape, b.shape)
    return a, b


# ============================================================================================
# arithmetic
# ============================================================================================


def add(a, b) -> Tensor:
    """a + b.  d/da = 1, d/db = 1 (then summed back over broadcast axes)."""
    a, b = _binary(a, b, "add")

    def backward(g):
        return sum_to(g, a.shape), sum_to(g, b.shape)

    return Tensor.from_op(a.data + b.data, (a, b), backward, "add")


def sub(a, b) -> Tensor:
    """a - b.  d/da = 1, d/db = -1."""
    a, b = _binary(a, b, "sub")

    def backward(g):
        return sum_to(g, a.shape), sum_to(-g, b.shape) if b.requires_grad else None

    return Tensor.from_op(a.data - b.data, (a, b), backward, "sub")


def mul(a, b) -> Tensor:
    """a * b.  d/da = b, d/db = a."""
    a, b = _binary(a, b, "mul")

    def backward(g):
        ga = sum_to(g * b.data, a.shape) if a.requires_grad else None
        gb = sum_to(g * a.data, b.shape) if b.requires_grad else None
        return ga, gb

    return Tensor.from_op(a.data * b.data, (a, b), backward, "mul")


def div(a, b) -> Tensor:
    """a / b.  d/da = 1/b, d/db = -a/b^2 = -out/b."""
    a, b = _binary(as_floating(a), b, "div")
    out = a.data / b.data

    def backward(g):
        g_over_b = g / b.data
        ga = sum_to(g_over_b, a.shape) if a.requires_grad else None
        gb = sum_to(-g_over_b * out, b.shape) if b.requires_grad else None
        return ga, gb

    return Tensor.from_op(out, (a, b), backward, "div")


def neg(a) -> Tensor:
    """-a.  d/da = -1."""
    a = as_tensor(a)
    return Tensor.from_op(-a.data, (a,), lambda g: (-g,), "neg")


def pow(a, exponent) -> Tensor:  # noqa: A001 - the natural name, as in Python and PyTorch
    """a ** p.  d/da = p a^(p-1); for a tensor exponent, d/dp = a^p log(a) (needs a > 0)."""
    a = as_tensor(a)
    if isinstance(exponent, int | float):
        p = float(exponent)
        out = a.data**p

        def backward_const(g):
            return (g * (p * a.data ** (p - 1.0)),)

        return Tensor.from_op(out, (a,), backward_const, "pow")
    a, b = _binary(a, exponent, "pow")
    out = a.data**b.data

    def backward(g):
        xp = backend.xp_of(g)
        ga = sum_to(g * b.data * a.data ** (b.data - 1), a.shape) if a.requires_grad else None
        gb = sum_to(g * out * xp.log(a.data), b.shape) if b.requires_grad else None
        return ga, gb

    return Tensor.from_op(out, (a, b), backward, "pow")


def matmul(a, b) -> Tensor:
    """a @ b over the last two axes, batch axes broadcast.  dL/da = g b^T, dL/db = a^T g.

    One-dimensional operands follow NumPy: a vector on the left is a row, on the right a column.
    """
    a, b = _operands(a, b, "matmul")
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError(f"matmul: needs at least 1-D operands, got {a.shape} @ {b.shape}")
    if a.ndim == 1 or b.ndim == 1:
        out = matmul(a.reshape(1, -1) if a.ndim == 1 else a, b.reshape(-1, 1) if b.ndim == 1 else b)
        return out.squeeze(tuple([-2] * (a.ndim == 1) + [-1] * (b.ndim == 1)))
    if a.shape[-1] != b.shape[-2]:
        raise ShapeError(
            f"matmul: inner dimensions differ: {a.shape} @ {b.shape} "
            f"({a.shape[-1]} != {b.shape[-2]})"
        )
    _broadcast_shape("matmul (batch axes)", a.shape[:-2], b.shape[:-2])
    if b.ndim == 2 and a.ndim > 2:
        return _folded(a, b, None, "matmul")

    def backward(g):
        ga, gb = parallel.matmul(
            (g, b.data.swapaxes(-1, -2)) if a.requires_grad else None,
            (a.data.swapaxes(-1, -2), g) if b.requires_grad else None,
        )
        return (
            None if ga is None else sum_to(ga, a.shape),
            None if gb is None else sum_to(gb, b.shape),
        )

    (out,) = parallel.matmul((a.data, b.data))
    return Tensor.from_op(out, (a, b), backward, "matmul")


def linear(x, weight, bias=None) -> Tensor:
    """y = x W + b over the last axis of x (eq-linear), as one op: the bias is added in place
    to the product, and the backward pass makes the three gradients directly,
    dL/dx = g W^T, dL/dW = x^T g and dL/db = g summed over the rows (eq-matmul-vjp and
    eq-broadcast-reduce, with every leading axis of x folded into the rows)."""
    x, weight = _operands(x, weight, "linear")
    if weight.ndim != 2 or x.ndim < 1 or x.shape[-1] != weight.shape[0]:
        raise ShapeError(
            f"linear: x {x.shape} needs a last axis equal to the rows of a 2-D weight, got "
            f"weight {weight.shape}"
        )
    if bias is not None:
        bias = coerce(bias, x, "linear")
        if bias.shape != (weight.shape[1],):
            raise ShapeError(f"linear: bias {bias.shape}, expected ({weight.shape[1]},)")
    return _folded(x, weight, bias, "linear")


def _folded(x: Tensor, weight: Tensor, bias, op: str) -> Tensor:
    """x W (+ b) for x of shape (..., k) and W of shape (k, m), with every leading axis of x
    folded into the rows of one (rows, k) @ (k, m) product.

    The same math as the batched form, but one large product instead of one per batch entry
    (4-7x faster in NumPy for a layer's input), and dL/dW = x^T g summed over the batch falls out
    of a single product instead of a batched product followed by a reduction. The backward pass
    computes dL/dx = g W^T and dL/dW = x^T g together, and dL/db = g summed over the rows.
    """
    k, m = weight.shape
    count = math.prod(x.shape[:-1])
    rows = x.data.reshape(count, k)

    def backward(g):
        g_rows = g.reshape(count, m)
        gx, gw = parallel.matmul(
            (g_rows, weight.data.T) if x.requires_grad else None,
            (rows.T, g_rows) if weight.requires_grad else None,
        )
        gx = None if gx is None else gx.reshape(x.shape)
        if bias is None:
            return gx, gw
        return gx, gw, (g_rows.sum(axis=0) if bias.requires_grad else None)

    (out,) = parallel.matmul((rows, weight.data, None if bias is None else bias.data))
    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor.from_op(out.reshape(*x.shape[:-1], m), parents, backward, op)


# ============================================================================================
# elementwise functions
# ============================================================================================


def exp(x) -> Tensor:
    """e^x.  d/dx = e^x (the output, reused)."""
    x = as_floating(x)
    out = backend.xp_of(x.data).exp(x.data)
    return Tensor.from_op(out, (x,), lambda g: (g * out,), "exp")


def log(x) -> Tensor:
    """log x.  d/dx = 1/x."""
    x = as_floating(x)
    out = backend.xp_of(x.data).log(x.data)
    return Tensor.from_op(out, (x,), lambda g: (g / x.data,), "log")


def sqrt(x) -> Tensor:
    """sqrt x.  d/dx = 1 / (2 sqrt x)."""
    x = as_floating(x)
    out = backend.xp_of(x.data).sqrt(x.data)
    return Tensor.from_op(out, (x,), lambda g: (g * 0.5 / out,), "sqrt")


def tanh(x) -> Tensor:
    """tanh x.  d/dx = 1 - tanh^2 x."""
    x = as_floating(x)
    out = backend.xp_of(x.data).tanh(x.data)
    return Tensor.from_op(out, (x,), lambda g: (g * (1.0 - out * out),), "tanh")


def _sigmoid(xp, x):
    """1 / (1 + e^-x), written through tanh so that no exp overflows for large |x|."""
    return 0.5 * (1.0 + xp.tanh(0.5 * x))


def sigmoid(x) -> Tensor:
    """sigma(x) = 1 / (1 + e^-x).  d/dx = sigma (1 - sigma)."""
    x = as_floating(x)
    out = _sigmoid(backend.xp_of(x.data), x.data)
    return Tensor.from_op(out, (x,), lambda g: (g * out * (1.0 - out),), "sigmoid")


def relu(x) -> Tensor:
    """max(x, 0).  d/dx = 1 where x > 0, else 0 (the subgradient 0 at x = 0, as PyTorch)."""
    x = as_tensor(x)
    positive = x.data > 0
    out = x.data * positive
    return Tensor.from_op(out, (x,), lambda g: (g * positive,), "relu")


def gelu(x, approximate: str = "tanh") -> Tensor:
    """GELU(x) = x Phi(x), Phi the standard normal CDF.

    ``approximate="tanh"`` (GPT-2's form, eq-gelu-tanh): 0.5 x (1 + tanh(u)), u = c (x + a x^3),
    d/dx = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) c (1 + 3 a x^2), with the constants c and a
    of ``minidiff/kernels/plain.py``; computed by the fused kernels ``kernels.gelu_tanh`` and
    ``kernels.gelu_tanh_grad``.
    ``approximate="none"``: exact, with d/dx = Phi(x) + x phi(x).
    """
    x = as_floating(x)
    xp = backend.xp_of(x.data)
    d = x.data
    if approximate == "tanh":
        out, t = kernels.gelu_tanh(d)

        def backward(g):
            return (kernels.gelu_tanh_grad(g, d, t),)

    elif approximate == "none":
        cdf = 0.5 * (1.0 + backend.erf(d * (1.0 / math.sqrt(2.0))))
        out = d * cdf

        def backward(g):
            pdf = xp.exp(-0.5 * d * d) * (1.0 / math.sqrt(2.0 * math.pi))
            return (g * (cdf + d * pdf),)

    else:
        raise ValueError(f"gelu: approximate must be 'tanh' or 'none', got {approximate!r}")
    return Tensor.from_op(out, (x,), backward, "gelu")


def silu(x) -> Tensor:
    """SiLU(x) = x sigma(x).  d/dx = sigma (1 + x (1 - sigma))."""
    x = as_floating(x)
    out, s = kernels.silu(x.data)
    return Tensor.from_op(out, (x,), lambda g: (kernels.silu_grad(g, x.data, s),), "silu")


def abs(x) -> Tensor:  # noqa: A001
    """|x|.  d/dx = sign(x) (0 at x = 0)."""
    x = as_tensor(x)
    xp = backend.xp_of(x.data)
    return Tensor.from_op(xp.abs(x.data), (x,), lambda g: (g * xp.sign(x.data),), "abs")


def clip(x, low=None, high=None) -> Tensor:
    """min(max(x, low), high).  d/dx = 1 where low <= x <= high, else 0."""
    x = as_tensor(x)
    xp = backend.xp_of(x.data)
    inside = xp.ones(x.data.shape, dtype=bool)
    if low is not None:
        inside &= x.data >= low
    if high is not None:
        inside &= x.data <= high
    out = xp.clip(x.data, low, high)
    return Tensor.from_op(out, (x,), lambda g: (g * inside,), "clip")


def where(condition, a, b) -> Tensor:
    """``a`` where ``condition`` holds, else ``b``.  The gradient goes to the chosen side."""
    condition = unwrap(condition)
    a, b = _binary(a, b, "where")
    xp = backend.xp_of(a.data)
    condition = xp.asarray(condition, dtype=bool)
    _broadcast_shape("where", condition.shape, a.shape, b.shape)

    def backward(g):
        zero = xp.zeros((), dtype=g.dtype)
        ga = sum_to(xp.where(condition, g, zero), a.shape) if a.requires_grad else None
        gb = sum_to(xp.where(condition, zero, g), b.shape) if b.requires_grad else None
        return ga, gb

    return Tensor.from_op(xp.where(condition, a.data, b.data), (a, b), backward, "where")


def _extremum(a, b, op: str, pick) -> Tensor:
    a, b = _binary(a, b, op)
    out = pick(a.data, b.data)

    def backward(g):
        # Where a == b the gradient is split in half, as PyTorch does.
        a_wins = (a.data == out).astype(g.dtype)
        b_wins = (b.data == out).astype(g.dtype)
        share = g / (a_wins + b_wins)
        ga = sum_to(share * a_wins, a.shape) if a.requires_grad else None
        gb = sum_to(share * b_wins, b.shape) if b.requires_grad else None
        return ga, gb

    return Tensor.from_op(out, (a, b), backward, op)


def maximum(a, b) -> Tensor:
    """Elementwise max(a, b); the gradient goes to the larger (half to each on a tie)."""
    return _extremum(a, b, "maximum", lambda x, y: backend.xp_of(x).maximum(x, y))


def minimum(a, b) -> Tensor:
    """Elementwise min(a, b); the gradient goes to the smaller (half to each on a tie)."""
    return _extremum(a, b, "minimum", lambda x, y: backend.xp_of(x).minimum(x, y))


def astype(x, dtype) -> Tensor:
    """``x`` converted to ``dtype``; the gradient is converted back."""
    x = as_tensor(x)
    source = x.dtype
    if numpy.dtype(dtype) == source:
        return x
    return Tensor.from_op(x.data.astype(dtype), (x,), lambda g: (g.astype(source),), "astype")


# ============================================================================================
# reductions
# ============================================================================================


def sum(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis``.  Every input entry gets the gradient of the sum it fell into."""
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    xp = backend.xp_of(x.data)
    out = xp.sum(x.data, axis=axes, keepdims=keepdims)

    def backward(g):
        return (xp.broadcast_to(_unreduce(g, x.shape, axes), x.shape),)

    return Tensor.from_op(xp.asarray(out), (x,), backward, "sum")


def mean(x, axis=None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``: the sum divided by the number of entries reduced."""
    x = as_floating(x)
    axes = normalize_axes(axis, x.ndim)
    _check_nonempty(x, axes, "mean")
    return sum(x, axes, keepdims) * (1.0 / math.prod(x.shape[a] for a in axes))


def var(x, axis=None, keepdims: bool = False, ddof: int = 0) -> Tensor:
    """Variance over ``axis``: sum((x - mean)^2) / (n - ddof) (NumPy's convention, ddof=0).

    d/dx_i = 2 (x_i - mean) / (n - ddof): the mean's own dependence on x_i cancels because the
    deviations sum to zero.
    """
    x = as_floating(x)
    axes = normalize_axes(axis, x.ndim)
    xp = backend.xp_of(x.data)
    n = math.prod(x.shape[a] for a in axes)
    centered = x.data - x.data.mean(axis=axes, keepdims=True)
    scale = 1.0 / (n - ddof)
    out = (centered * centered).sum(axis=axes, keepdims=keepdims) * scale

    def backward(g):
        return (_unreduce(g, x.shape, axes) * (2.0 * scale) * centered,)

    return Tensor.from_op(xp.asarray(out), (x,), backward, "var")


def _check_nonempty(x: Tensor, axes: tuple, op: str) -> None:
    """A :class:`ShapeError` if ``op`` would reduce over no entries (its value would be NaN or
    undefined); an empty batch beside non-empty reduced axes is fine."""
    if math.prod(x.shape[a] for a in axes) == 0:
        raise ShapeError(
            f"{op} over axis {axes[0] if len(axes) == 1 else axes} of a tensor of shape "
            f"{x.shape}: there are no entries to reduce (the result would be NaN or undefined); "
            "check where the tensor was sliced or built"
        )


def _reduce_extremum(x, axis, keepdims: bool, op: str) -> Tensor:
    x = as_tensor(x)
    axes = normalize_axes(axis, x.ndim)
    _check_nonempty(x, axes, op)
    xp = backend.xp_of(x.data)
    reduce = xp.max if op == "max" else xp.min
    kept = reduce(x.data, axis=axes, keepdims=True)
    out = (
        kept if keepdims else kept.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))
    )

    def backward(g):
        # The gradient goes to the extreme entries, shared evenly among ties.
        hits = (x.data == kept).astype(g.dtype)
        hits /= hits.sum(axis=axes, keepdims=True)
        return (_unreduce(g, x.shape, axes) * hits,)

    return Tensor.from_op(out, (x,), backward, op)


def max(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Maximum over ``axis``; the gradient goes to the maximal entries (split among ties)."""
    return _reduce_extremum(x, axis, keepdims, "max")


def min(x, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Minimum over ``axis``; the gradient goes to the minimal entries (split among ties)."""
    return _reduce_extremum(x, axis, keepdims, "min")


def logsumexp(x, axis=-1, keepdims: bool = False) -> Tensor:
    """log sum_i e^{x_i}, computed as m + log sum_i e^{x_i - m} with m = max x (no overflow).

    Implements (eq-logsumexp-stable).  d/dx_i = e^{x_i - m} / sum_j e^{x_j - m} = softmax(x)_i.
    """
    x = as_floating(x)
    axes = normalize_axes(axis, x.ndim)
    xp = backend.xp_of(x.data)
    shift = stable_shift(x.data, axes)
    exps = xp.exp(x.data - shift)
    total = exps.sum(axis=axes, keepdims=True)
    kept = xp.log(total) + shift
    out = (
        kept if keepdims else kept.reshape(tuple(n for i, n in enumerate(x.shape) if i not in axes))
    )

    def backward(g):
        # softmax from the saved exponentials, not from exp(x - out): the rounded output would
        # cost the gradient |out| * eps of relative precision
        return (_unreduce(g, x.shape, axes) * (exps / total),)

    return Tensor.from_op(out, (x,), backward, "logsumexp")


def softmax(x, axis: int = -1, *, scale: float = 1.0, mask=None) -> Tensor:
    """softmax(x)_i = e^{x_i - m} / sum_j e^{x_j - m}, m = max x (shift-invariant, eq-softmax).

    ``scale`` and ``mask`` fuse attention's logits into the same op: softmax(scale x + M), M =
    -inf where a boolean ``mask`` is False, or a float ``mask`` added as it is (broadcast
    against x; ``axis`` must then be the last). One node instead of three, no full-size
    temporaries for the scaled and masked logits.

    Backward (eq-softmax-vjp): dL/dx = scale s * (g - sum_j g_j s_j).
    """
    x = as_floating(x)
    xp = backend.xp_of(x.data)
    (ax,) = normalize_axes(axis, x.ndim)
    _check_nonempty(x, (ax,), "softmax")
    last = ax == x.ndim - 1
    if mask is not None:
        if not last:
            raise ShapeError(f"softmax: a mask needs axis=-1, got axis={axis}")
        mask = xp.asarray(unwrap(mask))
        if mask.dtype != bool:
            mask = mask.astype(x.dtype, copy=False)
        _broadcast_shape("softmax (mask)", mask.shape, x.shape)
    data = x.data if last else xp.moveaxis(x.data, ax, -1)
    out = kernels.softmax(data, float(scale), mask)

    def backward(g):
        grad = kernels.softmax_grad(g if last else xp.moveaxis(g, ax, -1), out, float(scale))
        return (grad if last else xp.moveaxis(grad, -1, ax),)

    return Tensor.from_op(out if last else xp.moveaxis(out, -1, ax), (x,), backward, "softmax")


def log_softmax(x, axis: int = -1) -> Tensor:
    """log softmax(x) = x - logsumexp(x).  Backward: dL/dx = g - softmax(x) sum_j g_j."""
    x = as_floating(x)
    xp = backend.xp_of(x.data)
    (ax,) = normalize_axes(axis, x.ndim)
    _check_nonempty(x, (ax,), "log_softmax")
    shifted = x.data - stable_shift(x.data, (ax,))
    out = shifted - xp.log(xp.exp(shifted).sum(axis=ax, keepdims=True))

    def backward(g):
        return (g - xp.exp(out) * g.sum(axis=ax, keepdims=True),)

    return Tensor.from_op(out, (x,), backward, "log_softmax")


# ============================================================================================
# shapes
# ============================================================================================


def _shape_arg(shape) -> tuple:
    if len(shape) == 1 and isinstance(shape[0], tuple | list):
        return tuple(shape[0])
    return tuple(shape)


def reshape(x, *shape) -> Tensor:
    """The same entries in a new shape (one entry may be -1).  Backward: reshape back."""
    x = as_tensor(x)
    shape = _shape_arg(shape)
    try:
        out = x.data.reshape(shape)
    except ValueError:
        raise ShapeError(
            f"reshape: cannot reshape {x.shape} ({x.size} entries) to {shape}"
        ) from None
    return Tensor.from_op(out, (x,), lambda g: (g.reshape(x.shape),), "reshape")


def transpose(x, *axes) -> Tensor:
    """Permute the axes (reverse them if none are given).  Backward: the inverse permutation."""
    x = as_tensor(x)
    axes = _shape_arg(axes) or tuple(reversed(range(x.ndim)))
    if len(axes) != x.ndim or sorted(normalize_axes(axes, x.ndim)) != list(range(x.ndim)):
        raise ShapeError(
            f"transpose: {axes} is not a permutation of the {x.ndim} axes of {x.shape}"
        )
    axes = tuple(a % x.ndim for a in axes)
    inverse = tuple(numpy.argsort(axes))
    return Tensor.from_op(
        x.data.transpose(axes), (x,), lambda g: (g.transpose(inverse),), "transpose"
    )


def swapaxes(x, axis1: int, axis2: int) -> Tensor:
    """Exchange two axes.  Backward: exchange them back."""
    x = as_tensor(x)
    normalize_axes((axis1,), x.ndim), normalize_axes((axis2,), x.ndim)
    out = x.data.swapaxes(axis1, axis2)
    return Tensor.from_op(out, (x,), lambda g: (g.swapaxes(axis1, axis2),), "swapaxes")


def broadcast_to(x, *shape) -> Tensor:
    """Repeat ``x`` along broadcast axes.  Backward: :func:`sum_to` the original shape."""
    x = as_tensor(x)
    shape = _shape_arg(shape)
    if _broadcast_shape("broadcast_to", x.shape, shape) != shape:
        raise ShapeError(f"broadcast_to: {x.shape} cannot be broadcast to {shape}")
    xp = backend.xp_of(x.data)
    out = xp.broadcast_to(x.data, shape)
    return Tensor.from_op(out, (x,), lambda g: (sum_to(g, x.shape),), "broadcast_to")


def squeeze(x, axis=None) -> Tensor:
    """Drop axes of length 1 (all of them, or those in ``axis``)."""
    x = as_tensor(x)
    axes = (
        tuple(i for i, n in enumerate(x.shape) if n == 1)
        if axis is None
        else normalize_axes(axis, x.ndim)
    )
    if any(x.shape[a] != 1 for a in axes):
        raise ShapeError(f"squeeze: axis {axis} of shape {x.shape} does not have length 1")
    return reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))


def unsqueeze(x, axis: int) -> Tensor:
    """Insert an axis of length 1 at position ``axis``."""
    x = as_tensor(x)
    axis = axis % (x.ndim + 1)
    return reshape(x, x.shape[:axis] + (1,) + x.shape[axis:])


def _plain_index(index, xp):
    """Replace tensors inside an index by their arrays, and put index arrays on ``xp``'s device."""
    if isinstance(index, tuple):
        return tuple(_plain_index(i, xp) for i in index)
    index = unwrap(index)
    if hasattr(index, "shape") and not isinstance(index, numpy.generic):
        return xp.asarray(index)
    return index


def _is_basic(index) -> bool:
    """True for slices, integers, None and Ellipsis only: then no entry is selected twice."""
    parts = index if isinstance(index, tuple) else (index,)
    return all(
        p is None or p is Ellipsis or isinstance(p, slice | int | numpy.integer) for p in parts
    )


def getitem(x, index) -> Tensor:
    """``x[index]`` with slices, integers, integer arrays or boolean masks.

    Backward: scatter ``g`` into zeros of ``x``'s shape; repeated integer indices accumulate.
    """
    x = as_tensor(x)
    xp = backend.xp_of(x.data)
    index = _plain_index(index, xp)
    try:
        out = x.data[index]
    except IndexError as error:
        raise ShapeError(
            f"getitem: index {index!r} does not fit shape {x.shape}: {error}"
        ) from None

    def backward(g):
        grad = xp.zeros(x.data.shape, dtype=g.dtype)
        if _is_basic(index):
            grad[index] = g
        else:
            backend.scatter_add(grad, index, g)
        return (grad,)

    return Tensor.from_op(out, (x,), backward, "getitem")


def concatenate(tensors, axis: int = 0) -> Tensor:
    """Join tensors along an existing axis.  Backward: cut ``g`` back into the pieces."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ShapeError("concatenate: needs at least one tensor")
    first = tensors[0]
    tensors = [first] + [coerce(t, first, "concatenate") for t in tensors[1:]]
    (ax,) = normalize_axes(axis, first.ndim)
    for t in tensors:
        if t.ndim != first.ndim or any(
            n != m for i, (n, m) in enumerate(zip(t.shape, first.shape)) if i != ax
        ):
            raise ShapeError(
                f"concatenate along axis {axis}: shapes {[t.shape for t in tensors]} differ "
                "outside that axis"
            )
    xp = backend.xp_of(first.data)
    bounds = numpy.cumsum([t.shape[ax] for t in tensors])[:-1].tolist()

    def backward(g):
        return tuple(xp.split(g, bounds, axis=ax))

    out = xp.concatenate([t.data for t in tensors], axis=ax)
    return Tensor.from_op(out, tuple(tensors), backward, "concatenate")


def stack(tensors, axis: int = 0) -> Tensor:
    """Join tensors of one shape along a new axis."""
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ShapeError("stack: needs at least one tensor")
    if len({t.shape for t in tensors}) != 1:
        raise ShapeError(f"stack: shapes differ: {[t.shape for t in tensors]}")
    return concatenate([unsqueeze(t, axis % (tensors[0].ndim + 1)) for t in tensors], axis)


def split(x, indices_or_sections, axis: int = 0) -> list:
    """Cut ``x`` along ``axis``: into equal sections (an int) or at the given indices."""
    x = as_tensor(x)
    (ax,) = normalize_axes(axis, x.ndim)
    length = x.shape[ax]
    if isinstance(indices_or_sections, int):
        if indices_or_sections <= 0 or length % indices_or_sections:
            raise ShapeError(
                f"split: axis {axis} of length {length} does not divide into "
                f"{indices_or_sections} equal sections"
            )
        step = length // indices_or_sections
        bounds = list(range(0, length + 1, step)) if step else [0] * (indices_or_sections + 1)
    else:
        bounds = [0, *(int(i) for i in indices_or_sections), length]
    lead = (slice(None),) * ax
    return [getitem(x, (*lead, slice(lo, hi))) for lo, hi in zip(bounds[:-1], bounds[1:])]


def pad(x, pad_width, value: float = 0.0) -> Tensor:
    """Pad with a constant; ``pad_width`` as in NumPy ((before, after) per axis).

    Backward: the slice of ``g`` that covers the original entries.
    """
    x = as_tensor(x)
    xp = backend.xp_of(x.data)
    widths = numpy.asarray(pad_width, dtype=int)
    if widths.size != 2 * x.ndim:
        widths = numpy.broadcast_to(widths, (x.ndim, 2))
    widths = widths.reshape(x.ndim, 2)
    if (widths < 0).any():
        raise ShapeError(f"pad: negative pad width {pad_width}")
    out = xp.pad(x.data, widths.tolist() or 0, mode="constant", constant_values=value)
    inner = tuple(slice(lo, lo + n) for (lo, _), n in zip(widths.tolist(), x.shape))
    return Tensor.from_op(out, (x,), lambda g: (g[inner],), "pad")
