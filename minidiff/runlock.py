"""One writer per run folder: a run holds ``run.lock`` in its folder while it writes there.

Two runs writing the same folder would each finish cleanly while the last save replaced the
other's checkpoint, losses and snapshots. So a run first creates ``run.lock`` (atomically, with
``O_CREAT | O_EXCL``: of two runs starting at once exactly one succeeds) holding its process id,
host and start time, and removes it when it stops, however it stops. A second run is refused
with a :class:`~minidiff.errors.RunLockError` naming the folder and the holder. A lock left by a
run that died without removing it (its process is gone on this host) is taken over, with a
message. Holding is re-entrant within a process: code that holds a folder can call code that
holds it again (the pipeline holds it around :meth:`Trainer.run`, which holds it too).
In a data-parallel job (:mod:`minidiff.distributed`) rank 0 holds the folder for the job: the
other processes write nothing there and hold nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from . import distributed
from .errors import RunLockError

LOCK_NAME = "run.lock"
_held: dict[Path, int] = {}  # the folders this process holds, with how many holds are open


@contextlib.contextmanager
def hold(folder) -> Iterator[Path]:
    """Hold ``folder`` (created if missing) for the ``with`` block; yields the lock's path."""
    folder = Path(folder).resolve()
    lock = folder / LOCK_NAME
    if not distributed.world().is_root:
        yield lock
        return
    if folder not in _held:
        folder.mkdir(parents=True, exist_ok=True)
        _acquire(lock)
    _held[folder] = _held.get(folder, 0) + 1
    try:
        yield lock
    finally:
        _held[folder] -= 1
        if not _held[folder]:
            del _held[folder]
            _release(lock)


def _acquire(lock: Path) -> None:
    """Create ``lock`` for this process, taking over a stale one; else :class:`RunLockError`."""
    if _create(lock):
        return
    holder = _read(lock)
    if not _is_stale(holder):
        raise _busy(lock, holder)
    print(
        f"taking over {lock}: the run that held it (pid {holder['pid']} on {holder['host']}) "
        "is no longer running",
        file=sys.stderr,
    )
    lock.unlink(missing_ok=True)
    if not _create(lock):  # another run took it over first
        raise _busy(lock, _read(lock))


def _create(lock: Path) -> bool:
    """Create ``lock`` holding this process's id, host and start time; False if it exists."""
    try:
        handle = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        return False
    holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.ctime()}
    with os.fdopen(handle, "w") as file:
        json.dump(holder, file)
    return True


def _read(lock: Path) -> dict | None:
    """The holder recorded in ``lock``; None if it is gone, empty or unreadable."""
    try:
        holder = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) and "pid" in holder else None


def _is_stale(holder: dict | None) -> bool:
    """Whether ``holder`` is a process of this host that is no longer running."""
    if holder is None or holder.get("host") != socket.gethostname():
        return False  # still being written, foreign or from another machine: not ours to judge
    return not process_running(int(holder["pid"]))


def process_running(pid: int) -> bool:
    """Whether process ``pid`` of this machine is running (another user's counts)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):  # gone, or a number no process can have
        return False
    except PermissionError:
        pass  # alive, another user's
    return True


def _busy(lock: Path, holder: dict | None) -> RunLockError:
    """The error for a second writer of ``lock``'s folder."""
    who = (
        f"pid {holder['pid']} on {holder.get('host', '?')}, since {holder.get('started', '?')}"
        if holder
        else "a run whose lock file is unreadable"
    )
    return RunLockError(
        f"{lock.parent} is in use by another run ({who}): wait for it to finish, or choose "
        f"another run folder (--out). If no run is using it, remove {lock}"
    )


def _release(lock: Path) -> None:
    """Remove ``lock`` if it is still this process's (a takeover may have replaced it)."""
    holder = _read(lock)
    if holder is not None and holder.get("pid") == os.getpid():
        lock.unlink(missing_ok=True)
