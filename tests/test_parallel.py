"""Splitting work over threads (``minidiff/parallel.py``)."""

import threading

import numpy as np
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
    with np.errstate(invalid="ignore", divide="raise"):
        states = parallel.run([np.geterr for _ in range(3)])
    for state in states:
        assert state["invalid"] == "ignore" and state["divide"] == "raise"


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [
        ((40, 7), (7, 9)),
        ((6, 50, 8), (6, 8, 5)),
        ((2, 3, 20, 4), (2, 3, 4, 6)),
        ((5, 3), (3, 1)),
        ((2, 3, 20, 4), (3, 4, 6)),  # broadcast batch axes: computed whole, in a thread
    ],
)
def test_matmul_split_over_threads_matches_one_product(monkeypatch, a_shape, b_shape):
    """Products split over three threads, alone and two in one round (as in a backward pass)."""
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(a_shape), rng.standard_normal(b_shape)
    c = rng.standard_normal(b_shape[-1])
    monkeypatch.setattr(parallel, "MIN_WORK", 1)  # every product is worth splitting
    previous = parallel.set_threads(3)
    try:
        (out,) = parallel.matmul((a, b))
        first, second = parallel.matmul((a, b, c), (a, b))
        skipped, third = parallel.matmul(None, (a, b, None))
    finally:
        parallel.set_threads(previous)
    assert skipped is None
    for got, want in ((out, a @ b), (first, a @ b + c), (second, a @ b), (third, a @ b)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)


def test_matmul_gives_each_product_of_a_round_an_equal_share_of_the_threads(monkeypatch):
    """Two products in one round share four threads, two pieces each: by rows of a 2-D product,
    by the first batch axis of a batched one. A product with broadcast batch axes is one piece."""
    rounds = []

    def counted_run(tasks):
        rounds.append(len(tasks))
        return [task() for task in tasks]

    monkeypatch.setattr(parallel, "MIN_WORK", 1)
    monkeypatch.setattr(parallel, "run", counted_run)
    previous = parallel.set_threads(4)
    try:
        rows, batched = (np.ones((8, 3)), np.ones((3, 2))), (np.ones((6, 4, 3)), np.ones((6, 3, 2)))
        parallel.matmul(rows, batched)
        parallel.matmul((np.ones((2, 8, 3)), np.ones((1, 3, 2))))
    finally:
        parallel.set_threads(previous)
    assert rounds == [4, 1]
