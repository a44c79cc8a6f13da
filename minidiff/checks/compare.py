"""How the exercise checks read what a student's code returned and compare it with the reference.

Shared by the modules ``checks/exNN_*.py``, one per exercise notebook. Each helper either returns
the student's result as a host NumPy array or raises :class:`~minidiff.checks.grading.Mismatch`
with a message for people: what was wrong, where, and what was expected.

* :func:`show` writes an array for a failure message; :func:`host` brings a result (an array on
  any device, or a Tensor) to NumPy.
* :func:`compare` checks |got - expected| <= atol + rtol |expected| entry by entry and names the
  worst entry.
* :func:`float64_result` checks a result's type, device, shape and float64 dtype;
  :func:`as_array` and :func:`as_float64` check only its type and shape.
* :func:`unpack_results` checks that a tuple has one entry per expected result, and
  :func:`compare_vjp` checks a tuple of gradients against float64 central differences
  (eq-central-difference) of an :class:`~minidiff.checks.gradients.OpSpec`.
"""

from __future__ import annotations

import numpy

from .. import backend
from ..autograd.tensor import Tensor, unwrap
from .gradients import Case, numeric_vjp
from .grading import Mismatch

# Six significant digits show a wrong value and keep a small array on one line.
_PRINT = dict(precision=6, separator=", ", max_line_width=10_000, floatmode="maxprec")


def show(array) -> str:
    """An array for people: its values when it is small, otherwise its shape and range."""
    array = numpy.asarray(array)
    if array.size <= 24:
        text = numpy.array2string(array, **_PRINT)
    else:
        text = f"{array.size} values in [{array.min():.6g}, {array.max():.6g}]"
    return f"{text}  (shape {array.shape}, {array.dtype})"


def host(value):
    """A NumPy array from what a student returned (an array on any device, or a Tensor)."""
    value = unwrap(value)
    return backend.to_numpy(value)


def compare(what: str, got, expected, rtol: float, atol: float) -> None:
    """Raise :class:`Mismatch` unless |got - expected| <= atol + rtol |expected| everywhere."""
    if got.shape != expected.shape:
        raise Mismatch(f"{what} has shape {got.shape}, but it should have shape {expected.shape}")
    with numpy.errstate(invalid="ignore", over="ignore"):
        error = numpy.abs(got.astype(numpy.float64) - expected)
        bad = ~(error <= atol + rtol * numpy.abs(expected))
    if bad.any():
        ranked = numpy.where(bad, numpy.nan_to_num(error, nan=numpy.inf), -1.0)
        worst = numpy.unravel_index(numpy.argmax(ranked), expected.shape)
        off = (
            f"is off by {error[worst]:.3g}"
            if numpy.isfinite(error[worst])
            else f"is {got[worst]} instead of {expected[worst]:.6g}"
        )
        raise Mismatch(
            f"{what} is wrong at {bad.sum()} of {bad.size} entries; the worst, at index "
            f"{tuple(int(i) for i in worst)}, {off}\n"
            f"expected: {show(expected)}\n"
            f"got:      {show(got)}"
        )


def float64_result(what: str, got, shape: tuple, device: str) -> numpy.ndarray:
    """``got`` as a host array after checking that it is an array of ``shape``, float64, on
    ``device``; raise :class:`Mismatch` otherwise."""
    got = unwrap(got)
    if not hasattr(got, "shape") or not hasattr(got, "dtype"):
        raise Mismatch(f"{what} is a {type(got).__name__}, not an array")
    if backend.device_of(got) != device:
        raise Mismatch(
            f"{what} is on the {backend.device_of(got)}, but the inputs are on the {device}: "
            "build it with the input's array module, xp = md.backend.xp_of(x)"
        )
    if tuple(got.shape) != tuple(shape):
        raise Mismatch(f"{what} has shape {tuple(got.shape)}, but it should have shape {shape}")
    if got.dtype != numpy.float64:
        raise Mismatch(
            f"{what} has dtype {got.dtype}; from float64 inputs it must stay float64 "
            "(a float32 constant or cast loses precision)"
        )
    return host(got)


def unpack_results(returned, names: tuple) -> tuple:
    """``returned`` as a tuple of one result per name in ``names``; raise :class:`Mismatch` if
    it is not a tuple (or list) of that length."""
    if not isinstance(returned, tuple | list) or len(returned) != len(names):
        raise Mismatch(
            f"it should return {len(names)} arrays, ({', '.join(names)}), as a tuple; it "
            f"returned {type(returned).__name__}"
            + (f" of length {len(returned)}" if isinstance(returned, tuple | list) else "")
        )
    return tuple(returned)


def compare_vjp(returned, names: tuple, spec, case: Case, g, device: str) -> None:
    """Check a student's gradients (one per input, named ``grad_<name>``) against float64
    central differences of ``spec`` at ``case`` with cotangent ``g``, to 1e-6."""
    grads = unpack_results(returned, tuple(f"grad_{name}" for name in names))
    for name, like, got, want in zip(names, case.arrays, grads, numeric_vjp(spec, case, g)):
        what = f"the gradient for {name}"
        compare(what, float64_result(what, got, like.shape, device), want, 1e-6, 1e-6)


def as_array(what: str, got, shape: tuple) -> numpy.ndarray:
    """``got`` as a host array of any dtype after checking that it is an array (or a Tensor) of
    ``shape``; raise :class:`Mismatch` otherwise."""
    if not isinstance(got, Tensor) and not (hasattr(got, "shape") and hasattr(got, "dtype")):
        raise Mismatch(f"{what} is a {type(got).__name__}, not an array")
    got = host(got)
    if tuple(got.shape) != tuple(shape):
        raise Mismatch(f"{what} has shape {tuple(got.shape)}, but it should have shape {shape}")
    return got


def as_float64(what: str, got, shape: tuple) -> numpy.ndarray:
    """:func:`as_array`, converted to float64: for results whose dtype is not what is checked."""
    return numpy.asarray(as_array(what, got, shape), dtype=numpy.float64)
