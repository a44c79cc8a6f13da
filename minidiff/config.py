"""Configurations are dataclasses; this builds one from a plain dict (a checkpoint's, a file's)."""

from __future__ import annotations


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
