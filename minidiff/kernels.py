"""Fused kernels: the hot elementwise chains of a training step, each computed in one go.

An elementwise formula written as separate array operations makes one pass over memory and one
temporary array per operation (book chapter 15, "Fusing elementwise operations"). The kernels
here compute the same formulas with fewer passes and no full-size temporaries:

* on the CPU, with NumPy ufuncs writing in place (``out=``) into the result, over blocks of
  ``BLOCK`` elements, so the few scratch arrays a formula needs stay in a core's cache;
* on a GPU, as CUDA kernels made with ``cupy.ElementwiseKernel`` and ``cupy.ReductionKernel``:
  one launch reads the inputs once and writes the outputs once. They are compiled on first use.

Every kernel has a ``plain_*`` twin that writes the textbook formula as ordinary array
expressions on any array module. Tests compare each kernel with its twin on both devices, and
``MINIDIFF_PLAIN_KERNELS=1`` makes the ops use the twins (to measure what fusing buys, or to rule
a kernel out when hunting a bug). All constants are Python floats or scalars of the data's
dtype, so float32 stays float32.

The formulas (with the book's labels):

* GELU, tanh form (eq-gelu-tanh): y = x (1 + t) / 2 with t = tanh(c (x + a x^3)),
  c = sqrt(2 / pi), a = 0.044715; dy/dx = (1 + t) / 2 + x (1 - t^2) c (1 + 3 a x^2) / 2.
* SiLU: y = x s with s = sigmoid(x); dy/dx = s (1 + x (1 - s)).
* softmax with scale and mask (eq-softmax, eq-attention): y = softmax(scale z + M) over the last
  axis, M = -inf where a boolean mask is False (or a float mask added as it is);
  backward (eq-softmax-vjp) dL/dz = scale y (g - sum_j g_j y_j).
* layer norm (eq-layernorm, eq-layernorm-vjp): x_hat = (x - mean) r, r = 1 / sqrt(var + eps),
  y = w x_hat + b; dL/dx = r (g w - mean(g w) - x_hat mean(g w x_hat)).
* rotary encoding (eq-rope): each pair (a, b) -> (a cos - b sin, a sin + b cos); backward, the
  rotation by the opposite angle.
* Adam (eq-adam): m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2,
  p <- p - step m / (sqrt(v) / sqrt(1 - b2^t) + eps), step = lr / (1 - b1^t).
"""

from __future__ import annotations

import math
import os
from functools import lru_cache

import numpy

from . import backend, parallel

BLOCK = 1 << 16
"""Elements per block on the CPU: a block of float32 is 256 KiB, so a formula's inputs, output
and a scratch array fit together in a core's L2 cache (measured on the demo's hidden layer:
GELU forward and backward about 15% faster than the same in-place formula over the whole
array at once; book chapter 15)."""

GELU_C = math.sqrt(2.0 / math.pi)
GELU_A = 0.044715


def use_plain() -> bool:
    """True when ``MINIDIFF_PLAIN_KERNELS=1``: the ops then use the ``plain_*`` formulas."""
    return os.environ.get("MINIDIFF_PLAIN_KERNELS") == "1"


def _blocks(size: int, per: int):
    """Slices covering ``range(size)`` in equal pieces (to within one) of at most ``per``, their
    number a multiple of the threads where possible, so that every thread gets as much work."""
    count = -(-size // max(1, per))
    threads = parallel.threads()
    count = min(size, -(-count // threads) * threads)
    bounds = [size * i // count for i in range(count + 1)] if count else [0]
    return [slice(bounds[i], bounds[i + 1]) for i in range(count)]


def _rows(x):
    """``x`` as a C-contiguous 2-D array (rows, last axis), and blocks of about BLOCK elements."""
    x = numpy.ascontiguousarray(x)
    width = x.shape[-1] if x.ndim else 1
    rows = x.reshape(-1, width) if x.size else x.reshape(0, width)
    return rows, _blocks(rows.shape[0], BLOCK // max(width, 1))


def _flat(x):
    x = numpy.ascontiguousarray(x)
    return x.reshape(-1), _blocks(x.size, BLOCK)


def _in_groups(blocks: list, body, work: int) -> list:
    """``body(slices)`` over consecutive groups of the blocks, one group per thread
    (``parallel``); the bodies' results, in order."""
    groups = parallel.split(len(blocks), work)
    return parallel.run([lambda group=group: body(blocks[group]) for group in groups])


def _scalar(x, value):
    """``value`` as a scalar of ``x``'s dtype (for CUDA kernels' typed parameters)."""
    return x.dtype.type(value)


# ============================================================================================
# GELU (tanh form)
# ============================================================================================


def plain_gelu_tanh(x):
    """(GELU(x), t) with t = tanh(c (x + a x^3)), as plain array expressions."""
    xp = backend.xp_of(x)
    t = xp.tanh(GELU_C * (x + GELU_A * x * x * x))
    return 0.5 * x * (1.0 + t), t


def plain_gelu_tanh_grad(g, x, t):
    """g dGELU/dx from x and the saved t, as plain array expressions."""
    du = GELU_C * (1.0 + 3.0 * GELU_A * x * x)
    return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)


def gelu_tanh(x):
    """(GELU(x), t): the forward pass of eq-gelu-tanh; t is what the backward pass needs."""
    if use_plain():
        return plain_gelu_tanh(x)
    if backend.is_cupy_array(x):
        return _cuda_kernels()["gelu"](x)
    flat, blocks = _flat(x)
    y, t = numpy.empty_like(flat), numpy.empty_like(flat)

    def body(slices):
        for b in slices:
            xb, yb, tb = flat[b], y[b], t[b]
            numpy.multiply(xb, xb, out=tb)
            tb *= GELU_A
            tb += 1.0
            tb *= xb
            tb *= GELU_C  # u = c x (1 + a x^2)
            numpy.tanh(tb, out=tb)
            numpy.add(tb, 1.0, out=yb)
            yb *= xb
            yb *= 0.5

    _in_groups(blocks, body, flat.size)
    return y.reshape(x.shape), t.reshape(x.shape)


def gelu_tanh_grad(g, x, t):
    """dL/dx = g dGELU/dx (eq-gelu-tanh), from x and the t saved by :func:`gelu_tanh`."""
    if use_plain():
        return plain_gelu_tanh_grad(g, x, t)
    if backend.is_cupy_array(x):
        return _cuda_kernels()["gelu_grad"](g, x, t)
    flat, blocks = _flat(x)
    gf, tf = _flat(g)[0], _flat(t)[0]
    dx = numpy.empty_like(flat)

    def body(slices):
        scratch = numpy.empty(min(BLOCK, flat.size), dtype=flat.dtype)
        for b in slices:
            xb, tb, db = flat[b], tf[b], dx[b]
            w = scratch[: xb.size]
            numpy.multiply(xb, xb, out=w)
            w *= 3.0 * GELU_A
            w += 1.0
            w *= xb
            w *= 0.5 * GELU_C  # x du / 2
            numpy.multiply(tb, tb, out=db)
            numpy.subtract(1.0, db, out=db)
            db *= w  # x (1 - t^2) du / 2
            numpy.multiply(tb, 0.5, out=w)
            db += w
            db += 0.5
            db *= gf[b]

    _in_groups(blocks, body, flat.size)
    return dx.reshape(x.shape)


# ============================================================================================
# SiLU
# ============================================================================================


def plain_silu(x):
    """(SiLU(x), s) with s = sigmoid(x) = (1 + tanh(x / 2)) / 2 (no exp to overflow)."""
    xp = backend.xp_of(x)
    s = 0.5 * (1.0 + xp.tanh(0.5 * x))
    return x * s, s


def plain_silu_grad(g, x, s):
    return g * s * (1.0 + x * (1.0 - s))


def silu(x):
    """(SiLU(x), sigmoid(x)): the forward pass, and what the backward pass needs."""
    if use_plain():
        return plain_silu(x)
    if backend.is_cupy_array(x):
        return _cuda_kernels()["silu"](x)
    flat, blocks = _flat(x)
    y, s = numpy.empty_like(flat), numpy.empty_like(flat)

    def body(slices):
        for b in slices:
            xb, yb, sb = flat[b], y[b], s[b]
            numpy.multiply(xb, 0.5, out=sb)
            numpy.tanh(sb, out=sb)
            sb += 1.0
            sb *= 0.5
            numpy.multiply(xb, sb, out=yb)

    _in_groups(blocks, body, flat.size)
    return y.reshape(x.shape), s.reshape(x.shape)


def silu_grad(g, x, s):
    """dL/dx = g s (1 + x (1 - s)), from x and the s saved by :func:`silu`."""
    if use_plain():
        return plain_silu_grad(g, x, s)
    if backend.is_cupy_array(x):
        return _cuda_kernels()["silu_grad"](g, x, s)
    flat, blocks = _flat(x)
    gf, sf = _flat(g)[0], _flat(s)[0]
    dx = numpy.empty_like(flat)

    def body(slices):
        for b in slices:
            db = dx[b]
            numpy.subtract(1.0, sf[b], out=db)
            db *= flat[b]
            db += 1.0
            db *= sf[b]
            db *= gf[b]

    _in_groups(blocks, body, flat.size)
    return dx.reshape(x.shape)


# ============================================================================================
# softmax over the last axis, with scale and mask
# ============================================================================================


def _check_mask(mask, shape):
    if mask is not None:
        numpy.broadcast_shapes(mask.shape, shape)  # raises ValueError naming both shapes


def plain_softmax(z, scale: float = 1.0, mask=None):
    """softmax(scale z + M) over the last axis, as plain array expressions (eq-softmax)."""
    xp = backend.xp_of(z)
    logits = z * scale
    if mask is not None:
        logits = xp.where(mask, logits, -math.inf) if mask.dtype == bool else logits + mask
    shift = logits.max(axis=-1, keepdims=True) if z.shape[-1] else 0.0
    if z.shape[-1]:
        shift = xp.where(xp.isfinite(shift), shift, 0.0).astype(z.dtype)
    e = xp.exp(logits - shift)
    return e / e.sum(axis=-1, keepdims=True)


def plain_softmax_grad(g, y, scale: float = 1.0):
    """dL/dz = scale y (g - sum_j g_j y_j) (eq-softmax-vjp), as plain array expressions."""
    return scale * (y * (g - (g * y).sum(axis=-1, keepdims=True)))


def softmax(z, scale: float = 1.0, mask=None):
    """y = softmax(scale z + M) over the last axis; ``mask`` is boolean (False: M = -inf, the
    key is hidden) or a float array added to the logits, broadcast against ``z``. A row whose
    keys are all hidden has no softmax (NaN)."""
    _check_mask(mask, z.shape)
    if use_plain() or z.size == 0:
        return plain_softmax(z, scale, mask)
    if backend.is_cupy_array(z):
        return _cuda_softmax(z, scale, mask)
    rows, blocks = _rows(z)
    out = numpy.empty_like(rows)
    if mask is not None:
        hidden = ~mask if mask.dtype == bool else mask.astype(z.dtype, copy=False)
        hidden = numpy.broadcast_to(hidden, z.shape).reshape(rows.shape)

    def body(slices):
        for b in slices:
            ob = out[b]
            numpy.multiply(rows[b], scale, out=ob)
            if mask is not None:
                if mask.dtype == bool:
                    numpy.copyto(ob, -numpy.inf, where=hidden[b])
                else:
                    ob += hidden[b]
            shift = ob.max(axis=-1, keepdims=True)
            shift[~numpy.isfinite(shift)] = 0.0
            ob -= shift
            numpy.exp(ob, out=ob)
            ob /= ob.sum(axis=-1, keepdims=True)

    _in_groups(blocks, body, rows.size)
    return out.reshape(z.shape)


def softmax_grad(g, y, scale: float = 1.0):
    """dL/dz = scale y (g - sum_j g_j y_j) (eq-softmax-vjp), from the output y."""
    if use_plain() or y.size == 0:
        return plain_softmax_grad(g, y, scale)
    if backend.is_cupy_array(y):
        kernels = _cuda_kernels()
        total = kernels["row_dot"](g, y, axis=-1, keepdims=True)
        return kernels["softmax_grad"](g, y, total, _scalar(y, scale))
    rows, blocks = _rows(y)
    grows = _rows(g)[0]
    dz = numpy.empty_like(rows)

    def body(slices):
        for b in slices:
            db = dz[b]
            numpy.multiply(grows[b], rows[b], out=db)
            total = db.sum(axis=-1, keepdims=True)
            numpy.subtract(grows[b], total, out=db)
            db *= rows[b]
            if scale != 1.0:
                db *= scale

    _in_groups(blocks, body, rows.size)
    return dz.reshape(y.shape)


# ============================================================================================
# layer norm over the last axis
# ============================================================================================


def plain_layer_norm(x, weight, bias, eps: float):
    """(y, x_hat, r) of eq-layernorm as plain array expressions; r has a size-1 last axis."""
    xp = backend.xp_of(x)
    centered = x - x.mean(axis=-1, keepdims=True)
    rstd = 1.0 / xp.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
    x_hat = centered * rstd
    y = x_hat if weight is None else x_hat * weight
    return (y if bias is None else y + bias), x_hat, rstd


def plain_layer_norm_grad(g, x_hat, rstd, weight, needs=(True, True, True)):
    """(dL/dx, dL/dweight, dL/dbias) of eq-layernorm-vjp; None for what ``needs`` leaves out."""
    lead = tuple(range(g.ndim - 1))
    gh = g if weight is None else g * weight
    dx = (
        rstd
        * (gh - gh.mean(axis=-1, keepdims=True) - x_hat * (gh * x_hat).mean(axis=-1, keepdims=True))
        if needs[0]
        else None
    )
    dw = (g * x_hat).sum(axis=lead) if needs[1] else None
    db = g.sum(axis=lead) if needs[2] else None
    return dx, dw, db


def layer_norm(x, weight, bias, eps: float):
    """(y, x_hat, r): layer norm over the last axis (eq-layernorm), with what its backward
    needs; ``weight`` and ``bias`` (shape (d,)) may be None. The variance is taken from the
    centred values (two passes), so a large common offset cannot cancel."""
    if use_plain() or x.size == 0:
        return plain_layer_norm(x, weight, bias, eps)
    if backend.is_cupy_array(x):
        return _cuda_layer_norm(x, weight, bias, eps)
    rows, blocks = _rows(x)
    y, x_hat = numpy.empty_like(rows), numpy.empty_like(rows)
    rstd = numpy.empty((rows.shape[0], 1), dtype=rows.dtype)

    def body(slices):
        for b in slices:
            hb, yb = x_hat[b], y[b]
            numpy.subtract(rows[b], rows[b].mean(axis=-1, keepdims=True), out=hb)
            numpy.multiply(hb, hb, out=yb)
            r = yb.mean(axis=-1, keepdims=True)
            r += eps
            numpy.sqrt(r, out=r)
            numpy.divide(1.0, r, out=r)
            rstd[b] = r
            hb *= r
            if weight is None:
                yb[...] = hb
            else:
                numpy.multiply(hb, weight, out=yb)
            if bias is not None:
                yb += bias

    _in_groups(blocks, body, rows.size)
    shape = x.shape
    return y.reshape(shape), x_hat.reshape(shape), rstd.reshape(*shape[:-1], 1)


def layer_norm_grad(g, x_hat, rstd, weight, needs=(True, True, True)):
    """(dL/dx, dL/dweight, dL/dbias) of eq-layernorm-vjp from the saved x_hat and r; an entry
    is None where ``needs`` (for x, weight, bias) is False."""
    if use_plain() or g.size == 0:
        return plain_layer_norm_grad(g, x_hat, rstd, weight, needs)
    if backend.is_cupy_array(g):
        return _cuda_layer_norm_grad(g, x_hat, rstd, weight, needs)
    grows, blocks = _rows(g)
    hrows = _rows(x_hat)[0]
    rrows = rstd.reshape(-1, 1)
    d = grows.shape[1]
    dx = numpy.empty_like(grows) if needs[0] else None

    def body(slices):
        """dx for these rows, and their parts of the sums for dweight and dbias."""
        dw = numpy.zeros(d, dtype=g.dtype) if needs[1] else None
        db = numpy.zeros(d, dtype=g.dtype) if needs[2] else None
        scratch = numpy.empty((min(len(grows), max(1, BLOCK // max(d, 1))), d), dtype=g.dtype)
        for b in slices:
            gb, hb = grows[b], hrows[b]
            s = scratch[: gb.shape[0]]
            if needs[1]:
                numpy.multiply(gb, hb, out=s)
                dw += s.sum(axis=0)
            if needs[2]:
                db += gb.sum(axis=0)
            if needs[0]:
                out = dx[b]
                if weight is None:
                    out[...] = gb
                else:
                    numpy.multiply(gb, weight, out=out)  # gh
                numpy.multiply(out, hb, out=s)
                c = s.mean(axis=-1, keepdims=True)
                out -= out.mean(axis=-1, keepdims=True)
                numpy.multiply(hb, c, out=s)
                out -= s
                out *= rrows[b]
        return dw, db

    parts = _in_groups(blocks, body, grows.size)
    dw = sum(part[0] for part in parts) if needs[1] else None
    db = sum(part[1] for part in parts) if needs[2] else None
    return (None if dx is None else dx.reshape(g.shape)), dw, db


# ============================================================================================
# rotary position encoding
# ============================================================================================


def plain_rotate_pairs(x, cos, sin):
    """Each consecutive pair (a, b) of x's last axis rotated by its angle, as plain expressions:
    (a cos - b sin, a sin + b cos) (eq-rope); ``cos`` and ``sin`` broadcast against the pairs."""
    xp = backend.xp_of(x)
    pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    a, b = pairs[..., 0], pairs[..., 1]
    return xp.stack([a * cos - b * sin, a * sin + b * cos], axis=-1).reshape(x.shape)


def rotate_pairs(x, cos, sin):
    """Rotate each consecutive pair of x's last axis (eq-rope). A rotation's transpose is the
    rotation by the opposite angle, so the backward pass is ``rotate_pairs(g, cos, -sin)``."""
    if use_plain():
        return plain_rotate_pairs(x, cos, sin)
    xp = backend.xp_of(x)
    out = xp.empty(x.shape, dtype=x.dtype)
    pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    rotated = out.reshape(pairs.shape)
    a, b, ra, rb = pairs[..., 0], pairs[..., 1], rotated[..., 0], rotated[..., 1]
    if backend.is_cupy_array(x):
        _cuda_kernels()["rotate"](a, b, cos, sin, ra, rb)
        return out

    def rotate(s):  # the entries s of the first axis (every entry when cos, sin cover it)
        scratch = numpy.empty(a[s].shape, dtype=x.dtype)
        numpy.multiply(a[s], cos, out=ra[s])
        numpy.multiply(b[s], sin, out=scratch)
        ra[s] -= scratch
        numpy.multiply(a[s], sin, out=rb[s])
        numpy.multiply(b[s], cos, out=scratch)
        rb[s] += scratch

    if a.ndim > numpy.ndim(cos):  # the tables broadcast over the first axis: split it
        pieces = parallel.split(a.shape[0], x.size)
    else:
        pieces = [slice(None)]
    parallel.run([lambda s=s: rotate(s) for s in pieces])
    return out


# ============================================================================================
# Adam
# ============================================================================================


def plain_adam_step(
    p, g, m, v, step_size: float, beta1: float, beta2: float, eps: float, correction2: float
) -> None:
    """One Adam update of ``p``, ``m`` and ``v`` in place (eq-adam), as plain expressions;
    ``step_size`` = lr / (1 - b1^t), ``correction2`` = 1 / sqrt(1 - b2^t)."""
    xp = backend.xp_of(p)
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * (g * g)
    p -= step_size * (m / (xp.sqrt(v) * correction2 + eps))


def adam_step(
    p, g, m, v, step_size: float, beta1: float, beta2: float, eps: float, correction2: float
) -> None:
    """One Adam update of ``p``, ``m`` and ``v`` in place (eq-adam); see :func:`plain_adam_step`
    for the arguments. On a GPU one kernel launch per parameter."""
    if use_plain():
        return plain_adam_step(p, g, m, v, step_size, beta1, beta2, eps, correction2)
    if backend.is_cupy_array(p):
        scalars = (_scalar(p, value) for value in (beta1, beta2, eps, step_size, correction2))
        _cuda_kernels()["adam"](g, *scalars, p, m, v)
        return None
    scratch = numpy.empty_like(p)
    numpy.multiply(g, 1.0 - beta1, out=scratch)
    m *= beta1
    m += scratch
    numpy.multiply(g, g, out=scratch)
    scratch *= 1.0 - beta2
    v *= beta2
    v += scratch
    numpy.sqrt(v, out=scratch)
    scratch *= correction2
    scratch += eps
    numpy.divide(m, scratch, out=scratch)
    scratch *= step_size
    p -= scratch
    return None


# ============================================================================================
# CUDA kernels (CuPy), built on first use
# ============================================================================================


@lru_cache(maxsize=1)
def _cuda_kernels() -> dict:
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


def _cuda_softmax(z, scale, mask):
    cp = backend.module_for("cuda")
    kernels = _cuda_kernels()
    if mask is None or mask.dtype == bool:
        keep = cp.ones((), dtype=bool) if mask is None else mask
        logits = kernels["scale_mask"](z, keep, _scalar(z, scale), _scalar(z, -math.inf))
    else:
        logits = z * _scalar(z, scale) + mask.astype(z.dtype, copy=False)
    shift = logits.max(axis=-1, keepdims=True)
    shift = cp.where(cp.isfinite(shift), shift, _scalar(z, 0.0))
    e = kernels["exp_shift"](logits, shift, logits)  # written over the logits
    e /= e.sum(axis=-1, keepdims=True)
    return e


def _cuda_layer_norm(x, weight, bias, eps):
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    rstd = 1.0 / backend.module_for("cuda").sqrt(
        (centered * centered).mean(axis=-1, keepdims=True) + eps
    )
    w = _scalar(x, 1.0) if weight is None else weight
    b = _scalar(x, 0.0) if bias is None else bias
    y, x_hat = _cuda_kernels()["layer_norm"](x, mean, rstd, w, b)
    return y, x_hat, rstd


def _cuda_layer_norm_grad(g, x_hat, rstd, weight, needs):
    kernels = _cuda_kernels()
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
