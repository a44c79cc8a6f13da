"""Exercise 11 (reading clips back): the checks of ``minidiff.checks.ex11_metrics``.

Each check passes a right answer and fails a typical wrong one with the counterexample: a
centroid without the half pixel, weights left unclipped, swapped coordinates, the slope from
the end points, ``a`` for ``2a``.
"""

import numpy as np

from minidiff.checks import ex11_metrics as E


def measure_blob(alpha, half=0.5, clip=True):
    w = np.clip(alpha, 0.0, 1.0) if clip else alpha
    rows, columns = np.indices(alpha.shape)
    area = w.sum()
    return area, np.array([(w * (columns + half)).sum(), (w * (rows + half)).sum()]) / area


def fit_velocity(t, positions):
    design = np.stack([np.ones_like(t), t], axis=1)
    return np.linalg.lstsq(design, positions, rcond=None)[0][1]


def fit_gravity(t, y, factor=2.0):
    return factor * np.polyfit(t, y, 2)[0]


def test_blob_check_passes_the_weighted_sums():
    verdict = E.check_blob_measure(measure_blob)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 11.1 (a blob's area and centroid)")


def test_blob_check_fails_a_centroid_without_the_half_pixel():
    verdict = E.check_blob_measure(lambda alpha: measure_blob(alpha, half=0.0))
    assert verdict.status == "FAILED"
    assert "the centroid (x, y) is wrong" in verdict.message
    assert "a pixel's centre is at (column + 0.5, row + 0.5)" in verdict.message
    assert "alpha = [[1.]]" in verdict.message  # shrunk to one pixel


def test_blob_check_fails_unclipped_weights():
    verdict = E.check_blob_measure(lambda alpha: measure_blob(alpha, clip=False))
    assert verdict.status == "FAILED" and "the area is wrong" in verdict.message


def test_blob_check_fails_swapped_coordinates():
    def row_column(alpha):
        area, centroid = measure_blob(alpha)
        return area, centroid[::-1]

    verdict = E.check_blob_measure(row_column)
    assert verdict.status == "FAILED" and "x and y are swapped" in verdict.message


def test_blob_check_measures_rendered_discs(monkeypatch):
    """The second half of the check (the disc's true centre) runs, and can fail."""
    monkeypatch.setattr(E, "DISC_CENTRE_PX", 1e-9)
    verdict = E.check_blob_measure(measure_blob)
    assert verdict.status == "FAILED"
    assert "drawn by render_clip" in verdict.message
    assert "px from its centre" in verdict.message


def test_velocity_check_passes_least_squares():
    verdict = E.check_velocity_fit(fit_velocity)
    assert verdict.passed, verdict.message


def test_velocity_check_fails_the_slope_from_the_end_points():
    """Exact on a perfect line, so only the noisy points catch it."""

    def end_points(t, positions):
        return (positions[-1] - positions[0]) / (t[-1] - t[0])

    verdict = E.check_velocity_fit(end_points)
    assert verdict.status == "FAILED"
    assert "the velocity (noisy points, against numpy.linalg.lstsq) is wrong" in verdict.message
    assert "expected:" in verdict.message and "got:" in verdict.message


def test_velocity_check_fails_a_line_through_the_origin():
    def through_origin(t, positions):
        return (t[:, None] * positions).sum(axis=0) / (t * t).sum()

    verdict = E.check_velocity_fit(through_origin)
    assert verdict.status == "FAILED"
    assert "the velocity (" in verdict.message and ") is wrong" in verdict.message


def test_gravity_check_passes_two_a():
    verdict = E.check_gravity_fit(fit_gravity)
    assert verdict.passed, verdict.message
    assert "eq-gravity-fit" in verdict.message


def test_gravity_check_fails_a_instead_of_two_a():
    verdict = E.check_gravity_fit(lambda t, y: fit_gravity(t, y, factor=1.0))
    assert verdict.status == "FAILED"
    assert "g_hat (heights exactly on the parabola) is wrong" in verdict.message
    assert "that is half the right value" in verdict.message
    assert "it must satisfy (eq-gravity-fit)" in verdict.message


def test_gravity_check_fails_an_array():
    verdict = E.check_gravity_fit(lambda t, y: 2.0 * np.polyfit(t, y, 2))
    assert verdict.status == "FAILED" and "should be one number" in verdict.message


def test_metrics_checks_not_done():
    def stub(*args):
        raise NotImplementedError("Exercise 11.1: weigh each pixel's centre by its coverage")

    for check in (
        E.check_blob_measure,
        E.check_velocity_fit,
        E.check_gravity_fit,
    ):
        verdict = check(stub)
        assert verdict.status == "NOT DONE" and "Exercise 11.1" in verdict.message
