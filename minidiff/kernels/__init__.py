"""Fused kernels: the hot elementwise chains of a training step, each computed in one go.

An elementwise formula written as separate array operations makes one pass over memory and one
temporary array per operation (book chapter 15, "Fusing elementwise operations"). The kernels
compute the same formulas with fewer passes and no full-size temporaries. Each kernel has three
implementations, one per file:

* ``plain.py``: the formula as ordinary array expressions on any array module, the reference
  (with the math of every kernel and the book's equation labels);
* ``cpu.py``: NumPy ufuncs writing in place into the result, over blocks that stay in a core's
  cache, shared among the threads;
* ``cuda.py``: CUDA kernels made with ``cupy.ElementwiseKernel`` and ``cupy.ReductionKernel``,
  compiled on first use (and, without a GPU, by ``nvrtc.py``'s compile check).

This file holds the table of the three (:data:`KERNELS`), the choice among them
(:func:`implementation`) and the public functions the ops call. Tests compare each kernel with
its plain formula on both devices, and ``MINIDIFF_PLAIN_KERNELS=1`` makes the ops use the plain
formulas (to measure what fusing buys, or to rule a kernel out when hunting a bug). The plain
formulas are also here as ``plain_*``, e.g. :func:`plain_gelu_tanh`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy

from .. import backend
from . import cpu, cuda, plain
from .plain import adam_step as plain_adam_step
from .plain import gelu_tanh as plain_gelu_tanh
from .plain import gelu_tanh_grad as plain_gelu_tanh_grad
from .plain import layer_norm as plain_layer_norm
from .plain import layer_norm_grad as plain_layer_norm_grad
from .plain import rotate_pairs as plain_rotate_pairs
from .plain import silu as plain_silu
from .plain import silu_grad as plain_silu_grad
from .plain import softmax as plain_softmax
from .plain import softmax_grad as plain_softmax_grad


@dataclass(frozen=True)
class Kernel:
    """One kernel's implementations, all with the same signature. ``plain_when_empty``: an
    empty input goes to the plain formula, as the fast paths reduce along rows that must have
    entries (the maximum of an empty row is an error)."""

    plain: Callable
    cpu: Callable
    cuda: Callable
    plain_when_empty: bool = False


KERNELS = {
    "gelu_tanh": Kernel(plain.gelu_tanh, cpu.gelu_tanh, cuda.gelu_tanh),
    "gelu_tanh_grad": Kernel(plain.gelu_tanh_grad, cpu.gelu_tanh_grad, cuda.gelu_tanh_grad),
    "silu": Kernel(plain.silu, cpu.silu, cuda.silu),
    "silu_grad": Kernel(plain.silu_grad, cpu.silu_grad, cuda.silu_grad),
    "softmax": Kernel(plain.softmax, cpu.softmax, cuda.softmax, plain_when_empty=True),
    "softmax_grad": Kernel(
        plain.softmax_grad, cpu.softmax_grad, cuda.softmax_grad, plain_when_empty=True
    ),
    "layer_norm": Kernel(plain.layer_norm, cpu.layer_norm, cuda.layer_norm, plain_when_empty=True),
    "layer_norm_grad": Kernel(
        plain.layer_norm_grad, cpu.layer_norm_grad, cuda.layer_norm_grad, plain_when_empty=True
    ),
    "rotate_pairs": Kernel(plain.rotate_pairs, cpu.rotate_pairs, cuda.rotate_pairs),
    "adam_step": Kernel(plain.adam_step, cpu.adam_step, cuda.adam_step),
}
"""Kernel name -> its plain, CPU and CUDA implementations."""


def use_plain() -> bool:
    """True when ``MINIDIFF_PLAIN_KERNELS=1``: the ops then use the plain formulas."""
    return os.environ.get("MINIDIFF_PLAIN_KERNELS") == "1"


def implementation(name: str, data) -> Callable:
    """The implementation of kernel ``name`` for ``data``, the array whose device decides: the
    plain formula under ``MINIDIFF_PLAIN_KERNELS=1`` (or for an empty ``data`` where the kernel
    says so), the CUDA kernel for a CuPy array, else the CPU kernel."""
    kernel = KERNELS[name]
    if use_plain() or (kernel.plain_when_empty and data.size == 0):
        return kernel.plain
    return kernel.cuda if backend.is_cupy_array(data) else kernel.cpu


def gelu_tanh(x):
    """(GELU(x), t): the forward pass of eq-gelu-tanh; t is what the backward pass needs."""
    return implementation("gelu_tanh", x)(x)


def gelu_tanh_grad(g, x, t):
    """dL/dx = g dGELU/dx (eq-gelu-tanh), from x and the t saved by :func:`gelu_tanh`."""
    return implementation("gelu_tanh_grad", x)(g, x, t)


def silu(x):
    """(SiLU(x), sigmoid(x)): the forward pass, and what the backward pass needs."""
    return implementation("silu", x)(x)


def silu_grad(g, x, s):
    """dL/dx = g s (1 + x (1 - s)), from x and the s saved by :func:`silu`."""
    return implementation("silu_grad", x)(g, x, s)


def softmax(z, scale: float = 1.0, mask=None):
    """y = softmax(scale z + M) over the last axis (eq-softmax); ``mask`` is boolean (False:
    M = -inf, the key is hidden) or a float array added to the logits, broadcast against ``z``.
    A row whose keys are all hidden has no softmax (NaN)."""
    if mask is not None:
        numpy.broadcast_shapes(mask.shape, z.shape)  # raises ValueError naming both shapes
    return implementation("softmax", z)(z, scale, mask)


def softmax_grad(g, y, scale: float = 1.0):
    """dL/dz = scale y (g - sum_j g_j y_j) (eq-softmax-vjp), from the output y."""
    return implementation("softmax_grad", y)(g, y, scale)


def layer_norm(x, weight, bias, eps: float):
    """(y, x_hat, r): layer norm over the last axis (eq-layernorm), with what its backward
    needs; ``weight`` and ``bias`` (shape (d,)) may be None."""
    return implementation("layer_norm", x)(x, weight, bias, eps)


def layer_norm_grad(g, x_hat, rstd, weight, needs=(True, True, True)):
    """(dL/dx, dL/dweight, dL/dbias) of eq-layernorm-vjp from the saved x_hat and r; an entry
    is None where ``needs`` (for x, weight, bias) is False."""
    return implementation("layer_norm_grad", g)(g, x_hat, rstd, weight, needs)


def rotate_pairs(x, cos, sin):
    """Rotate each consecutive pair of x's last axis (eq-rope). A rotation's transpose is the
    rotation by the opposite angle, so the backward pass is ``rotate_pairs(g, cos, -sin)``."""
    return implementation("rotate_pairs", x)(x, cos, sin)


def adam_step(
    p, g, m, v, step_size: float, beta1: float, beta2: float, eps: float, correction2: float
) -> None:
    """One Adam update of ``p``, ``m`` and ``v`` in place (eq-adam); ``step_size`` =
    lr / (1 - b1^t), ``correction2`` = 1 / sqrt(1 - b2^t). On a GPU one kernel launch per
    parameter."""
    return implementation("adam_step", p)(p, g, m, v, step_size, beta1, beta2, eps, correction2)
