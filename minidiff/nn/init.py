"""Weight initializers. Each fills a parameter in place from its device's seeded generator.

For a weight of shape (fan_in, fan_out) — minidiff's Linear computes x @ W — the variances are:

* Xavier/Glorot: Var = 2 / (fan_in + fan_out), keeping activations and gradients of a linear
  network at a constant scale in both directions;
* Kaiming/He: Var = gain^2 / fan_in (gain^2 = 2 for ReLU), keeping the forward scale constant
  through rectifiers;
* truncated normal: N(0, std^2) redrawn outside [a, b] (ViT-style init, std 0.02).

A uniform U(-l, l) has variance l^2 / 3, so l = sqrt(3 Var).
"""

from __future__ import annotations

import math

from .. import backend
from ..autograd.tensor import Tensor


def _fans(t: Tensor) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(f"fan-in/fan-out need a tensor of at least 2 dimensions, got {t.shape}")
    receptive = math.prod(t.shape[:-2])
    return t.shape[-2] * receptive, t.shape[-1] * receptive


def _fill(t: Tensor, draw) -> Tensor:
    rng = backend.generator(t.device)
    t.data[...] = draw(rng, t.shape).astype(t.dtype)
    return t


def uniform_(t: Tensor, low: float, high: float) -> Tensor:
    return _fill(t, lambda rng, shape: low + (high - low) * rng.random(shape))


def normal_(t: Tensor, std: float = 1.0) -> Tensor:
    return _fill(t, lambda rng, shape: rng.standard_normal(shape) * std)


def zeros_(t: Tensor) -> Tensor:
    """Zero-init: for residual branches that should start as the identity."""
    t.data[...] = 0
    return t


def ones_(t: Tensor) -> Tensor:
    t.data[...] = 1
    return t


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    fan_in, fan_out = _fans(t)
    limit = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -limit, limit)


def xavier_normal_(t: Tensor, gain: float = 1.0) -> Tensor:
    fan_in, fan_out = _fans(t)
    return normal_(t, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def kaiming_uniform_(t: Tensor, gain: float = math.sqrt(2.0)) -> Tensor:
    fan_in, _ = _fans(t)
    return uniform_(t, -gain * math.sqrt(3.0 / fan_in), gain * math.sqrt(3.0 / fan_in))


def kaiming_normal_(t: Tensor, gain: float = math.sqrt(2.0)) -> Tensor:
    fan_in, _ = _fans(t)
    return normal_(t, gain / math.sqrt(fan_in))


def trunc_normal_(t: Tensor, std: float = 0.02, a: float = -2.0, b: float = 2.0) -> Tensor:
    """N(0, std^2) restricted to [a std, b std]: out-of-range draws are drawn again."""
    rng = backend.generator(t.device)
    xp = backend.xp_of(t.data)
    values = rng.standard_normal(t.shape)
    outside = (values < a) | (values > b)
    while bool(outside.any()):
        values = xp.where(outside, rng.standard_normal(t.shape), values)
        outside = (values < a) | (values > b)
    t.data[...] = (values * std).astype(t.dtype)
    return t
