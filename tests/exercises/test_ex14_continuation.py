"""Exercise 14 (longer videos by continuation): the checks of
``minidiff.checks.ex14_continuation``.

Each check passes a right answer and fails a typical wrong one with the counterexample: seams
one frame early or no check of the context, replacement of every entry, a gravity with the
wrong sign, and a track whose missing frames are dropped.
"""

import numpy as np

from minidiff.checks import ex14_continuation as E
from minidiff.metrics.continuation import acceleration_errors, seam_frames


def replace_known(x_s, known, mask, alpha_bar_s, noise):
    return np.where(mask, np.sqrt(alpha_bar_s) * known + np.sqrt(1 - alpha_bar_s) * noise, x_s)


def test_seam_check_passes_the_library():
    verdict = E.check_seam_frames(seam_frames)
    assert verdict.passed, verdict.message


def test_seam_check_fails_seams_one_frame_early():
    def one_early(total, window, context):
        if not 0 < context < window:
            raise ValueError("bad context")
        return list(range(window - 1, total, window - context))

    verdict = E.check_seam_frames(one_early)
    assert verdict.status == "FAILED"
    assert "seam_frames(total=" in verdict.message and ") is wrong" in verdict.message


def test_seam_check_fails_a_step_of_a_whole_window():
    def whole_windows(total, window, context):
        if not 0 < context < window:
            raise ValueError("bad context")
        return list(range(window, total, window))

    verdict = E.check_seam_frames(whole_windows)
    assert verdict.status == "FAILED" and ") is wrong" in verdict.message


def test_seam_check_fails_a_missing_value_error():
    def unchecked(total, window, context):
        return [] if context >= window else list(range(window, total, window - context))

    verdict = E.check_seam_frames(unchecked)
    assert verdict.status == "FAILED" and "should raise ValueError" in verdict.message


def test_replacement_check_passes_the_formula():
    verdict = E.check_replacement(replace_known)
    assert verdict.passed, verdict.message
    assert "eq-replacement" in verdict.message


def test_replacement_check_fails_replacing_every_entry():
    def everywhere(x_s, known, mask, alpha_bar_s, noise):
        return np.sqrt(alpha_bar_s) * known + np.sqrt(1 - alpha_bar_s) * noise

    verdict = E.check_replacement(everywhere)
    assert verdict.status == "FAILED"
    assert "where mask is False, x_s must stay exactly as it was" in verdict.message
    assert "it must satisfy (eq-replacement)" in verdict.message


def test_replacement_check_fails_coefficients_without_roots():
    def no_roots(x_s, known, mask, alpha_bar_s, noise):
        return np.where(mask, alpha_bar_s * known + (1 - alpha_bar_s) * noise, x_s)

    verdict = E.check_replacement(no_roots)
    assert verdict.status == "FAILED" and "the new x_s is wrong" in verdict.message


def test_replacement_check_fails_noise_left_at_the_end():
    """A floor on the noise level passes at alpha_bar_s < 1 only by accident; at 1 it shows."""

    def floored(x_s, known, mask, alpha_bar_s, noise):
        return replace_known(x_s, known, mask, min(alpha_bar_s, 0.999), noise)

    verdict = E.check_replacement(floored)
    assert verdict.status == "FAILED"


def test_acceleration_check_passes_the_library():
    verdict = E.check_acceleration_errors(acceleration_errors)
    assert verdict.passed, verdict.message


def test_acceleration_check_fails_gravity_with_the_wrong_sign():
    def plus_gravity(positions, gravity):
        second = positions[2:] - 2.0 * positions[1:-1] + positions[:-2]
        return np.hypot(second[:, 0], second[:, 1] + gravity)

    verdict = E.check_acceleration_errors(plus_gravity)
    assert verdict.status == "FAILED"
    assert "it must satisfy (eq-acceleration-error)" in verdict.message


def _own_acceleration_errors(positions, gravity):
    """eq-acceleration-error written out here: the check refuses the library's own function."""
    second = positions[2:] - 2.0 * positions[1:-1] + positions[:-2]
    return np.hypot(second[:, 0], second[:, 1] - gravity)


def test_acceleration_check_fails_dropping_missing_frames():
    def dropped(positions, gravity):
        return _own_acceleration_errors(positions[~np.isnan(positions).any(axis=1)], gravity)

    verdict = E.check_acceleration_errors(dropped)
    assert verdict.status == "FAILED" and "but it should have shape" in verdict.message


def test_acceleration_check_fails_nan_filled_with_zero():
    def zero_filled(positions, gravity):
        return np.nan_to_num(_own_acceleration_errors(positions, gravity))

    verdict = E.check_acceleration_errors(zero_filled)
    assert verdict.status == "FAILED"
    assert "should be NaN: a position it uses is missing" in verdict.message


def test_acceleration_check_fails_a_change_to_the_positions():
    def in_place(positions, gravity):
        positions[:, 1] -= 0.5 * gravity * np.arange(len(positions)) ** 2
        return _own_acceleration_errors(positions, 0.0)

    verdict = E.check_acceleration_errors(in_place)
    assert verdict.status == "FAILED" and "changed the positions" in verdict.message


def test_continuation_checks_not_done():
    def stub(*args):
        raise NotImplementedError("Exercise 14.1: list the seam frames")

    for check in (
        E.check_seam_frames,
        E.check_replacement,
        E.check_acceleration_errors,
    ):
        verdict = check(stub)
        assert verdict.status == "NOT DONE" and "Exercise 14.1" in verdict.message
