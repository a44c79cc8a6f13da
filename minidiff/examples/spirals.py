"""Classify two interleaved spirals with a small MLP trained by AdamW.

The model is minidiff.nn's MLP, h = gelu(x W1 + b1), logits = h W2 + b2, trained on the fused
softmax cross-entropy with AdamW, a warmup + cosine learning-rate schedule and an EMA of the
weights, and checkpointed with ``md.save``. Its gradients are verified with ``md.gradcheck`` in
float64 before training starts.
"""

from __future__ import annotations

import math
import time

import numpy
from tqdm import tqdm

import minidiff as md
from minidiff import nn, optim
from minidiff.nn import functional as F


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


def train(
    steps: int = 1500, hidden: int = 128, lr: float = 1e-2, seed: int = 0, checkpoint=None
) -> dict:
    """Train on 400 points; return the loss curve, accuracy, timings and the (EMA) model."""
    md.manual_seed(seed)
    points, labels = make_spirals(200, noise=0.03, seed=seed)
    x, y = md.tensor(points), md.tensor(labels).data

    # Gradient check of the model's formula and loss in float64 before trusting it.
    x64 = md.tensor(points[:8], dtype=numpy.float64)
    small = nn.MLP(2, 5, 2, dtype=numpy.float64)
    md.gradcheck(
        lambda w1, b1, w2, b2: F.cross_entropy(F.gelu(x64 @ w1 + b1) @ w2 + b2, y[:8]),
        *small.parameters(),
    )

    model = nn.MLP(2, hidden, 2)
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    schedule = optim.LRSchedule.warmup_cosine(opt, warmup_steps=steps // 20, total_steps=steps)
    ema = optim.EMA(model, decay=0.99)
    losses = []
    start = time.perf_counter()
    bar = tqdm(range(steps), desc="training", unit="step")
    for step in bar:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.update(model)
        schedule.step()
        losses.append(loss.item())
        if step % 50 == 0:
            bar.set_postfix(loss=f"{losses[-1]:.4f}")
    seconds = time.perf_counter() - start
    if checkpoint is not None:
        md.save(
            checkpoint,
            model=model,
            optimizer=opt,
            ema=ema,
            schedule=schedule,
            step=steps,
            rng=True,
            config={"hidden": hidden, "lr": lr, "seed": seed},
        )
    ema.copy_to(model)  # evaluate and plot with the averaged weights
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
