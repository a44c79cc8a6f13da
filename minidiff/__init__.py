"""minidiff: reverse-mode autograd on NumPy and CuPy arrays, written to be read.

>>> import minidiff as md
>>> x = md.tensor([1.0, 2.0], requires_grad=True)
>>> y = (x * x).sum()
>>> y.backward()
>>> x.grad
array([2., 4.], dtype=float32)
"""

from . import backend, diffusion, models, nn, optim
from .autograd import Tensor, gradcheck, is_grad_enabled, no_grad
from .autograd.ops import (
    abs,
    add,
    broadcast_to,
    clip,
    concatenate,
    div,
    exp,
    gelu,
    log,
    log_softmax,
    logsumexp,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    mul,
    neg,
    pad,
    pow,
    relu,
    reshape,
    sigmoid,
    silu,
    softmax,
    split,
    sqrt,
    squeeze,
    stack,
    sub,
    sum,
    sum_to,
    swapaxes,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from .backend import default_device, device_of, manual_seed, to_device, xp_of
from .creation import arange, full, ones, ones_like, rand, randn, tensor, zeros, zeros_like
from .errors import (
    DeviceError,
    DTypeError,
    GradcheckError,
    GraphError,
    NonFiniteError,
    RunLockError,
    ShapeError,
)
from .io import CheckpointError, load, save

__version__ = "0.1.0"
