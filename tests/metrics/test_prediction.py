"""Prediction from given frames, measured on the generated frames only."""

import numpy as np
import pytest

from minidiff.metrics.prediction import evaluate_predictions, prediction_physics
from minidiff.world import make_dataset


@pytest.fixture(scope="module")
def moving():
    clips, _, specs = make_dataset(
        24, "id", 8, 16, seed=3, counts=[1], motions=["moves left", "moves right"]
    )
    return clips, specs


def test_real_clips_give_the_tracker_floor(moving):
    summary = evaluate_predictions(*moving, given=3)
    assert summary["present"]["mean"] == 1.0
    assert summary["velocity_error"]["mean"] < 0.03 and summary["velocity_error"]["count"] == 24


def test_a_clip_that_stops_after_the_given_frames_has_the_whole_speed_wrong(moving):
    """Frozen after frame 2: the generated frames do not move, so the fitted velocity is 0 and
    the error |0 - v| / |v| is 1, although the given frames moved correctly."""
    clips, specs = moving
    frozen = clips.copy()
    frozen[:, 3:] = clips[:, 2:3]
    errors = [prediction_physics(c, s, 3)["velocity_error"] for c, s in zip(frozen, specs)]
    np.testing.assert_allclose(errors, 1.0, atol=0.03)


def test_a_ball_that_vanishes_is_not_present(moving):
    clips, specs = moving
    gone = clips[0].copy()
    gone[5] = gone[5, :, :1, :1]  # the background colour everywhere
    assert prediction_physics(gone, specs[0], 3)["present"] is False
    with pytest.raises(ValueError, match="given must be between 1 and 7"):
        prediction_physics(clips[0], specs[0], 8)
