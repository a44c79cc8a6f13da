"""Hypothesis strategies for arrays and shapes, shared by the tests and the exercise notebooks.

Values are drawn as float64 NumPy arrays on the host; :func:`to_tensor` moves them to the default
device (``MINIDIFF_DEVICE``), so the same property runs on NumPy and on CuPy.
"""

from __future__ import annotations

import numpy
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ..autograd.tensor import Tensor

MAX_SIDE = 4
MAX_DIMS = 3


def shapes(
    min_dims: int = 0, max_dims: int = MAX_DIMS, min_side: int = 0, max_side: int = MAX_SIDE
):
    """Array shapes, by default including 0-d and 0-size ones."""
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def floats(low: float = -3.0, high: float = 3.0):
    """Finite float64 values in [low, high]."""
    return st.floats(low, high, allow_nan=False, allow_infinity=False, width=64)


def arrays(shape, low: float = -3.0, high: float = 3.0):
    """float64 arrays of ``shape`` (a shape or a strategy of shapes) with values in [low, high]."""
    return hnp.arrays(numpy.float64, shape, elements=floats(low, high))


def broadcastable_shapes(num_shapes: int = 2, min_side: int = 0):
    """Tuples of shapes that broadcast together (``mutually_broadcastable_shapes``)."""
    return hnp.mutually_broadcastable_shapes(
        num_shapes=num_shapes, min_dims=0, max_dims=MAX_DIMS, min_side=min_side, max_side=MAX_SIDE
    ).map(lambda bs: bs.input_shapes)


@st.composite
def axis_and_keepdims(draw, ndim: int, allow_none: bool = True, allow_tuple: bool = True):
    """An ``axis`` argument valid for ``ndim`` axes (None, an int, or a tuple) and a keepdims."""
    choices = []
    if allow_none:
        choices.append(st.none())
    if ndim:
        choices.append(st.integers(-ndim, ndim - 1))
        if allow_tuple:
            choices.append(
                st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True).map(
                    tuple
                )
            )
    axis = draw(st.one_of(choices)) if choices else None
    return axis, draw(st.booleans())


def to_tensor(array, requires_grad: bool = False) -> Tensor:
    """A float64 tensor on the default device holding ``array``."""
    return Tensor(array, requires_grad=requires_grad, dtype=numpy.float64)


def distinct(values, gap: float = 1e-3) -> bool:
    """True if no two of ``values`` are closer than ``gap`` (ties make max/min non-smooth)."""
    flat = numpy.sort(numpy.asarray(values, dtype=numpy.float64).ravel())
    return bool(flat.size < 2 or numpy.diff(flat).min() > gap)


def away_from(values, points, gap: float = 1e-3) -> bool:
    """True if every value is at least ``gap`` from each of ``points`` (kinks of relu, clip...)."""
    values = numpy.asarray(values, dtype=numpy.float64)
    return all(bool((numpy.abs(values - p) > gap).all()) for p in points)
