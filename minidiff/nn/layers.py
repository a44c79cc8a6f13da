"""Layers: Linear, Conv2d, LayerNorm, Embedding, Dropout, Identity, Sequential, ModuleList, MLP."""

from __future__ import annotations

import math

import numpy

from .. import backend
from ..autograd import ops
from ..autograd.tensor import Tensor, unwrap
from ..errors import DTypeError, ShapeError
from . import functional as F
from . import init
from .module import Module, Parameter


def _empty(*shape, dtype=None, device=None) -> Parameter:
    device = device or backend.default_device()
    xp = backend.module_for(device)
    return Parameter(
        xp.zeros(shape, dtype=dtype or backend.DEFAULT_FLOAT),
        device=device,
        dtype=dtype or backend.DEFAULT_FLOAT,
    )


class Linear(Module):
    """y = x W + b with W of shape (in_features, out_features).

    W and b start as U(-1/sqrt(in), 1/sqrt(in)) (PyTorch's default); ``init_weight="xavier"``
    or ``"zeros"`` gives the other common choices.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        init_weight: str = "uniform",
        dtype=None,
        device=None,
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = _empty(in_features, out_features, dtype=dtype, device=device)
        bound = 1.0 / math.sqrt(in_features) if in_features else 0.0
        if init_weight == "uniform":
            init.uniform_(self.weight, -bound, bound)
        elif init_weight == "xavier":
            init.xavier_uniform_(self.weight)
        elif init_weight != "zeros":
            raise ValueError(
                f"Linear: init_weight must be uniform, xavier or zeros, got {init_weight!r}"
            )
        self.bias = None
        if bias:
            self.bias = _empty(out_features, dtype=dtype, device=device)
            if init_weight == "uniform":
                init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1:] != (self.in_features,):
            raise ShapeError(
                f"Linear({self.in_features}, {self.out_features}): input of shape "
                f"{x.shape} does not end in {self.in_features}"
            )
        return ops.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{self.in_features}, {self.out_features}, bias={self.bias is not None}"


class Conv2d(Module):
    """A k x k convolution with "same" zero padding on channels-last images (..., H, W, C_in).

    Written as a sum of k^2 shifted matrix products (eq-conv-as-shifts):
    y[h, w] = b + sum_{a, c} x_pad[h + a, w + c] W[a, c], W[a, c] of shape (C_in, C_out);
    its backward is that of pad, slicing and matmul.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, dtype=None, device=None
    ):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"Conv2d: kernel_size must be odd for same padding, got {kernel_size}")
        self.in_channels, self.out_channels, self.kernel_size = (
            in_channels,
            out_channels,
            kernel_size,
        )
        fan_in = in_channels * kernel_size**2
        bound = 1.0 / math.sqrt(fan_in)
        self.weight = init.uniform_(
            _empty(kernel_size, kernel_size, in_channels, out_channels, dtype=dtype, device=device),
            -bound,
            bound,
        )
        self.bias = init.uniform_(_empty(out_channels, dtype=dtype, device=device), -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim < 3 or x.shape[-1] != self.in_channels:
            raise ShapeError(
                f"Conv2d({self.in_channels}, {self.out_channels}): input of shape "
                f"{x.shape} is not (..., H, W, {self.in_channels})"
            )
        k, r = self.kernel_size, self.kernel_size // 2
        height, width = x.shape[-3], x.shape[-2]
        padded = x.pad([(0, 0)] * (x.ndim - 3) + [(r, r), (r, r), (0, 0)])
        out = self.bias
        for a in range(k):
            for c in range(k):
                out = out + padded[..., a : a + height, c : c + width, :] @ self.weight[a, c]
        return out

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"


class LayerNorm(Module):
    """Normalize the last axis (eq-layernorm), with a learned scale (ones) and shift (zeros)."""

    def __init__(
        self, dim: int, eps: float = 1e-5, elementwise_affine: bool = True, dtype=None, device=None
    ):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.weight = self.bias = None
        if elementwise_affine:
            self.weight = init.ones_(_empty(dim, dtype=dtype, device=device))
            self.bias = _empty(dim, dtype=dtype, device=device)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1:] != (self.dim,):
            raise ShapeError(
                f"LayerNorm({self.dim}): input of shape {x.shape} does not end in {self.dim}"
            )
        return F.layer_norm(x, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.dim}, eps={self.eps}"


class Embedding(Module):
    """A table of ``num_embeddings`` learned vectors, looked up by integer index.

    The backward of the lookup scatters the incoming gradients into the rows, adding up those
    of an index that occurs several times.
    """

    def __init__(self, num_embeddings: int, dim: int, std: float = 1.0, dtype=None, device=None):
        super().__init__()
        self.num_embeddings, self.dim = num_embeddings, dim
        self.weight = init.normal_(_empty(num_embeddings, dim, dtype=dtype, device=device), std)

    def forward(self, indices) -> Tensor:
        """Rows of ``weight`` for integer ``indices`` of any shape. The range check runs where
        the indices are: free for host indices (moved to the device after it), one device sync
        for indices already on a GPU."""
        indices = unwrap(indices)
        indices = indices if hasattr(indices, "dtype") else numpy.asarray(indices)
        if indices.dtype.kind not in "iu":
            raise DTypeError(f"Embedding: indices must be integers, got dtype {indices.dtype}")
        if indices.size and (int(indices.min()) < 0 or int(indices.max()) >= self.num_embeddings):
            raise ShapeError(
                f"Embedding({self.num_embeddings}, {self.dim}): indices must be in "
                f"[0, {self.num_embeddings}), got [{int(indices.min())}, "
                f"{int(indices.max())}]"
            )
        return self.weight[backend.xp_of(self.weight.data).asarray(indices)]

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.dim}"


class Dropout(Module):
    """Zero entries with probability ``p`` while training (scaling the rest by 1/(1-p))."""

    def __init__(self, p: float = 0.1):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Identity(Module):
    """Returns its input."""

    def forward(self, x):
        return x


class ModuleList(Module):
    """A list of modules whose parameters are registered (as "0", "1", ...)."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Modules applied one after the other."""

    def __init__(self, *modules: Module):
        super().__init__(modules)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x


_ACTIVATIONS = {
    "gelu": F.gelu,
    "silu": F.silu,
    "relu": lambda x: x.relu(),
    "tanh": lambda x: x.tanh(),
}


class MLP(Module):
    """Linear -> activation -> (dropout) -> Linear: the transformer's feed-forward block."""

    def __init__(
        self,
        in_features: int,
        hidden: int,
        out_features: int | None = None,
        activation: str = "gelu",
        dropout: float = 0.0,
        dtype=None,
        device=None,
    ):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"MLP: activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}"
            )
        self.activation = activation
        self.fc1 = Linear(in_features, hidden, dtype=dtype, device=device)
        self.fc2 = Linear(hidden, out_features or in_features, dtype=dtype, device=device)
        self.dropout = Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.dropout(_ACTIVATIONS[self.activation](self.fc1(x))))

    def extra_repr(self) -> str:
        return f"activation={self.activation}"
