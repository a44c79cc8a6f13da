"""The fused kernels (``minidiff/kernels/``) against their plain formulas, on the device under
test: NumPy blocks and threads on the CPU, CUDA kernels under ``make test-gpu``.

Each kernel is run three ways on the CPU: whole arrays in one block, tiny blocks (so that every
array is cut into many), and tiny blocks shared among three threads. The answers must agree with
the ``plain_*`` twin to rounding, and the threaded answers with the unthreaded ones exactly where
no sum is split between threads.
"""

import contextlib
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minidiff as md
from minidiff import backend, kernels, parallel
from minidiff.autograd import ops
from minidiff.checks import strategies as S

# (elements per block, threads): the defaults, many blocks, many blocks over three threads
LAYOUTS = [(None, 1), (5, 1), (5, 3)]
DTYPES = [np.float32, np.float64]
TOLERANCE = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}


@contextlib.contextmanager
def layout(block, threads):
    """Kernels cut arrays into blocks of ``block`` elements and share them among ``threads``."""
    saved = kernels.cpu.BLOCK, parallel.MIN_WORK
    previous = parallel.set_threads(threads)
    if block is not None:
        kernels.cpu.BLOCK, parallel.MIN_WORK = block, 1
    try:
        yield
    finally:
        kernels.cpu.BLOCK, parallel.MIN_WORK = saved
        parallel.set_threads(previous)


def on_device(array, dtype):
    return md.backend.module_for(md.default_device()).asarray(array, dtype=dtype)


def host(array):
    return backend.to_numpy(array)


def close(got, want, dtype):
    np.testing.assert_allclose(host(got), host(want), **TOLERANCE[dtype])


cases = st.tuples(
    S.arrays(S.shapes(max_side=6), -6.0, 6.0),
    st.sampled_from(LAYOUTS),
    st.sampled_from(DTYPES),
)


@given(case=cases)
def test_gelu_tanh_kernel_matches_plain(case):
    x, (block, threads), dtype = case
    x = on_device(x, dtype)
    g = on_device(np.cos(np.arange(x.size)).reshape(x.shape), dtype)
    with layout(block, threads):
        y, t = kernels.gelu_tanh(x)
        dx = kernels.gelu_tanh_grad(g, x, t)
    y_plain, t_plain = kernels.plain_gelu_tanh(x)
    for got, want in ((y, y_plain), (t, t_plain), (dx, kernels.plain_gelu_tanh_grad(g, x, t))):
        assert got.dtype == dtype and got.shape == x.shape
        close(got, want, dtype)


def test_gelu_tanh_matches_formula():
    """(eq-gelu-tanh) in float64 against the scalar formula, and its derivative against
    central differences of that formula."""
    c, a = math.sqrt(2 / math.pi), 0.044715

    def gelu(v):
        return 0.5 * v * (1 + math.tanh(c * (v + a * v**3)))

    values = np.linspace(-6, 6, 97)
    x = on_device(values, np.float64)
    y, t = kernels.gelu_tanh(x)
    dx = kernels.gelu_tanh_grad(on_device(np.ones(97), np.float64), x, t)
    h = 1e-6
    np.testing.assert_allclose(host(y), [gelu(v) for v in values], rtol=1e-14, atol=1e-15)
    numeric = [(gelu(v + h) - gelu(v - h)) / (2 * h) for v in values]
    np.testing.assert_allclose(host(dx), numeric, rtol=1e-7, atol=1e-9)


@given(case=cases)
def test_silu_kernel_matches_plain(case):
    x, (block, threads), dtype = case
    x = on_device(x, dtype)
    g = on_device(np.sin(np.arange(x.size)).reshape(x.shape), dtype)
    with layout(block, threads):
        y, s = kernels.silu(x)
        dx = kernels.silu_grad(g, x, s)
    y_plain, s_plain = kernels.plain_silu(x)
    for got, want in ((y, y_plain), (s, s_plain), (dx, kernels.plain_silu_grad(g, x, s))):
        assert got.dtype == dtype
        close(got, want, dtype)


@st.composite
def softmax_cases(draw):
    """Logits (..., n) with n >= 1, an optional mask (boolean or additive float) that broadcasts
    against them, a scale, a layout and a dtype."""
    shapes = draw(
        hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=1, max_dims=4, max_side=5)
    )
    z_shape, mask_shape = shapes.input_shapes
    z_shape = shapes.result_shape[:-1] + (max(shapes.result_shape[-1], 1),)
    mask_shape = mask_shape[:-1] + ((z_shape[-1] if mask_shape[-1] != 1 else 1),)
    z = draw(S.arrays(z_shape, -5.0, 5.0))
    kind = draw(st.sampled_from(["none", "bool", "float"]))
    if kind == "bool":
        mask = draw(hnp.arrays(bool, mask_shape))
    elif kind == "float":
        mask = draw(S.arrays(mask_shape, -3.0, 3.0))
    else:
        mask = None
    scale = draw(st.sampled_from([1.0, 0.125, 2.5]))
    return z, mask, scale, draw(st.sampled_from(LAYOUTS)), draw(st.sampled_from(DTYPES))


@given(case=softmax_cases())
def test_scaled_masked_softmax_kernel_matches_plain(case):
    """(eq-softmax, eq-softmax-vjp) with attention's scale and mask: rows whose keys are all
    hidden are NaN in both."""
    z, mask, scale, (block, threads), dtype = case
    z = on_device(z, dtype)
    if mask is not None:
        mask = on_device(mask, bool if mask.dtype == bool else dtype)
    g = on_device(np.cos(3 * np.arange(z.size)).reshape(z.shape), dtype)
    with layout(block, threads), np.errstate(invalid="ignore"):  # 0 / 0 in hidden rows
        y = kernels.softmax(z, scale, mask)
        dz = kernels.softmax_grad(g, y, scale)
        y_plain = kernels.plain_softmax(z, scale, mask)
        dz_plain = kernels.plain_softmax_grad(g, y_plain, scale)
    assert y.dtype == dtype and y.shape == z.shape
    close(y, y_plain, dtype)
    close(dz, dz_plain, dtype)


@st.composite
def layer_norm_cases(draw):
    shape = draw(S.shapes(min_dims=1, max_side=6).filter(lambda s: s[-1] > 0))
    x = draw(S.arrays(shape, -4.0, 4.0)) + draw(st.sampled_from([0.0, 100.0]))
    d = shape[-1]
    weight = draw(st.one_of(st.none(), S.arrays((d,))))
    bias = draw(st.one_of(st.none(), S.arrays((d,))))
    needs = draw(st.tuples(st.booleans(), st.booleans(), st.booleans()))
    return x, weight, bias, needs, draw(st.sampled_from(LAYOUTS)), draw(st.sampled_from(DTYPES))


@given(case=layer_norm_cases())
def test_layer_norm_kernel_matches_plain(case):
    """(eq-layernorm, eq-layernorm-vjp), including a large common offset of 100."""
    x, weight, bias, needs, (block, threads), dtype = case
    x = on_device(x, dtype)
    weight, bias = (None if p is None else on_device(p, dtype) for p in (weight, bias))
    g = on_device(np.sin(np.arange(x.size)).reshape(x.shape), dtype)
    with layout(block, threads):
        y, x_hat, rstd = kernels.layer_norm(x, weight, bias, 1e-5)
        grads = kernels.layer_norm_grad(g, x_hat, rstd, weight, needs)
    plain = kernels.plain_layer_norm(x, weight, bias, 1e-5)
    for got, want in zip((y, x_hat, rstd), plain):
        assert got.dtype == dtype and got.shape == want.shape
        close(got, want, dtype)
    plain_grads = kernels.plain_layer_norm_grad(g, plain[1], plain[2], weight, needs)
    for got, want, needed in zip(grads, plain_grads, needs):
        assert (got is None) == (not needed)
        if needed:
            assert got.dtype == dtype
            close(got, want, dtype)


@given(
    x=S.arrays(st.tuples(st.integers(0, 3), st.integers(1, 5)).map(lambda s: (*s, 6))),
    threads=st.sampled_from([1, 3]),
    dtype=st.sampled_from(DTYPES),
)
def test_rotate_pairs_kernel_matches_plain(x, threads, dtype):
    """(eq-rope): the rotation, and its transpose (the rotation by -angle) undoing it."""
    cos, sin = md.nn.encodings.rope_3d(1, 1, x.shape[1], 6, dtype=dtype)
    x = on_device(x, dtype)
    with layout(5, threads):
        rotated = kernels.rotate_pairs(x, cos, sin)
        back = kernels.rotate_pairs(rotated, cos, -sin)
    close(rotated, kernels.plain_rotate_pairs(x, cos, sin), dtype)
    close(back, x, dtype)


@given(
    p=S.arrays(S.shapes(max_side=5)),
    dtype=st.sampled_from(DTYPES),
    betas=st.tuples(st.sampled_from([0.0, 0.9]), st.sampled_from([0.99, 0.999])),
)
def test_adam_kernel_matches_plain(p, dtype, betas):
    """(eq-adam): three updates in place, fused and plain, from the same start."""
    fused = [on_device(a, dtype) for a in (p, np.zeros_like(p), np.zeros_like(p))]
    plain = [a.copy() for a in fused]
    for t in (1, 2, 3):
        g = on_device(np.cos(t * np.arange(p.size)).reshape(p.shape), dtype)
        args = dict(
            step_size=1e-2 / (1 - betas[0] ** t),
            beta1=betas[0],
            beta2=betas[1],
            eps=1e-8,
            correction2=1 / math.sqrt(1 - betas[1] ** t),
        )
        kernels.adam_step(fused[0], g, fused[1], fused[2], **args)
        kernels.plain_adam_step(plain[0], g, plain[1], plain[2], **args)
    for got, want in zip(fused, plain):
        assert got.dtype == dtype
        close(got, want, dtype)


def test_threads_give_the_same_elementwise_results_bit_for_bit():
    """Threads change who computes a block, not how: elementwise answers are identical."""
    x = on_device(np.random.default_rng(0).standard_normal((64, 333)), np.float32)
    with layout(1000, 1):
        one = [kernels.gelu_tanh(x)[0], kernels.softmax(x, 0.5)]
    with layout(1000, 4):
        four = [kernels.gelu_tanh(x)[0], kernels.softmax(x, 0.5)]
    for a, b in zip(one, four):
        assert np.array_equal(host(a), host(b))


def test_plain_switch_makes_the_ops_use_the_plain_formulas(monkeypatch):
    x = on_device(np.linspace(-4, 4, 50).reshape(5, 10), np.float32)
    monkeypatch.setenv("MINIDIFF_PLAIN_KERNELS", "1")
    assert kernels.use_plain()
    assert np.array_equal(host(ops.gelu(x).data), host(kernels.plain_gelu_tanh(x)[0]))
    assert np.array_equal(host(ops.softmax(x, scale=0.5).data), host(kernels.plain_softmax(x, 0.5)))
    monkeypatch.delenv("MINIDIFF_PLAIN_KERNELS")
    assert not kernels.use_plain()


def test_softmax_op_with_scale_and_mask_is_one_node_with_a_checked_gradient():
    """The fused attention softmax: one graph node, and its gradient equals float64 central
    differences (eq-softmax-vjp times the scale)."""
    rng = np.random.default_rng(2)
    z = rng.standard_normal((2, 3, 5))
    mask = rng.random((2, 1, 5)) > 0.3
    mask[..., 0] = True  # every row keeps a key
    out = ops.softmax(md.tensor(z, dtype=np.float64, requires_grad=True), scale=0.7, mask=mask)
    assert out.grad_fn.op == "softmax" and len(out.grad_fn.parents) == 1
    assert md.gradcheck(lambda t: ops.softmax(t, scale=0.7, mask=mask), z)


def test_softmax_mask_needs_the_last_axis():
    with pytest.raises(md.ShapeError, match="axis=-1"):
        ops.softmax(md.tensor(np.zeros((2, 3))), axis=0, mask=np.ones((2, 3), bool))
    with pytest.raises(md.ShapeError, match="do not broadcast"):
        ops.softmax(md.tensor(np.zeros((2, 3))), mask=np.ones((4,), bool))
