"""Checkpoints: ``md.save(path, model=..., optimizer=..., step=...)`` and ``md.load(path)``.

Everything goes into one ``.npz`` file without pickle: arrays are stored as arrays (moved to the
host, so a checkpoint written on a GPU loads on a CPU), and everything else (numbers, strings,
lists, nested dicts) as one JSON document that refers to the arrays by key. The file is written
to a temporary name in the same folder and renamed into place, so an interrupted save never
leaves a half-written checkpoint under the real name: the previous one stays as it was. The
temporary name holds the writer's process id (``checkpoint.npz.<pid>.<random>.tmp``); one left
by a process that was killed before it could remove it is removed by the next :func:`save` or
:func:`load` of the same path.
"""

from __future__ import annotations

import glob
import json
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy

from . import backend, runlock

FORMAT = "minidiff-checkpoint/1"
_META = "__minidiff__"


class CheckpointError(ValueError):
    """A file that is not a readable minidiff checkpoint (truncated, foreign, corrupted)."""


def _state_of(value):
    """What to save for ``value``: its ``state_dict()`` if it has one, else the value itself."""
    return value.state_dict() if hasattr(value, "state_dict") else value


def _flatten(value, arrays: dict, path: str):
    """JSON-able skeleton of ``value``; its arrays go into ``arrays`` under their path."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        arrays[path] = _plain_array(value, path)
        return {"__array__": path}
    if isinstance(value, numpy.generic):
        return value.item()
    if isinstance(value, dict):
        _check_keys(value, path)
        return {"__dict__": {k: _flatten(v, arrays, f"{path}/{k}") for k, v in value.items()}}
    if isinstance(value, list | tuple):
        return [_flatten(v, arrays, f"{path}/{i}") for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    raise TypeError(
        f"save: cannot store {path or 'value'} of type {type(value).__name__}; "
        "give arrays, numbers, strings, lists, dicts or objects with state_dict()"
    )


def _plain_array(value, path: str) -> numpy.ndarray:
    """``value`` as a host array that :func:`load` can read without pickle; an array of Python
    objects is a TypeError naming it."""
    array = backend.to_numpy(value)
    if array.dtype.hasobject:
        raise TypeError(
            f"save: {path} is an array of Python objects (dtype {array.dtype}), which only "
            "pickle could store and load does not unpickle; give a numeric, bool or string "
            "array, or a list"
        )
    return array


def _check_keys(value: dict, path: str) -> None:
    """Keys become parts of the arrays' paths: they must be strings without "/" (which would
    collide with a nested dict's), and the top level must not use the reserved name."""
    where = path or "save's arguments"
    if not all(isinstance(k, str) for k in value):
        raise TypeError(f"save: {where} has non-string keys {list(value)[:5]}")
    slashed = [k for k in value if "/" in k]
    if slashed:
        raise ValueError(
            f"save: {where} has keys containing '/' ({', '.join(map(repr, slashed[:5]))}), "
            "which would collide with nested dicts in the file; rename them (e.g. '/' -> '.')"
        )
    if not path and _META in value:
        raise ValueError(f"save: {_META!r} is reserved for the checkpoint's own index")


def _unflatten(skeleton, arrays):
    if isinstance(skeleton, dict) and "__array__" in skeleton:
        return arrays[skeleton["__array__"]]
    if isinstance(skeleton, dict):
        return {k: _unflatten(v, arrays) for k, v in skeleton["__dict__"].items()}
    if isinstance(skeleton, list):
        return [_unflatten(v, arrays) for v in skeleton]
    return skeleton


def save(path, **objects) -> Path:
    """Write ``objects`` (modules, optimizers, EMA, schedules: their ``state_dict()``; arrays,
    numbers, strings, dicts) to ``path`` atomically. ``rng=True`` stores the generators' state.
    """
    path = Path(path)
    if objects.pop("rng", False):
        objects["rng"] = backend.get_rng_state()
    arrays: dict = {}
    _check_keys(objects, "")
    skeleton = {name: _flatten(_state_of(value), arrays, name) for name, value in objects.items()}
    meta = json.dumps({"format": FORMAT, "objects": skeleton})
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    handle, temporary = tempfile.mkstemp(
        prefix=f"{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    try:
        with os.fdopen(handle, "wb") as file:
            numpy.savez(file, **{_META: numpy.array(meta)}, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def remove_stale_temporaries(path) -> list[Path]:
    """Remove the temporary files that :func:`save` left next to ``path`` in processes of this
    machine that are no longer running (killed between writing and renaming); returns them.

    Only names of the form ``<path's name>.<pid>.<random>.tmp`` are touched, and only when
    process ``pid`` is gone: a save under way in another process keeps its file. One that
    cannot be removed (a read-only folder) is left.
    """
    path = Path(path)
    pattern = re.compile(re.escape(path.name) + r"\.(\d+)\.[^.]+\.tmp")
    removed = []
    for candidate in sorted(path.parent.glob(glob.escape(path.name) + ".*.tmp")):
        match = pattern.fullmatch(candidate.name)
        if match is None or runlock.process_running(int(match[1])):
            continue
        try:
            candidate.unlink()
        except OSError:  # removed by another process meanwhile, or not ours to remove
            continue
        removed.append(candidate)
    if removed:
        print(
            f"removed {len(removed)} temporary files that interrupted saves of {path} left",
            file=sys.stderr,
        )
    return removed


def load(path) -> dict:
    """Read a checkpoint written by :func:`save`: a dict of the saved objects, arrays as NumPy
    arrays on the host (``load_state_dict`` moves them to each parameter's device).

    A checkpoint saved with ``rng=True`` has an ``"rng"`` entry: pass it to
    ``md.backend.set_rng_state`` to continue the same random streams.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    remove_stale_temporaries(path)
    try:
        with numpy.load(path, allow_pickle=False) as data:
            if _META not in data.files:
                raise CheckpointError(
                    f"{path} is an .npz file but not a minidiff checkpoint (no {_META} entry)"
                )
            meta = json.loads(str(data[_META]))
            arrays = {key: data[key] for key in data.files if key != _META}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as error:
        if isinstance(error, CheckpointError):
            raise
        raise CheckpointError(
            f"{path} is not a readable minidiff checkpoint (truncated or not an .npz file): {error}"
        ) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: unknown checkpoint format {meta.get('format')!r}")
    return {name: _unflatten(value, arrays) for name, value in meta["objects"].items()}
