"""Ring all-reduce simulated over ranks in one process (chapter 17): every rank ends with the
sum, each rank talks only to its right neighbour, and the messages are the ones the cost model
counts (eq-ring-cost)."""

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff import ring

ranks = st.integers(1, 9)
lengths = st.integers(0, 40)


@given(ranks, lengths, st.integers(0, 2**32 - 1))
def test_ring_all_reduce_gives_every_rank_the_sum(n_ranks, length, seed):
    buffers = list(numpy.random.default_rng(seed).standard_normal((n_ranks, length)))
    reduced, _ = ring.ring_all_reduce(buffers)
    assert len(reduced) == n_ranks
    for result in reduced:
        numpy.testing.assert_allclose(result, numpy.sum(buffers, axis=0), rtol=1e-12, atol=1e-12)


@given(ranks, lengths)
def test_ring_all_reduce_leaves_the_inputs_alone(n_ranks, length):
    buffers = [numpy.full(length, float(r)) for r in range(n_ranks)]
    ring.ring_all_reduce(buffers)
    assert all((b == r).all() for r, b in enumerate(buffers))


@given(st.integers(2, 9), st.integers(1, 40))
def test_ring_cost(n_ranks, length):
    """eq-ring-cost: each rank sends 2 (N - 1) messages, only to rank r + 1 mod N, one per round,
    each of at most ceil(n / N) numbers, so the bytes it sends are about 2 (N - 1) / N n."""
    _, messages = ring.ring_all_reduce([numpy.ones(length)] * n_ranks)
    assert len(messages) == 2 * (n_ranks - 1) * n_ranks
    for m in messages:
        assert m.target == (m.source + 1) % n_ranks
        assert m.size <= -(-length // n_ranks)
    for r in range(n_ranks):
        sent = [m for m in messages if m.source == r]
        assert sorted(m.round for m in sent) == list(range(2 * (n_ranks - 1)))
        # every chunk once in each phase: the buffer's n numbers twice, less its own chunk each
        assert sum(m.size for m in sent) <= 2 * length
    rounds = {m.round for m in messages}
    assert rounds == set(range(2 * (n_ranks - 1)))
    assert ring.ring_seconds(n_ranks, 8.0 * length, 1.0, 0.0) == 2 * (n_ranks - 1)


def test_one_rank_sends_nothing_and_costs_nothing():
    reduced, messages = ring.ring_all_reduce([numpy.arange(5.0)])
    assert messages == [] and (reduced[0] == numpy.arange(5.0)).all()
    assert ring.ring_seconds(1, 1e6, 1e-5, 1e-9) == 0.0


@given(st.floats(1e-7, 1e-3), st.floats(1e-11, 1e-8))
def test_fit_alpha_beta_recovers_the_model_it_is_fitted_to(alpha, beta):
    sizes = [8 << (2 * k) for k in range(10)]
    seconds = [ring.ring_seconds(2, n, alpha, beta) for n in sizes]
    fitted = ring.fit_alpha_beta(sizes, seconds)
    assert fitted == pytest.approx((alpha, beta), rel=1e-6)


def test_bad_buffers_are_refused_with_the_reason():
    with pytest.raises(ValueError, match="at least one rank"):
        ring.ring_all_reduce([])
    with pytest.raises(ValueError, match="same shape"):
        ring.ring_all_reduce([numpy.ones(3), numpy.ones(4)])


@given(st.integers(2, 6))
def test_ring_all_reduce_part_way_counts_the_shares_each_chunk_holds(n_ranks):
    """After k reduce-scatter rounds, the chunk rank r last received holds k + 1 ranks' shares;
    rank r's buffer starts as 2**r everywhere, so a chunk's bits name the ranks summed in it."""
    buffers = [numpy.full(n_ranks, 2.0**r) for r in range(n_ranks)]
    for k in range(n_ranks):
        reduced, messages = ring.ring_all_reduce(buffers, rounds=k)
        assert len(messages) == k * n_ranks
        shares = [[bin(int(v)).count("1") for v in b] for b in reduced]
        assert max(max(row) for row in shares) == k + 1
    with pytest.raises(ValueError, match="rounds must be between"):
        ring.ring_all_reduce(buffers, rounds=2 * n_ranks)
