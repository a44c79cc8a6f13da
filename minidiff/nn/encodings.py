"""Position and time encodings.

Positions: fixed sines and cosines in 1, 2 or 3 axes (eq-sincos), learned tables, and rotary
encodings (RoPE) over (t, i, j) (eq-rope). Token order everywhere is row-major over
(t, i, j): the frame index varies slowest, the column fastest, as patchify produces them.

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

from .. import backend, kernels
from ..autograd.tensor import Tensor, as_floating, unwrap
from ..errors import ShapeError


def timestep_embedding(t, dim: int, max_period: float = 10000.0, dtype=None) -> Tensor:
    """Sinusoidal embedding of times ``t`` (shape (B,), or any shape S) as a (B, dim) (or
    (*S, dim)) tensor (no gradient)."""
    if dim % 2:
        raise ValueError(f"timestep_embedding needs an even width, got {dim}")
    t = unwrap(t)
    xp = backend.xp_of(t) if hasattr(t, "shape") else numpy
    t = xp.asarray(t)
    dtype = dtype or backend.DEFAULT_FLOAT
    half = dim // 2
    frequencies = xp.exp(-math.log(max_period) * xp.arange(half, dtype=dtype) / half)
    angles = t.astype(dtype)[..., None] * frequencies
    return Tensor(
        xp.concatenate([xp.cos(angles), xp.sin(angles)], axis=-1),
        dtype=dtype,
        device=backend.device_of(angles),
    )


def grid_positions(frames: int, height: int, width: int):
    """The (t, i, j) position of every token, shape (frames * height * width, 3), in token
    order (t slowest, j fastest), as a NumPy int array."""
    t, i, j = numpy.meshgrid(
        numpy.arange(frames), numpy.arange(height), numpy.arange(width), indexing="ij"
    )
    return numpy.stack([t.ravel(), i.ravel(), j.ravel()], axis=1)


def sincos_1d(positions, dim: int, max_period: float = 10000.0) -> numpy.ndarray:
    """(eq-sincos): for position p and k = 0..dim/2-1, w_k = max_period^(-2k / dim),
    emb(p) = [sin(p w_0), ..., sin(p w_{dim/2-1}), cos(p w_0), ..., cos(p w_{dim/2-1})].

    Then <emb(p), emb(q)> = sum_k cos(w_k (p - q)) depends only on the offset p - q.
    Returns float64 (N, dim) on the host; models cast it once to their dtype and device.
    """
    if dim % 2:
        raise ValueError(f"sincos_1d needs an even width, got {dim}")
    positions = numpy.asarray(positions, dtype=numpy.float64)
    frequencies = max_period ** (-numpy.arange(dim // 2, dtype=numpy.float64) * 2.0 / dim)
    angles = positions[:, None] * frequencies[None]
    return numpy.concatenate([numpy.sin(angles), numpy.cos(angles)], axis=1)


def split_width(dim: int, time_fraction: float = 0.25) -> tuple[int, int, int]:
    """How a width is shared by the axes (t, i, j): about ``time_fraction`` to time (an even
    number, at least 2 when the fraction is positive), and the rest to rows and columns, split
    as evenly as whole sine-cosine pairs allow (rows get the smaller half when the pairs are
    odd), e.g. 64 -> (16, 24, 24), 24 -> (6, 8, 10)."""
    time = 2 * max(1, round(dim * time_fraction / 2)) if time_fraction > 0 else 0
    space = (dim - time) // 4 * 2
    row, column = space, dim - time - space
    if min(row, column) <= 0 or row % 2 or column % 2 or time % 2:
        raise ValueError(
            f"cannot split width {dim} into even parts for (t, i, j) with "
            f"time_fraction={time_fraction}"
        )
    return time, row, column


def sincos_3d(
    frames: int,
    height: int,
    width: int,
    dim: int,
    time_fraction: float = 0.25,
    max_period: float = 10000.0,
) -> numpy.ndarray:
    """P_st(t, i, j) = [sincos(t), sincos(i), sincos(j)] with the width split by
    :func:`split_width` (eq-sincos-3d); (frames * height * width, dim), in token order.
    With ``time_fraction=0`` the time axis gets no share (use it for single images)."""
    d_t, d_i, d_j = split_width(dim, time_fraction)
    positions = grid_positions(frames, height, width)
    parts = [
        sincos_1d(positions[:, 0], d_t, max_period) if d_t else None,
        sincos_1d(positions[:, 1], d_i, max_period),
        sincos_1d(positions[:, 2], d_j, max_period),
    ]
    return numpy.concatenate([p for p in parts if p is not None], axis=1)


def sincos_2d(height: int, width: int, dim: int, max_period: float = 10000.0) -> numpy.ndarray:
    """ViT's fixed 2-D encoding: half the width for rows, half for columns."""
    if dim % 4:
        raise ValueError(f"sincos_2d needs a width divisible by 4, got {dim}")
    positions = grid_positions(1, height, width)
    return numpy.concatenate(
        [
            sincos_1d(positions[:, 1], dim // 2, max_period),
            sincos_1d(positions[:, 2], dim // 2, max_period),
        ],
        axis=1,
    )


MOTION_PAIRS = 4  # rotary pairs of rope_3d's motion share: rows and columns, each slope's sign


def rope_3d(
    frames: int,
    height: int,
    width: int,
    head_dim: int,
    time_fraction: float = 0.25,
    max_period: float = 10000.0,
    dtype=None,
    device=None,
    motion_slope: float = 0.0,
):
    """Rotary tables for (t, i, j) (eq-rope): the head dimension is split across the three
    axes (:func:`split_width`); each pair (x_{2k}, x_{2k+1}) of an axis' share is rotated by
    the angle pos_axis * w_k. Returns (cos, sin), each (N, head_dim / 2), for ``apply_rope``.

    With ``motion_slope`` s > 0 (tokens per frame), the first ``MOTION_PAIRS`` pairs are
    oblique instead (eq-rope-motion): rotated by i - s t, i + s t, j - s t and j + s t. A
    score's term from the pair of i - s t depends on (i - i') - s (t - t'), so it is the same all
    along the line that a thing moving down at s tokens per frame draws in (t, i): a query can
    look along a motion at every frame offset at once, and pick its sign by which pairs it
    weighs. On the axes alone a score is a sum of a term in the frame offset and terms in the
    row and column offsets, which cannot follow a line through (t, i). The other pairs are
    split across the axes as without a slope."""
    motion = 2 * MOTION_PAIRS if motion_slope > 0 else 0
    d_t, d_i, d_j = split_width(head_dim - motion, time_fraction)
    positions = grid_positions(frames, height, width).astype(numpy.float64)
    angles = []
    if motion:
        t = positions[:, 0:1]
        angles.append(
            numpy.concatenate(
                [
                    positions[:, axis : axis + 1] + sign * motion_slope * t
                    for axis in (1, 2)
                    for sign in (-1.0, 1.0)
                ],
                axis=1,
            )
        )
    for axis, width_axis in zip(range(3), (d_t, d_i, d_j)):
        if width_axis:
            frequencies = max_period ** (-numpy.arange(width_axis // 2) * 2.0 / width_axis)
            angles.append(positions[:, axis : axis + 1] * frequencies[None])
    angles = numpy.concatenate(angles, axis=1)
    dtype = dtype or backend.DEFAULT_FLOAT
    device = device or backend.default_device()
    return (
        backend.to_device(numpy.cos(angles).astype(dtype), device),
        backend.to_device(numpy.sin(angles).astype(dtype), device),
    )


def apply_rope(x: Tensor, cos, sin) -> Tensor:
    """Rotate consecutive pairs of ``x``'s last axis: (a, b) -> (a cos - b sin, a sin + b cos).

    A rotation by angle p w applied to a query at p and a key at q leaves their dot product a
    function of (p - q) w only: attention scores see relative positions (eq-rope)."""
    if x.shape[-1] % 2 or cos.shape != sin.shape or cos.shape[-1] != x.shape[-1] // 2:
        raise ShapeError(
            f"apply_rope: x {x.shape} needs an even last axis and cos, sin of equal shapes "
            f"ending in {x.shape[-1] // 2}, got {cos.shape} and {sin.shape}"
        )
    x = as_floating(x)
    cos, sin = (unwrap(t).astype(x.dtype, copy=False) for t in (cos, sin))

    def backward(g):
        return (kernels.rotate_pairs(g, cos, -sin),)

    return Tensor.from_op(kernels.rotate_pairs(x.data, cos, sin), (x,), backward, "rope")
