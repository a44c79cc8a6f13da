"""Optimizers, gradient clipping, an exponential moving average of weights, and learning-rate
schedules. Updates are written in place on the parameters' arrays, on their device; every
constant is a Python float, so float32 parameters stay float32.

The updates, for parameter p with gradient g at step t (book chapter 3):

* SGD with momentum mu (eq-sgd-momentum): b <- mu b + g;  p <- p - lr b
  (Nesterov: p <- p - lr (g + mu b)).
* Adam (eq-adam): m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
  p <- p - lr m_hat / (sqrt(v_hat) + eps), m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t).
* AdamW (eq-adamw): the same, after a decoupled decay p <- p (1 - lr lambda) that never enters
  m or v (Adam's ``weight_decay`` instead adds lambda p to g, which m and v then rescale).
"""

from __future__ import annotations

import contextlib
import math

from . import backend, config, kernels
from .autograd.tensor import Tensor
from .nn.module import state_mismatch


class Optimizer:
    """Holds parameter groups (each a dict of ``params`` and hyper-parameters) and per-parameter
    state; ``step()`` updates every parameter that has a gradient."""

    defaults: dict = {}

    def __init__(self, params, **hyper):
        unknown = set(hyper) - set(self.defaults)
        if unknown:
            raise TypeError(
                f"{type(self).__name__}: unknown option(s) {sorted(unknown)}; "
                f"known: {sorted(self.defaults)}"
            )
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.param_groups = []
        for group in groups:
            bad = set(group) - set(self.defaults) - {"params"}
            if bad:
                raise TypeError(f"{type(self).__name__}: unknown group option(s) {sorted(bad)}")
            self.param_groups.append(
                {**self.defaults, **hyper, **group, "params": list(group["params"])}
            )
            config.refuse(type(self).__name__, self._problems(self.param_groups[-1]))
        self.state: dict[int, dict] = {}  # id(parameter) -> its state arrays and step count

    def _problems(self, group: dict) -> list:
        """What is wrong with a group's hyper-parameters (None for each that is fine)."""
        return [
            config.number("lr", group["lr"], 0, open_low=True),
            config.number("weight_decay", group["weight_decay"], 0),
        ]

    def zero_grad(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p, p.grad, self.state.setdefault(id(p), {}), group)

    def _update(self, p: Tensor, g, state: dict, group: dict) -> None:
        raise NotImplementedError

    def _parameters(self) -> list:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict:
        """Hyper-parameters per group and state per parameter (by position), no live objects."""
        index = {id(p): i for i, p in enumerate(self._parameters())}
        return {
            "param_groups": [
                {k: v for k, v in g.items() if k != "params"}
                | {"params": [index[id(p)] for p in g["params"]]}
                for g in self.param_groups
            ],
            "state": {str(index[k]): dict(v) for k, v in self.state.items() if k in index},
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned (arrays go to each parameter's device)."""
        params = self._parameters()
        groups = state["param_groups"]
        if [len(g["params"]) for g in groups] != [len(g["params"]) for g in self.param_groups]:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: the saved groups hold "
                f"{[len(g['params']) for g in groups]} parameters, these hold "
                f"{[len(g['params']) for g in self.param_groups]}"
            )
        for group, saved in zip(self.param_groups, groups):
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for key, values in state["state"].items():
            p = params[int(key)]
            self.state[id(p)] = {
                name: backend.to_device(v, p.device).copy() if hasattr(v, "shape") else v
                for name, v in values.items()
            }


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and L2 decay."""

    defaults = {"lr": 1e-2, "momentum": 0.0, "nesterov": False, "weight_decay": 0.0}

    def _problems(self, group):
        return [*super()._problems(group), config.number("momentum", group["momentum"], 0, 1)]

    def _update(self, p, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * p.data
        mu = group["momentum"]
        if mu:
            if "momentum_buffer" not in state:
                state["momentum_buffer"] = g.copy()
            else:
                buffer = state["momentum_buffer"]
                buffer *= mu
                buffer += g
            buffer = state["momentum_buffer"]
            g = g + mu * buffer if group["nesterov"] else buffer
        p.data -= group["lr"] * g


class Adam(Optimizer):
    """Adam (eq-adam); ``weight_decay`` is L2 added to the gradient (see AdamW)."""

    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    decoupled = False

    def _problems(self, group):
        betas = tuple(group["betas"])
        return [
            *super()._problems(group),
            None if len(betas) == 2 else f"betas must be a pair (beta1, beta2), got {betas}",
            *(config.number(f"beta{i}", beta, 0, 1) for i, beta in enumerate(betas[:2], 1)),
            config.number("eps", group["eps"], 0, open_low=True),
        ]

    def _update(self, p, g, state, group):
        xp = backend.xp_of(p.data)
        beta1, beta2 = group["betas"]
        lr, decay = group["lr"], group["weight_decay"]
        if decay and not self.decoupled:
            g = g + decay * p.data
        if "step" not in state:
            state.update(step=0, exp_avg=xp.zeros_like(p.data), exp_avg_sq=xp.zeros_like(p.data))
        state["step"] += 1
        t = state["step"]
        if decay and self.decoupled:
            p.data *= 1.0 - lr * decay
        kernels.adam_step(
            p.data,
            g,
            state["exp_avg"],
            state["exp_avg_sq"],
            step_size=lr / (1.0 - beta1**t),
            beta1=beta1,
            beta2=beta2,
            eps=group["eps"],
            correction2=1.0 / math.sqrt(1.0 - beta2**t),
        )


class AdamW(Adam):
    """Adam with decoupled weight decay (eq-adamw): p <- p (1 - lr lambda) before the step."""

    defaults = {"lr": 1e-3, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 1e-2}
    decoupled = True


def clip_grad_norm(params, max_norm: float):
    """Scale all gradients together so that their global L2 norm is at most ``max_norm``.

    Returns the norm before clipping as a 0-d array on the parameters' device (no host sync:
    call ``float()`` on it only when you log it).
    """
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return 0.0
    xp = backend.xp_of(grads[0])
    total = xp.sqrt(sum((g * g).sum() for g in grads))
    scale = xp.minimum(1.0, max_norm / (total + 1e-6)).astype(grads[0].dtype)
    for g in grads:
        g *= scale
    return total


class EMA:
    """Exponential moving average of a model's parameters (eq-ema):
    shadow <- decay shadow + (1 - decay) p after each ``update()``.

    After k updates from shadow_0 = p_0, shadow_k = decay^k p_0 + (1 - decay) sum_{j=1..k}
    decay^(k-j) p_j. Sample with the averaged weights inside ``with ema.swapped(model):``.
    """

    def __init__(self, model, decay: float = 0.999):
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA: decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.shadow = {name: p.data.copy() for name, p in model.named_parameters()}

    def update(self, model) -> None:
        for name, p in model.named_parameters():
            shadow = self.shadow[name]
            shadow *= self.decay
            shadow += (1.0 - self.decay) * p.data

    def copy_to(self, model) -> None:
        """Put the averaged weights into ``model`` for good (e.g. after training)."""
        for name, p in model.named_parameters():
            p.data[...] = self.shadow[name]

    @contextlib.contextmanager
    def swapped(self, model):
        """Put the averaged weights into ``model`` for the block; restore the trained ones after."""
        params = dict(model.named_parameters())
        saved = {name: p.data.copy() for name, p in params.items()}
        try:
            for name, p in params.items():
                p.data[...] = self.shadow[name]
            yield model
        finally:
            for name, p in params.items():
                p.data[...] = saved[name]

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned: the same names and shapes as this average's
        (the error lists every one that differs) and a decay in [0, 1]."""
        problems = state_mismatch(self.shadow, state["shadow"])
        problems.append(config.number("decay", state["decay"], 0, 1, open_high=False))
        if any(problems):
            raise KeyError("EMA.load_state_dict: " + "; ".join(p for p in problems if p))
        self.decay = state["decay"]
        for name, value in state["shadow"].items():
            target = self.shadow[name]
            target[...] = backend.to_device(value, backend.device_of(target))


def warmup_cosine(step: int, warmup_steps: int, total_steps: int, min_ratio: float = 0.0) -> float:
    """The learning-rate factor at ``step`` (eq-warmup-cosine): linear from 1/warmup to 1 over
    ``warmup_steps``, then cosine from 1 down to ``min_ratio`` at ``total_steps``."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = min(1.0, (step - warmup_steps) / max(1, total_steps - warmup_steps))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


class LRSchedule:
    """Sets each group's ``lr`` to its base value times ``factor(step)``; call ``step()`` once
    per optimizer step. ``LRSchedule(opt)`` alone is the constant schedule."""

    def __init__(self, optimizer: Optimizer, factor=lambda step: 1.0):
        self.optimizer, self.factor = optimizer, factor
        self.base_lrs = [g["lr"] for g in optimizer.param_groups]
        self.last_step = 0
        self._apply()

    @classmethod
    def warmup_cosine(
        cls, optimizer, warmup_steps: int, total_steps: int, min_ratio: float = 0.0
    ) -> LRSchedule:
        return cls(optimizer, lambda s: warmup_cosine(s, warmup_steps, total_steps, min_ratio))

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = base * self.factor(self.last_step)

    def step(self) -> None:
        self.last_step += 1
        self._apply()

    def state_dict(self) -> dict:
        return {"last_step": self.last_step, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict) -> None:
        self.last_step, self.base_lrs = state["last_step"], list(state["base_lrs"])
        self._apply()
