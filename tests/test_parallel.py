"""Splitting work over threads (``minidiff/parallel.py``)."""

import threading

import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff import parallel


@given(size=st.integers(0, 500), threads=st.integers(1, 8), work=st.integers(0, 1 << 20))
def test_split_covers_the_range_in_order_in_at_most_threads_pieces(size, threads, work):
    previous = parallel.set_threads(threads)
    try:
        pieces = parallel.split(size, work)
    finally:
        parallel.set_threads(previous)
    covered = [i for piece in pieces for i in range(size)[piece]]
    assert covered == list(range(size))
    assert 1 <= len(pieces) <= max(1, min(threads, size))
    lengths = [piece.stop - piece.start for piece in pieces]
    assert max(lengths) - min(lengths) <= 1
    if work and work < parallel.MIN_WORK:  # too little work for a second thread
        assert len(pieces) == 1


def test_run_runs_the_tasks_at_the_same_time_and_returns_results_in_order():
    started = threading.Barrier(4, timeout=10)  # breaks unless all four run at once

    def task(i):
        started.wait()
        return i, threading.current_thread().name

    names = parallel.run([lambda i=i: task(i) for i in range(4)])
    assert [i for i, _ in names] == [0, 1, 2, 3]
    assert names[0][1] == threading.current_thread().name
    assert len({name for _, name in names}) == 4


def test_run_raises_a_task_error_after_every_task_finished():
    finished = []

    def fails():
        raise ValueError("piece 2 failed")

    def slow():
        threading.Event().wait(0.05)
        finished.append("slow")

    with pytest.raises(ValueError, match="piece 2 failed"):
        parallel.run([lambda: None, fails, slow])
    assert finished == ["slow"]


@pytest.mark.parametrize("value, message", [("two", "whole number"), ("0", "at least 1")])
def test_thread_count_from_the_environment_is_checked(monkeypatch, value, message):
    monkeypatch.setenv("MINIDIFF_NUM_THREADS", value)
    with pytest.raises(ValueError, match=message):
        parallel._from_environment()


def test_thread_count_from_the_environment(monkeypatch):
    monkeypatch.setenv("MINIDIFF_NUM_THREADS", "3")
    assert parallel._from_environment() == 3
    monkeypatch.delenv("MINIDIFF_NUM_THREADS")
    assert parallel._from_environment() == 1
    with pytest.raises(ValueError, match="at least 1"):
        parallel.set_threads(0)


def test_tasks_run_under_the_callers_numpy_errstate():
    """NumPy's errstate is local to a context: the worker threads must see the caller's."""
    import numpy as np

    with np.errstate(invalid="ignore", divide="raise"):
        states = parallel.run([np.geterr for _ in range(3)])
    for state in states:
        assert state["invalid"] == "ignore" and state["divide"] == "raise"
