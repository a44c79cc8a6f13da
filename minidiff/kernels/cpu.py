"""The kernels on the CPU: NumPy ufuncs writing in place (``out=``) over cache-sized blocks.

An elementwise formula written as separate array operations makes one pass over memory and one
temporary array per operation (book chapter 15, "Fusing elementwise operations"). Each function
here computes the formula of its namesake in ``plain.py`` (where the math is written out) as a
sequence of in-place operations into the result, over blocks of ``BLOCK`` elements, so the few
scratch arrays a formula needs stay in a core's cache; the blocks are shared among the threads
(``parallel``). Threads change who computes a block, not how: elementwise results do not depend
on the threads, and only sums split between them (layer norm's weight and bias gradients) are
added in another order. Constants are Python floats, so float32 stays float32.
"""

from __future__ import annotations

import numpy

from .. import parallel
from .plain import GELU_A, GELU_C, split_pairs, stable_shift

BLOCK = 1 << 16
"""Elements per block: a block of float32 is 256 KiB, so a formula's inputs, output and a
scratch array fit together in a core's L2 cache (measured on the demo's hidden layer: GELU
forward and backward about 15% faster than the same in-place formula over the whole array at
once; book chapter 15)."""


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


# ============================================================================================
# GELU (tanh form) and SiLU
# ============================================================================================


def gelu_tanh(x):
    """(GELU(x), t) with t = tanh(u), u = c x (1 + a x^2) (eq-gelu-tanh)."""
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
    """g dGELU/dx (eq-gelu-tanh), from x and the saved t."""
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


def silu(x):
    """(SiLU(x), s) with s = sigmoid(x) = (1 + tanh(x / 2)) / 2."""
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
    """g s (1 + x (1 - s)), from x and the saved s."""
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


def softmax(z, scale: float = 1.0, mask=None):
    """softmax(scale z + M) over the last axis (eq-softmax), block by block of rows."""
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
            ob -= stable_shift(ob)
            numpy.exp(ob, out=ob)
            ob /= ob.sum(axis=-1, keepdims=True)

    _in_groups(blocks, body, rows.size)
    return out.reshape(z.shape)


def softmax_grad(g, y, scale: float = 1.0):
    """scale y (g - sum_j g_j y_j) (eq-softmax-vjp), block by block of rows."""
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


def layer_norm(x, weight, bias, eps: float):
    """(y, x_hat, r) of eq-layernorm, block by block of rows; the variance from the centred
    values, as in ``plain.layer_norm_statistics``."""
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
    """(dL/dx, dL/dweight, dL/dbias) of eq-layernorm-vjp, block by block of rows; each thread
    sums its rows' parts of dweight and dbias, and the parts are added at the end."""
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


def rotate_pairs(x, cos, sin):
    """Each consecutive pair of x's last axis rotated (eq-rope), written into one output; split
    among the threads along the first axis when the tables broadcast over it."""
    out = numpy.empty(x.shape, dtype=x.dtype)
    (a, b), (ra, rb) = split_pairs(x), split_pairs(out)

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


def adam_step(
    p, g, m, v, step_size: float, beta1: float, beta2: float, eps: float, correction2: float
) -> None:
    """One Adam update of ``p``, ``m`` and ``v`` in place (eq-adam), with one scratch array."""
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
