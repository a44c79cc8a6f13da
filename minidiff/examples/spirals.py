"""Classify two interleaved spirals with a two-layer MLP written from raw minidiff tensors.

The whole training loop uses only what the engine provides so far: tensors, ops, ``backward``
and a hand-written gradient-descent update under ``no_grad``. The model is

    h = gelu(x W1 + b1),  logits = h W2 + b2,  loss = -mean log_softmax(logits)[label],

and its gradients are verified with ``md.gradcheck`` (in float64) before training starts.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy
from tqdm.auto import tqdm

import minidiff as md


def make_spirals(n_per_class: int, noise: float, seed: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Two spirals in the plane, one per class, as (points (2n, 2), labels (2n,))."""
    rng = numpy.random.default_rng(seed)
    radius = numpy.sqrt(rng.random(n_per_class)) * 3.0 * math.pi
    points, labels = [], []
    for label, turn in enumerate((0.0, math.pi)):
        angle = radius + turn
        xy = numpy.stack([radius * numpy.cos(angle), radius * numpy.sin(angle)], axis=1)
        points.append(xy / (3.0 * math.pi) + noise * rng.standard_normal(xy.shape))
        labels.append(numpy.full(n_per_class, label))
    return numpy.concatenate(points).astype(numpy.float32), numpy.concatenate(labels)


@dataclass
class MLP:
    """Parameters of a two-layer perceptron, held as leaf tensors."""

    w1: md.Tensor
    b1: md.Tensor
    w2: md.Tensor
    b2: md.Tensor

    @classmethod
    def create(cls, hidden: int, dtype=numpy.float32) -> MLP:
        def param(*shape, scale):
            return md.tensor(
                md.randn(*shape, dtype=dtype).data * scale, requires_grad=True, dtype=dtype
            )

        return cls(
            param(2, hidden, scale=math.sqrt(2.0 / 2)),
            md.zeros(hidden, dtype=dtype, requires_grad=True),
            param(hidden, 2, scale=math.sqrt(1.0 / hidden)),
            md.zeros(2, dtype=dtype, requires_grad=True),
        )

    def parameters(self) -> list:
        return [self.w1, self.b1, self.w2, self.b2]

    def __call__(self, x: md.Tensor) -> md.Tensor:
        return (x @ self.w1 + self.b1).gelu() @ self.w2 + self.b2


def cross_entropy(logits: md.Tensor, labels) -> md.Tensor:
    """Mean of -log softmax(logits)[label], picked by integer indexing."""
    rows = md.arange(len(labels)).data
    return -md.log_softmax(logits, axis=-1)[rows, labels].mean()


def train(steps: int = 3000, hidden: int = 128, lr: float = 1.0, seed: int = 0) -> dict:
    """Train on 400 points; return the loss curve, accuracy, timings and the model."""
    md.manual_seed(seed)
    points, labels = make_spirals(200, noise=0.03, seed=seed)
    x, y = md.tensor(points), md.tensor(labels).data

    # Gradient check of the whole model and loss in float64 before trusting it.
    small = MLP.create(hidden=5, dtype=numpy.float64)
    md.gradcheck(
        lambda *p: cross_entropy(MLP(*p)(md.tensor(points[:8], dtype=numpy.float64)), y[:8]),
        *small.parameters(),
    )

    model = MLP.create(hidden)
    losses = []
    start = time.perf_counter()
    bar = tqdm(range(steps), desc="training", unit="step")
    for step in bar:
        loss = cross_entropy(model(x), y)
        for p in model.parameters():
            p.grad = None
        loss.backward()
        rate = lr * 0.5 * (1 + math.cos(math.pi * step / steps))  # cosine decay
        with md.no_grad():
            for p in model.parameters():
                p.data -= rate * p.grad
        losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    seconds = time.perf_counter() - start
    with md.no_grad():
        predicted = model(x).numpy().argmax(axis=1)
    accuracy = float((predicted == md.backend.to_numpy(y)).mean())
    return {
        "losses": losses,
        "accuracy": accuracy,
        "seconds": seconds,
        "model": model,
        "points": points,
        "labels": md.backend.to_numpy(y),
    }


def plot(result: dict, path) -> None:
    """Loss curve and decision regions side by side, saved as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_field) = plt.subplots(1, 2, figsize=(10, 4.2), dpi=100)
    ax_loss.semilogy(result["losses"])
    ax_loss.set(xlabel="step", ylabel="cross-entropy", title="training loss")
    grid = numpy.linspace(-1.2, 1.2, 200, dtype=numpy.float32)
    gx, gy = numpy.meshgrid(grid, grid)
    with md.no_grad():
        field = (
            md.softmax(result["model"](md.tensor(numpy.stack([gx.ravel(), gy.ravel()], 1))), -1)
            .numpy()[:, 1]
            .reshape(gx.shape)
        )
    ax_field.contourf(gx, gy, field, levels=20, cmap="coolwarm", alpha=0.6)
    ax_field.scatter(
        *result["points"].T,
        c=result["labels"],
        cmap="coolwarm",
        s=6,
        edgecolors="k",
        linewidths=0.2,
    )
    ax_field.set(title=f"decision regions (accuracy {result['accuracy']:.1%})", aspect="equal")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
