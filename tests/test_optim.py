"""Optimizers, clipping, EMA and schedules against their closed forms."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidiff as md
from minidiff import optim
from minidiff.checks import strategies as S


def _param(values):
    return md.nn.Parameter(np.asarray(values, dtype=np.float64), dtype=np.float64)


def host(a):
    return md.backend.to_numpy(a.data if isinstance(a, md.Tensor) else a)


@given(data=st.data())
def test_adam_step_matches_closed_form(data):
    """(eq-adam): after t steps, p = p0 - sum lr m_hat / (sqrt(v_hat) + eps), m and v the
    exponential averages of g and g^2, bias-corrected by 1 - beta^t."""
    shape = data.draw(S.shapes(min_dims=1, min_side=1))
    p0 = data.draw(S.arrays(shape))
    grads = [data.draw(S.arrays(shape)) for _ in range(data.draw(st.integers(1, 4)))]
    lr = data.draw(st.sampled_from([1e-3, 1e-2, 0.1]))
    beta1, beta2, eps = 0.9, 0.99, 1e-8
    p = _param(p0)
    opt = optim.Adam([p], lr=lr, betas=(beta1, beta2), eps=eps)
    expected, m, v = p0.copy(), np.zeros(shape), np.zeros(shape)
    for t, g in enumerate(grads, start=1):
        p.grad = md.tensor(g, dtype=np.float64).data
        opt.step()
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        expected -= lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    np.testing.assert_allclose(host(p), expected, rtol=1e-10, atol=1e-12)


@given(data=st.data())
def test_adamw_decay_is_decoupled(data):
    """(eq-adamw): AdamW = p (1 - lr lambda) followed by the plain Adam step; Adam with
    weight_decay instead feeds lambda p into g, so m and v rescale it. They differ exactly so."""
    shape = data.draw(S.shapes(min_dims=1, min_side=1))
    p0 = data.draw(S.arrays(shape, 0.5, 2.0))
    g = data.draw(S.arrays(shape))
    lr, decay = 0.1, 0.5
    a, b, c = _param(p0), _param(p0), _param(p0)
    for param in (a, b, c):
        param.grad = md.tensor(g, dtype=np.float64).data
    optim.AdamW([a], lr=lr, weight_decay=decay).step()
    optim.Adam([b], lr=lr).step()
    optim.Adam([c], lr=lr, weight_decay=decay).step()
    # one step: m_hat = g, v_hat = g^2, so the Adam update is lr g / (|g| + eps)
    adam_update = lr * g / (np.abs(g) + 1e-8)
    np.testing.assert_allclose(host(a), p0 * (1 - lr * decay) - adam_update, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(host(b), p0 - adam_update, rtol=1e-9, atol=1e-12)
    g_l2 = g + decay * p0
    np.testing.assert_allclose(
        host(c), p0 - lr * g_l2 / (np.abs(g_l2) + 1e-8), rtol=1e-9, atol=1e-12
    )


@given(
    lr=st.floats(1e-3, 1.0),
    momentum=st.floats(0.0, 0.99),
    nesterov=st.booleans(),
    steps=st.integers(1, 6),
    seed=st.integers(0, 2**16),
)
def test_sgd_momentum_matches_recursion(lr, momentum, nesterov, steps, seed):
    """(eq-sgd-momentum): b_t = mu b_{t-1} + g_t (b_1 = g_1); p <- p - lr b_t, or with Nesterov
    p <- p - lr (g_t + mu b_t)."""
    grads = np.random.default_rng(seed).standard_normal((steps, 3))
    p = _param(np.zeros(3))
    opt = optim.SGD([p], lr=lr, momentum=momentum, nesterov=nesterov)
    buffer, expected = np.zeros(3), np.zeros(3)
    for t, g in enumerate(grads):
        p.grad = md.tensor(g, dtype=np.float64).data
        opt.step()
        buffer = g.copy() if t == 0 else momentum * buffer + g
        expected -= lr * (g + momentum * buffer if nesterov else buffer)
    np.testing.assert_allclose(host(p), expected, rtol=1e-12, atol=1e-14)


def test_sgd_converges_on_a_random_convex_quadratic():
    rng = np.random.default_rng(1)
    q = rng.standard_normal((6, 6))
    hessian = q @ q.T + 0.5 * np.eye(6)
    target = rng.standard_normal(6)
    a_t = md.tensor(hessian, dtype=np.float64)
    for momentum in (0.0, 0.9):
        x = _param(np.zeros(6))
        opt = optim.SGD([x], lr=0.5 / np.linalg.eigvalsh(hessian).max(), momentum=momentum)
        for _ in range(3000):
            d = x - md.tensor(target, dtype=np.float64)
            loss = 0.5 * (d * (a_t @ d)).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        np.testing.assert_allclose(host(x), target, atol=1e-6)


@given(decay=st.floats(0.0, 0.99), updates=st.integers(1, 8), seed=st.integers(0, 2**16))
def test_ema_is_geometric_sum(decay, updates, seed):
    """(eq-ema): after k updates, shadow = d^k p_0 + (1 - d) sum_j d^(k-j) p_j."""
    model = md.nn.Linear(2, 2)
    ema = optim.EMA(model, decay)
    history = [model.weight.numpy().astype(np.float64)]
    rng = np.random.default_rng(seed)
    for _ in range(updates):
        model.weight.data[...] = rng.standard_normal((2, 2)).astype(np.float32)
        history.append(model.weight.numpy().astype(np.float64))
        ema.update(model)
    k = len(history) - 1
    expected = decay**k * history[0] + (1 - decay) * sum(
        decay ** (k - j) * history[j] for j in range(1, k + 1)
    )
    np.testing.assert_allclose(host(ema.shadow["weight"]), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("optimizer", "hyper", "message"),
    [
        (optim.SGD, {"lr": -0.1}, r"SGD: lr must be in \(0, inf\), got -0.1"),
        (optim.Adam, {"lr": float("nan")}, r"Adam: lr must be in \(0, inf\), got nan"),
        (optim.AdamW, {"lr": float("inf")}, r"AdamW: lr must be in \(0, inf\), got inf"),
        (optim.AdamW, {"weight_decay": -0.01}, r"weight_decay must be in \[0, inf\)"),
        (optim.SGD, {"momentum": 1.0}, r"momentum must be in \[0, 1\), got 1.0"),
        (optim.Adam, {"betas": (0.9, 1.0)}, r"beta2 must be in \[0, 1\), got 1.0"),
        (optim.Adam, {"betas": (0.9,)}, r"betas must be a pair"),
        (optim.Adam, {"eps": 0.0}, r"eps must be in \(0, inf\), got 0.0"),
    ],
)
def test_optimizers_refuse_bad_hyper_parameters_by_name(optimizer, hyper, message):
    with pytest.raises(ValueError, match=message):
        optimizer([md.nn.Parameter(md.zeros(2))], **hyper)


def test_a_parameter_group_is_checked_too():
    a, b = md.nn.Parameter(md.zeros(2)), md.nn.Parameter(md.zeros(2))
    with pytest.raises(ValueError, match=r"lr must be in \(0, inf\), got -1"):
        optim.SGD([{"params": [a]}, {"params": [b], "lr": -1}], lr=0.1)


def test_ema_load_state_dict_names_every_mismatch():
    ema = optim.EMA(md.nn.Linear(2, 3))
    state = ema.state_dict()
    with pytest.raises(KeyError, match=r"missing keys: \['bias'\]"):
        ema.load_state_dict({**state, "shadow": {"weight": state["shadow"]["weight"]}})
    other = optim.EMA(md.nn.Linear(3, 3)).state_dict()
    with pytest.raises(KeyError, match=r"weight: shape \(3, 3\) in the state, \(2, 3\) here"):
        ema.load_state_dict(other)
    extra = {**state["shadow"], "scale": np.ones(1, np.float32)}
    with pytest.raises(KeyError, match=r"unexpected keys: \['scale'\].*decay must be in"):
        ema.load_state_dict({"decay": 1.5, "shadow": extra})


def test_ema_swap_restores_the_trained_weights():
    model = md.nn.Linear(2, 2)
    ema = optim.EMA(model, 0.5)
    trained = model.weight.numpy().copy()
    ema.shadow["weight"][...] = 7.0
    with ema.swapped(model):
        assert (model.weight.numpy() == 7.0).all()
    np.testing.assert_array_equal(model.weight.numpy(), trained)
    ema.copy_to(model)
    assert (model.weight.numpy() == 7.0).all()


@given(
    warmup=st.integers(0, 50),
    decay=st.integers(1, 500),
    min_ratio=st.floats(0.0, 0.5),
    data=st.data(),
)
def test_warmup_cosine_schedule(warmup, decay, min_ratio, data):
    """(eq-warmup-cosine): linear warmup to 1 over the first ``warmup`` steps, then half a cosine
    from 1 at ``warmup`` down to ``min_ratio`` at ``total``, and flat after. Checked by its
    properties: the warmup's line, the end points, the fall, and the half cosine's point symmetry
    about its midpoint, f(warmup + x) + f(total - x) = 1 + min_ratio."""
    total = warmup + decay
    f = lambda s: optim.warmup_cosine(s, warmup, total, min_ratio=min_ratio)  # noqa: E731
    s = data.draw(st.integers(0, total + 100), label="step")
    if s < warmup:
        assert f(s) == pytest.approx((s + 1) / warmup)
        assert f(s) <= f(s + 1)
    assert f(warmup) == pytest.approx(1.0)
    assert f(total) == pytest.approx(min_ratio, abs=1e-12)
    assert f(total + s) == pytest.approx(min_ratio, abs=1e-12)
    if warmup <= s < total:
        assert f(s + 1) <= f(s) + 1e-15
        x = s - warmup
        assert f(warmup + x) + f(total - x) == pytest.approx(1.0 + min_ratio, abs=1e-12)


def test_lr_schedule_sets_the_group_rate_from_warmup_cosine():
    p = _param([1.0])
    opt = optim.SGD([p], lr=2.0)
    schedule = optim.LRSchedule.warmup_cosine(opt, 10, 110)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.2)
    for _ in range(60):
        schedule.step()
    assert opt.param_groups[0]["lr"] == pytest.approx(2.0 * 0.5)


def test_clip_grad_norm_scales_to_the_limit():
    a, b = _param([3.0, 0.0]), _param([0.0, 4.0])
    a.grad, b.grad = a.data.copy(), b.data.copy()
    norm = optim.clip_grad_norm([a, b], 1.0)
    assert float(norm) == pytest.approx(5.0)
    total = math.sqrt(float((a.grad**2).sum() + (b.grad**2).sum()))
    assert total == pytest.approx(1.0, rel=1e-5)
    optim.clip_grad_norm([a, b], 10.0)
    assert math.sqrt(float((a.grad**2).sum() + (b.grad**2).sum())) == pytest.approx(1.0, rel=1e-5)


def test_parameter_groups_and_unknown_options():
    a, b = _param([1.0]), _param([1.0])
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad = b.grad = np.ones(1)
    opt.step()
    assert host(a)[0] == pytest.approx(0.9) and host(b)[0] == pytest.approx(0.5)
    with pytest.raises(TypeError, match="unknown option"):
        optim.Adam([a], learning_rate=0.1)


def test_optimizer_state_dict_round_trip():
    p, q = _param([1.0, 2.0]), _param([1.0, 2.0])
    first = optim.AdamW([p], lr=0.1)
    for _ in range(3):
        p.grad = np.array([0.3, -0.2])
        first.step()
    second = optim.AdamW([q], lr=0.7)
    second.load_state_dict(first.state_dict())
    q.data[...] = p.data
    for opt, param in ((first, p), (second, q)):
        param.grad = np.array([0.1, 0.1])
        opt.step()
    np.testing.assert_array_equal(host(p), host(q))


def test_optimizers_keep_float32():
    model = md.nn.Linear(3, 3)
    for opt in (optim.SGD(model.parameters(), momentum=0.9), optim.AdamW(model.parameters())):
        model(md.randn(2, 3)).sum().backward()
        opt.step()
        assert all(p.dtype == np.float32 for p in model.parameters())
        assert all(
            a.dtype == np.float32
            for s in opt.state.values()
            for a in s.values()
            if hasattr(a, "dtype")
        )
