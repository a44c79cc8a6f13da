"""Same results on NumPy and CuPy for every op of the registry (skipped without a GPU)."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minidiff as md
from minidiff.checks.gradients import OP_SPECS

from .conftest import requires_gpu


def _run(spec, case, device):
    inputs = [
        md.tensor(a, dtype=np.float64, device=device, requires_grad=True) for a in case.arrays
    ]
    out = spec.fn(*inputs, **case.params)
    g = np.linspace(-1, 1, out.size).reshape(out.shape)
    out.backward(md.tensor(g, dtype=np.float64, device=device).data)
    return out.numpy(), [md.backend.to_numpy(x.grad) for x in inputs]


@requires_gpu
@pytest.mark.parametrize("name", sorted(OP_SPECS))
@given(data=st.data())
def test_numpy_and_cupy_agree(name, data):
    spec = OP_SPECS[name]
    case = data.draw(spec.cases, label="case")
    assume(spec.valid(case))
    out_cpu, grads_cpu = _run(spec, case, "cpu")
    out_gpu, grads_gpu = _run(spec, case, "cuda")
    np.testing.assert_allclose(out_gpu, out_cpu, rtol=1e-12, atol=1e-12)
    for a, b in zip(grads_gpu, grads_cpu):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
