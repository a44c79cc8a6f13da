"""Exercise 17 (the shard's loss and the ring all-reduce): the checks of
``minidiff.checks.ex17_allreduce`` pass a right answer, fail typical mistakes with a shrunk case
and the rule they break, and say NOT DONE for the stub."""

import numpy as np
import pytest

from minidiff.checks import ex17_allreduce as E

from .verdicts import assert_not_done, by_name


def loss_correct(errors, counted, whole_count, world):
    return (counted * errors**2).sum() / whole_count


def loss_own_count_averaged(errors, counted, whole_count, world):
    """The shard's own mean, averaged over the ranks."""
    return (counted * errors**2).sum() / counted.sum() / world


def loss_own_count(errors, counted, whole_count, world):
    """The shard's own mean, summed over the ranks."""
    return (counted * errors**2).sum() / counted.sum()


def loss_unmasked(errors, counted, whole_count, world):
    """Every entry in the sum, the masked ones too."""
    return (errors**2).sum() / whole_count


def loss_as_float(errors, counted, whole_count, world):
    """The right value, but a float that backward() cannot start from."""
    return float(((counted * errors**2).sum() / whole_count).data)


def test_shard_loss_passes_a_right_answer():
    verdict = E.check_shard_loss(loss_correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "wrong, says",
    [
        (loss_own_count_averaged, "the sum of the ranks' losses"),
        (loss_own_count, "the sum of the ranks' losses"),
        (loss_unmasked, "the sum of the ranks' losses"),
        (loss_as_float, "must be a scalar minidiff Tensor"),
    ],
    ids=by_name,
)
def test_shard_loss_fails_a_typical_mistake(wrong, says):
    verdict = E.check_shard_loss(wrong)
    assert verdict.status == "FAILED" and "the smallest failing case found" in verdict.message
    assert "it must satisfy (eq-data-parallel)" in verdict.message and says in verdict.message


def test_the_shards_own_means_fail_only_where_the_shards_count_differently():
    """Averaging the shards' own means is right when every shard counts as many entries, so the
    counterexample must show shards that count differently."""
    verdict = E.check_shard_loss(loss_own_count_averaged)
    counts = verdict.message.split("the shards count [")[1].split("]")[0]
    assert len(set(counts.split(", "))) > 1, verdict.message


def _bounds(ring):
    return [c * ring.n // ring.size for c in range(ring.size + 1)]


def _chunk(ring, r, c):
    bounds = _bounds(ring)
    return ring.buffer(r)[bounds[c] : bounds[c + 1]]


def ring_correct(ring, gather_rounds=None, whole=False, in_place=True, rounds=True):
    world = ring.size
    for s in range(world - 1):  # reduce-scatter
        for r in range(world):
            ring.send(r, ring.buffer(r) if whole else _chunk(ring, r, (r - s) % world))
        for r in range(world):
            got, c = ring.receive(r), (r - 1 - s) % world
            mine = _chunk(ring, r, c)
            if whole:
                bounds = _bounds(ring)
                got = got[bounds[c] : bounds[c + 1]]
            if in_place:
                mine += got
            else:
                mine = mine + got
        if rounds:
            ring.next_round()
    for s in range(world - 1 if gather_rounds is None else gather_rounds):  # all-gather
        for r in range(world):
            ring.send(r, _chunk(ring, r, (r + 1 - s) % world))
        for r in range(world):
            _chunk(ring, r, (r - s) % world)[:] = ring.receive(r)
        if rounds:
            ring.next_round()


def ring_all_correct(ring):
    ring_correct(ring)


def ring_whole_buffers(ring):
    """The right schedule, but every message carries the whole buffer."""
    ring_correct(ring, whole=True)


def ring_gather_round_too_many(ring):
    """W rounds of all-gather: the sum is right, the count of messages is not."""
    ring_correct(ring, gather_rounds=ring.size)


def ring_not_in_place(ring):
    """The received chunk added to a new array, not to the buffer."""
    ring_correct(ring, in_place=False)


def ring_gather_on_rank_zero(ring):
    """Whole buffers passed along the ring to rank 0, added there, and passed back around."""
    world = ring.size
    for r in range(1, world):  # rank r passes the sum of ranks 1 .. r on to rank r + 1
        ring.send(r, ring.buffer(r))
        ring.buffer((r + 1) % world)[:] += ring.receive((r + 1) % world)
        ring.next_round()
    for r in range(world - 1):  # rank 0's sum goes round to rank W - 1
        ring.send(r, ring.buffer(r))
        ring.buffer(r + 1)[:] = ring.receive(r + 1)
        ring.next_round()


def ring_no_rounds(ring):
    """next_round() never called."""
    ring_correct(ring, rounds=False)


def ring_send_then_receive(ring):
    """Each rank sends and receives before the next sends: rank 0's neighbour has not sent."""
    world = ring.size
    for s in range(world - 1):
        for r in range(world):
            ring.send(r, _chunk(ring, r, (r - s) % world))
            _chunk(ring, r, (r - 1 - s) % world)[:] += ring.receive(r)
        ring.next_round()


def test_ring_all_reduce_passes_a_right_answer():
    verdict = E.check_ring_all_reduce(ring_all_correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "wrong, says",
    [
        (ring_whole_buffers, "a message holds at most one chunk"),
        (ring_gather_round_too_many, "every rank sends exactly 2 (W - 1)"),
        (ring_gather_on_rank_zero, "every rank sends exactly 2 (W - 1)"),
        (ring_not_in_place, "rank 0's buffer"),
        (ring_no_rounds, "sent a second message in round 0"),
        (ring_send_then_receive, "has nothing to receive in round 0"),
    ],
    ids=by_name,
)
def test_ring_all_reduce_fails_a_typical_mistake(wrong, says):
    verdict = E.check_ring_all_reduce(wrong)
    assert verdict.status == "FAILED" and "the smallest failing case found" in verdict.message
    assert "it must satisfy (eq-ring-all-reduce)" in verdict.message
    assert says in verdict.message, verdict.message
    assert "W = 1 ranks, n = 0" in verdict.message or "W = 2 ranks," in verdict.message


def test_the_ring_delivers_only_to_the_right_neighbour_and_copies():
    ring = E.Ring([np.zeros(3), np.ones(3), np.full(3, 2.0)])
    assert (ring.size, ring.n, ring.chunk) == (3, 3, 1)
    sent = ring.buffer(2)[:1]
    ring.send(2, sent)
    sent[:] = 7.0
    assert ring.receive(0).tolist() == [2.0]
    with pytest.raises(E.Mismatch, match="rank 1 has nothing to receive"):
        ring.receive(1)
    ring.send(0, ring.buffer(0)[:1])
    with pytest.raises(E.Mismatch, match="never received"):
        ring.next_round()
    with pytest.raises(E.Mismatch, match="a rank is an integer from 0 to W - 1 = 2"):
        ring.buffer(3)


def test_not_done():
    assert_not_done(E.check_shard_loss, "Exercise 17.1: the shard's loss", "17.1")
    assert_not_done(E.check_ring_all_reduce, "Exercise 17.2: the ring all-reduce", "17.2")
