"""The kernels' formulas as plain array expressions: the reference every fast path is tested
against, on any array module (NumPy or CuPy).

Each function writes its formula the way the book does, one array operation per step, so it is
the one to read first; ``cpu.py`` and ``cuda.py`` compute the same with fewer passes over
memory. The constants and the few pieces the fast paths share (GELU's constants, the softmax
shift, layer norm's statistics, the split into pairs) are defined here once. All constants are
Python floats, so float32 stays float32.

* GELU, tanh form (eq-gelu-tanh): y = x (1 + t) / 2 with t = tanh(c (x + a x^3)),
  c = sqrt(2 / pi), a = 0.044715; dy/dx = (1 + t) / 2 + x (1 - t^2) c (1 + 3 a x^2) / 2.
* SiLU: y = x s with s = sigmoid(x) = (1 + tanh(x / 2)) / 2; dy/dx = s (1 + x (1 - s)).
* softmax with scale and mask (eq-softmax, eq-attention): y = softmax(scale z + M) over the last
  axis, M = -inf where a boolean mask is False (or a float mask added as it is);
  backward (eq-softmax-vjp) dL/dz = scale y (g - sum_j g_j y_j).
* layer norm (eq-layernorm, eq-layernorm-vjp): x_hat = (x - mean) r, r = 1 / sqrt(var + eps),
  y = w x_hat + b; dL/dx = r (g w - mean(g w) - x_hat mean(g w x_hat)), dL/dw = sum of g x_hat,
  dL/db = sum of g, over every axis but the last.
* rotary encoding (eq-rope): each pair (a, b) -> (a cos - b sin, a sin + b cos); backward, the
  rotation by the opposite angle.
* Adam (eq-adam): m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2,
  p <- p - step m / (sqrt(v) / sqrt(1 - b2^t) + eps), step = lr / (1 - b1^t).
"""

from __future__ import annotations

import math

from .. import backend

GELU_C = math.sqrt(2.0 / math.pi)
GELU_A = 0.044715


# ============================================================================================
# GELU (tanh form) and SiLU
# ============================================================================================


def gelu_tanh(x):
    """(GELU(x), t) with t = tanh(c (x + a x^3)) (eq-gelu-tanh)."""
    xp = backend.xp_of(x)
    t = xp.tanh(GELU_C * (x + GELU_A * x * x * x))
    return 0.5 * x * (1.0 + t), t


def gelu_tanh_grad(g, x, t):
    """g dGELU/dx from x and the saved t (eq-gelu-tanh)."""
    du = GELU_C * (1.0 + 3.0 * GELU_A * x * x)
    return g * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)


def silu(x):
    """(SiLU(x), s) with s = sigmoid(x) = (1 + tanh(x / 2)) / 2 (no exp to overflow)."""
    xp = backend.xp_of(x)
    s = 0.5 * (1.0 + xp.tanh(0.5 * x))
    return x * s, s


def silu_grad(g, x, s):
    """g dSiLU/dx = g s (1 + x (1 - s)), from x and the saved s."""
    return g * s * (1.0 + x * (1.0 - s))


# ============================================================================================
# softmax over the last axis, with scale and mask
# ============================================================================================


def stable_shift(x, axes: tuple = (-1,)):
    """max of ``x`` over ``axes`` (kept as size 1), 0 where it is not finite or the axes are empty.

    Subtracting it before ``exp`` keeps every exponent <= 0, so nothing overflows
    (eq-logsumexp-stable); a row whose maximum is -inf (every key hidden) is shifted by 0, so its
    exponentials are 0 rather than NaN from -inf - (-inf).
    """
    xp = backend.xp_of(x)
    if any(x.shape[a] == 0 for a in axes):
        kept = list(x.shape)
        for a in axes:
            kept[a] = 1
        return xp.zeros(tuple(kept), dtype=x.dtype)
    shift = x.max(axis=axes, keepdims=True)
    return xp.where(xp.isfinite(shift), shift, 0).astype(x.dtype, copy=False)


def softmax(z, scale: float = 1.0, mask=None):
    """softmax(scale z + M) over the last axis (eq-softmax)."""
    xp = backend.xp_of(z)
    logits = z * scale
    if mask is not None:
        logits = xp.where(mask, logits, -math.inf) if mask.dtype == bool else logits + mask
    # the shift in z's dtype, also where a float mask of a wider dtype widened the logits
    e = xp.exp(logits - stable_shift(logits).astype(z.dtype, copy=False))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_grad(g, y, scale: float = 1.0):
    """dL/dz = scale y (g - sum_j g_j y_j) (eq-softmax-vjp), from the output y."""
    return scale * (y * (g - (g * y).sum(axis=-1, keepdims=True)))


# ============================================================================================
# layer norm over the last axis
# ============================================================================================


def layer_norm_statistics(x, eps: float):
    """(mean, x - mean, r) over the last axis, r = 1 / sqrt(var + eps) (eq-layernorm). The
    variance is taken from the centred values (two passes), so a large common offset cannot
    cancel."""
    xp = backend.xp_of(x)
    mean = x.mean(axis=-1, keepdims=True)
    centered = x - mean
    rstd = 1.0 / xp.sqrt((centered * centered).mean(axis=-1, keepdims=True) + eps)
    return mean, centered, rstd


def layer_norm(x, weight, bias, eps: float):
    """(y, x_hat, r) of eq-layernorm; r has a size-1 last axis, ``weight`` and ``bias`` may be
    None."""
    _, centered, rstd = layer_norm_statistics(x, eps)
    x_hat = centered * rstd
    y = x_hat if weight is None else x_hat * weight
    return (y if bias is None else y + bias), x_hat, rstd


def layer_norm_grad(g, x_hat, rstd, weight, needs=(True, True, True)):
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


# ============================================================================================
# rotary position encoding
# ============================================================================================


def split_pairs(x):
    """(a, b): views of the first and the second entry of each consecutive pair of x's last
    axis (a copy where ``x`` cannot be viewed so)."""
    pairs = x.reshape(*x.shape[:-1], x.shape[-1] // 2, 2)
    return pairs[..., 0], pairs[..., 1]


def rotate_pairs(x, cos, sin):
    """Each consecutive pair (a, b) of x's last axis rotated by its angle:
    (a cos - b sin, a sin + b cos) (eq-rope); ``cos`` and ``sin`` broadcast against the pairs."""
    xp = backend.xp_of(x)
    a, b = split_pairs(x)
    return xp.stack([a * cos - b * sin, a * sin + b * cos], axis=-1).reshape(x.shape)


# ============================================================================================
# Adam
# ============================================================================================


def adam_step(
    p, g, m, v, step_size: float, beta1: float, beta2: float, eps: float, correction2: float
) -> None:
    """One Adam update of ``p``, ``m`` and ``v`` in place (eq-adam); ``step_size`` =
    lr / (1 - b1^t), ``correction2`` = 1 / sqrt(1 - b2^t)."""
    xp = backend.xp_of(p)
    m *= beta1
    m += (1.0 - beta1) * g
    v *= beta2
    v += (1.0 - beta2) * (g * g)
    p -= step_size * (m / (xp.sqrt(v) * correction2 + eps))
