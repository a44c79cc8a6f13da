"""The Tensor, the graph it records, and reverse-mode differentiation over that graph.

A :class:`Tensor` wraps an array (``.data``: NumPy or CuPy). When an op is applied to tensors of
which at least one ``requires_grad``, the result remembers a :class:`Node`: its parents and a
``backward`` function that maps the gradient of the loss with respect to the result, ``g``, to the
gradients with respect to each parent (a vector-Jacobian product, book eq. ``eq-vjp``).

``loss.backward()`` visits the graph in reverse topological order (chain rule on a graph, book
eq. ``eq-chain-rule-graph``): the gradient of a tensor is the sum, over every op that used it, of
the vector-Jacobian products flowing back from that op. Leaves accumulate into ``.grad`` as
PyTorch does: a second ``backward`` adds to what is there; set ``.grad = None`` to clear it.

Code that takes a tensor or a plain array alike turns it into what it works on with
:func:`unwrap` (the array), :func:`as_tensor` or :func:`as_floating` (a tensor).
"""

from __future__ import annotations

import functools

import numpy

from .. import backend
from ..errors import DeviceError, DTypeError, GraphError

_grad_enabled = True


def is_grad_enabled() -> bool:
    """False inside ``no_grad()``: ops then record no graph."""
    return _grad_enabled


class no_grad:
    """Context manager (and decorator) in which ops record no graph: for evaluation and updates.

    >>> import minidiff as md
    >>> x = md.tensor([1.0], requires_grad=True)
    >>> with md.no_grad():
    ...     y = x * 2
    >>> y.requires_grad
    False
    """

    def __enter__(self):
        global _grad_enabled
        self._previous, _grad_enabled = _grad_enabled, False

    def __exit__(self, *exc):
        global _grad_enabled
        _grad_enabled = self._previous

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with no_grad():
                return fn(*args, **kwargs)

        return wrapper


class Node:
    """How a tensor was made: its parent tensors and the vector-Jacobian product of the op.

    ``backward(g)`` returns one gradient per parent (``None`` for a parent that needs none).
    The arrays the op saved for backward live in that function's closure; ``release()`` drops
    them, which is what ``backward(retain_graph=False)`` does once a node has been used.
    """

    __slots__ = ("parents", "backward", "op")

    def __init__(self, parents: tuple, backward, op: str):
        self.parents = parents
        self.backward = backward
        self.op = op

    def release(self) -> None:
        self.parents, self.backward = (), None

    @property
    def released(self) -> bool:
        return self.backward is None


def _is_float(dtype) -> bool:
    return numpy.issubdtype(dtype, numpy.floating)


def as_array(data, dtype=None, device: str | None = None):
    """An array on ``device`` from ``data`` (array, scalar or nested list).

    Floating-point data becomes float32 unless ``dtype`` says otherwise (a tensor keeps its own
    dtype); integer and boolean data keep their dtype. Without ``device``, a CuPy array stays on
    the GPU and anything else goes to the default device (``MINIDIFF_DEVICE``).
    """
    if isinstance(data, Tensor):
        data, dtype = data.data, dtype or data.dtype
    if device is None:
        device = (
            backend.device_of(data) if backend.is_cupy_array(data) else backend.default_device()
        )
    xp = backend.module_for(device)
    if backend.device_of(data) != device:
        data = backend.to_device(data, device) if hasattr(data, "shape") else data
    array = xp.asarray(data)
    if dtype is None and (_is_float(array.dtype) or array.dtype == object):
        dtype = backend.DEFAULT_FLOAT
    if dtype is not None and array.dtype != numpy.dtype(dtype):
        array = array.astype(dtype)
    return array


def unwrap(x):
    """The array under a tensor, or ``x`` itself when it is not one (an array, a scalar, a
    list): for code that takes either and works on the data, outside the graph.

    >>> import minidiff as md
    >>> unwrap(md.tensor([1.0, 2.0]))
    array([1., 2.], dtype=float32)
    """
    return x.data if isinstance(x, Tensor) else x


def as_tensor(x) -> Tensor:
    """``x`` itself when it is a tensor (so gradients still reach it), else a new leaf made
    from it as :class:`Tensor` makes one."""
    return x if isinstance(x, Tensor) else Tensor(x)


def as_floating(x) -> Tensor:
    """``x`` as a tensor, integer or boolean data converted to float32 (as ``exp`` of ints is).

    A floating tensor is returned as it is; a converted one is a new leaf, which loses nothing
    because integer and boolean tensors never require gradients."""
    x = as_tensor(x)
    return (
        x if x.dtype.kind == "f" else Tensor(x.data.astype(backend.DEFAULT_FLOAT), device=x.device)
    )


class Tensor:
    """An array that can record the ops applied to it, so gradients flow back to it.

    >>> import minidiff as md
    >>> x = md.tensor([1.0, 2.0, 3.0], requires_grad=True)
    >>> (x * x).sum().backward()
    >>> x.grad
    array([2., 4., 6.], dtype=float32)
    """

    # ndarray (op) Tensor must call Tensor's reflected op, not NumPy's loop over elements.
    __array_priority__ = 1000
    __array_ufunc__ = None

    def __init__(self, data, requires_grad: bool = False, dtype=None, device: str | None = None):
        self.data = as_array(data, dtype, device)
        if requires_grad and not _is_float(self.data.dtype):
            raise DTypeError(
                f"only floating-point tensors can require gradients, got dtype {self.data.dtype}"
            )
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._node: Node | None = None

    @classmethod
    def from_op(cls, data, parents: tuple, backward, op: str) -> Tensor:
        """The tensor an op returns: ``data`` its result, ``parents`` its input tensors,
        ``backward`` the function from the output's gradient to the parents' gradients, ``op``
        the name errors give it. The graph is recorded only if some parent needs a gradient.
        Every op of :mod:`minidiff.autograd.ops`, and any op a reader writes, ends with it."""
        out = cls.__new__(cls)
        out.data, out.grad, out._node = data, None, None
        out.requires_grad = _grad_enabled and any(p.requires_grad for p in parents)
        if out.requires_grad:
            out._node = Node(parents, backward, op)
        return out

    # --- what the tensor is ------------------------------------------------------------------
    shape = property(lambda self: tuple(self.data.shape))
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: int(self.data.size))
    dtype = property(lambda self: self.data.dtype)
    device = property(lambda self: backend.device_of(self.data))
    is_leaf = property(lambda self: self._node is None)
    grad_fn = property(
        lambda self: self._node, doc="The Node that made this tensor (None for a leaf)."
    )

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __repr__(self) -> str:
        body = numpy.array2string(backend.to_numpy(self.data), separator=", ", prefix="Tensor(")
        extra = f", dtype={self.dtype}, device={self.device}"
        if self.requires_grad:
            extra += ", requires_grad=True"
        return f"Tensor({body}{extra})"

    # --- leaving the graph ---------------------------------------------------------------------
    def detach(self) -> Tensor:
        """The same data as a new leaf that records nothing (shares memory)."""
        return Tensor.from_op(self.data, (), None, "detach")

    def numpy(self) -> numpy.ndarray:
        """The data as a NumPy array on the host (a copy if it lives on the GPU)."""
        return backend.to_numpy(self.data)

    def item(self) -> float:
        """The value of a one-element tensor as a Python number (a host sync on the GPU)."""
        if self.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.data.reshape(()).item()

    def to(self, device: str) -> Tensor:
        """This tensor on ``device``; gradients flow back across the copy."""
        backend.check_device(device)
        source = self.device
        if device == source:
            return self

        def backward(g):
            return (backend.to_device(g, source),)

        return Tensor.from_op(backend.to_device(self.data, device), (self,), backward, "to")

    # --- reverse mode --------------------------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's ``.grad`` that requires it.

        ``grad`` is the gradient of some scalar with respect to this tensor; it may be left out
        when this tensor has one element (then it is 1). The graph's saved arrays are released
        afterwards unless ``retain_graph=True``.
        """
        if not self.requires_grad:
            raise GraphError(
                "backward() on a tensor that does not require grad: no input of the computation "
                "had requires_grad=True (or it ran under no_grad())"
            )
        xp = backend.xp_of(self.data)
        if grad is None:
            if self.size != 1:
                raise GraphError(
                    f"backward() without a gradient needs a one-element tensor, got shape "
                    f"{self.shape}; pass grad= of that shape"
                )
            grad = xp.ones(self.data.shape, dtype=self.dtype)
        else:
            grad = as_array(grad, self.dtype, self.device)
            if grad.shape != self.data.shape:
                raise GraphError(f"grad of shape {grad.shape} for a tensor of shape {self.shape}")

        grads = {id(self): grad}
        for tensor in reversed(topological_order(self)):
            g = grads.pop(id(tensor), None)
            if g is None:
                continue
            node = tensor._node
            if node is None:
                # A leaf: accumulate, PyTorch-style. The first gradient is copied so that it
                # never aliases an array the graph still uses.
                tensor.grad = g.copy() if tensor.grad is None else tensor.grad + g
                continue
            parent_grads = node.backward(g)
            for parent, parent_grad in zip(node.parents, parent_grads):
                if parent_grad is None or not parent.requires_grad:
                    continue
                if parent_grad.shape != parent.data.shape:
                    raise GraphError(
                        f"op {node.op!r} returned a gradient of shape {parent_grad.shape} for an "
                        f"input of shape {parent.shape}"
                    )
                key = id(parent)
                grads[key] = parent_grad if key not in grads else grads[key] + parent_grad
            if not retain_graph:
                node.release()


def topological_order(root: Tensor) -> list:
    """Tensors reachable from ``root`` that need gradients, each after all of its parents.

    Iterative depth-first search, so a chain of any length works (no recursion limit).
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        tensor, expanded = stack.pop()
        if expanded:
            order.append(tensor)
            continue
        if id(tensor) in visited:
            continue
        visited.add(id(tensor))
        stack.append((tensor, True))
        node = tensor._node
        if node is None:
            continue
        if node.released:
            raise GraphError(
                f"backward through a graph that was already freed (at op {node.op!r}): "
                "call backward(retain_graph=True) the first time to go backward twice"
            )
        for parent in node.parents:
            if parent.requires_grad and id(parent) not in visited:
                stack.append((parent, False))
    return order


def coerce(value, like: Tensor, op: str) -> Tensor:
    """``value`` as a tensor that may meet ``like`` in a binary op, or a clear error.

    Constants (Python or NumPy scalars, arrays) take ``like``'s floating dtype and device, so a
    NumPy float64 constant cannot silently turn a float32 model into float64. Two tensors must
    share a device, and two floating tensors must share a dtype.
    """
    if isinstance(value, Tensor):
        if value.device != like.device:
            raise DeviceError(
                f"{op}: operands are on different devices: {like.device} (shape {like.shape}) "
                f"and {value.device} (shape {value.shape}); move one with .to(device)"
            )
        if _is_float(value.dtype) and _is_float(like.dtype) and value.dtype != like.dtype:
            raise DTypeError(
                f"{op}: operands have different float dtypes: {like.dtype} (shape {like.shape}) "
                f"and {value.dtype} (shape {value.shape}); convert one with .astype()"
            )
        if _is_float(like.dtype) and not _is_float(value.dtype):
            # integer or boolean data never requires grad: a converted copy loses nothing
            return Tensor(value.data.astype(like.dtype), device=value.device)
        return value
    if hasattr(value, "shape") and backend.device_of(value) != like.device:
        raise DeviceError(
            f"{op}: a {backend.device_of(value)} array (shape {value.shape}) met a tensor on "
            f"{like.device} (shape {like.shape})"
        )
    dtype = like.dtype if _is_float(like.dtype) else None
    return Tensor(value, dtype=dtype, device=like.device)
