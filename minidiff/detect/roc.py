r"""Scoring a detector: the ROC curve, its area, and the detection rate at a fixed false-positive
rate, each with a percentile-bootstrap interval (eq-bootstrap, :mod:`minidiff.metrics.intervals`).

Scores are higher for "generated". A threshold tau flags a clip when its score exceeds tau; over
all tau, the false-positive rate FPR(tau) on real clips and the true-positive rate TPR(tau) on
generated ones trace the ROC curve. Its area (eq-auc) is the probability that a generated clip
outscores a real one, ties counting half (the Mann-Whitney statistic):

.. math:: \mathrm{AUC} = \frac{1}{n_0 n_1} \sum_{i: y_i = 1} \sum_{j: y_j = 0}
          \Big(\mathbb 1[s_i > s_j] + \tfrac12 \mathbb 1[s_i = s_j]\Big).
"""

from __future__ import annotations

import numpy

from ..metrics.intervals import LEVEL, RESAMPLES, bootstrap_interval

FPR = 0.01  # the false-positive rate the detection rate is read at


def _scores(values, name: str) -> numpy.ndarray:
    array = numpy.asarray(values, dtype=numpy.float64).ravel()
    if array.size == 0:
        raise ValueError(f"{name}: no scores")
    if not numpy.all(numpy.isfinite(array)):
        raise ValueError(f"{name}: scores hold NaN or inf")
    return array


def roc_curve(negatives, positives):
    """(fpr, tpr, thresholds), one point per distinct score from the strictest threshold (+inf,
    nothing flagged) to the loosest (everything flagged); a clip is flagged when score > tau."""
    negatives, positives = _scores(negatives, "negatives"), _scores(positives, "positives")
    taus = numpy.unique(numpy.concatenate([negatives, positives]))[::-1]
    thresholds = numpy.concatenate([[numpy.inf], taus[1:], [-numpy.inf]]) if taus.size else taus
    fpr = numpy.array([(negatives > t).mean() for t in thresholds])
    tpr = numpy.array([(positives > t).mean() for t in thresholds])
    return fpr, tpr, thresholds


def auc(negatives, positives) -> float:
    """The area under the ROC curve (eq-auc), by ranks: P(positive > negative) + P(tie) / 2."""
    negatives, positives = _scores(negatives, "negatives"), _scores(positives, "positives")
    greater = (positives[:, None] > negatives[None, :]).mean()
    ties = (positives[:, None] == negatives[None, :]).mean()
    return float(greater + 0.5 * ties)


def threshold_at_fpr(negatives, fpr: float = FPR) -> float:
    """The smallest threshold tau among the negatives' scores with a fraction of at most ``fpr``
    of them above it (score > tau): the operating point "1% false positives" on real clips."""
    if not 0.0 <= fpr < 1.0:
        raise ValueError(f"fpr must lie in [0, 1), got {fpr}")
    negatives = numpy.sort(_scores(negatives, "negatives"))
    allowed = int(numpy.floor(fpr * negatives.size))  # negatives allowed above the threshold
    return float(negatives[negatives.size - 1 - allowed])


def true_positive_rate_at_fpr(negatives, positives, fpr: float = FPR) -> float:
    """The fraction of positives flagged at :func:`threshold_at_fpr` of the negatives."""
    tau = threshold_at_fpr(negatives, fpr)
    return float((_scores(positives, "positives") > tau).mean())


def two_sample_interval(statistic, negatives, positives, seed: int = 0) -> dict:
    """``{"mean", "low", "high"}``: ``statistic(negatives, positives)`` and its percentile
    bootstrap interval (eq-bootstrap) with both samples resampled independently."""
    negatives, positives = _scores(negatives, "negatives"), _scores(positives, "positives")
    rng = numpy.random.default_rng(seed)
    draws = [
        statistic(
            negatives[rng.integers(0, negatives.size, negatives.size)],
            positives[rng.integers(0, positives.size, positives.size)],
        )
        for _ in range(RESAMPLES // 4)  # each draw sorts and compares: a quarter is plenty
    ]
    tail = (1.0 - LEVEL) / 2.0
    low, high = numpy.quantile(draws, [tail, 1.0 - tail])
    return {"mean": float(statistic(negatives, positives)), "low": float(low), "high": float(high)}


def rate_with_interval(flags) -> dict:
    """``{"mean", "low", "high", "count"}`` of 0/1 ``flags`` (eq-bootstrap)."""
    flags = numpy.asarray(flags, dtype=numpy.float64).ravel()
    low, high = bootstrap_interval(flags)
    return {"mean": float(flags.mean()), "low": low, "high": high, "count": int(flags.size)}


def evaluate(negatives, positives, fpr: float = FPR) -> dict:
    """AUC and the detection rate at ``fpr`` with intervals, the threshold, and the ROC curve."""
    curve_fpr, curve_tpr, _ = roc_curve(negatives, positives)
    return {
        "auc": two_sample_interval(auc, negatives, positives),
        "tpr_at_fpr": two_sample_interval(
            lambda n, p: true_positive_rate_at_fpr(n, p, fpr), negatives, positives
        ),
        "fpr": fpr,
        "threshold": threshold_at_fpr(negatives, fpr),
        "roc": {"fpr": curve_fpr.round(4).tolist(), "tpr": curve_tpr.round(4).tolist()},
        "negatives": int(numpy.size(negatives)),
        "positives": int(numpy.size(positives)),
    }
