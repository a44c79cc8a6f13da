"""One writer per run folder: a second writer is refused with a clear error, a stale lock is
taken over, and the lock is gone however the run stops."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from minidiff import runlock
from minidiff.errors import RunLockError

ROOT = Path(__file__).resolve().parents[1]


def _write_lock(folder: Path, pid: int) -> Path:
    lock = folder / runlock.LOCK_NAME
    lock.write_text(f'{{"pid": {pid}, "host": "{socket.gethostname()}", "started": "then"}}')
    return lock


def _dead_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    return int(child.stdout)


def test_a_folder_held_by_another_process_is_refused_naming_the_holder(tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from minidiff import runlock\n"
            f"with runlock.hold({str(tmp_path)!r}):\n"
            "    print('held', flush=True); sys.stdin.read()",
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLockError) as caught:
            with runlock.hold(tmp_path):
                pass
        message = str(caught.value)
        assert str(tmp_path) in message and f"pid {holder.pid}" in message
        assert "wait for it to finish" in message and "another run folder (--out)" in message
    finally:
        holder.communicate("")
    assert holder.returncode == 0
    assert not (tmp_path / runlock.LOCK_NAME).exists()


def test_a_lock_of_a_live_process_is_left_alone(tmp_path):
    lock = _write_lock(tmp_path, os.getppid())
    with pytest.raises(RunLockError, match=f"pid {os.getppid()}"):
        with runlock.hold(tmp_path):
            pass
    assert lock.exists()


def test_a_stale_lock_is_taken_over_with_a_message(tmp_path, capsys):
    dead = _dead_pid()
    lock = _write_lock(tmp_path, dead)
    with runlock.hold(tmp_path):
        assert f'"pid": {os.getpid()}' in lock.read_text()
    message = capsys.readouterr().err
    assert f"taking over {lock}" in message and f"pid {dead}" in message
    assert not lock.exists()


def test_holding_is_reentrant_and_released_on_an_exception(tmp_path):
    lock = tmp_path / "run" / runlock.LOCK_NAME
    with pytest.raises(RuntimeError, match="inside"):
        with runlock.hold(tmp_path / "run"):
            with runlock.hold(tmp_path / "run"):
                assert lock.exists()
            assert lock.exists()  # the outer hold still holds it
            raise RuntimeError("inside")
    assert not lock.exists()
