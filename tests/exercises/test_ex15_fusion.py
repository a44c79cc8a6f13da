"""Exercise 15 (a fused op and a timing function): the checks of ``minidiff.checks.ex15_fusion``.

The notebook itself runs in tests/exercises/test_exercises.py with every other exercise; here each
check passes a right answer and fails the typical wrong ones with a message that says what went
wrong: a backward without the x (1 - sigma) term, a float64 upcast, SiLU composed of two graph
nodes, a node that keeps more than it needs; a mean instead of a median, the wrong number of
calls, milliseconds, and a clock other than the one given.
"""

import statistics
import time

import numpy as np
import pytest

import minidiff as md
from minidiff import backend
from minidiff.autograd.tensor import Tensor
from minidiff.checks import ex15_fusion as E

# --- exercise 15.1: SiLU as one fused op ---------------------------------------------------------


def _sigmoid(d):
    return 0.5 * (1.0 + backend.xp_of(d).tanh(0.5 * d))


def silu_fused(x):
    d = x.data
    s = _sigmoid(d)

    def backward(g):
        return (g * s * (1.0 + d * (1.0 - s)),)

    return Tensor.from_op(d * s, (x,), backward, "silu_fused")


def silu_without_second_term(x):
    """Forgets the x (1 - sigma) term: the backward of x sigma(x) as if sigma were a constant."""
    d = x.data
    s = _sigmoid(d)
    return Tensor.from_op(d * s, (x,), lambda g: (g * s,), "silu_fused")


def silu_upcast(x):
    """A NumPy float64 constant in the forward and the backward: float32 becomes float64."""
    d = x.data
    s = np.float64(0.5) * (1.0 + np.tanh(np.float64(0.5) * d))

    def backward(g):
        return (g * s * (np.float64(1.0) + d * (1.0 - s)),)

    return Tensor.from_op(d * s, (x,), backward, "silu_fused")


def silu_composed(x):
    return x * md.sigmoid(x)


def silu_keeping_too_much(x):
    """One node and the right values, but it keeps sigma and sigma (1 - sigma): two arrays."""
    d = x.data
    s = _sigmoid(d)
    slope = s * (1.0 - s)

    def backward(g):
        return (g * (s + d * slope),)

    return Tensor.from_op(d * s, (x,), backward, "silu_fused")


def test_silu_check_passes_a_fused_op():
    verdict = E.check_silu_fused(silu_fused)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 15.1 (SiLU as one fused op)")


def test_silu_check_passes_the_library_op():
    assert E.check_silu_fused(md.silu).passed


def test_silu_check_fails_a_backward_without_the_second_term():
    verdict = E.check_silu_fused(silu_without_second_term)
    assert verdict.status == "FAILED"
    assert "the gradient for x (against central differences) is wrong" in verdict.message
    assert "sigma(x) (1 + x (1 - sigma(x)))" in verdict.message


def test_silu_check_fails_a_float64_upcast():
    verdict = E.check_silu_fused(silu_upcast)
    assert verdict.status == "FAILED"
    assert "has dtype float64 from a float32 x" in verdict.message


def test_silu_check_fails_two_graph_nodes():
    verdict = E.check_silu_fused(silu_composed)
    assert verdict.status == "FAILED"
    assert "recorded 2 graph nodes (sigmoid, mul)" in verdict.message


def test_silu_check_fails_a_node_that_keeps_too_much():
    verdict = E.check_silu_fused(silu_keeping_too_much)
    assert verdict.status == "FAILED"
    assert "besides x and the output" in verdict.message


def test_silu_check_not_done():
    def stub(x):
        raise NotImplementedError("Exercise 15.1: forward and backward of SiLU in one node")

    verdict = E.check_silu_fused(stub)
    assert verdict.status == "NOT DONE" and "Exercise 15.1" in verdict.message


# --- exercise 15.2: the median time of repeated calls -------------------------------------------


def time_it(fn, repeats, clock=time.perf_counter):
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return float(np.median(times))


def time_it_statistics(fn, repeats, clock=time.perf_counter):
    """The clock read once between calls, and statistics.median: also right."""
    times, last = [], clock()
    for _ in range(repeats):
        fn()
        now = clock()
        times.append(now - last)
        last = now
    return statistics.median(times)


def time_it_mean(fn, repeats, clock=time.perf_counter):
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return sum(times) / len(times)


def time_it_with_warmup(fn, repeats, clock=time.perf_counter):
    fn()
    return time_it(fn, repeats, clock)


def time_it_milliseconds(fn, repeats, clock=time.perf_counter):
    return 1000 * time_it(fn, repeats, clock)


def time_it_real_clock(fn, repeats, clock=time.perf_counter):
    return time_it(fn, repeats)


def time_it_upper_middle(fn, repeats, clock=time.perf_counter):
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return sorted(times)[len(times) // 2]


@pytest.mark.parametrize("right", [time_it, time_it_statistics])
def test_timing_check_passes_a_median(right):
    verdict = E.check_time_it(right)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 15.2 (the median time of repeated calls)")


@pytest.mark.parametrize(
    "wrong, says",
    [
        (time_it_mean, "that is the mean of the times, not their median"),
        (time_it_with_warmup, "fn was called 2 times for repeats = 1"),
        (time_it_milliseconds, "in milliseconds"),
        (time_it_real_clock, "measure with the clock you are given"),
        (time_it_upper_middle, "the mean of the two middle ones"),
    ],
    ids=lambda value: getattr(value, "__name__", ""),
)
def test_timing_check_fails_a_wrong_answer(wrong, says):
    verdict = E.check_time_it(wrong)
    assert verdict.status == "FAILED"
    assert says in verdict.message, verdict.message
    assert "the smallest failing case found" in verdict.message


def test_timing_check_fails_a_result_that_is_not_a_float():
    verdict = E.check_time_it(lambda fn, repeats, clock: [time_it(fn, repeats, clock)])
    assert verdict.status == "FAILED" and "returned a list" in verdict.message


def test_timing_check_not_done():
    def stub(fn, repeats, clock=time.perf_counter):
        raise NotImplementedError("Exercise 15.2: time each call, return the median")

    verdict = E.check_time_it(stub)
    assert verdict.status == "NOT DONE" and "Exercise 15.2" in verdict.message
