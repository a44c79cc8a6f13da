"""Ring all-reduce, simulated over ranks held in one process, and its alpha-beta cost (chapter 17).

An all-reduce leaves on every one of N ranks the sum of the N ranks' buffers. The ring algorithm
(the one MPI libraries and NCCL use for large buffers) splits each buffer of n numbers into N
chunks and lets each rank talk only to its right neighbour, r -> r + 1 mod N, in two phases of
N - 1 rounds each (eq-ring-all-reduce):

* **reduce-scatter**: in round s = 0 .. N-2 rank r sends chunk (r - s) mod N to rank r + 1,
  which adds it to its own copy of that chunk. Chunk c starts at rank c and gathers one more
  rank's share at every hop, so after N - 1 rounds rank r holds the complete sum of chunk
  (r + 1) mod N;
* **all-gather**: in round s rank r sends chunk (r + 1 - s) mod N, complete, to rank r + 1,
  which overwrites its copy. After N - 1 more rounds every rank holds every summed chunk.

Every rank sends 2 (N - 1) messages of about n / N numbers, whatever N, so with alpha the
latency of a message and beta the time per byte (eq-ring-cost)

    T(N, n) = 2 (N - 1) alpha + 2 (N - 1) / N * n * beta:

the bytes each rank sends approach 2 n, independent of the number of ranks, while the latency
term grows with N. :func:`ring_all_reduce` runs the schedule on NumPy arrays and returns the
messages it sent, so the count can be checked; :func:`ring_seconds` is the model and
:func:`fit_alpha_beta` fits alpha and beta to measured all-reduce times of two ranks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy


@dataclass(frozen=True)
class Message:
    """One chunk sent in the ring: in ``round`` (0-based over both phases) from ``source`` to
    ``target``, chunk number ``chunk`` of ``size`` numbers."""

    round: int
    source: int
    target: int
    chunk: int
    size: int


def ring_all_reduce(
    buffers, rounds: int | None = None
) -> tuple[list[numpy.ndarray], list[Message]]:
    """Every rank's copy of ``sum(buffers)`` by the ring schedule (eq-ring-all-reduce), and the
    messages sent. ``buffers`` holds one array per rank, all of one shape; they are not changed.
    The messages of a round are all sent before any is received, as on a real ring. With
    ``rounds`` only the first that many of the 2 (N - 1) rounds run: the ranks' buffers part
    way through, as chapter 17's figure draws them."""
    buffers = list(buffers)
    if not buffers:
        raise ValueError("ring_all_reduce needs at least one rank's buffer, got none")
    shape = numpy.shape(buffers[0])
    if any(numpy.shape(b) != shape for b in buffers):
        shapes = sorted({numpy.shape(b) for b in buffers})
        raise ValueError(f"every rank's buffer must have the same shape, got {shapes}")
    n = len(buffers)
    total = 2 * (n - 1)
    rounds = total if rounds is None else rounds
    if not 0 <= rounds <= total:
        raise ValueError(f"rounds must be between 0 and 2 (N - 1) = {total}, got {rounds}")
    chunks = [numpy.array_split(numpy.array(b, copy=True).ravel(), n) for b in buffers]
    messages: list[Message] = []

    def run_round(number: int, chunk_of, combine) -> None:
        if number >= rounds:
            return
        sent = [(r, chunk_of(r), chunks[r][chunk_of(r)].copy()) for r in range(n)]
        for source, chunk, values in sent:
            target = (source + 1) % n
            chunks[target][chunk] = combine(chunks[target][chunk], values)
            messages.append(Message(number, source, target, chunk, values.size))

    for s in range(n - 1):  # reduce-scatter: add the neighbour's share
        run_round(s, lambda r, s=s: (r - s) % n, lambda own, got: own + got)
    for s in range(n - 1):  # all-gather: take the neighbour's complete chunk
        run_round(n - 1 + s, lambda r, s=s: (r + 1 - s) % n, lambda own, got: got)
    return [numpy.concatenate(c).reshape(shape) for c in chunks], messages


def ring_seconds(machines: int, nbytes: float, alpha: float, beta: float) -> float:
    """T(N, n) = 2 (N - 1) alpha + 2 (N - 1) / N * n * beta (eq-ring-cost); nothing to reduce
    on one machine."""
    rounds = 2 * (machines - 1)
    return rounds * alpha + rounds / machines * nbytes * beta


def fit_alpha_beta(sizes, seconds) -> tuple[float, float]:
    """alpha and beta of T = 2 alpha + n beta (eq-ring-cost at N = 2) fitted to measured
    (bytes, seconds), least squares on the relative error (``polyfit``'s weights multiply the
    residuals: 1 / T), so the small sizes, which set alpha, weigh as much as the large ones."""
    seconds = numpy.asarray(seconds, dtype=float)
    slope, intercept = numpy.polyfit(numpy.asarray(sizes, float), seconds, 1, w=1 / seconds)
    return max(intercept, 0.0) / 2, slope
