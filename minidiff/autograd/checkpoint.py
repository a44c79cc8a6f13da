"""Activation checkpointing: trade a second forward pass for the memory of a subgraph.

Reverse mode keeps, for every op of the forward pass, the arrays its backward needs, so the
memory of a training step grows with the depth of the network. ``checkpoint(fn, *inputs)``
runs ``fn`` without recording a graph (its intermediate arrays are freed as soon as they are
used) and records a single node instead, which keeps only the inputs. When the backward pass
reaches that node it runs ``fn`` again, this time recording, and back-propagates through the
fresh graph: the gradients are the same, the activations of ``fn`` live only while its own
backward runs, and the price is one more forward of ``fn`` (book chapter 15).

``fn`` must compute the same thing twice: it may read parameters (their gradients accumulate
as usual) but should not draw random numbers. The CPU generator's state is saved before the
first run and restored for the second, so dropout on the CPU still replays exactly.
"""

from __future__ import annotations

from .. import backend
from .tensor import Tensor, is_grad_enabled, no_grad


def checkpoint(fn, *inputs: Tensor) -> Tensor:
    """``fn(*inputs)`` (one tensor out), recomputed during backward instead of stored."""
    if not is_grad_enabled() or not any(t.requires_grad for t in inputs):
        return fn(*inputs)
    state = backend.get_rng_state()
    with no_grad():
        out = fn(*inputs)

    def backward(g):
        after = backend.get_rng_state()
        backend.set_rng_state(state)
        leaves = [Tensor(t.data, t.requires_grad, t.dtype) for t in inputs]
        recomputed = fn(*leaves)
        backend.set_rng_state(after)
        if recomputed.requires_grad:
            recomputed.backward(g)
        return tuple(leaf.grad if leaf.requires_grad else None for leaf in leaves)

    return Tensor.from_op(out.data, tuple(inputs), backward, "checkpoint")
