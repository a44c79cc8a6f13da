"""Configurations are dataclasses; this builds one from a plain dict (a checkpoint's, a file's)
and checks settings where they enter: each check returns a problem (a sentence naming the
setting, the value and what is allowed) or None, and :func:`refuse` raises them all at once."""

from __future__ import annotations

import argparse
import math
import numbers


def from_dict(cls, values: dict):
    """``cls(**values)``, but a key that ``cls`` does not have is an error naming it and the
    known keys, instead of Python's bare "unexpected keyword argument"."""
    known = set(cls.__dataclass_fields__)
    unknown = set(values) - known
    if unknown:
        raise ValueError(
            f"{cls.__name__}: unknown key(s) {sorted(unknown)}; known: {sorted(known)}"
        )
    return cls(**values)


def integer(name: str, value, minimum: int = 1, note: str = "") -> str | None:
    """Unless ``value`` is an integer >= ``minimum`` (not a bool, not 2.0): the problem."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= minimum:
        return None
    allowed = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
    return f"{name} must be {allowed}{note}, got {value!r}"


def number(
    name: str, value, low: float, high: float = math.inf, *, open_low=False, open_high=True, note=""
) -> str | None:
    """Unless ``value`` is a finite real number in the interval from ``low`` to ``high``
    (``open_low`` / ``open_high`` leave an end out): the problem."""
    real = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if real and math.isfinite(value):
        above = value > low if open_low else value >= low
        below = value < high if open_high else value <= high
        if above and below:
            return None
    interval = f"{'(' if open_low else '['}{low}, {high}{')' if open_high else ']'}"
    return f"{name} must be in {interval}{note}, got {value!r}"


def refuse(owner: str, problems) -> None:
    """Raise one ValueError, prefixed by ``owner``, listing every problem that is not None."""
    problems = [problem for problem in problems if problem]
    if problems:
        raise ValueError(f"{owner}: " + "; ".join(problems))


def positive_int_arg(text: str) -> int:
    """An argparse ``type``: a positive integer, or the parser's error saying so."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def positive_float_arg(text: str) -> float:
    """An argparse ``type``: a finite positive number, or the parser's error saying so."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if number("", value, 0.0, open_low=True):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value
