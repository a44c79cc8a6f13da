"""Module and Parameter: containers that find their parameters by attribute, like PyTorch's.

A :class:`Module` registers every :class:`Parameter`, sub-module and buffer assigned to it as an
attribute, so ``parameters()``, ``state_dict()`` and ``to(device)`` reach the whole tree.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy

from .. import backend
from ..autograd.tensor import Tensor, as_array, as_tensor, unwrap


class Parameter(Tensor):
    """A tensor that is a trainable weight of a module (``requires_grad`` is always True)."""

    def __init__(self, data, dtype=None, device: str | None = None):
        source = unwrap(data)
        super().__init__(data, requires_grad=True, dtype=dtype, device=device)
        if self.data is source:
            self.data = self.data.copy()  # a parameter owns its array

    def __repr__(self) -> str:
        return "Parameter" + super().__repr__()[len("Tensor") :]


def state_mismatch(own: dict, state: dict, strict: bool = True) -> list[str]:
    """What keeps ``state`` (name -> array) from loading into ``own`` (name -> tensor or array):
    missing and unexpected names (only with ``strict``) and shapes that differ, as sentences."""
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    problems = []
    if strict and missing:
        problems.append(f"missing keys: {missing}")
    if strict and unexpected:
        problems.append(f"unexpected keys: {unexpected}")
    for name in sorted(set(own) & set(state)):
        shape, here = tuple(numpy.shape(state[name])), tuple(own[name].shape)
        if shape != here:
            problems.append(f"{name}: shape {shape} in the state, {here} here")
    return problems


class Module:
    """Base class of layers and models: subclasses set attributes in ``__init__`` and define
    ``forward``. Calling the module calls ``forward``.

    >>> import minidiff as md
    >>> class Affine(md.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.scale = md.nn.Parameter(md.ones(3))
    ...     def forward(self, x):
    ...         return x * self.scale
    >>> [name for name, _ in Affine().named_parameters()]
    ['scale']
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__()")
        if name in self._buffers and not isinstance(value, Parameter | Module):
            self.register_buffer(name, value)  # a buffer stays a buffer when reassigned
            return
        for registry in (self._parameters, self._modules, self._buffers):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name: str, value) -> None:
        """Keep an array that is state but not trained (saved, moved with ``to``)."""
        value = as_tensor(value)
        object.__setattr__(self, name, value)
        self._buffers[name] = value

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # --- walking the tree ----------------------------------------------------------------------
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """This module and every sub-module, each once, with its dotted name."""
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        return (m for _, m in self.named_modules())

    def children(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def _named(self, registry: str) -> Iterator[tuple[str, Tensor]]:
        seen = set()
        for prefix, module in self.named_modules():
            for name, value in getattr(module, registry).items():
                if id(value) not in seen:
                    seen.add(id(value))
                    yield (f"{prefix}.{name}" if prefix else name), value

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Every parameter once (shared ones too), with its dotted name."""
        return self._named("_parameters")

    def parameters(self) -> list[Parameter]:
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> Iterator[tuple[str, Tensor]]:
        return self._named("_buffers")

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # --- state ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """Name -> array (the live data, not a copy) for every parameter and buffer."""
        state = {name: p.data for name, p in self.named_parameters()}
        state.update({name: b.data for name, b in self.named_buffers()})
        return state

    def load_state_dict(self, state: dict, strict: bool = True) -> None:
        """Copy arrays into this module's parameters and buffers (in place, on their device).

        With ``strict`` a missing or unexpected key is an error listing the keys; a wrong shape
        is always an error.
        """
        own = dict(self.named_parameters())
        own.update(self.named_buffers())
        problems = state_mismatch(own, state, strict)
        if problems:
            raise KeyError(f"load_state_dict into {type(self).__name__}: " + "; ".join(problems))
        for name in set(own) & set(state):
            target = own[name]
            target.data[...] = as_array(state[name], dtype=target.dtype, device=target.device)

    def train(self, mode: bool = True) -> Module:
        """Training mode (dropout active) for this module and all below it."""
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Evaluation mode: ``train(False)``."""
        return self.train(False)

    def to(self, device: str) -> Module:
        """Move every parameter and buffer to ``device`` (in place; gradients are dropped)."""
        backend.check_device(device)
        for _, tensor in [*self.named_parameters(), *self.named_buffers()]:
            tensor.data = backend.to_device(tensor.data, device)
            tensor.grad = None
        return self

    def zero_grad(self) -> None:
        """Clear every parameter's ``.grad`` (set it to None)."""
        for p in self.parameters():
            p.grad = None

    # --- display -------------------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        own = sum(p.size for p in self._parameters.values())
        head = f"{type(self).__name__}({self.extra_repr()})"
        if not self._modules:
            return head + (f"  # {own:,} parameters" if own else "")
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        for name, p in self._parameters.items():
            lines.append(f"  ({name}): Parameter{p.shape}")
        for name, module in self._modules.items():
            body = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(f")  # {self.num_parameters():,} parameters")
        return "\n".join(lines)
