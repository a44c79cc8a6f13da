r"""Detectors trained with minidiff's own autograd: logistic regression, then a small MLP.

Both map a clip's standardized features to a logit z (positive: generated) and are fitted by
minimising the class-balanced logistic loss (eq-logistic-loss) with Adam:

.. math:: L = \frac{1}{2} \Big( \frac{1}{n_1} \sum_{y_i = 1} \operatorname{softplus}(-z_i)
          + \frac{1}{n_0} \sum_{y_i = 0} \operatorname{softplus}(z_i) \Big),
          \qquad \operatorname{softplus}(z) = \log(1 + e^{z}),

the negative log-likelihood of :math:`p(y = 1 | x) = \sigma(z)` with each class weighted as if
the two were equally common. Its gradient is :math:`\partial L / \partial z_i = (\sigma(z_i) -
y_i) / (2 n_{y_i})`.
"""

from __future__ import annotations

import numpy

from .. import backend
from ..autograd.tensor import Tensor, no_grad
from ..errors import ShapeError
from ..nn.layers import MLP, Linear
from ..nn.module import Module
from ..optim import AdamW


def softplus(z: Tensor) -> Tensor:
    """log(1 + e^z) as one op, computed as logaddexp(0, z) so that it never overflows.
    d/dz = sigma(z). (Composing max(z, 0) + log(1 + e^{-|z|}) from relu and abs would give the
    subgradient 0 at z = 0, and a detector starting from zero weights would never move.)"""
    xp = backend.xp_of(z.data)
    out = xp.logaddexp(0.0, z.data).astype(z.dtype)
    slope = 0.5 * (1.0 + xp.tanh(0.5 * z.data))
    return Tensor.from_op(out, (z,), lambda g: (g * slope,), "softplus")


def logistic_loss(logits: Tensor, labels) -> Tensor:
    """The class-balanced logistic loss of ``logits`` (n,) against 0/1 ``labels`` (n,)
    (eq-logistic-loss). Both classes must be present."""
    labels = numpy.asarray(labels)
    if labels.ndim != 1 or tuple(logits.shape) != labels.shape:
        raise ShapeError(f"logits {tuple(logits.shape)} and labels {labels.shape} must be (n,)")
    if not set(numpy.unique(labels)) <= {0, 1}:
        raise ValueError(f"labels must be 0 (real) or 1 (generated), got {numpy.unique(labels)}")
    positives = int(labels.sum())
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        raise ValueError("logistic_loss needs both real (0) and generated (1) examples")
    dtype = logits.dtype
    weights = numpy.where(labels == 1, 0.5 / positives, 0.5 / negatives).astype(dtype)
    signs = numpy.where(labels == 1, -1.0, 1.0).astype(dtype)
    xp = backend.xp_of(logits.data)
    return (softplus(logits * xp.asarray(signs)) * xp.asarray(weights)).sum()


class _Detector(Module):
    """Standardizes its input with the training set's mean and spread, then ``head``."""

    def __init__(self, features: int):
        super().__init__()
        self.features = features
        self.mean = numpy.zeros(features, dtype=numpy.float32)
        self.scale = numpy.ones(features, dtype=numpy.float32)

    def fit_standardizer(self, x: numpy.ndarray) -> None:
        self.mean = x.mean(axis=0).astype(numpy.float32)
        self.scale = (x.std(axis=0) + 1e-6).astype(numpy.float32)

    def standardize(self, x) -> numpy.ndarray:
        x = numpy.asarray(x, dtype=numpy.float32)
        if x.ndim != 2 or x.shape[1] != self.features:
            raise ShapeError(f"expected features (n, {self.features}), got shape {x.shape}")
        return (x - self.mean) / self.scale

    def forward(self, x) -> Tensor:
        x = x if isinstance(x, Tensor) else Tensor(self.standardize(x))
        return self.head(x).reshape(-1)

    def score(self, x) -> numpy.ndarray:
        """The logit of every row of raw features ``x`` (higher: more likely generated)."""
        with no_grad():
            return backend.to_numpy(self.forward(x).data).astype(numpy.float64)


class LogisticDetector(_Detector):
    """z = w . x + b on standardized features."""

    def __init__(self, features: int):
        super().__init__(features)
        self.head = Linear(features, 1, init_weight="zeros")


class MLPDetector(_Detector):
    """z = W2 gelu(W1 x + b1) + b2 on standardized features, ``hidden`` units."""

    def __init__(self, features: int, hidden: int = 32):
        super().__init__(features)
        self.head = MLP(features, hidden, 1, activation="gelu")


DETECTORS = {"logistic": LogisticDetector, "mlp": MLPDetector}


def train_detector(
    real,
    generated,
    kind: str = "logistic",
    steps: int = 400,
    lr: float = 0.05,
    weight_decay: float = 1e-3,
    seed: int = 0,
):
    """A detector of ``kind`` fitted to features of ``real`` (label 0) and ``generated``
    (label 1) clips, full batch, ``steps`` AdamW steps (eq-logistic-loss). Returns it with its
    loss curve as ``detector.losses``."""
    if kind not in DETECTORS:
        raise ValueError(f"kind must be one of {sorted(DETECTORS)}, got {kind!r}")
    real, generated = numpy.asarray(real), numpy.asarray(generated)
    if real.ndim != 2 or generated.ndim != 2 or real.shape[1] != generated.shape[1]:
        raise ShapeError(f"features (n, d) expected, got {real.shape} and {generated.shape}")
    backend.manual_seed(seed)
    detector = DETECTORS[kind](real.shape[1])
    x = numpy.concatenate([real, generated]).astype(numpy.float32)
    labels = numpy.concatenate([numpy.zeros(len(real)), numpy.ones(len(generated))])
    labels = labels.astype(numpy.int64)
    detector.fit_standardizer(x)
    inputs = Tensor(detector.standardize(x))
    optimizer = AdamW(detector.parameters(), lr=lr, weight_decay=weight_decay)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = logistic_loss(detector(inputs), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.data)
    detector.losses = [float(v) for v in losses]
    return detector
