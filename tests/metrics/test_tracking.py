"""Blob detection and tracking: components against a plain flood fill, positions and areas of
rendered discs, robustness to noise, one track per ball."""

from collections import deque

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from minidiff.metrics.tracking import connected_components, detect, track
from minidiff.world import make_dataset
from minidiff.world.render import PALETTE, render_clip


def flood_fill_components(mask):
    """Reference: breadth-first flood fill, 8-connectivity, components numbered in scan order."""
    labels = numpy.full(mask.shape, -1)
    count = 0
    for start in zip(*numpy.nonzero(mask)):
        if labels[start] >= 0:
            continue
        labels[start] = count
        queue = deque([start])
        while queue:
            i, j = queue.popleft()
            for di in (-1, 0, 1):
                for dj in (-1, 0, 1):
                    a, b = i + di, j + dj
                    inside = 0 <= a < mask.shape[0] and 0 <= b < mask.shape[1]
                    if inside and mask[a, b] and labels[a, b] < 0:
                        labels[a, b] = count
                        queue.append((a, b))
        count += 1
    return labels


@given(arrays(bool, st.tuples(st.integers(1, 12), st.integers(1, 12))))
def test_components_match_a_flood_fill(mask):
    labels = connected_components(mask)
    reference = flood_fill_components(mask)
    assert numpy.all((labels == mask.size) == ~mask)
    # the same partition: labels correspond one to one
    pairs = {(int(a), int(b)) for a, b in zip(labels[mask], reference[mask])}
    assert len(pairs) == len({a for a, _ in pairs}) == len({b for _, b in pairs})


def test_components_are_labelled_separately_in_every_plane():
    mask = numpy.zeros((2, 5, 5), dtype=bool)
    mask[:, 1:3, 1:3] = True
    mask[1, 3, 3] = True  # diagonal neighbour: same component
    labels = connected_components(mask)
    assert len(numpy.unique(labels[0][mask[0]])) == 1
    assert len(numpy.unique(labels[1][mask[1]])) == 1
    assert labels[0, 1, 1] != labels[1, 1, 1]


def test_a_rendered_disc_is_found_where_it_is_with_its_area_and_colour():
    centres = [[[5.3, 6.1], [11.7, 10.2]]]
    clip = render_clip(centres, [2.5, 1.6], ["yellow", "blue"], height=16, width=16)
    blobs = {b.colour: b for b in detect(clip).blobs[0]}
    assert set(blobs) == {"yellow", "blue"}
    assert blobs["yellow"].centroid == pytest.approx((5.3, 6.1), abs=0.05)
    assert blobs["blue"].centroid == pytest.approx((11.7, 10.2), abs=0.05)
    assert blobs["yellow"].area == pytest.approx(numpy.pi * 2.5**2, rel=0.05)
    assert blobs["blue"].area == pytest.approx(numpy.pi * 1.6**2, rel=0.08)
    assert blobs["yellow"].rgb == pytest.approx(PALETTE["yellow"], abs=0.01)


def test_detection_tolerates_the_noise_of_generated_clips():
    clips, _, specs = make_dataset(40, "id", frames=8, size=16, seed=2)
    rng = numpy.random.default_rng(0)
    noisy = clips + rng.normal(0.0, 0.05, clips.shape).astype(numpy.float32)
    for noisy_clip, spec in zip(noisy, specs):
        truth = spec.simulate(8, 16)
        for found in detect(noisy_clip).blobs:
            assert sorted(b.colour for b in found) == sorted(spec.colours)
        for trk in track(noisy_clip):
            ball = spec.colours.index(trk.colour)
            error = numpy.abs(trk.positions - truth.positions[:, ball]).max()
            assert error < 0.5


def test_a_real_clip_gives_one_full_track_per_ball():
    clips, _, specs = make_dataset(30, "ood", frames=8, size=16, seed=4)
    for clip, spec in zip(clips, specs):
        tracks = track(clip)
        assert sorted(t.colour for t in tracks) == sorted(spec.colours)
        assert all(t.present.all() for t in tracks)
        truth = spec.simulate(8, 16).positions
        for t in tracks:
            numpy.testing.assert_allclose(
                t.positions, truth[:, spec.colours.index(t.colour)], atol=0.25
            )


def test_an_empty_clip_has_no_blobs_and_noise_has_many():
    empty = render_clip(numpy.zeros((4, 0, 2)), [], [], 16, 16)
    assert all(found == [] for found in detect(empty).blobs)
    noise = numpy.random.default_rng(0).random((4, 3, 16, 16))
    assert sum(len(found) for found in detect(noise).blobs) > 4


def test_a_clip_of_the_wrong_shape_is_refused():
    with pytest.raises(ValueError, match="frames, 3, height, width"):
        detect(numpy.zeros((4, 16, 16)))
