"""One array operation split over several CPU threads.

NumPy releases Python's global interpreter lock inside ufunc loops and BLAS calls, so Python
threads can compute pieces of one operation at the same time: the rows of a matrix product, the
batch entries of a batched product, the blocks of a fused kernel (``kernels.py``). This is the
"intra-op" parallelism PyTorch gets from OpenMP. It pays for the small matrices of the demo
model, where a multi-threaded BLAS spends much of each call starting and synchronizing its own
threads (book chapter 15).

The number of threads is ``MINIDIFF_NUM_THREADS`` (default 1: no threads). Give BLAS one thread
of its own at the same time (``OPENBLAS_NUM_THREADS=1``, as the Makefile does), or the two kinds
of threads compete for the same cores. On a GPU nothing here is used.
"""

from __future__ import annotations

import contextvars
import os
import queue
import threading

MIN_WORK = 1 << 15
"""Below this many elements (or multiply-adds / 8 for a product) a piece is not worth a thread:
handing it over costs about 20 microseconds."""


def _from_environment() -> int:
    value = os.environ.get("MINIDIFF_NUM_THREADS", "1").strip() or "1"
    try:
        count = int(value)
    except ValueError:
        raise ValueError(f"MINIDIFF_NUM_THREADS={value!r} is not a whole number") from None
    return _checked(count)


def _checked(count: int) -> int:
    if count < 1:
        raise ValueError(f"the number of threads must be at least 1, got {count}")
    return count


_threads = _from_environment()


def threads() -> int:
    """How many threads an operation may use (``MINIDIFF_NUM_THREADS`` when minidiff was
    imported, or what :func:`set_threads` set)."""
    return _threads


def set_threads(count: int) -> int:
    """Let operations use ``count`` threads from now on; returns the previous count."""
    global _threads
    previous, _threads = _threads, _checked(int(count))
    return previous


def split(size: int, work: int = 0, most: int | None = None) -> list[slice]:
    """``range(size)`` in at most :func:`threads` (or ``most``) contiguous pieces of nearly equal
    length, one piece when the whole operation (``work`` elements or multiply-adds / 8) is too
    small."""
    parts = min(threads() if most is None else most, size)
    if work:
        parts = min(parts, work // MIN_WORK)
    parts = max(parts, 1)
    bounds = [size * i // parts for i in range(parts + 1)]
    return [slice(bounds[i], bounds[i + 1]) for i in range(parts)]


def run(tasks: list) -> list:
    """Call every task (a function of no arguments) and return their results in order: the first
    in this thread, the others at the same time in worker threads. An exception in a task is
    raised here, after every task has finished."""
    if len(tasks) == 1:
        return [tasks[0]()]
    _start_workers(len(tasks) - 1)
    # each task runs in a copy of the caller's context, so that context-local settings such as
    # NumPy's errstate apply in the worker threads as they do here
    jobs = [_Job(contextvars.copy_context().run, task) for task in tasks[1:]]
    for job in jobs:
        _queue.put(job)
    try:
        first = tasks[0]()
    finally:
        for job in jobs:
            job.done.acquire()
    for job in jobs:
        if job.error is not None:
            raise job.error
    return [first] + [job.result for job in jobs]


class _Job:
    """A task, its result or error, and a lock that is released when it has run. (A bare lock
    and a queue hand work over in about 12 microseconds, a ``concurrent.futures`` pool in 17.)"""

    __slots__ = ("runner", "task", "result", "error", "done")

    def __init__(self, runner, task):
        self.runner, self.task, self.result, self.error = runner, task, None, None
        self.done = threading.Lock()
        self.done.acquire()


_queue: queue.SimpleQueue = queue.SimpleQueue()
_workers: list[threading.Thread] = []


def _work() -> None:
    while True:
        job = _queue.get()
        try:
            job.result = job.runner(job.task)
        except BaseException as error:  # handed to the caller of run()
            job.error = error
        finally:
            job.done.release()


def _start_workers(count: int) -> None:
    while len(_workers) < count:
        worker = threading.Thread(target=_work, name=f"minidiff-{len(_workers)}", daemon=True)
        worker.start()
        _workers.append(worker)
