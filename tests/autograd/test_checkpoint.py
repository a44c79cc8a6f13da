"""Activation checkpointing: the same gradients as the stored graph, less memory held."""

import tracemalloc

import numpy as np
import pytest

import minidiff as md
from minidiff.autograd.checkpoint import checkpoint
from minidiff.models import UViT, UViTConfig
from minidiff.nn import functional as F


def _config(**overrides):
    values = dict(
        frames=4,
        channels=2,
        height=8,
        width=8,
        patch=2,
        dim=32,
        depth=3,
        heads=2,
        text_dim=6,
        text_length=3,
    )
    return UViTConfig(**{**values, **overrides})


def _inputs(config, batch=2, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    shape = (batch, config.frames, config.channels, config.height, config.width)
    x = md.tensor(rng.standard_normal(shape), dtype=dtype)
    text = md.tensor(rng.standard_normal((batch, config.text_length, config.text_dim)), dtype=dtype)
    return x, rng.integers(0, 1000, size=batch), text


def _grads(model, x, t, text):
    for p in model.parameters():
        p.grad = None
    out = model(x, t, text)
    (out * out).mean().backward()
    return [p.grad.copy() for p in model.parameters()]


@pytest.mark.parametrize("attention", ["joint", "factorized"])
def test_checkpointed_uvit_has_identical_gradients(attention):
    """Same weights, float64: the recomputed graph does the same arithmetic, only the order
    in which a parameter's gradient contributions are summed may differ."""
    md.manual_seed(0)
    plain = UViT(_config(attention=attention), dtype=np.float64)
    md.manual_seed(0)
    saved = UViT(_config(attention=attention, checkpoint_blocks=True), dtype=np.float64)
    x, t, text = _inputs(plain.config, dtype=np.float64)
    for a, b in zip(_grads(plain, x, t, text), _grads(saved, x, t, text)):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


def test_checkpoint_passes_gradients_to_its_inputs_and_parameters():
    rng = np.random.default_rng(1)
    w = md.tensor(rng.standard_normal((3, 3)), requires_grad=True)
    x = md.tensor(rng.standard_normal((4, 3)), requires_grad=True)

    def fn(h):
        return F.gelu(h @ w) * h

    (checkpoint(fn, x) ** 2).sum().backward()
    gx, gw = x.grad.copy(), w.grad.copy()
    x.grad = w.grad = None
    (fn(x) ** 2).sum().backward()
    np.testing.assert_allclose(gx, x.grad, rtol=1e-12)
    np.testing.assert_allclose(gw, w.grad, rtol=1e-12)


def test_checkpoint_replays_dropout_on_the_cpu():
    x = md.tensor(np.ones((64, 8)), requires_grad=True)
    md.manual_seed(3)
    checkpoint(lambda h: F.dropout(h, 0.5, training=True) * h, x).sum().backward()
    with_checkpoint = x.grad.copy()
    x.grad = None
    md.manual_seed(3)
    (F.dropout(x, 0.5, training=True) * x).sum().backward()
    np.testing.assert_array_equal(with_checkpoint, x.grad)


def test_checkpointing_holds_less_memory_between_forward_and_backward():
    """What a graph keeps alive after the forward pass, measured with tracemalloc (NumPy reports
    its allocations to it): checkpointed blocks keep only their inputs."""
    held = {}
    for flag in (False, True):
        md.manual_seed(0)
        model = UViT(_config(depth=5, checkpoint_blocks=flag))
        x, t, text = _inputs(model.config, batch=8)
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        loss = (model(x, t, text) ** 2).mean()
        held[flag] = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
        loss.backward()
    assert held[True] < 0.5 * held[False]
