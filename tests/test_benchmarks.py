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
