"""Making tensors: from data, filled with a constant, or random from the device's generator.

Floating-point tensors are float32 unless ``dtype`` says otherwise; ``device`` defaults to
``MINIDIFF_DEVICE`` (see :mod:`minidiff.backend`).
"""

from __future__ import annotations

from . import backend
from .autograd.tensor import Tensor, unwrap


def tensor(data, requires_grad: bool = False, dtype=None, device: str | None = None) -> Tensor:
    """A new tensor holding a copy of ``data`` (array, scalar or nested lists); float data
    becomes float32 unless ``dtype`` says otherwise.

    >>> import minidiff as md
    >>> md.tensor([[1, 2], [3, 4]], dtype="float32").shape
    (2, 2)
    """
    out = Tensor(data, requires_grad=requires_grad, dtype=dtype, device=device)
    data = unwrap(data)
    if out.data is data or getattr(out.data, "base", None) is not None:
        out.data = out.data.copy()  # like torch.tensor: never share memory with the input
    return out


def _filled(fill, shape, dtype, device, requires_grad) -> Tensor:
    device = backend.check_device(device or backend.default_device())
    xp = backend.module_for(device)
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
    data = xp.full(shape, fill, dtype=dtype or backend.DEFAULT_FLOAT)
    return Tensor(data, requires_grad=requires_grad, dtype=data.dtype, device=device)


def zeros(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of zeros: ``md.zeros(2, 3)`` or ``md.zeros((2, 3))``."""
    return _filled(0, shape, dtype, device, requires_grad)


def ones(*shape, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ones."""
    return _filled(1, shape, dtype, device, requires_grad)


def full(shape, value, dtype=None, device=None, requires_grad=False) -> Tensor:
    """A tensor of ``shape`` filled with ``value``."""
    return _filled(
        value, (shape,) if isinstance(shape, int) else (tuple(shape),), dtype, device, requires_grad
    )


def zeros_like(x: Tensor, requires_grad=False) -> Tensor:
    """Zeros with ``x``'s shape, dtype and device."""
    return zeros(x.shape, dtype=x.dtype, device=x.device, requires_grad=requires_grad)


def ones_like(x: Tensor, requires_grad=False) -> Tensor:
    """Ones with ``x``'s shape, dtype and device."""
    return ones(x.shape, dtype=x.dtype, device=x.device, requires_grad=requires_grad)


def arange(*args, dtype=None, device=None) -> Tensor:
    """``md.arange(stop)`` or ``md.arange(start, stop, step)``, as NumPy's (integers stay int)."""
    xp = backend.module_for(device or backend.default_device())
    data = xp.arange(*args, dtype=dtype)
    return Tensor(data, dtype=dtype)


def _random(draw, shape, dtype, device, requires_grad, generator) -> Tensor:
    device = backend.check_device(device or backend.default_device())
    rng = generator or backend.generator(device)
    shape = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], tuple | list) else shape
    data = draw(rng, shape, dtype or backend.DEFAULT_FLOAT)
    return Tensor(data, requires_grad=requires_grad, dtype=data.dtype, device=device)


def randn(*shape, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    """Standard normal samples from the device's seeded generator (see ``md.manual_seed``)."""
    return _random(
        lambda r, s, d: r.standard_normal(s, dtype=d),
        shape,
        dtype,
        device,
        requires_grad,
        generator,
    )


def rand(*shape, dtype=None, device=None, requires_grad=False, generator=None) -> Tensor:
    """Uniform samples in [0, 1) from the device's seeded generator."""
    return _random(
        lambda r, s, d: r.random(s, dtype=d), shape, dtype, device, requires_grad, generator
    )
