"""Memory of a training step: graphs are freed after backward, and activations are accounted
for module by module."""

import tracemalloc

import numpy as np

import minidiff as md
from minidiff import memory, optim
from minidiff.memory import bytes_in_use, held_by_module, tracing
from minidiff.models import UViT, UViTConfig
from minidiff.nn import MLP


def _model(**overrides):
    config = UViTConfig(
        frames=4, channels=3, height=8, width=8, patch=2, dim=32, depth=3, heads=2, **overrides
    )
    md.manual_seed(0)
    return UViT(config)


def _batch(model, batch=8, seed=0):
    c = model.config
    rng = np.random.default_rng(seed)
    x = md.tensor(rng.standard_normal((batch, c.frames, c.channels, c.height, c.width)))
    return x, rng.integers(0, 1000, size=batch)


def test_memory_returns_to_baseline_after_every_step():
    """After backward and the optimizer step, nothing of the graph is left: the memory in use
    after each of several steps equals that after the first (parameters, gradients and Adam's
    moments), while between forward and backward the activations are held."""
    model = _model()
    opt = optim.AdamW(model.parameters(), lr=1e-3)
    x, t = _batch(model)

    def step():
        loss = (model(x, t) ** 2).mean()
        held = bytes_in_use()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return held

    with tracing():
        step()
        baseline = bytes_in_use()
        after = []
        for _ in range(3):
            during = step()
            after.append(bytes_in_use())
    activations = during - baseline
    assert activations > 1_000_000
    assert max(abs(a - baseline) for a in after) < 0.01 * activations


def test_per_module_accounting_covers_the_forward_pass():
    """The parts' held bytes add up to (nearly all of) what the whole forward pass holds."""
    model = _model()
    x, t = _batch(model)
    held = held_by_module(model, lambda: model(x, t))
    with tracing():
        before = tracemalloc.get_traced_memory()[0]
        out = model(x, t)
        total = tracemalloc.get_traced_memory()[0] - before
        del out
    assert set(held) >= {"patch_embed", "in_blocks.0", "mid_block", "out_blocks.0", "head"}
    assert all(value >= 0 for value in held.values())
    blocks = sum(v for name, v in held.items() if "block" in name)
    assert blocks > 0.5 * total
    assert 0.8 * total < sum(held.values()) <= 1.05 * total


def test_checkpointed_blocks_hold_only_their_outputs():
    held = {}
    for flag in (False, True):
        model = _model(attention="factorized", checkpoint_blocks=flag)
        x, t = _batch(model)
        held[flag] = held_by_module(model, lambda m=model, x=x, t=t: m(x, t))
    assert held[True]["mid_block"] < 0.3 * held[False]["mid_block"]


def test_an_mlp_holds_what_its_backward_needs():
    """Linear keeps its input (for dL/dW) and GELU its input: a 64 x 32 hidden layer in float32
    holds at least those 8 KB, and the module's output on top."""
    net = MLP(8, 32, 8)
    x = md.tensor(np.ones((64, 8), dtype=np.float32), requires_grad=True)
    held = held_by_module(net, lambda: net(x))
    assert held["fc1"] >= 64 * 32 * 4
    assert sum(held.values()) < 64 * 32 * 4 * 8


def test_peak_bytes_on_the_cpu_covers_a_large_array_just_written():
    before = memory.peak_bytes("cpu")
    block = np.ones(64 << 20, dtype=np.uint8)  # 64 MiB, every page written
    assert memory.peak_bytes("cpu") >= block.nbytes
    assert memory.peak_bytes("cpu") >= before
