r"""Distances between two point clouds, estimated from samples alone.

Both statistics compare laws P and Q through samples a_1..a_n ~ P and b_1..b_m ~ Q, in any
dimension, and both vanish exactly when P = Q:

* the energy distance (Szekely and Rizzo), with X, X' ~ P and Y, Y' ~ Q independent,

  .. math:: D^2(P, Q) = 2\,E\|X - Y\| - E\|X - X'\| - E\|Y - Y'\|;

* the squared maximum mean discrepancy with the Gaussian (RBF) kernel
  k(x, y) = exp(-\|x - y\|^2 / (2 h^2)),

  .. math:: \mathrm{MMD}^2(P, Q) = E\,k(X, X') + E\,k(Y, Y') - 2\,E\,k(X, Y).

Both are estimated by U-statistics: the within-sample means run over distinct pairs i != j,
which makes each estimate unbiased. For two samples of the same law the estimate is therefore
zero *in expectation* and can come out slightly negative; its spread around zero is the noise
floor of the comparison, and it shrinks like 1/n.

The arrays may live on the CPU or a GPU (the module is chosen per array); the sums are
accumulated in float64 whatever the input dtype, and the n x m pairwise table is never held in
memory at once: rows are processed in chunks of at most ``chunk_entries`` pairs.
"""

from __future__ import annotations

import numpy

from .. import backend
from ..autograd.tensor import unwrap

CHUNK_ENTRIES = 1 << 22  # pairs per chunk: a 4M-entry float64 table is 32 MiB
FEW_DIMENSIONS = 16  # up to here, squared distances are summed coordinate by coordinate


def _points(x, name: str):
    """``x`` as a float64 (n, d) array on its own device; a 1-D input is n points in 1-D."""
    data = unwrap(x)
    xp = backend.xp_of(data) if hasattr(data, "shape") else numpy
    data = xp.asarray(data, dtype=numpy.float64)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2:
        raise ValueError(f"{name} must have shape (n, d) or (n,), got {data.shape}")
    if data.shape[0] < 2:
        raise ValueError(f"{name} needs at least 2 points for the unbiased estimate")
    return data


def _pair(a, b):
    a, b = _points(a, "a"), _points(b, "b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"a and b must have the same dimension, got {a.shape[1]} and {b.shape[1]}")
    backend.xp_of(a, b)  # a clear error when one is on the CPU and the other on a GPU
    return a, b


def _squared_distances(a, b, xp):
    """The table ||a_i - b_j||^2 (rows of ``a`` by rows of ``b``).

    In few dimensions it is summed coordinate by coordinate from the differences themselves,
    which is exact for coincident points and avoids NumPy's slow reduction over a short last
    axis. In many dimensions the Gram form |a|^2 + |b|^2 - 2 a.b turns the work into one matrix
    product; it can cancel to a tiny negative number for nearby points, hence the clip at zero.
    """
    if a.shape[1] <= FEW_DIMENSIONS:
        squared = xp.zeros((a.shape[0], b.shape[0]), dtype=numpy.float64)
        for k in range(a.shape[1]):
            difference = a[:, k, None] - b[None, :, k]
            difference *= difference
            squared += difference
        return squared
    squared = (a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * (a @ b.T)
    return xp.maximum(squared, 0.0, out=squared)


def _pairwise_sum(a, b, transform, chunk_entries: int, same: bool = False):
    """sum_{i, j} transform(||a_i - b_j||^2), accumulated in float64 over chunks of rows.

    With ``same`` (``b`` is ``a``), the diagonal distances are set to exactly zero, which the
    Gram form only gets to within rounding (and a square root turns 1e-14 into 1e-7).
    """
    xp = backend.xp_of(a)
    rows = max(1, chunk_entries // b.shape[0])
    total = xp.zeros((), dtype=numpy.float64)
    for start in range(0, a.shape[0], rows):
        squared = _squared_distances(a[start : start + rows], b, xp)
        if same:
            diagonal = xp.arange(squared.shape[0])
            squared[diagonal, start + diagonal] = 0.0
        total += transform(squared).sum()
    return total


def energy_distance(a, b, chunk_entries: int = CHUNK_ENTRIES) -> float:
    r"""The unbiased (U-statistic) estimate of the squared energy distance between the laws of
    ``a`` (n, d) and ``b`` (m, d):

    .. math::
        \hat D^2 = \frac{2}{nm} \sum_{i,j} \|a_i - b_j\|
                 - \frac{1}{n(n-1)} \sum_{i \ne j} \|a_i - a_{j}\|
                 - \frac{1}{m(m-1)} \sum_{i \ne j} \|b_i - b_{j}\|.

    Zero in expectation when both samples come from the same law, positive in expectation
    otherwise; symmetric in ``a`` and ``b`` and invariant under translations and rotations.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> round(energy_distance(rng.normal(size=(500, 2)), rng.normal(3.0, 1.0, (500, 2))), 1)
    5.5
    """
    a, b = _pair(a, b)
    xp = backend.xp_of(a)
    n, m = a.shape[0], b.shape[0]
    # the diagonal terms ||a_i - a_i|| are zero, so the full sums are the sums over i != j
    cross = _pairwise_sum(a, b, xp.sqrt, chunk_entries) / (n * m)
    within_a = _pairwise_sum(a, a, xp.sqrt, chunk_entries, same=True) / (n * (n - 1))
    within_b = _pairwise_sum(b, b, xp.sqrt, chunk_entries, same=True) / (m * (m - 1))
    return float(2.0 * cross - within_a - within_b)


def median_bandwidth(a, b, max_points: int = 1000) -> float:
    """The median heuristic: h = median of ||z_i - z_j|| over distinct pairs of the pooled
    sample z = (a, b). Large samples are thinned to at most ``max_points`` pooled points by an
    even stride through each of ``a`` and ``b``, so the result is deterministic and the same
    for (a, b) and (b, a)."""
    a, b = _pair(a, b)
    xp = backend.xp_of(a)
    half = max(1, max_points // 2)
    a = a[:: max(1, -(-a.shape[0] // half))]
    b = b[:: max(1, -(-b.shape[0] // half))]
    pooled = xp.concatenate([a, b])
    distances = xp.sqrt(_squared_distances(pooled, pooled, xp))  # the diagonal is not used
    upper = xp.triu_indices(pooled.shape[0], k=1)
    return float(xp.median(distances[upper]))


def mmd_rbf(a, b, bandwidth: float | None = None, chunk_entries: int = CHUNK_ENTRIES) -> float:
    r"""The unbiased estimate of the squared maximum mean discrepancy between the laws of ``a``
    (n, d) and ``b`` (m, d) with the kernel k(x, y) = exp(-||x - y||^2 / (2 h^2)):

    .. math::
        \widehat{\mathrm{MMD}}^2 = \frac{1}{n(n-1)} \sum_{i \ne j} k(a_i, a_j)
                                 + \frac{1}{m(m-1)} \sum_{i \ne j} k(b_i, b_j)
                                 - \frac{2}{nm} \sum_{i,j} k(a_i, b_j).

    ``bandwidth`` h defaults to the median heuristic (:func:`median_bandwidth`). The RBF kernel
    is characteristic, so the population value is zero only when the two laws agree.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> mmd_rbf(rng.normal(size=(500, 2)), rng.normal(3.0, 1.0, (500, 2))) > 0.3
    True
    """
    a, b = _pair(a, b)
    xp = backend.xp_of(a)
    h = median_bandwidth(a, b) if bandwidth is None else float(bandwidth)
    if not h > 0:
        raise ValueError(f"bandwidth must be positive, got {h}")
    scale = -1.0 / (2.0 * h * h)

    def kernel(squared):
        return xp.exp(scale * squared)

    n, m = a.shape[0], b.shape[0]
    # k(a_i, a_i) = 1 on the diagonal: remove those n (and m) ones to keep only i != j
    within_a = (_pairwise_sum(a, a, kernel, chunk_entries, same=True) - n) / (n * (n - 1))
    within_b = (_pairwise_sum(b, b, kernel, chunk_entries, same=True) - m) / (m * (m - 1))
    cross = _pairwise_sum(a, b, kernel, chunk_entries) / (n * m)
    return float(within_a + within_b - 2.0 * cross)
