"""Where the memory of a training step goes: what each module's forward pass leaves allocated.

Reverse mode keeps, until the backward pass has used them, the arrays every op saved (book
chapter 2), so after the forward pass a network holds its *activations*: for each module, the
arrays its backward will need and its output. ``held_by_module`` measures them module by module.
On the CPU, NumPy reports every array allocation to Python's ``tracemalloc``, so the count is
exact; on a GPU the CuPy memory pool's bytes in use are read instead.

>>> import numpy as np, minidiff as md
>>> from minidiff.nn import MLP
>>> net = MLP(8, 32, 8)
>>> x = md.tensor(np.ones((64, 8), dtype=np.float32), requires_grad=True)
>>> held = held_by_module(net, lambda: net(x))
>>> held["fc1"] > 0 and held["fc2"] > 0
True
"""

from __future__ import annotations

import contextlib
import sys
import tracemalloc

from . import backend


def bytes_in_use(device: str = "cpu") -> int:
    """Bytes allocated now: traced Python/NumPy memory on the CPU (``tracemalloc`` must be
    tracing), the CuPy pool's used bytes on a GPU."""
    if device == "cpu":
        if not tracemalloc.is_tracing():
            raise RuntimeError("bytes_in_use on the CPU needs tracemalloc.start() first")
        return tracemalloc.get_traced_memory()[0]
    return backend.module_for(device).get_default_memory_pool().used_bytes()


def peak_bytes(device: str = "cpu") -> int:
    """The high-water mark of memory so far. On the CPU, the process's peak resident set size
    (all of it: the interpreter and libraries too). On a GPU, the bytes the CuPy pool holds: the
    pool keeps every block it has allocated for reuse until it is told to free them, so what it
    holds is the largest use so far, rounded up to its block sizes."""
    if device == "cpu":
        import resource  # Unix only

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB on Linux
    return backend.module_for(device).get_default_memory_pool().total_bytes()


@contextlib.contextmanager
def tracing():
    """Trace CPU allocations inside the block (if nothing traces them already)."""
    started = not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        yield
    finally:
        if started:
            tracemalloc.stop()


def _parts(model) -> dict:
    """The model's direct children, with the members of lists of modules named one by one."""
    parts = {}
    for name, child in model._modules.items():
        members = getattr(child, "_modules", {})
        if type(child).__name__ == "ModuleList":
            parts.update({f"{name}.{i}": m for i, m in members.items()})
        else:
            parts[name] = child
    return parts


def held_by_module(model, run, device: str = "cpu") -> dict[str, int]:
    """Call ``run()`` (a forward pass through ``model`` that records a graph) and return, for
    each part of ``model`` (its children, lists of modules expanded), the bytes its forward
    calls left allocated, summed over calls: the activations saved for backward plus outputs.
    The result of ``run()`` is kept alive until the counts are taken, then dropped."""
    parts = _parts(model)
    held = dict.fromkeys(parts, 0)

    def measured(name, forward):
        def wrapper(*args, **kwargs):
            before = bytes_in_use(device)
            out = forward(*args, **kwargs)
            held[name] += bytes_in_use(device) - before
            return out

        return wrapper

    with tracing():
        for name, module in parts.items():
            module.forward = measured(name, module.forward)
        try:
            result = run()
        finally:
            for module in parts.values():
                del module.forward  # the instance attribute goes; the class's forward is back
        del result
    return held
