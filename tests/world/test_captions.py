"""Scenes and captions: every caption says what its spec holds, the splits keep their promises,
and every motion plays out as its caption says."""

import dataclasses

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.world.captions import (
    COLOURS,
    GRAVITY_MOTIONS,
    HELD_OUT_PAIRS,
    MOTIONS,
    OOD_AXES,
    OOD_RANGES,
    SPEED_MOTIONS,
    TRAIN_RANGES,
    VOCABULARY,
    make_dataset,
    ood_axes,
    parse_caption,
    sample_spec,
)

seeds = st.integers(0, 2**32 - 1)


def spec_of(motion, count, mention_sizes, seed=0):
    """A spec with a given motion, number of balls and caption template (the caption depends on
    colours, sizes, motion and template only, so the other fields are borrowed)."""
    rng = numpy.random.default_rng(seed)
    base = sample_spec(rng, "train")
    return dataclasses.replace(
        base,
        colours=tuple(str(c) for c in rng.choice(COLOURS, size=count, replace=False)),
        sizes=tuple(str(s) for s in rng.choice(["small", "large"], size=count)),
        motion=motion,
        mention_sizes=mention_sizes,
    )


@pytest.mark.parametrize("mention_sizes", [True, False])
@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("motion", MOTIONS)
def test_every_template_says_what_the_spec_holds(motion, count, mention_sizes):
    spec = spec_of(motion, count, mention_sizes)
    text = spec.caption
    assert set(text.split()) <= set(VOCABULARY)
    parsed = parse_caption(text)
    assert parsed["colours"] == list(spec.colours)
    assert parsed["motion"] == spec.motion and parsed["count"] == spec.count
    expected_sizes = list(spec.sizes) if mention_sizes else [None] * count
    assert parsed["sizes"] == expected_sizes


def test_captions_read_as_intended():
    spec = dataclasses.replace(
        spec_of("falls and bounces", 1, True), colours=("blue",), sizes=("small",)
    )
    assert spec.caption == "a small blue ball falls and bounces"
    spec = dataclasses.replace(
        spec_of("moves left", 2, False), colours=("red", "green"), sizes=("large", "small")
    )
    assert spec.caption == "a red ball and a green ball move left"
    with pytest.raises(ValueError, match="not a caption"):
        parse_caption("a red cube moves left")


@given(seeds)
def test_train_and_id_scenes_lie_inside_the_training_ranges(seed):
    rng = numpy.random.default_rng(seed)
    for split in ("train", "id"):
        spec = sample_spec(rng, split)
        assert ood_axes(spec) == ()
        assert not any((c, spec.motion) in HELD_OUT_PAIRS for c in spec.colours)
        assert TRAIN_RANGES["count"][0] <= spec.count <= TRAIN_RANGES["count"][1]


@given(seeds)
def test_ood_scenes_leave_the_training_ranges_along_exactly_one_axis(seed):
    spec = sample_spec(numpy.random.default_rng(seed), "ood")
    axes = ood_axes(spec)
    assert len(axes) == 1 and axes[0] in OOD_AXES
    if axes == ("speed",):
        assert OOD_RANGES["speed"][0] <= spec.speed <= OOD_RANGES["speed"][1]
    if axes == ("gravity",):
        assert OOD_RANGES["gravity"][0] <= spec.gravity <= OOD_RANGES["gravity"][1]


def test_every_colour_and_every_motion_is_seen_in_training():
    _, _, specs = make_dataset(600, "train", frames=2, size=16, seed=0)
    assert {c for s in specs for c in s.colours} == set(COLOURS)
    assert {s.motion for s in specs} == set(MOTIONS)
    _, _, ood = make_dataset(400, "ood", frames=2, size=16, seed=0)
    assert {axis for s in ood for axis in ood_axes(s)} == set(OOD_AXES)


@given(seeds, st.sampled_from(["train", "ood"]))
def test_each_motion_plays_out_as_its_caption_says(seed, split):
    spec = sample_spec(numpy.random.default_rng(seed), split)
    frames, size = 16, 32
    trajectory = spec.simulate(frames, size)
    walls = {bounce.wall for bounce in trajectory.bounces}
    if spec.motion in GRAVITY_MOTIONS:
        assert walls == {"floor"}  # at least one floor bounce, never a side wall or the ceiling
        first = min(b.time for b in trajectory.bounces)
        assert first <= 0.7 * (frames - 1)  # early enough to see the rebound
    else:
        assert walls == set()
    if spec.motion in SPEED_MOTIONS:
        direction = numpy.sign(spec.velocity(frames, size))
        displacement = trajectory.positions[-1] - trajectory.positions[0]
        assert numpy.all(numpy.sign(displacement) * direction >= 0)
    centres = trajectory.positions
    radii = trajectory.radii
    for i in range(spec.count):
        for j in range(i + 1, spec.count):
            gap = numpy.linalg.norm(centres[:, i] - centres[:, j], axis=-1)
            assert numpy.all(gap > radii[i] + radii[j])


def test_make_dataset_shapes_and_reproducibility():
    clips, captions, specs = make_dataset(20, "id", frames=8, size=16, seed=5)
    assert clips.shape == (20, 8, 3, 16, 16) and clips.dtype == numpy.float32
    assert clips.min() >= 0.0 and clips.max() <= 1.0
    assert captions == [s.caption for s in specs]
    again, _, _ = make_dataset(20, "id", frames=8, size=16, seed=5)
    assert numpy.array_equal(clips, again)
    train, _, _ = make_dataset(20, "train", frames=8, size=16, seed=5)
    assert not numpy.array_equal(clips, train)


def test_the_same_scene_at_two_resolutions_is_the_same_motion():
    rng = numpy.random.default_rng(1)
    spec = next(s for s in iter(lambda: sample_spec(rng), None) if s.motion in GRAVITY_MOTIONS)
    coarse = spec.simulate(8, 16).positions / 16
    fine = spec.simulate(15, 32).positions / 32
    numpy.testing.assert_allclose(coarse, fine[::2], atol=1e-9)


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="split"):
        make_dataset(1, split="test")


def test_a_smaller_world_is_the_qualifying_part_of_the_same_stream():
    """make_dataset(motions=..., counts=...) keeps the scenes of the unfiltered stream that
    qualify, in order: a probe's scenes are the full world's."""
    _, _, everything = make_dataset(200, "train", 8, 16, seed=5)
    moves = ["moves left", "moves up"]
    clips, captions, specs = make_dataset(10, "train", 8, 16, seed=5, motions=moves, counts=[1])
    expected = [s for s in everything if s.motion in moves and s.count == 1][:10]
    assert specs == expected and len(clips) == 10
    assert all(c == s.caption for c, s in zip(captions, specs))
    with pytest.raises(ValueError, match="unknown motions"):
        make_dataset(2, motions=["moves sideways"])
    with pytest.raises(ValueError, match=r"id scenes have \[1, 2\] balls"):
        make_dataset(2, "id", counts=[3])
