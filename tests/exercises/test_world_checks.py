"""The checks behind exercises 11 and 14 (reading clips back, longer videos by continuation).

The notebooks themselves run in tests/exercises/test_exercises.py with every other exercise;
here each check passes a right answer and fails a typical wrong one with the counterexample: a
centroid without the half pixel, weights left unclipped, the slope from the end points, ``a``
for ``2a``, seams one frame early or no check of the context, replacement of every entry, a
gravity with the wrong sign, and a track whose missing frames are dropped.
"""

import numpy as np
import pytest

from minidiff.checks import grading
from minidiff.checks import world as W
from minidiff.metrics.continuation import acceleration_errors, seam_frames


@pytest.fixture(autouse=True)
def fresh_verdicts():
    grading.reset()
    yield
    grading.reset()


# --- exercise 11: the measurements of the metrics -----------------------------------------------


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
    verdict = W.check_blob_measure(measure_blob)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 11.1 (a blob's area and centroid)")


def test_blob_check_fails_a_centroid_without_the_half_pixel():
    verdict = W.check_blob_measure(lambda alpha: measure_blob(alpha, half=0.0))
    assert verdict.status == "FAILED"
    assert "the centroid (x, y) is wrong" in verdict.message
    assert "a pixel's centre is at (column + 0.5, row + 0.5)" in verdict.message
    assert "alpha = [[1.]]" in verdict.message  # shrunk to one pixel


def test_blob_check_fails_unclipped_weights():
    verdict = W.check_blob_measure(lambda alpha: measure_blob(alpha, clip=False))
    assert verdict.status == "FAILED" and "the area is wrong" in verdict.message


def test_blob_check_fails_swapped_coordinates():
    def row_column(alpha):
        area, centroid = measure_blob(alpha)
        return area, centroid[::-1]

    verdict = W.check_blob_measure(row_column)
    assert verdict.status == "FAILED" and "x and y are swapped" in verdict.message


def test_blob_check_measures_rendered_discs(monkeypatch):
    """The second half of the check (the disc's true centre) runs, and can fail."""
    monkeypatch.setattr(W, "DISC_CENTRE_PX", 1e-9)
    verdict = W.check_blob_measure(measure_blob)
    assert verdict.status == "FAILED"
    assert "drawn by render_clip" in verdict.message
    assert "px from its centre" in verdict.message


def test_velocity_check_passes_least_squares():
    verdict = W.check_velocity_fit(fit_velocity)
    assert verdict.passed, verdict.message


def test_velocity_check_fails_the_slope_from_the_end_points():
    """Exact on a perfect line, so only the noisy points catch it."""

    def end_points(t, positions):
        return (positions[-1] - positions[0]) / (t[-1] - t[0])

    verdict = W.check_velocity_fit(end_points)
    assert verdict.status == "FAILED"
    assert "the velocity (noisy points, against numpy.linalg.lstsq) is wrong" in verdict.message
    assert "expected:" in verdict.message and "got:" in verdict.message


def test_velocity_check_fails_a_line_through_the_origin():
    def through_origin(t, positions):
        return (t[:, None] * positions).sum(axis=0) / (t * t).sum()

    verdict = W.check_velocity_fit(through_origin)
    assert verdict.status == "FAILED"
    assert "the velocity (" in verdict.message and ") is wrong" in verdict.message


def test_gravity_check_passes_two_a():
    verdict = W.check_gravity_fit(fit_gravity)
    assert verdict.passed, verdict.message
    assert "eq-gravity-fit" in verdict.message


def test_gravity_check_fails_a_instead_of_two_a():
    verdict = W.check_gravity_fit(lambda t, y: fit_gravity(t, y, factor=1.0))
    assert verdict.status == "FAILED"
    assert "g_hat (heights exactly on the parabola) is wrong" in verdict.message
    assert "that is half the right value" in verdict.message
    assert "it must satisfy (eq-gravity-fit)" in verdict.message


def test_gravity_check_fails_an_array():
    verdict = W.check_gravity_fit(lambda t, y: 2.0 * np.polyfit(t, y, 2))
    assert verdict.status == "FAILED" and "should be one number" in verdict.message


def test_world_checks_not_done():
    def stub(*args):
        raise NotImplementedError("Exercise 11.1: weigh each pixel's centre by its coverage")

    for check in (
        W.check_blob_measure,
        W.check_velocity_fit,
        W.check_gravity_fit,
        W.check_seam_frames,
        W.check_replacement,
        W.check_acceleration_errors,
    ):
        verdict = check(stub)
        assert verdict.status == "NOT DONE" and "Exercise 11.1" in verdict.message


# --- exercise 14: continuation --------------------------------------------------------------


def replace_known(x_s, known, mask, alpha_bar_s, noise):
    return np.where(mask, np.sqrt(alpha_bar_s) * known + np.sqrt(1 - alpha_bar_s) * noise, x_s)


def test_seam_check_passes_the_library():
    verdict = W.check_seam_frames(seam_frames)
    assert verdict.passed, verdict.message


def test_seam_check_fails_seams_one_frame_early():
    def one_early(total, window, context):
        if not 0 < context < window:
            raise ValueError("bad context")
        return list(range(window - 1, total, window - context))

    verdict = W.check_seam_frames(one_early)
    assert verdict.status == "FAILED"
    assert "seam_frames(total=" in verdict.message and ") is wrong" in verdict.message


def test_seam_check_fails_a_step_of_a_whole_window():
    def whole_windows(total, window, context):
        if not 0 < context < window:
            raise ValueError("bad context")
        return list(range(window, total, window))

    verdict = W.check_seam_frames(whole_windows)
    assert verdict.status == "FAILED" and ") is wrong" in verdict.message


def test_seam_check_fails_a_missing_value_error():
    def unchecked(total, window, context):
        return [] if context >= window else list(range(window, total, window - context))

    verdict = W.check_seam_frames(unchecked)
    assert verdict.status == "FAILED" and "should raise ValueError" in verdict.message


def test_replacement_check_passes_the_formula():
    verdict = W.check_replacement(replace_known)
    assert verdict.passed, verdict.message
    assert "eq-replacement" in verdict.message


def test_replacement_check_fails_replacing_every_entry():
    def everywhere(x_s, known, mask, alpha_bar_s, noise):
        return np.sqrt(alpha_bar_s) * known + np.sqrt(1 - alpha_bar_s) * noise

    verdict = W.check_replacement(everywhere)
    assert verdict.status == "FAILED"
    assert "where mask is False, x_s must stay exactly as it was" in verdict.message
    assert "it must satisfy (eq-replacement)" in verdict.message


def test_replacement_check_fails_coefficients_without_roots():
    def no_roots(x_s, known, mask, alpha_bar_s, noise):
        return np.where(mask, alpha_bar_s * known + (1 - alpha_bar_s) * noise, x_s)

    verdict = W.check_replacement(no_roots)
    assert verdict.status == "FAILED" and "the new x_s is wrong" in verdict.message


def test_replacement_check_fails_noise_left_at_the_end():
    """A floor on the noise level passes at alpha_bar_s < 1 only by accident; at 1 it shows."""

    def floored(x_s, known, mask, alpha_bar_s, noise):
        return replace_known(x_s, known, mask, min(alpha_bar_s, 0.999), noise)

    verdict = W.check_replacement(floored)
    assert verdict.status == "FAILED"


def test_acceleration_check_passes_the_library():
    verdict = W.check_acceleration_errors(acceleration_errors)
    assert verdict.passed, verdict.message


def test_acceleration_check_fails_gravity_with_the_wrong_sign():
    def plus_gravity(positions, gravity):
        second = positions[2:] - 2.0 * positions[1:-1] + positions[:-2]
        return np.hypot(second[:, 0], second[:, 1] + gravity)

    verdict = W.check_acceleration_errors(plus_gravity)
    assert verdict.status == "FAILED"
    assert "it must satisfy (eq-acceleration-error)" in verdict.message


def test_acceleration_check_fails_dropping_missing_frames():
    def dropped(positions, gravity):
        return acceleration_errors(positions[~np.isnan(positions).any(axis=1)], gravity)

    verdict = W.check_acceleration_errors(dropped)
    assert verdict.status == "FAILED" and "but it should have shape" in verdict.message


def test_acceleration_check_fails_nan_filled_with_zero():
    def zero_filled(positions, gravity):
        return np.nan_to_num(acceleration_errors(positions, gravity))

    verdict = W.check_acceleration_errors(zero_filled)
    assert verdict.status == "FAILED"
    assert "should be NaN: a position it uses is missing" in verdict.message


def test_acceleration_check_fails_a_change_to_the_positions():
    def in_place(positions, gravity):
        positions[:, 1] -= 0.5 * gravity * np.arange(len(positions)) ** 2
        return acceleration_errors(positions, 0.0)

    verdict = W.check_acceleration_errors(in_place)
    assert verdict.status == "FAILED" and "changed the positions" in verdict.message
