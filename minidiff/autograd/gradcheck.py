"""Gradient checking: analytic gradients against float64 central differences.

For a function f of inputs x (tensors), the analytic side is what ``backward`` computes; the
numerical side is the central difference (book eq. ``eq-central-difference``)

    df/dx_i ~ (f(x + eps e_i) - f(x - eps e_i)) / (2 eps),

whose error is O(eps^2) (plus round-off of order 1e-16 / eps), so in float64 with eps = 1e-6 the
two agree to about 1e-9 when the backward is right. On small problems every entry of the
Jacobian is compared; on large ones, random directions v in input space and u in output space:
u^T J v by backward versus (u^T f(x + eps v) - u^T f(x - eps v)) / (2 eps).
"""

from __future__ import annotations

import numpy

from .. import backend
from ..errors import GradcheckError
from .tensor import Tensor, no_grad, unwrap


def _as_float64_leaf(value) -> Tensor:
    """A float64 copy of ``value`` as a leaf: perturbing it never touches the caller's array."""
    data = unwrap(value)
    device = backend.device_of(data) if isinstance(value, Tensor) else None
    leaf = Tensor(data, requires_grad=True, dtype=numpy.float64, device=device)
    leaf.data = leaf.data.copy()
    return leaf


def _evaluate(fn, inputs) -> Tensor:
    out = fn(*inputs)
    if not isinstance(out, Tensor):
        raise GradcheckError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    if out.dtype != numpy.float64:
        raise GradcheckError(
            f"gradcheck: fn returned dtype {out.dtype} from float64 inputs; a float32 constant "
            "or cast inside fn hides the precision the check needs"
        )
    return out


def _analytic(fn, inputs, cotangent) -> list:
    """The gradients of <cotangent, fn(inputs)> with respect to each input, by backward."""
    for x in inputs:
        x.grad = None
    out = _evaluate(fn, inputs)
    if out.requires_grad:
        out.backward(cotangent)
    grads = []
    for x in inputs:
        g = x.grad if x.grad is not None else backend.xp_of(x.data).zeros_like(x.data)
        if g.shape != x.data.shape or g.dtype != x.data.dtype:
            raise GradcheckError(
                f"gradcheck: gradient of shape {g.shape} and dtype {g.dtype} for an input of "
                f"shape {x.shape} and dtype {x.dtype}"
            )
        grads.append(g)
    return grads


def _probe(fn, inputs, cotangent) -> float:
    """<cotangent, fn(inputs)> without recording a graph."""
    with no_grad():
        out = _evaluate(fn, inputs)
    return float((out.data * cotangent).sum())


def gradcheck(
    fn,
    *inputs,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-8,
    max_entries: int = 4096,
    directions: int = 4,
    seed: int = 0,
) -> bool:
    """Check ``fn``'s backward against central differences in float64; raise on a mismatch.

    ``inputs`` (tensors or arrays) are copied to float64 leaves. If the Jacobian has at most
    ``max_entries`` entries, every entry is compared; otherwise ``directions`` random
    directional derivatives are. An entry passes if |analytic - numeric| <= atol + rtol |numeric|.
    The :class:`~minidiff.errors.GradcheckError` names the worst entry: input, index, both values.

    >>> import minidiff as md
    >>> md.gradcheck(lambda x: (x * x).sum(), md.randn(3))
    True
    """
    leaves = [_as_float64_leaf(x) for x in inputs]
    with no_grad():
        out_shape = _evaluate(fn, leaves).shape
    xp = backend.xp_of(*(x.data for x in leaves))
    n_out = int(numpy.prod(out_shape))
    n_in = sum(x.size for x in leaves)
    if n_out * n_in <= max_entries:
        _check_full_jacobian(fn, leaves, out_shape, xp, eps, rtol, atol)
    else:
        _check_directions(fn, leaves, out_shape, xp, eps, rtol, atol, directions, seed)
    return True


def _fail(detail: str, analytic: float, numeric: float, rtol: float, atol: float):
    raise GradcheckError(
        f"gradcheck failed {detail}: analytic {analytic:.10g}, numeric {numeric:.10g}, "
        f"|difference| {abs(analytic - numeric):.3g} > atol + rtol*|numeric| = "
        f"{atol + rtol * abs(numeric):.3g}"
    )


def _check_full_jacobian(fn, leaves, out_shape, xp, eps, rtol, atol) -> None:
    n_out = int(numpy.prod(out_shape))
    analytic = []  # analytic[k][i]: row k of the Jacobian, restricted to input i
    for k in range(n_out):
        cotangent = xp.zeros(n_out, dtype=numpy.float64)
        cotangent[k] = 1.0
        analytic.append(_analytic(fn, leaves, cotangent.reshape(out_shape)))

    worst = None  # (excess over tolerance, message args)
    for i, x in enumerate(leaves):
        for j in range(x.size):
            entry = numpy.unravel_index(j, x.shape)
            saved = x.data[entry].item()
            x.data[entry] = saved + eps
            with no_grad():
                plus = _evaluate(fn, leaves).data.reshape(-1).copy()
            x.data[entry] = saved - eps
            with no_grad():
                minus = _evaluate(fn, leaves).data.reshape(-1).copy()
            x.data[entry] = saved
            numeric = backend.to_numpy((plus - minus) / (2 * eps))
            for k in range(n_out):
                a = float(analytic[k][i][entry])
                n = float(numeric[k])
                excess = abs(a - n) - (atol + rtol * abs(n))
                if not excess <= 0 and (worst is None or not excess <= worst[0]):
                    out_index = numpy.unravel_index(k, out_shape) if out_shape else ()
                    where = (
                        f"for input {i} (shape {x.shape}) at index {tuple(map(int, entry))}, "
                        f"output index {tuple(map(int, out_index))}"
                    )
                    worst = (excess, where, a, n)
    if worst is not None:
        _fail(worst[1], worst[2], worst[3], rtol, atol)


def _check_directions(fn, leaves, out_shape, xp, eps, rtol, atol, directions, seed) -> None:
    rng = numpy.random.default_rng(seed)
    for d in range(directions):
        cotangent = backend.to_device(rng.standard_normal(out_shape), leaves[0].device)
        grads = _analytic(fn, leaves, cotangent)
        tangents = [backend.to_device(rng.standard_normal(x.shape), x.device) for x in leaves]
        analytic = sum(float((g * v).sum()) for g, v in zip(grads, tangents))
        originals = [x.data.copy() for x in leaves]
        for x, v, o in zip(leaves, tangents, originals):
            x.data[...] = o + eps * v
        plus = _probe(fn, leaves, cotangent)
        for x, v, o in zip(leaves, tangents, originals):
            x.data[...] = o - eps * v
        minus = _probe(fn, leaves, cotangent)
        for x, o in zip(leaves, originals):
            x.data[...] = o
        numeric = (plus - minus) / (2 * eps)
        if not abs(analytic - numeric) <= atol + rtol * abs(numeric):
            _fail(f"along random direction {d} (seed {seed})", analytic, numeric, rtol, atol)
