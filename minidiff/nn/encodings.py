"""Position and time encodings.

``timestep_embedding`` maps a diffusion time to a vector of sines and cosines at geometrically
spaced frequencies (eq-timestep-embedding). Convention: for width d (even) and half = d / 2,

    freq_k = max_period^(-k / half),  k = 0..half-1,
    emb(t) = [cos(t freq_0), ..., cos(t freq_{half-1}), sin(t freq_0), ..., sin(t freq_{half-1})],

cosines first, as in the DDPM/ADM code bases; ``max_period`` = 10000 as in the Transformer.
Times may be integers (diffusion steps) or floats (flow matching, scaled by the caller).
"""

from __future__ import annotations

import math

import numpy

from .. import backend
from ..autograd.tensor import Tensor


def timestep_embedding(t, dim: int, max_period: float = 10000.0, dtype=None) -> Tensor:
    """Sinusoidal embedding of times ``t`` (shape (B,)) as a (B, dim) tensor (no gradient)."""
    if dim % 2:
        raise ValueError(f"timestep_embedding needs an even width, got {dim}")
    t = t.data if isinstance(t, Tensor) else t
    xp = backend.xp_of(t) if hasattr(t, "shape") else numpy
    t = xp.asarray(t)
    dtype = dtype or backend.DEFAULT_FLOAT
    half = dim // 2
    frequencies = xp.exp(-math.log(max_period) * xp.arange(half, dtype=dtype) / half)
    angles = t.astype(dtype)[:, None] * frequencies[None, :]
    return Tensor(
        xp.concatenate([xp.cos(angles), xp.sin(angles)], axis=-1),
        dtype=dtype,
        device=backend.device_of(angles),
    )
