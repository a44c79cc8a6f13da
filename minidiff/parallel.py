"""One array operation split over several CPU threads.

NumPy releases Python's global interpreter lock inside ufunc loops and BLAS calls, so Python
threads can compute pieces of one operation at the same time: the rows of a matrix product, the
batch entries of a batched product, the blocks of a fused kernel (``kernels/cpu.py``). This is the
"intra-op" parallelism PyTorch gets from OpenMP. It pays for the small matrices of the demo
model, where a multi-threaded BLAS spends much of each call starting and synchronizing its own
threads (book chapter 15).

The number of threads is ``MINIDIFF_NUM_THREADS`` (default 1: no threads). Give BLAS one thread
of its own at the same time (``OPENBLAS_NUM_THREADS=1``, as the Makefile does), or the two kinds
of threads compete for the same cores. On a GPU nothing here is used.
"""

from __future__ import annotations

import contextvars
import math
import os
import queue
import threading

import numpy

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


def matmul(*products) -> tuple:
    """``a @ b + c`` for every product ``(a, b)`` or ``(a, b, c)``, with ``c`` (None for no
    addend) broadcast over the rows and added in place; None where a product is None. For
    instance the forward product of a layer, or the two products of its backward pass,
    dL/dx = g W^T and dL/dW = x^T g, which are computed together.

    On NumPy arrays with more than one thread, the pieces of every product go to the threads in
    one round of :func:`run`. Each product gets an equal share of the threads (at least one) and
    is split (:func:`split`, by its multiply-adds) into rows of a 2-D product, or into entries of
    the first batch axis when both operands have the same batch shape; a product whose batch axes
    broadcast is one piece. One round instead of one per product halves the hand-overs of a
    backward pass. CuPy arrays, or one thread: one plain product each.
    """
    # (a, b) is (a, b, None)
    jobs = [(*product, None)[:3] for product in products if product is not None]
    results = iter(_products(jobs))
    return tuple(None if product is None else next(results) for product in products)


def _products(jobs: list) -> list:
    """``a @ b + c`` for each job ``(a, b, c)``, split over the threads as :func:`matmul` says."""
    if not jobs or threads() == 1 or not isinstance(jobs[0][0], numpy.ndarray):
        return [_plain_product(*job) for job in jobs]
    share = max(1, threads() // len(jobs))
    results, tasks = [None] * len(jobs), []
    for index, job in enumerate(jobs):
        tasks += _product_tasks(results, index, *job, share)
    run(tasks)
    return results


def _product_tasks(results: list, index: int, a, b, c, share: int) -> list:
    """The tasks that compute ``a @ b + c`` into ``results[index]`` on up to ``share`` threads."""
    batched = a.ndim > 2 and a.shape[:-2] == b.shape[:-2]
    if a.ndim != b.ndim or (a.ndim > 2 and not batched):  # broadcast batch axes: one piece
        return [_whole(results, index, a, b, c)]
    n, k, m = a.shape[-2], a.shape[-1], b.shape[-1]
    out = results[index] = numpy.empty((*a.shape[:-1], m), dtype=numpy.result_type(a, b))
    work = math.prod(a.shape[:-2]) * n * k * m // 8
    pieces = split(a.shape[0] if batched else n, work, most=share)
    return [_piece(a, b, c, out, s, batched) for s in pieces]


def _whole(results: list, index: int, a, b, c):
    """The task that computes the whole of ``a @ b + c`` into ``results[index]``."""

    def task():
        results[index] = _plain_product(a, b, c)

    return task


def _piece(a, b, c, out, s: slice, batched: bool):
    """The task that writes rows (or batch entries) ``s`` of ``a @ b + c`` into ``out``."""

    def task():
        numpy.matmul(a[s], b[s] if batched else b, out=out[s])
        if c is not None:
            out[s] += c

    return task


def _plain_product(a, b, c):
    """``a @ b + c`` in one call, on NumPy or CuPy arrays."""
    out = a @ b
    if c is not None:
        out += c
    return out


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
