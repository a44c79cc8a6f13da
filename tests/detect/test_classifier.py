"""The detectors' loss (eq-logistic-loss): its value, its gradient in float64, and training."""

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidiff as md
from minidiff.autograd import ops
from minidiff.detect import roc
from minidiff.detect.classifier import (
    LogisticDetector,
    MLPDetector,
    logistic_loss,
    softplus,
    train_detector,
)
from minidiff.errors import ShapeError
from minidiff.nn import functional as F

LABELS = numpy.array([0, 1, 1, 0, 1, 0, 0])


@given(
    labels=st.lists(st.integers(0, 1), min_size=2, max_size=12).filter(
        lambda v: 0 < sum(v) < len(v)
    ),
    seed=st.integers(0, 2**16),
    scale=st.floats(0.1, 30.0),
)
def test_eq_logistic_loss(labels, seed, scale):
    """(eq-logistic-loss) on drawn logits and labels (both classes present): the class-balanced
    mean of softplus(-z) over the generated clips and softplus(z) over the real ones; log 2 at
    zero logits; unchanged when labels flip and logits change sign; lower when a generated
    clip's logit rises."""
    labels = numpy.array(labels)
    z = scale * numpy.random.default_rng(seed).normal(size=len(labels))
    loss = lambda z, y=labels: logistic_loss(md.tensor(z, dtype=numpy.float64), y).item()  # noqa: E731
    positives, negatives = z[labels == 1], z[labels == 0]
    expected = 0.5 * (numpy.logaddexp(0, -positives).mean() + numpy.logaddexp(0, negatives).mean())
    assert loss(z) == pytest.approx(expected, rel=1e-9)
    assert loss(numpy.zeros(len(labels))) == pytest.approx(numpy.log(2))
    assert loss(-z, 1 - labels) == pytest.approx(loss(z), rel=1e-9)
    raised, first = z.copy(), numpy.argmax(labels)
    raised[first] += 1.0
    assert loss(raised) <= loss(z)
    from_zero = numpy.zeros(len(labels))
    from_zero[first] = 1.0
    assert loss(from_zero) < numpy.log(2)


def test_eq_logistic_loss_gradient_logistic_float64():
    """d loss / d (w, b) of the logistic detector against central differences."""
    rng = numpy.random.default_rng(1)
    x = md.tensor(rng.normal(size=(7, 3)), dtype=numpy.float64)
    w, b = rng.normal(size=(3, 1)), rng.normal(size=(1,))
    md.gradcheck(lambda w, b: logistic_loss(ops.linear(x, w, b).reshape(-1), LABELS), w, b)


def test_eq_logistic_loss_gradient_mlp_float64():
    """The MLP detector's loss, through gelu, in all four weight arrays and the input."""
    rng = numpy.random.default_rng(2)
    x = rng.normal(size=(7, 3))
    weights = [rng.normal(size=s) for s in [(3, 4), (4,), (4, 1), (1,)]]

    def loss(x, w1, b1, w2, b2):
        return logistic_loss(ops.linear(F.gelu(ops.linear(x, w1, b1)), w2, b2).reshape(-1), LABELS)

    md.gradcheck(loss, x, *weights)
    # the detector computes the same function
    detector = MLPDetector(3, hidden=4)
    for p, value in zip(detector.parameters(), weights):
        p.data = value.astype(numpy.float32).reshape(p.shape)
    ours = detector(md.tensor(x.astype(numpy.float32))).numpy()
    with md.no_grad():
        theirs = ops.linear(F.gelu(ops.linear(md.tensor(x), *weights[:2])), *weights[2:])
    assert ours == pytest.approx(theirs.numpy().ravel(), abs=1e-5)


def test_softplus_has_slope_one_half_at_zero():
    """Zero-initialised weights give logits of exactly 0: the slope there must be sigma(0)."""
    z = md.tensor(numpy.zeros(3), requires_grad=True)
    softplus(z).sum().backward()
    assert numpy.allclose(z.grad, 0.5)
    assert numpy.isfinite(softplus(md.tensor([1e4, -1e4])).numpy()).all()


@pytest.mark.parametrize("kind", ["logistic", "mlp"])
def test_training_separates_separable_clusters(kind):
    rng = numpy.random.default_rng(3)
    real, generated = rng.normal(size=(40, 5)), rng.normal(size=(30, 5)) + 3.0
    detector = train_detector(real, generated, kind, steps=150)
    assert detector.losses[-1] < detector.losses[0] / 4
    assert roc.auc(detector.score(real), detector.score(generated)) == 1.0
    assert detector.score(real).shape == (40,)


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="both"):
        logistic_loss(md.tensor(numpy.zeros(3)), [1, 1, 1])
    with pytest.raises(ShapeError):
        logistic_loss(md.tensor(numpy.zeros(3)), [1, 0])
    with pytest.raises(ValueError, match="kind"):
        train_detector(numpy.zeros((2, 2)), numpy.ones((2, 2)), "forest")
    with pytest.raises(ShapeError, match="features"):
        LogisticDetector(3).score(numpy.zeros((2, 4)))
