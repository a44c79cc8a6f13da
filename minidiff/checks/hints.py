"""Hints for the exercise notebooks: ``hint("7.1")`` prints the next one.

Each check module of this package may define ``HINTS = {"7.1": ["a nudge", ..., "nearly the
answer"], ...}``, from the gentlest hint to the most revealing. :func:`hint` gathers them from
every module of ``minidiff.checks`` (so a new notebook's module is found without being listed
here) and remembers, per exercise, how many have been shown: each call reveals one more, and says
so when there are none left. ``hint("7.1", level=2)`` shows the second one again.
"""

from __future__ import annotations

import importlib
import pkgutil

_SHOWN: dict[str, int] = {}


def all_hints() -> dict[str, list[str]]:
    """Every exercise's hints, from the ``HINTS`` dicts of the modules of ``minidiff.checks``.

    Raises ValueError if two modules give hints for the same exercise."""
    package = importlib.import_module(__package__)
    found: dict[str, list[str]] = {}
    owner: dict[str, str] = {}
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__package__}.{info.name}")
        for exercise, hints in getattr(module, "HINTS", {}).items():
            if exercise in found:
                raise ValueError(
                    f"hints for exercise {exercise} are given twice, in {owner[exercise]} and "
                    f"{info.name}: keep them in the check module of that exercise's notebook"
                )
            found[exercise], owner[exercise] = list(hints), info.name
    return found


def _numbered(exercise: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in exercise.split("."))


def hint(exercise: str, level: int | None = None) -> str:
    """Print (and return) the next hint for ``exercise`` ("7.1"), or hint number ``level``."""
    hints = all_hints()
    if exercise not in hints:
        known = ", ".join(sorted(hints, key=_numbered))
        raise KeyError(f"no hints for exercise {exercise!r}; there are hints for: {known}")
    given = hints[exercise]
    if level is None:
        level = _SHOWN.get(exercise, 0) + 1
        if level > len(given):
            text = (
                f"No more hints for exercise {exercise}: all {len(given)} have been shown "
                f'(hint("{exercise}", level=n) shows hint n again).'
            )
            print(text)
            return text
        _SHOWN[exercise] = level
    elif not 1 <= level <= len(given):
        raise ValueError(
            f"exercise {exercise} has hints 1 to {len(given)}; level={level} is not one of them"
        )
    text = f"Hint {level} of {len(given)} for exercise {exercise}: {given[level - 1]}"
    print(text)
    return text


def reset() -> None:
    """Forget which hints have been shown: the next :func:`hint` call starts at the first."""
    _SHOWN.clear()
