"""The word effect (eq-word-effect): how much worse a network's one-step x0 estimate gets when
one word of the caption is changed, and the counterfactual scenes it is read against."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.app.presets import get_preset
from minidiff.app.text_to_video import TextToVideo
from minidiff.metrics.words import (
    bayes_word_effect,
    feature_similarity,
    one_step_x0_errors,
    opposite_direction,
    other_colours,
    word_effect,
)
from minidiff.world import make_dataset, to_signed
from minidiff.world.captions import MOTIONS

MOVES = [m for m in MOTIONS if m.startswith("moves")]


def _scenes(seed, n=3, motions=MOVES):
    return make_dataset(n, "id", 8, 16, seed=seed, motions=motions)[2]


@given(seed=st.integers(0, 10_000))
def test_the_opposite_direction_is_the_clip_run_backwards(seed):
    """A ball at constant velocity run backwards is the ball of the opposite direction started
    where the first ended: the two renders agree frame for frame, reversed."""
    for spec in _scenes(seed):
        opposite = opposite_direction(spec, 8, 16)
        np.testing.assert_allclose(opposite.render(8, 16), spec.render(8, 16)[::-1], atol=1e-5)
        kept = [w for w in spec.caption.split() if w not in ("left", "right", "up", "down")]
        assert [w for w in opposite.caption.split() if w in kept] == kept
        assert opposite.caption != spec.caption


@given(seed=st.integers(0, 10_000))
def test_other_colours_change_only_the_colour_words(seed):
    for spec in _scenes(seed, motions=None):
        changed = other_colours(spec, 8, 16)
        assert len(set(changed.colours)) == spec.count
        assert all(a != b for a, b in zip(changed.colours, spec.colours))
        assert changed.positions == spec.positions and changed.motion == spec.motion


def test_only_constant_velocity_scenes_run_backwards():
    spec = _scenes(0, n=1, motions=["falls and bounces"])[0]
    with pytest.raises(ValueError, match="falls and bounces"):
        opposite_direction(spec, 8, 16)


@pytest.fixture(scope="module")
def system():
    base = get_preset("tiny-cpu")
    preset = base.with_overrides(
        model={**base.model, "dim": 32, "depth": 1, "heads": 2},
        text={**base.text, "dim": 16, "heads": 2},
    )
    return TextToVideo(preset)


def test_eq_word_effect_is_the_error_difference_under_the_two_captions(system):
    specs = _scenes(5, n=6)
    result = word_effect(system, specs, "direction", levels=[500, 900], seed=2)
    data = to_signed(np.stack([s.render(8, 16) for s in specs])).astype(np.float32)
    noise = np.random.default_rng(2).standard_normal(data.shape).astype(np.float32)
    changed = [opposite_direction(s, 8, 16).caption for s in specs]
    for level in (500, 900):
        true = one_step_x0_errors(system, data, [s.caption for s in specs], level, noise)
        wrong = one_step_x0_errors(system, data, changed, level, noise)
        entry = result["levels"][str(level)]
        assert entry["effect"]["mean"] == pytest.approx((wrong - true).mean(), rel=1e-9)
        assert entry["relative"] == pytest.approx((wrong - true).mean() / true.mean(), rel=1e-9)
        assert entry["effect"]["low"] <= entry["effect"]["mean"] <= entry["effect"]["high"]
    reversed_gap = ((data[:, ::-1] - data) ** 2).reshape(len(data), -1).mean(axis=1)
    assert result["data_gap"]["mean"] == pytest.approx(reversed_gap.mean(), rel=1e-4)
    assert result["data_gap"]["mean"] > 0


def test_a_network_blind_to_the_caption_has_no_word_effect(system, monkeypatch):
    """Every caption tokenized as the same one: both passes see identical inputs, so the
    effect is exactly zero though the data gap is not."""
    fixed = system.tokenize(["a red ball moves left"])
    monkeypatch.setattr(
        system, "tokenize", lambda captions: tuple(np.repeat(a, len(captions), 0) for a in fixed)
    )
    result = word_effect(system, _scenes(1, n=4), "colour", levels=[700])
    assert result["levels"]["700"]["effect"]["mean"] == 0.0
    assert result["data_gap"]["mean"] > 0


def test_word_effect_refuses_an_unknown_word_or_no_scenes(system):
    with pytest.raises(ValueError, match="'size'"):
        word_effect(system, _scenes(0), "size", levels=[500])
    with pytest.raises(ValueError, match="at least one scene"):
        word_effect(system, [], "colour", levels=[500])


def test_given_frames_go_in_clean_and_only_the_others_count(system):
    """With the first frames given, x_t there is the clip itself: the noise drawn for them
    changes nothing; and the effect and data gap are over the frames left to generate."""
    specs = _scenes(3, n=4)
    data = to_signed(np.stack([s.render(8, 16) for s in specs])).astype(np.float32)
    rng = np.random.default_rng(0)
    noise = rng.standard_normal(data.shape).astype(np.float32)
    other = noise.copy()
    other[:, :2] = rng.standard_normal(other[:, :2].shape)
    captions = [s.caption for s in specs]
    a = one_step_x0_errors(system, data, captions, 850, noise, given=2)
    b = one_step_x0_errors(system, data, captions, 850, other, given=2)
    np.testing.assert_allclose(a, b, rtol=1e-6)
    assert not np.allclose(a, one_step_x0_errors(system, data, captions, 850, other))
    result = word_effect(system, specs, "direction", levels=[850], given=2)
    changed = [opposite_direction(s, 8, 16).caption for s in specs]
    noise = np.random.default_rng(0).standard_normal(data.shape).astype(np.float32)
    wrong = one_step_x0_errors(system, data, changed, 850, noise, given=2)
    true = one_step_x0_errors(system, data, captions, 850, noise, given=2)
    assert result["levels"]["850"]["effect"]["mean"] == pytest.approx((wrong - true).mean())
    gap = ((data[:, ::-1] - data)[:, 2:] ** 2).reshape(len(data), -1).mean(axis=1)
    assert result["data_gap"]["mean"] == pytest.approx(gap.mean(), rel=1e-4)
    with pytest.raises(ValueError, match="given must be 0 to 7"):
        one_step_x0_errors(system, data, captions, 850, noise, given=8)


def test_feature_similarity_compares_the_words_two_captions_do_not_share(system):
    """A cosine per pair at the differing word: symmetric, at most 1, below 1 for two words
    an untrained encoder embeds at random; a pair that shares every word is refused."""
    left = ["a red ball moves left", "a small blue ball moves up"]
    right = ["a red ball moves right", "a small blue ball moves down"]
    forward, backward = (
        feature_similarity(system, left, right),
        feature_similarity(system, right, left),
    )
    assert forward["mean"] == pytest.approx(backward["mean"], rel=1e-9)
    assert forward["mean"] < 0.999 and forward["high"] <= 1.0 + 1e-9
    with pytest.raises(ValueError, match="differ in at least one"):
        feature_similarity(system, left, left)
    with pytest.raises(ValueError, match="same number of words"):
        feature_similarity(system, ["a red ball moves left"], ["a small red ball moves left"])


@given(seed=st.integers(0, 10_000))
def test_a_one_ball_clip_is_its_coverage_painted_in_its_colour(seed):
    """What lets the Bayes oracle repaint its pool: a one-ball clip is linear in the colour."""
    from minidiff.metrics.words import _coverage, _painted

    for spec in make_dataset(3, "id", 8, 16, seed=seed, counts=[1])[2]:
        for colour in ("red", "cyan"):
            painted = _painted(_coverage(spec, 8, 16), colour)
            repainted = to_signed(replace(spec, colours=(colour,)).render(8, 16))
            np.testing.assert_allclose(painted, repainted, atol=1e-5)


def test_the_bayes_optimal_denoiser_is_hurt_by_either_wrong_word(system):
    """E[x0 | x_t, c] knows the caption is true: at a high noise level the wrong direction or
    colour makes it clearly worse (here on a small pool of rendered scenes)."""
    specs = make_dataset(6, "id", 8, 16, seed=7, counts=[1], motions=MOVES)[2]
    for word in ("direction", "colour"):
        result = bayes_word_effect(specs, word, system.schedule, [850], 8, 16, pool=1200)
        assert result["references"] > 50
        assert result["levels"]["850"]["effect"]["mean"] > 0
        assert result["levels"]["850"]["relative"] > 0.5


def test_the_bayes_word_effect_is_for_scenes_of_one_ball(system):
    two = make_dataset(4, "id", 8, 16, seed=0, counts=[2], motions=MOVES)[2]
    with pytest.raises(ValueError, match="each of one ball"):
        bayes_word_effect(two, "direction", system.schedule, [850], 8, 16, pool=100)
