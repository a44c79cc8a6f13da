"""Every op's backward against float64 central differences, over drawn shapes.

The cases come from one registry (``minidiff.checks.gradients.OP_SPECS``), shared with the
exercise notebooks: broadcasting via ``mutually_broadcastable_shapes``, 0-size dimensions, 0-d
arrays, and (``strided``) non-contiguous inputs. Inputs where an op has a kink or a tie are
rejected with ``assume``; the tolerances stay tight.
"""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import minidiff as md
from minidiff.checks.gradients import OP_SPECS, check_gradient

# The ops the foundation promises; each must be in the registry (so each is checked).
REQUIRED = """add sub mul div neg pow_scalar pow_tensor matmul exp log sqrt tanh sigmoid relu
gelu_tanh gelu_exact silu abs clip maximum minimum where sum mean var max min reshape transpose
swapaxes broadcast_to getitem concatenate stack split pad softmax log_softmax logsumexp""".split()


def test_registry_covers_every_op():
    assert set(REQUIRED) <= set(OP_SPECS)


@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided"])
@pytest.mark.parametrize("name", sorted(OP_SPECS))
@given(data=st.data())
def test_op_gradient(name, strided, data):
    spec = OP_SPECS[name]
    case = data.draw(spec.cases, label="case")
    assume(spec.valid(case))
    assert check_gradient(spec, case, strided=strided)


@pytest.mark.parametrize("name", sorted(OP_SPECS))
@given(data=st.data())
def test_op_keeps_float32(name, data):
    """A float32 input gives a float32 output and float32 gradients: no float64 intermediate."""
    spec = OP_SPECS[name]
    case = data.draw(spec.cases, label="case")
    assume(spec.valid(case))
    inputs = [md.tensor(a.astype(np.float32), requires_grad=True) for a in case.arrays]
    out = spec.fn(*inputs, **case.params)
    assert out.dtype == np.float32
    out.backward(md.ones_like(out).data)
    for x in inputs:
        assert x.grad is None or x.grad.dtype == np.float32
