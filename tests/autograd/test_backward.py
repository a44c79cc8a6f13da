"""The graph and reverse mode: vector-Jacobian products, the chain rule, accumulation, memory."""

import gc
import weakref

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minidiff as md
from minidiff import parallel
from minidiff.autograd import ops
from minidiff.checks import strategies as S


@given(data=st.data())
def test_vjp_matches_jacobian_transpose(data):
    """(eq-vjp): backward with cotangent u gives J^T u, J the Jacobian of f(x) = tanh(A x)."""
    m, n = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 5))
    A = data.draw(S.arrays((m, n)))
    x0 = data.draw(S.arrays((n,)))
    u = data.draw(S.arrays((m,)))
    x = S.to_tensor(x0, requires_grad=True)
    y = (S.to_tensor(A) @ x).tanh()
    y.backward(md.tensor(u, dtype=np.float64).data)
    jacobian = (1 - np.tanh(A @ x0) ** 2)[:, None] * A  # d tanh(Ax)_i / dx_j
    np.testing.assert_allclose(md.backend.to_numpy(x.grad), jacobian.T @ u, rtol=1e-12, atol=1e-12)


@given(x0=S.arrays(S.shapes()))
def test_chain_rule_sums_over_uses(x0):
    """(eq-chain-rule-graph): a tensor used by several ops gets the sum of their gradients.

    With a = 2x, b = x + 1, c = a b + x: dc/dx = 2 b + a + 1 on every entry.
    """
    x = S.to_tensor(x0, requires_grad=True)
    a = x * 2.0
    b = x + 1.0
    c = a * b + x
    c.sum().backward()
    expected = 2 * (x0 + 1) + 2 * x0 + 1
    np.testing.assert_allclose(md.backend.to_numpy(x.grad), expected, rtol=1e-12, atol=1e-12)


def _reduce_by_loop(g, shape):
    """Sum g over broadcast copies, entry by entry: an independent reference for sum_to."""
    out = np.zeros(shape)
    lead = g.ndim - len(shape)
    for index in np.ndindex(g.shape):
        source = tuple(0 if n == 1 else i for i, n in zip(index[lead:], shape))
        out[source] += g[index]
    return out


@given(data=st.data())
def test_broadcast_reduce_sums_copies(data):
    """(eq-broadcast-reduce): dL/dx for a broadcast x is dL/dy summed over x's copies."""
    shape_x, shape_y = data.draw(S.broadcastable_shapes(2))
    x0, y0 = data.draw(S.arrays(shape_x)), data.draw(S.arrays(shape_y))
    out_shape = np.broadcast_shapes(shape_x, shape_y)
    g = data.draw(S.arrays(out_shape))
    x, y = S.to_tensor(x0, True), S.to_tensor(y0, True)
    (x * y).backward(md.tensor(g, dtype=np.float64).data)
    np.testing.assert_allclose(
        md.backend.to_numpy(x.grad), _reduce_by_loop(g * y0, shape_x), rtol=1e-12, atol=1e-12
    )
    np.testing.assert_allclose(
        md.backend.to_numpy(x.grad),
        md.backend.to_numpy(md.sum_to(md.tensor(g * y0, dtype=np.float64).data, shape_x)),
        rtol=1e-12,
        atol=1e-12,
    )


@given(data=st.data())
def test_matmul_vjp_formula(data):
    """(eq-matmul-vjp): for C = A B, dL/dA = G B^T and dL/dB = A^T G (summed over batch)."""
    batch = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, max_side=3))
    n, k, m = (data.draw(st.integers(1, 4)) for _ in range(3))
    A0, B0 = data.draw(S.arrays((*batch, n, k))), data.draw(S.arrays((k, m)))
    G = data.draw(S.arrays((*batch, n, m)))
    A, B = S.to_tensor(A0, True), S.to_tensor(B0, True)
    (A @ B).backward(md.tensor(G, dtype=np.float64).data)
    np.testing.assert_allclose(md.backend.to_numpy(A.grad), G @ B0.T, rtol=1e-12, atol=1e-12)
    expected_b = (np.swapaxes(A0, -1, -2) @ G).reshape(-1, k, m).sum(axis=0)
    np.testing.assert_allclose(md.backend.to_numpy(B.grad), expected_b, rtol=1e-12, atol=1e-12)


@given(data=st.data(), threads=st.sampled_from([1, 3]))
def test_linear_vjp_formula(data, threads):
    """(eq-linear): y = x W + b as one node; dL/dx = G W^T, dL/dW = x^T G and dL/db = G summed
    over the rows, every leading axis of x folded into the rows; the same over three threads
    with pieces as small as one row."""
    lead = data.draw(hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3))
    k, m = (data.draw(st.integers(1, 4)) for _ in range(2))
    X0, W0, b0 = (data.draw(S.arrays(shape)) for shape in ((*lead, k), (k, m), (m,)))
    G = data.draw(S.arrays((*lead, m)))
    X, W, b = (S.to_tensor(a, True) for a in (X0, W0, b0))
    saved = parallel.MIN_WORK, parallel.set_threads(threads)
    parallel.MIN_WORK = 1
    try:
        y = ops.linear(X, W, b)
        assert y.grad_fn.op == "linear" and len(y.grad_fn.parents) == 3
        y.backward(md.tensor(G, dtype=np.float64).data)
    finally:
        parallel.MIN_WORK = saved[0]
        parallel.set_threads(saved[1])
    host = md.backend.to_numpy
    np.testing.assert_allclose(host(y.data), X0 @ W0 + b0, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(X.grad), G @ W0.T, rtol=1e-12, atol=1e-12)
    rows, g_rows = X0.reshape(-1, k), G.reshape(-1, m)
    np.testing.assert_allclose(host(W.grad), rows.T @ g_rows, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(host(b.grad), g_rows.sum(axis=0), rtol=1e-12, atol=1e-12)


def test_linear_names_bad_shapes():
    x = md.tensor(np.zeros((2, 3)))
    with pytest.raises(md.ShapeError, match="last axis"):
        ops.linear(x, md.tensor(np.zeros((4, 5))))
    with pytest.raises(md.ShapeError, match="bias"):
        ops.linear(x, md.tensor(np.zeros((3, 5))), md.tensor(np.zeros(4)))


def test_backward_twice_with_retain_graph_doubles_grad():
    x = md.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_array_equal(md.backend.to_numpy(x.grad), 2 * md.backend.to_numpy(first))


def test_backward_accumulates_across_graphs_until_cleared():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    (3.0 * x).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(md.backend.to_numpy(x.grad), [5.0, 7.0])
    x.grad = None
    (x * 1.0).sum().backward()
    np.testing.assert_array_equal(md.backend.to_numpy(x.grad), [1.0, 1.0])


def test_second_backward_without_retain_graph_is_a_clear_error():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp().sum()
    y.backward()
    with pytest.raises(md.GraphError, match="retain_graph=True"):
        y.backward()


def test_saved_arrays_are_released_after_backward():
    """The arrays an op saved for its backward are freed once backward has used them."""
    x = md.randn(64, requires_grad=True)
    hidden = x.gelu()
    saved = [
        weakref.ref(cell.cell_contents)
        for cell in hidden._node.backward.__closure__
        if hasattr(cell.cell_contents, "shape")
        and cell.cell_contents is not x.data
        and cell.cell_contents is not hidden.data
    ]
    assert saved, "gelu should save an intermediate array"
    loss = hidden.sum()
    loss.backward()
    gc.collect()
    assert all(ref() is None for ref in saved)


def test_retain_graph_keeps_saved_arrays():
    x = md.randn(8, requires_grad=True)
    hidden = x.gelu()
    hidden.sum().backward(retain_graph=True)
    assert hidden._node.backward is not None


def test_long_chain_needs_no_recursion():
    x = md.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = y * 1.0001 + 0.0
    y.sum().backward()
    assert np.isfinite(md.backend.to_numpy(x.grad)).all()
    np.testing.assert_allclose(md.backend.to_numpy(x.grad), [1.0001**10_000], rtol=1e-3)


def test_no_grad_records_nothing():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    with md.no_grad():
        y = x * 2
    assert not y.requires_grad and y.is_leaf
    z = x * 2
    assert z.requires_grad and not z.is_leaf
    assert not z.detach().requires_grad


def test_only_leaves_get_grad():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    h = x * 3.0
    (h * h).sum().backward()
    assert h.grad is None
    np.testing.assert_allclose(md.backend.to_numpy(x.grad), 18 * np.array([1.0, 2.0]))


def test_ndarray_on_the_left_defers_to_tensor(xp):
    x = md.tensor([1.0, 2.0], requires_grad=True)
    for y in (xp.array([2.0, 3.0], dtype=np.float32) * x, xp.float32(2.0) + x, 1.0 - x):
        assert isinstance(y, md.Tensor) and y.requires_grad
    (xp.array([2.0, 3.0], dtype=np.float32) * x).sum().backward()
    np.testing.assert_array_equal(md.backend.to_numpy(x.grad), [2.0, 3.0])


def test_backward_needs_a_gradient_for_non_scalars():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(md.GraphError, match="one-element"):
        (x * 2).backward()
    with pytest.raises(md.GraphError, match="shape"):
        (x * 2).backward(md.ones(3).data)
    with pytest.raises(md.GraphError, match="does not require grad"):
        md.tensor([1.0]).backward()


def test_gradients_flow_through_to_device_copy(device):
    x = md.tensor([1.0, 2.0], requires_grad=True)
    y = x.to("cpu").to(device) * 2.0
    y.sum().backward()
    np.testing.assert_array_equal(md.backend.to_numpy(x.grad), [2.0, 2.0])
