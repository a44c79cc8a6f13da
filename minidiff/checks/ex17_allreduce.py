"""The checks of exercise 17 (chapter 17, training on several processes).

The notebook ``exercises/src/ex17_allreduce.md`` asks for the loss one rank computes on its shard
of a batch (17.1, :func:`check_shard_loss`, eq-data-parallel) and for the ring all-reduce over
simulated ranks (17.2, :func:`check_ring_all_reduce`, eq-ring-all-reduce). Both are graded by the
property the chapter states, not by comparison with a reference code:

* 17.1: for a drawn batch, mask of counted entries (every row counts at least one, as a frame mask
  always leaves a frame unknown), number of ranks W and split of the rows, the W shards' losses
  L_r must add up to the whole batch's masked mean L = S / C, and the gradients that minidiff's
  autograd gives each rank for the model's parameters must add up to the whole batch's, which the
  check works out by hand. Dividing by the shard's own count and averaging over the ranks fails
  whenever the shards count different numbers of entries.
* 17.2: the student's ``ring_all_reduce(ring)`` drives a :class:`Ring` of W simulated ranks, whose
  only channel is a message to the right neighbour, at most one chunk of ceil(n / W) numbers, one
  per rank and round. Every rank must end with the sum of the initial buffers and have sent
  exactly 2 (W - 1) messages (eq-ring-cost); a broken rule fails with the rule named.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import strategies as st

from ..autograd.tensor import Tensor
from . import strategies as S
from .compare import compare, show
from .grading import DEFAULT_EXAMPLES, Mismatch, grade

EQUATIONS = {
    "eq-data-parallel": "L = S / C = sum over ranks r of S_r / C: each rank divides the sum S_r "
    "of its counted squared errors by the whole batch's count C, so the shards' losses, and "
    "their gradients, add up to the whole batch's",
    "eq-ring-all-reduce": "every rank ends with the sum of the W buffers, each rank sending one "
    "chunk (at most ceil(n / W) numbers) to rank r + 1 in each of 2 (W - 1) rounds: W - 1 of "
    "reduce-scatter (rank r sends chunk (r - s) mod W, the receiver adds it to its own), then "
    "W - 1 of all-gather (rank r sends chunk (r + 1 - s) mod W, the receiver keeps it)",
}

HINTS = {
    "17.1": [
        "Write S_r for the sum of counted * errors ** 2 over the shard and C for the whole "
        "batch's count: the batch's loss is S / C, and S is the sum of the shards' S_r.",
        "A shard's own mean S_r / C_r is no share of the batch's mean: when the shards count "
        "different numbers of entries, their means do not average to S / C.",
        "Return (counted * errors ** 2).sum() / whole_count; the loss does not need world.",
    ],
    "17.2": [
        "Cut the buffer into W chunks with bounds = [c * n // W for c in range(W + 1)]: chunk c "
        "is buffer[bounds[c]:bounds[c + 1]], at most ceil(n / W) numbers and empty when n < W.",
        "Every round has three steps: every rank sends, then every rank receives, then "
        "ring.next_round(). Rank r receives what rank r - 1 sent, so the chunk it receives in "
        "round s is the one rank r - 1 sent in round s.",
        "Reduce-scatter, round s: rank r sends chunk (r - s) % W and adds what it receives to "
        "its chunk (r - 1 - s) % W. All-gather, round s: rank r sends chunk (r + 1 - s) % W and "
        "overwrites its chunk (r - s) % W with what it receives, in place (buffer[i:j] = got).",
    ],
}

LIBRARY = {"17.2": ("minidiff.ring.ring_all_reduce",)}

# ============================================================================================
# exercise 17.1: the shard's loss
# ============================================================================================


@dataclass(frozen=True)
class _ShardCase:
    """A batch of B rows of d entries for the model errors = w x - y, split over W ranks at the
    row boundaries ``cuts`` (0 = cuts[0] < ... < cuts[W] = B)."""

    x: numpy.ndarray
    y: numpy.ndarray
    w: numpy.ndarray
    counted: numpy.ndarray
    cuts: tuple

    @property
    def shards(self) -> list[slice]:
        return [slice(a, b) for a, b in zip(self.cuts[:-1], self.cuts[1:])]

    @property
    def whole_count(self) -> int:
        return int(self.counted.sum())


@st.composite
def _shard_cases(draw):
    rows, width = draw(st.integers(1, 6)), draw(st.integers(1, 3))
    world = draw(st.integers(1, min(rows, 4)))
    inner = draw(st.permutations(range(1, rows)))[: world - 1]
    counted = numpy.array(
        draw(st.lists(st.booleans(), min_size=rows * width, max_size=rows * width)),
        dtype=numpy.float64,
    ).reshape(rows, width)
    counted[counted.sum(axis=1) == 0, -1] = 1.0  # a frame mask leaves every clip a frame to learn
    return _ShardCase(
        draw(S.arrays((rows, width), -2.0, 2.0)),
        draw(S.arrays((rows, width), -2.0, 2.0)),
        draw(S.arrays((width,), -2.0, 2.0)),
        counted,
        (0, *sorted(inner), rows),
    )


def _describe_shards(case: _ShardCase) -> str:
    rows = [s.stop - s.start for s in case.shards]
    counts = [int(case.counted[s].sum()) for s in case.shards]
    return (
        f"W = {len(rows)}, the ranks holding {rows} rows of the batch\n"
        f"x = {show(case.x)}\ny = {show(case.y)}\nw = {show(case.w)}\n"
        f"errors = w x - y = {show(case.w * case.x - case.y)}\n"
        f"counted = {show(case.counted)}\n"
        f"the shards count {counts} entries, the whole batch C = {case.whole_count}"
    )


def check_shard_loss(fn: Callable, exercise: str = "17.1", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(errors, counted, whole_count, world)`` returns rank r's loss L_r, a scalar Tensor:
    ``errors`` is the Tensor w x - y of the rank's rows, ``counted`` their 0/1 mask, ``whole_count``
    the whole batch's count C and ``world`` the number of ranks W (eq-data-parallel).

    Each rank gets its own copy of the parameters w, as every process holds the model. The ranks'
    losses must add up to the batch's masked mean sum(counted (w x - y)^2) / C, and the gradients
    for w that ``backward()`` gives the ranks must add up to the batch's,
    2 sum over rows of counted (w x - y) x / C (both to 1e-12).
    """

    def prop(case: _ShardCase):
        world, total = len(case.shards), case.whole_count
        losses, gradient = [], numpy.zeros_like(case.w)
        for r, rows in enumerate(case.shards):
            w = Tensor(case.w, requires_grad=True, dtype=numpy.float64, device="cpu")
            loss = fn(w * case.x[rows] - case.y[rows], case.counted[rows].copy(), total, world)
            if not isinstance(loss, Tensor) or loss.shape != ():
                raise Mismatch(
                    f"rank {r}'s loss is {type(loss).__name__} {loss!r}; it must be a scalar "
                    "minidiff Tensor: build it from errors with Tensor operations (**, *, "
                    ".sum(), /), so that backward() reaches the parameters"
                )
            loss.backward()
            if w.grad is None:
                raise Mismatch(
                    f"backward() from rank {r}'s loss gave the parameters no gradient: build the "
                    "loss from errors, not from a copy of its values"
                )
            losses.append(float(loss.data))
            gradient += w.grad
        squared = case.counted * (case.w * case.x - case.y) ** 2
        shares = [float(squared[rows].sum()) / total for rows in case.shards]
        compare(
            f"the sum of the ranks' losses {numpy.round(losses, 6).tolist()} (against the whole "
            f"batch's masked mean S / C; rank r's share is S_r / C, here "
            f"{numpy.round(shares, 6).tolist()})",
            numpy.array(sum(losses)),
            numpy.array(squared.sum() / total),
            1e-12,
            1e-12,
        )
        whole = 2.0 * (case.counted * (case.w * case.x - case.y) * case.x).sum(axis=0) / total
        compare(
            "the sum of the ranks' gradients for w (against the whole batch's gradient, "
            "2 sum of counted (w x - y) x / C)",
            gradient,
            whole,
            1e-12,
            1e-12,
        )

    return grade(
        exercise,
        "the shard's loss",
        "eq-data-parallel",
        prop,
        _shard_cases(),
        statement=EQUATIONS["eq-data-parallel"],
        describe=_describe_shards,
        forbid=LIBRARY.get("17.1", ()),
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 17.2: the ring all-reduce
# ============================================================================================


class Ring:
    """W ranks on a ring, simulated in one process (eq-ring-all-reduce).

    Rank r owns ``buffer(r)``, a float64 array of n numbers that it changes in place, and talks
    only to its right neighbour: ``send(r, values)`` delivers a copy of ``values`` (a 1-D array of
    at most ``chunk`` = ceil(n / W) numbers) to rank (r + 1) % W, and ``receive(r)`` returns what
    rank (r - 1) % W sent to r in this round. Time goes in rounds: in each, every rank may send
    one message, and every message must be received before ``next_round()`` starts the next.
    ``sent[r]`` lists the sizes of the messages rank r sent. A broken rule raises
    :class:`~minidiff.checks.grading.Mismatch` naming it.
    """

    def __init__(self, buffers):
        self._buffers = [numpy.array(b, dtype=numpy.float64).ravel() for b in buffers]
        self.size = len(self._buffers)
        if not self.size or len({b.size for b in self._buffers}) != 1:
            raise ValueError("a ring needs one or more buffers, all of the same size")
        self.n = self._buffers[0].size
        self.chunk = -(-self.n // self.size)
        self.sent: list[list[int]] = [[] for _ in range(self.size)]
        self.round = 0
        self._inbox: list[numpy.ndarray | None] = [None] * self.size
        self._sent_this_round: set[int] = set()

    def _rank(self, r) -> int:
        try:
            rank = operator.index(r)
        except TypeError:
            rank = -1
        if not 0 <= rank < self.size:
            raise Mismatch(f"a rank is an integer from 0 to W - 1 = {self.size - 1}, got {r!r}")
        return rank

    def buffer(self, r) -> numpy.ndarray:
        """Rank r's own buffer (not a copy): change it in place, buffer[i:j] += ..."""
        return self._buffers[self._rank(r)]

    def send(self, r, values) -> None:
        """Rank r sends a copy of ``values`` to rank (r + 1) % W, for it to receive this round."""
        r = self._rank(r)
        if r in self._sent_this_round:
            raise Mismatch(
                f"rank {r} sent a second message in round {self.round}: a rank sends one "
                "message per round; call ring.next_round() once every rank has sent and received"
            )
        message = numpy.array(values, dtype=numpy.float64)
        if message.ndim != 1:
            raise Mismatch(f"send a 1-D array (a slice of the buffer); got shape {message.shape}")
        if message.size > self.chunk:
            raise Mismatch(
                f"rank {r} sent {message.size} numbers in one message, but a message holds at "
                f"most one chunk, ceil(n / W) = ceil({self.n} / {self.size}) = {self.chunk}: "
                "send a chunk of the buffer, not the whole buffer"
            )
        self._inbox[(r + 1) % self.size] = message
        self._sent_this_round.add(r)
        self.sent[r].append(message.size)

    def receive(self, r) -> numpy.ndarray:
        """What rank (r - 1) % W sent to rank r this round; each message is received once."""
        r = self._rank(r)
        message = self._inbox[r]
        if message is None:
            left = (r - 1) % self.size
            raise Mismatch(
                f"rank {r} has nothing to receive in round {self.round}: rank {left} has not "
                "sent to it this round, or it was received already. Let every rank send before "
                "any receives, and receive each message once"
            )
        self._inbox[r] = None
        return message

    def next_round(self) -> None:
        """End this round, once every message sent in it has been received."""
        self._all_received()
        self._sent_this_round.clear()
        self.round += 1

    def _all_received(self) -> None:
        waiting = [r for r, message in enumerate(self._inbox) if message is not None]
        if waiting:
            raise Mismatch(
                f"round {self.round} ended with the message to rank {waiting[0]} never "
                "received: every message must be received in the round it is sent"
            )


def _ring_cases():
    def for_world(world):
        lengths = st.one_of(st.integers(0, world), st.integers(0, 40))
        return st.tuples(st.just(world), lengths, st.integers(0, 2**16))

    return st.integers(1, 8).flatmap(for_world)


def _buffers(case) -> numpy.ndarray:
    world, n, seed = case
    return numpy.random.default_rng(seed).standard_normal((world, n)).round(3)


def _describe_ring(case) -> str:
    world, n, _ = case
    return (
        f"W = {world} ranks, n = {n} numbers each (a message holds at most ceil(n / W) = "
        f"{-(-n // world)})\nbuffers = {show(_buffers(case))}"
    )


def check_ring_all_reduce(
    fn: Callable, exercise: str = "17.2", max_examples: int = DEFAULT_EXAMPLES
):
    """``fn(ring)`` runs the ring all-reduce on a :class:`Ring` (eq-ring-all-reduce).

    For W = 1 .. 8 ranks of n = 0 .. 40 numbers (n < W included), every rank must send exactly
    2 (W - 1) messages, each of at most ceil(n / W) numbers, only to its right neighbour (the
    ring allows nothing else), receive every message, and end with the sum of the initial
    buffers (float64, to 1e-12).
    """

    def prop(case):
        buffers = _buffers(case)
        ring = Ring(buffers)
        fn(ring)
        ring._all_received()
        rounds = 2 * (ring.size - 1)
        for r, sizes in enumerate(ring.sent):
            if len(sizes) != rounds:
                raise Mismatch(
                    f"rank {r} sent {len(sizes)} message{'' if len(sizes) == 1 else 's'}, but "
                    f"in the ring all-reduce every rank sends exactly 2 (W - 1) = {rounds}: "
                    "W - 1 rounds of reduce-scatter, then W - 1 of all-gather"
                )
        total = buffers.sum(axis=0)
        for r in range(ring.size):
            compare(
                f"rank {r}'s buffer (against the sum of the initial buffers; change the buffer "
                "in place, ring.buffer(r)[i:j] += ...)",
                ring.buffer(r),
                total,
                1e-12,
                1e-12,
            )

    return grade(
        exercise,
        "the ring all-reduce",
        "eq-ring-all-reduce",
        prop,
        _ring_cases(),
        statement=EQUATIONS["eq-ring-all-reduce"],
        describe=_describe_ring,
        forbid=LIBRARY.get("17.2", ()),
        max_examples=max_examples,
    )
