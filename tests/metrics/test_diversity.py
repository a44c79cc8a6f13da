"""Diversity of a set of clips: entropy and spreads on sets whose answer is known."""

import math

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minidiff.metrics.diversity import colour_entropy, diversity, spread
from minidiff.world import SceneSpec, make_dataset


@given(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=40))
def test_colour_entropy_matches_its_definition(colours):
    """(eq-colour-entropy): H = -sum p log2 p over the empirical distribution."""
    counts = np.array([colours.count(c) for c in set(colours)], dtype=float)
    p = counts / counts.sum()
    assert math.isclose(colour_entropy(colours), float(-(p * np.log2(p)).sum()), abs_tol=1e-12)
    assert colour_entropy(["red"] * 5) == 0.0
    assert math.isclose(colour_entropy(["red", "blue", "green", "cyan"]), 2.0)


@given(
    hnp.arrays(
        np.float64, st.tuples(st.integers(1, 20), st.integers(1, 3)), elements=st.floats(-100, 100)
    )
)
def test_spread_is_the_root_trace_of_the_covariance(points):
    """(eq-spread): sqrt(trace Cov) with the population covariance."""
    expected = (
        math.sqrt(np.trace(np.atleast_2d(np.cov(points.T, bias=True)))) if len(points) > 1 else 0.0
    )
    assert math.isclose(spread(points), expected, rel_tol=1e-9, abs_tol=1e-9)
    assert math.isclose(spread(points + 7.0), spread(points), rel_tol=1e-9, abs_tol=1e-9)


def _scene(colour, x, size="small"):
    return SceneSpec(
        colours=(colour,),
        sizes=(size,),
        motion="moves right",
        speed=0.3,
        gravity=0.0,
        restitution=0.7,
        positions=((x, 0.5),),
    )


def test_identical_clips_have_no_diversity():
    clip = _scene("red", 0.3).render(8, 16)
    result = diversity(np.stack([clip] * 4))
    assert result["found"] == 4 and result["pixel_distance"] == 0.0
    assert result["colour_entropy"] == 0.0 and result["size_cv"] == 0.0
    assert result["start_spread"] < 1e-9 and result["motion_spread"] < 1e-9


def test_diversity_sees_what_varies():
    colours = diversity(np.stack([_scene(c, 0.3).render(8, 16) for c in ("red", "blue")]))
    assert math.isclose(colours["colour_entropy"], 1.0) and colours["start_spread"] < 0.01
    starts = diversity(np.stack([_scene("red", x).render(8, 16) for x in (0.2, 0.4)]))
    assert starts["colour_entropy"] == 0.0
    assert abs(starts["start_spread"] - 0.1) < 0.01  # each start 0.1 box from the mean
    sizes = diversity(np.stack([_scene("red", 0.3, s).render(8, 16) for s in ("small", "large")]))
    assert sizes["size_cv"] > 0.3


def test_more_specific_world_captions_vary_less():
    """The world itself: all training clips vary more than the clips of one caption's fields."""
    clips, _, specs = make_dataset(300, "train", 8, 16, seed=0)
    everything = diversity(clips[:40])
    red_right = [
        i for i, s in enumerate(specs) if s.colours == ("red",) and s.motion == "moves right"
    ]
    assert len(red_right) >= 3
    narrow = diversity(clips[red_right])
    assert narrow["colour_entropy"] == 0.0 < everything["colour_entropy"]
    assert narrow["motion_spread"] < everything["motion_spread"]
