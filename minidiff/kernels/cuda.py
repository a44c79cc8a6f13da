"""The kernels on a GPU: CUDA sources for CuPy, and the functions that launch them.

Each formula of ``plain.py`` (where the math is written out) becomes a ``cupy.ElementwiseKernel``
(the loop body in CUDA C, applied to every element) or, for row sums, a ``cupy.ReductionKernel``
(a map, then a reduction along an axis): one launch reads the inputs once and writes the outputs
once. The kernels are compiled by CuPy on their first call, so this module imports without
CuPy. GELU's constants are formatted into its source from ``plain.GELU_C`` and ``plain.GELU_A``.
Each launching function takes the arguments of its namesake in ``plain.py`` and returns what it
returns.
"""

from __future__ import annotations

import math
from functools import lru_cache

from .. import backend
from .plain import GELU_A, GELU_C, layer_norm_statistics, split_pairs, stable_shift


def _scalar(x, value):
    """``value`` as a scalar of ``x``'s dtype (for the kernels' typed parameters)."""
    return x.dtype.type(value)


@lru_cache(maxsize=1)
def compiled() -> dict:
    """The CUDA kernels, compiled by CuPy on their first call. ``T`` is the data's dtype; the
    casts ``(T)`` keep float32 arithmetic in float32 (a bare ``0.5`` in C is a double)."""
    cp = backend.module_for("cuda")
    c, a = repr(GELU_C), repr(GELU_A)
    return {
        "gelu": cp.ElementwiseKernel(
            "T x",
            "T y, T t",
            f"t = tanh((T){c} * x * ((T)1 + (T){a} * x * x)); y = (T)0.5 * x * ((T)1 + t);",
            "minidiff_gelu_tanh",
        ),
        "gelu_grad": cp.ElementwiseKernel(
            "T g, T x, T t",
            "T dx",
            f"T du = (T){c} * ((T)1 + (T)(3 * {a}) * x * x);"
            "dx = g * ((T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * du);",
            "minidiff_gelu_tanh_grad",
        ),
        "silu": cp.ElementwiseKernel(
            "T x",
            "T y, T s",
            "s = (T)0.5 * ((T)1 + tanh((T)0.5 * x)); y = x * s;",
            "minidiff_silu",
        ),
        "silu_grad": cp.ElementwiseKernel(
            "T g, T x, T s",
            "T dx",
            "dx = g * s * ((T)1 + x * ((T)1 - s));",
            "minidiff_silu_grad",
        ),
        "scale_mask": cp.ElementwiseKernel(
            "T z, bool keep, T scale, T hidden",
            "T logits",
            "logits = keep ? z * scale : hidden;",
            "minidiff_scale_mask",
        ),
        "exp_shift": cp.ElementwiseKernel(
            "T logits, T shift",
            "T e",
            "e = exp(logits - shift);",
            "minidiff_exp_shift",
        ),
        "row_dot": cp.ReductionKernel(
            "T a, T b", "T total", "a * b", "a + b", "total = a", "0", "minidiff_row_dot"
        ),
        "softmax_grad": cp.ElementwiseKernel(
            "T g, T y, T total, T scale",
            "T dz",
            "dz = scale * y * (g - total);",
            "minidiff_softmax_grad",
        ),
        "layer_norm": cp.ElementwiseKernel(
            "T x, T mean, T rstd, T w, T b",
            "T y, T x_hat",
            "x_hat = (x - mean) * rstd; y = x_hat * w + b;",
            "minidiff_layer_norm",
        ),
        "layer_norm_grad": cp.ElementwiseKernel(
            "T gh, T x_hat, T rstd, T mean_gh, T mean_ghx",
            "T dx",
            "dx = rstd * (gh - mean_gh - x_hat * mean_ghx);",
            "minidiff_layer_norm_grad",
        ),
        "rotate": cp.ElementwiseKernel(
            "T a, T b, T c, T s",
            "T ra, T rb",
            "ra = a * c - b * s; rb = a * s + b * c;",
            "minidiff_rotate_pairs",
        ),
        "adam": cp.ElementwiseKernel(
            "T g, T beta1, T beta2, T eps, T step_size, T correction2",
            "T p, T m, T v",
            "m = beta1 * m + ((T)1 - beta1) * g;"
            "v = beta2 * v + ((T)1 - beta2) * g * g;"
            "p = p - step_size * m / (sqrt(v) * correction2 + eps);",
            "minidiff_adam",
        ),
    }


def gelu_tanh(x):
    return compiled()["gelu"](x)


def gelu_tanh_grad(g, x, t):
    return compiled()["gelu_grad"](g, x, t)


def silu(x):
    return compiled()["silu"](x)


def silu_grad(g, x, s):
    return compiled()["silu_grad"](g, x, s)


def softmax(z, scale: float = 1.0, mask=None):
    """Scaled and masked logits in one launch (a float mask is added as an array expression),
    the shift, then exp(logits - shift) written over the logits in one more."""
    cp = backend.module_for("cuda")
    kernels = compiled()
    if mask is None or mask.dtype == bool:
        keep = cp.ones((), dtype=bool) if mask is None else mask
        logits = kernels["scale_mask"](z, keep, _scalar(z, scale), _scalar(z, -math.inf))
    else:
        logits = z * _scalar(z, scale) + mask.astype(z.dtype, copy=False)
    e = kernels["exp_shift"](logits, stable_shift(logits), logits)  # written over the logits
    e /= e.sum(axis=-1, keepdims=True)
    return e


def softmax_grad(g, y, scale: float = 1.0):
    kernels = compiled()
    total = kernels["row_dot"](g, y, axis=-1, keepdims=True)
    return kernels["softmax_grad"](g, y, total, _scalar(y, scale))


def layer_norm(x, weight, bias, eps: float):
    """The row statistics as array expressions, then x_hat and y in one launch."""
    mean, _, rstd = layer_norm_statistics(x, eps)
    w = _scalar(x, 1.0) if weight is None else weight
    b = _scalar(x, 0.0) if bias is None else bias
    y, x_hat = compiled()["layer_norm"](x, mean, rstd, w, b)
    return y, x_hat, rstd


def layer_norm_grad(g, x_hat, rstd, weight, needs=(True, True, True)):
    kernels = compiled()
    lead = tuple(range(g.ndim - 1))
    dx = None
    if needs[0]:
        gh = g if weight is None else g * weight
        d = g.shape[-1]
        mean_gh = gh.mean(axis=-1, keepdims=True)
        mean_ghx = kernels["row_dot"](gh, x_hat, axis=-1, keepdims=True) / _scalar(g, d)
        dx = kernels["layer_norm_grad"](gh, x_hat, rstd, mean_gh, mean_ghx)
    dw = kernels["row_dot"](g, x_hat, axis=lead) if needs[1] else None
    db = g.sum(axis=lead) if needs[2] else None
    return dx, dw, db


def rotate_pairs(x, cos, sin):
    out = backend.module_for("cuda").empty(x.shape, dtype=x.dtype)
    (a, b), (ra, rb) = split_pairs(x), split_pairs(out)
    compiled()["rotate"](a, b, cos, sin, ra, rb)
    return out


def adam_step(
    p, g, m, v, step_size: float, beta1: float, beta2: float, eps: float, correction2: float
) -> None:
    """One launch per parameter: m, v and p updated in place."""
    scalars = (_scalar(p, value) for value in (beta1, beta2, eps, step_size, correction2))
    compiled()["adam"](g, *scalars, p, m, v)
