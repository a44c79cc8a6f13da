"""ROC, AUC and the rate at a fixed false-positive rate (eq-auc, eq-bootstrap)."""

import numpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.detect import roc

scores = st.lists(st.floats(-5, 5, allow_nan=False), min_size=1, max_size=30)


@settings(max_examples=50)
@given(negatives=scores, positives=scores)
def test_eq_auc(negatives, positives):
    """The rank formula equals the trapezoid area under the ROC curve, and lies in [0, 1]."""
    fpr, tpr, _ = roc.roc_curve(negatives, positives)
    assert fpr[0] == tpr[0] == 0 and fpr[-1] == tpr[-1] == 1
    assert numpy.all(numpy.diff(fpr) >= 0) and numpy.all(numpy.diff(tpr) >= 0)
    area = numpy.sum(numpy.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2)
    assert roc.auc(negatives, positives) == pytest.approx(area, abs=1e-12)


@settings(max_examples=30)
@given(negatives=scores, gap=st.floats(0.01, 3))
def test_eq_auc_perfect_separator_is_one(negatives, gap):
    positives = numpy.asarray(negatives) + (max(negatives) - min(negatives)) + gap
    assert roc.auc(negatives, positives) == 1.0
    assert roc.auc(positives, negatives) == 0.0
    assert roc.true_positive_rate_at_fpr(negatives, positives) == 1.0


def test_eq_auc_identical_distributions_is_about_a_half():
    rng = numpy.random.default_rng(0)
    values = [roc.auc(rng.normal(size=200), rng.normal(size=200)) for _ in range(20)]
    assert numpy.mean(values) == pytest.approx(0.5, abs=0.02)
    assert roc.auc([1.0, 1.0], [1.0]) == 0.5


@settings(max_examples=50)
@given(negatives=scores, fpr=st.floats(0, 0.5))
def test_threshold_at_fpr_keeps_the_false_positives_under_the_rate(negatives, fpr):
    tau = roc.threshold_at_fpr(negatives, fpr)
    assert (numpy.asarray(negatives) > tau).mean() <= fpr + 1e-12


def test_intervals_hold_the_estimate_and_repeat():
    rng = numpy.random.default_rng(1)
    negatives, positives = rng.normal(size=60), rng.normal(1.0, size=60)
    first = roc.two_sample_interval(roc.auc, negatives, positives)
    assert first["low"] <= first["mean"] <= first["high"]
    assert first == roc.two_sample_interval(roc.auc, negatives, positives)
    rate = roc.rate_with_interval([True, False, True, True])
    assert rate["mean"] == 0.75 and rate["count"] == 4 and rate["low"] <= 0.75 <= rate["high"]


def test_bad_scores_are_a_clear_error():
    with pytest.raises(ValueError, match="no scores"):
        roc.auc([], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        roc.auc([numpy.nan], [1.0])
    with pytest.raises(ValueError, match="fpr"):
        roc.threshold_at_fpr([1.0], 1.5)
