"""The benchmark workloads run, and each fused kernel the kernel table times computes what its
plain twin computes (a table comparing the speed of two different things would mean nothing)."""

import numpy as np
import pytest

from benchmarks import kernels as kernel_bench
from benchmarks import workloads


@pytest.mark.parametrize("name", ["gelu", "softmax", "layer_norm", "rope"])
def test_kernel_benchmark_times_fused_and_plain_forms_of_the_same_thing(name, monkeypatch):
    _, fn = kernel_bench._cases()[name]
    monkeypatch.setenv("MINIDIFF_PLAIN_KERNELS", "1")
    plain = fn()
    monkeypatch.setenv("MINIDIFF_PLAIN_KERNELS", "0")
    fused = fn()
    plain, fused = ((r if isinstance(r, tuple) else (r,)) for r in (plain, fused))
    for a, b in zip(plain, fused, strict=True):
        np.testing.assert_allclose(b, a, rtol=1e-4, atol=1e-5)


def test_block_workload_runs_in_minidiff():
    step = workloads._step_minidiff(2, 8, 16)
    assert np.isfinite(step())


def test_the_all_reduce_cost_model_recovers_its_constants():
    """The ring model at N = 2 is T = 2 alpha + n beta: fitted to times it generated, it gives
    its alpha and beta back; on one machine there is nothing to reduce."""
    from benchmarks import distributed

    alpha, beta = 3e-6, 1e-9
    sizes = distributed.SIZES
    seconds = [distributed.ring_seconds(2, n, alpha, beta) for n in sizes]
    fitted = distributed.fit_alpha_beta(sizes, seconds)
    np.testing.assert_allclose(fitted, (alpha, beta), rtol=1e-6)
    assert distributed.ring_seconds(1, 1e6, alpha, beta) == 0
    assert distributed.ring_seconds(4, 1e6, alpha, beta) == pytest.approx(6 * alpha + 1.5e6 * beta)
