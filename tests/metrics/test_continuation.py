"""Seam metrics of continued videos: zero on exact physics, and they catch a broken seam."""

import dataclasses

import numpy as np
import pytest

from minidiff.metrics.continuation import (
    JUMP,
    acceleration_errors,
    evaluate_video,
    evaluate_videos,
    reference_video,
    seam_frames,
)
from minidiff.world import make_dataset


def test_seam_frames_are_the_first_new_frame_of_each_window():
    assert seam_frames(20, 8, 4) == [8, 12, 16]
    assert seam_frames(8, 8, 4) == []
    with pytest.raises(ValueError, match="context"):
        seam_frames(20, 8, 8)


def test_acceleration_error_is_zero_in_free_flight():
    t = np.arange(10.0)
    g = 0.3
    positions = np.stack([2.0 + 0.7 * t, 1.0 - 0.4 * t + 0.5 * g * t * t], axis=1)
    np.testing.assert_allclose(acceleration_errors(positions, g), 0.0, atol=1e-12)
    kinked = positions.copy()
    kinked[6:, 0] += 2.0  # a 2 px jump between frames 5 and 6
    errors = acceleration_errors(kinked, g)
    np.testing.assert_allclose(errors[[4, 5]], 2.0)
    np.testing.assert_allclose(np.delete(errors, [4, 5]), 0.0, atol=1e-12)


def test_reference_video_continues_the_clip():
    _, _, specs = make_dataset(6, "id", 8, 16, seed=2)
    for spec in specs:
        long = reference_video(spec, 8, 16, 14)
        assert long.shape == (14, 3, 16, 16)
        np.testing.assert_array_equal(long[:8], spec.render(8, 16))


def test_real_videos_have_no_more_jumps_at_seams_than_elsewhere():
    _, _, specs = make_dataset(24, "id", 8, 16, seed=3)
    videos = [reference_video(spec, 8, 16, 14) for spec in specs]
    report = evaluate_videos(videos, specs, window=8, context=4)
    assert report["first"]["permanence"]["mean"] == 1.0
    assert report["first"]["velocity_error"]["mean"] < 0.02
    # the only jumps of real videos are wall bounces, which do not care where seams are
    assert abs(report["seam_jumps"]["mean"] - report["inner_jumps"]["mean"]) < 0.1


def test_a_displaced_window_is_a_jump_at_its_seam():
    _, _, specs = make_dataset(40, "id", 8, 16, seed=4)
    moves = [
        s
        for s in specs
        if s.motion.startswith("moves") and s.count == 1 and not s.simulate(8, 16, 12).bounces
    ]
    assert len(moves) >= 3, "the draw has too few single-ball 'moves' scenes without bounces"
    for spec in moves:
        video = reference_video(spec, 8, 16, 12)
        x, y = spec.positions[0]
        # three jump thresholds across the motion, away from the nearer wall
        shift = 3.0 * JUMP
        if spec.motion in ("moves left", "moves right"):
            y += shift if y < 0.5 else -shift
        else:
            x += shift if x < 0.5 else -shift
        shifted = dataclasses.replace(spec, positions=((x, y),))
        # frames from the seam on come from the same motion started lower down
        video[8:] = reference_video(shifted, 8, 16, 12)[8:]
        report = evaluate_video(video, spec, window=8, context=4)
        assert report["seam_jumps"] == 1.0
        assert report["inner_jumps"] == 0.0
