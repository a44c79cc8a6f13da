"""Functions of tensors that layers are made of: activations, normalization, dropout, losses.

``layer_norm`` and ``cross_entropy`` are fused ops: one forward and one hand-derived backward
each (book eqs. ``eq-layernorm-vjp`` and ``eq-softmax-cross-entropy-vjp``), cheaper than the
chain of elementary ops they replace and checked against central differences the same way.
"""

from __future__ import annotations

from .. import backend, kernels
from ..autograd import ops
from ..autograd.ops import gelu, log_softmax, logsumexp, silu, softmax
from ..autograd.tensor import Tensor, as_floating, as_tensor, coerce, unwrap
from ..errors import DTypeError, ShapeError
from ..kernels.plain import stable_shift

__all__ = [
    "cross_entropy",
    "dropout",
    "gelu",
    "layer_norm",
    "log_softmax",
    "logsumexp",
    "mse_loss",
    "silu",
    "softmax",
]


def layer_norm(
    x: Tensor, weight: Tensor | None = None, bias: Tensor | None = None, eps: float = 1e-5
) -> Tensor:
    """Normalize the last axis to zero mean and unit variance, then scale and shift.

    Implements (eq-layernorm): mu = mean(x), var = mean((x - mu)^2) computed in two passes (so a
    large common offset cannot cancel catastrophically), x_hat = (x - mu) / sqrt(var + eps),
    y = weight * x_hat + bias.

    Backward (eq-layernorm-vjp), with gh = g * weight and means over the last axis:
    dL/dx = (gh - mean(gh) - x_hat mean(gh x_hat)) / sqrt(var + eps);
    dL/dweight = sum of g x_hat, dL/dbias = sum of g, over every axis but the last.
    """
    x = as_floating(x)
    d = x.shape[-1] if x.ndim else 0
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != (d,):
            raise ShapeError(f"layer_norm: {name} has shape {p.shape}, expected ({d},)")
    weight = coerce(weight, x, "layer_norm") if weight is not None else None
    bias = coerce(bias, x, "layer_norm") if bias is not None else None
    out, x_hat, rstd = kernels.layer_norm(
        x.data,
        None if weight is None else weight.data,
        None if bias is None else bias.data,
        eps,
    )
    parents = tuple(t for t in (x, weight, bias) if t is not None)

    def backward(g):
        dx, dw, db = kernels.layer_norm_grad(
            g,
            x_hat,
            rstd,
            None if weight is None else weight.data,
            (
                x.requires_grad,
                weight is not None and weight.requires_grad,
                bias is not None and bias.requires_grad,
            ),
        )
        return (dx,) + ((dw,) if weight is not None else ()) + ((db,) if bias is not None else ())

    return Tensor.from_op(out, parents, backward, "layer_norm")


def dropout(x: Tensor, p: float, training: bool = True, generator=None) -> Tensor:
    """Zero each entry with probability ``p`` and scale the rest by 1 / (1 - p), so that the
    expectation is unchanged; the identity when not training or ``p`` = 0."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    x = as_tensor(x)
    if not training or p == 0.0:
        return x
    rng = generator or backend.generator(x.device)
    keep = rng.random(x.shape, dtype=x.dtype) >= p
    mask = keep * (1.0 / (1.0 - p))
    return ops.mul(x, Tensor(mask.astype(x.dtype), device=x.device))


def mse_loss(prediction: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    """Squared error (prediction - target)^2, optionally times per-element ``weight``
    (broadcast against it), then averaged (``"mean"``), summed (``"sum"``) or kept (``"none"``).

    With weights, ``"mean"`` divides by the number of elements, not by the sum of the weights:
    the weights say how much each element counts, the mean keeps the scale of the plain loss.
    """
    target = coerce(target, prediction, "mse_loss")
    if prediction.shape != target.shape:
        raise ShapeError(
            f"mse_loss: prediction {prediction.shape} and target {target.shape} "
            "must have the same shape"
        )
    error = prediction - target
    loss = error * error
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "mse_loss")


def cross_entropy(logits: Tensor, targets, reduction: str = "mean") -> Tensor:
    """-log softmax(logits)[target] for class-index targets, over the last axis of ``logits``.

    Implements (eq-softmax-cross-entropy): loss_n = logsumexp(z_n) - z_n[y_n], computed stably
    with the softmax shift of ``minidiff/kernels/plain.py`` (``stable_shift``): a row whose
    maximum is infinite is shifted by 0, so a class beside a +inf logit gets loss +inf.
    Its backward (eq-softmax-cross-entropy-vjp) is softmax(z_n) - onehot(y_n), times the
    incoming gradient: one fused op instead of log_softmax followed by indexing.
    """
    logits = as_floating(logits)
    xp = backend.xp_of(logits.data)
    targets = xp.asarray(unwrap(targets))
    if targets.dtype.kind not in "iu":
        raise DTypeError(
            f"cross_entropy: targets must be class indices (integers), got dtype {targets.dtype}"
        )
    if logits.shape[:-1] != targets.shape:
        raise ShapeError(
            f"cross_entropy: logits {logits.shape} need targets of shape "
            f"{logits.shape[:-1]}, got {targets.shape}"
        )
    classes = logits.shape[-1]
    if targets.size and (int(targets.min()) < 0 or int(targets.max()) >= classes):
        raise ShapeError(
            f"cross_entropy: target classes must be in [0, {classes}), got range "
            f"[{int(targets.min())}, {int(targets.max())}]"
        )
    shifted = logits.data - stable_shift(logits.data)
    log_norm = xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
    picked = xp.take_along_axis(shifted, targets[..., None], axis=-1)
    out = (log_norm - picked)[..., 0]

    def backward(g):
        onehot = xp.arange(classes) == targets[..., None]
        return ((xp.exp(shifted - log_norm) - onehot) * g[..., None],)

    loss = Tensor.from_op(out, (logits,), backward, "cross_entropy")
    return _reduce(loss, reduction, "cross_entropy")


def _reduce(loss: Tensor, reduction: str, op: str) -> Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"{op}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")
