"""The attacks keep the clip's shape, dtype and range and do what they say."""

import numpy
import pytest

from minidiff.detect.attacks import ATTACKS, apply_attack, blur, flip, gif_round_trip, resize
from minidiff.errors import ShapeError

CLIPS = numpy.random.default_rng(0).random((2, 4, 3, 8, 8)).astype(numpy.float32)


@pytest.mark.parametrize("name", [n for n in ATTACKS if n != "renoise"])
def test_attack_keeps_shape_dtype_and_range(name):
    out = apply_attack(name, CLIPS, seed=1)
    assert out.shape == CLIPS.shape and out.dtype == CLIPS.dtype
    assert out.min() >= 0 and out.max() <= 1
    assert numpy.array_equal(out, apply_attack(name, CLIPS, seed=1))  # seeded


def test_attacks_do_what_they_say():
    assert numpy.array_equal(flip(flip(CLIPS)), CLIPS)
    constant = numpy.full_like(CLIPS, 0.4)
    assert numpy.allclose(blur(constant), 0.4)
    assert numpy.allclose(resize(CLIPS, 8, 8), CLIPS)
    assert numpy.abs(gif_round_trip(CLIPS) - CLIPS).max() < 0.2
    dropped = apply_attack("frame_drop", CLIPS)
    assert all(len({f.tobytes() for f in clip}) == 3 for clip in dropped)
    reordered = apply_attack("frame_reorder", CLIPS)
    assert sorted(f.tobytes() for f in reordered[0]) == sorted(f.tobytes() for f in CLIPS[0])


def test_bad_input_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown attack"):
        apply_attack("rotate", CLIPS)
    with pytest.raises(ShapeError):
        apply_attack("blur", CLIPS[0])
    with pytest.raises(ValueError, match="system"):
        apply_attack("renoise", CLIPS)
