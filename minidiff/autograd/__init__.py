"""Reverse-mode automatic differentiation: the Tensor, its ops, and the gradient check."""

import operator

from . import ops
from .gradcheck import gradcheck
from .tensor import (
    Node,
    Tensor,
    as_floating,
    as_tensor,
    is_grad_enabled,
    no_grad,
    topological_order,
    unwrap,
)


def _compare(a, b, op: str, compare) -> Tensor:
    a, b = ops._binary(a, b, op)
    return Tensor(compare(a.data, b.data), device=a.device)


def _bind_methods() -> None:
    """Give Tensor its operators and methods, each a thin call to the op of the same name."""
    T = Tensor
    T.__add__ = lambda a, b: ops.add(a, b)
    T.__radd__ = lambda a, b: ops.add(b, a)
    T.__sub__ = lambda a, b: ops.sub(a, b)
    T.__rsub__ = lambda a, b: ops.sub(b, a)
    T.__mul__ = lambda a, b: ops.mul(a, b)
    T.__rmul__ = lambda a, b: ops.mul(b, a)
    T.__truediv__ = lambda a, b: ops.div(a, b)
    T.__rtruediv__ = lambda a, b: ops.div(b, a)
    T.__pow__ = lambda a, p: ops.pow(a, p)
    T.__rpow__ = lambda a, base: ops.pow(ops._operands(base, a, "pow")[0], a)
    T.__matmul__ = lambda a, b: ops.matmul(a, b)
    T.__rmatmul__ = lambda a, b: ops.matmul(b, a)
    T.__neg__ = lambda a: ops.neg(a)
    T.__getitem__ = lambda a, index: ops.getitem(a, index)
    # Comparisons give boolean tensors outside the graph (they have no useful gradient).
    T.__lt__ = lambda a, b: _compare(a, b, "<", operator.lt)
    T.__le__ = lambda a, b: _compare(a, b, "<=", operator.le)
    T.__gt__ = lambda a, b: _compare(a, b, ">", operator.gt)
    T.__ge__ = lambda a, b: _compare(a, b, ">=", operator.ge)
    for name in (
        "exp log sqrt tanh sigmoid relu gelu silu abs clip astype sum mean var max min "
        "logsumexp softmax log_softmax reshape transpose swapaxes broadcast_to squeeze unsqueeze "
        "pow matmul maximum minimum pad split"
    ).split():
        setattr(T, name, getattr(ops, name))
    T.permute = ops.transpose
    T.expand = ops.broadcast_to
    T.T = property(lambda a: ops.transpose(a))
    T.flatten = lambda a: ops.reshape(a, -1)


_bind_methods()

__all__ = [
    "Node",
    "Tensor",
    "as_floating",
    "as_tensor",
    "gradcheck",
    "is_grad_enabled",
    "no_grad",
    "ops",
    "topological_order",
    "unwrap",
]
