"""Refuse solutions that call the library function their exercise rebuilds.

An exercise asks for, say, the posterior of the forward chain; ``minidiff.diffusion.process``
already has it, and a solution that calls it would pass every property without teaching
anything. While a check runs, :func:`forbidden` replaces each named library function by a
tripwire:

* in its defining module (or class, for a method such as ``minidiff.optim.AdamW.step``);
* in every other loaded module that holds the same object (the ``minidiff`` namespace, a
  package's ``__init__``, a notebook's ``from ... import``), except the check modules of this
  package, which keep the originals for their reference computations.

The tripwire looks at who called it. Called on behalf of a check (from ``minidiff.checks``,
possibly through other library functions), it runs the original, so the checks' own references
keep working; called from anywhere else (the student's code, or library code the student's code
called) it records the call and raises :class:`Delegated`. Everything is restored when the check
ends, also on error.

>>> import minidiff.diffusion.process as process
>>> original = process.q_sample
>>> with forbidden("6.1", ("minidiff.diffusion.process.q_sample",)) as calls:
...     process.q_sample is original
False
>>> process.q_sample is original
True
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
import sys
from collections.abc import Iterator

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_CHECKS = os.path.dirname(os.path.abspath(__file__)) + os.sep


class Delegated(Exception):
    """The student's code called a library function its exercise must not use."""


def resolve(qualified: str):
    """The owner (module or class), attribute name and object that ``qualified`` names.

    ``qualified`` is a dotted path starting with an importable module, then attributes:
    ``minidiff.diffusion.process.q_posterior`` or ``minidiff.optim.AdamW.step``.
    """
    parts = qualified.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            owner = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:-1]:
                owner = getattr(owner, name)
            return owner, parts[-1], getattr(owner, parts[-1])
        except AttributeError:
            break
    raise ValueError(
        f"cannot forbid {qualified!r}: it does not name an attribute of an importable module "
        "(write the full dotted path, e.g. 'minidiff.diffusion.process.q_posterior')"
    )


def _on_behalf_of_a_check(frame) -> bool:
    """True if the nearest caller outside minidiff's library code is a check module."""
    while frame is not None:
        path = os.path.abspath(frame.f_code.co_filename)
        if path.startswith(_CHECKS):
            return True
        if not path.startswith(_PACKAGE):
            return False
        frame = frame.f_back
    return False


def _tripwire(original, message: str, calls: list):
    @functools.wraps(original)
    def tripwire(*args, **kwargs):
        if _on_behalf_of_a_check(sys._getframe(1)):
            return original(*args, **kwargs)
        calls.append(message)
        raise Delegated(message)

    return tripwire


def _holders(original) -> Iterator[tuple[object, str]]:
    """Every loaded module outside ``minidiff.checks`` with a name bound to ``original``."""
    for module_name, module in list(sys.modules.items()):
        if module is None or module_name.startswith(__package__):
            continue
        names = getattr(module, "__dict__", None)
        if not isinstance(names, dict):
            continue
        for name, value in list(names.items()):
            if value is original:
                yield module, name


def refusal(exercise: str, qualified: str) -> str:
    """The message a delegating solution gets."""
    return (
        f"Exercise {exercise} must be written without calling {qualified}, the library function "
        "it re-derives: compute it yourself from what you derived (the library is what the "
        "check compares you with, so calling it proves nothing)"
    )


@contextlib.contextmanager
def forbidden(exercise: str, names: tuple[str, ...]) -> Iterator[list[str]]:
    """Within the block, calling any of ``names`` from outside the checks raises
    :class:`Delegated`; yields the list of refusal messages of the calls made so far."""
    calls: list[str] = []
    patched: list[tuple[object, str, object]] = []
    try:
        for qualified in names:
            owner, attribute, original = resolve(qualified)
            wire = _tripwire(original, refusal(exercise, qualified), calls)
            places = {(id(owner), attribute): (owner, attribute)}
            if not isinstance(owner, type):
                places.update(((id(m), n), (m, n)) for m, n in _holders(original))
            for holder, name in places.values():
                patched.append((holder, name, original))
                setattr(holder, name, wire)
        yield calls
    finally:
        for holder, name, original in reversed(patched):
            setattr(holder, name, original)
