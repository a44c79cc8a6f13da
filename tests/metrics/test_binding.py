"""Colour binding (eq-colour-binding): which patches cover a ball, and the binding indicator on
attention weights written by hand, then on a network's recorded attention."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidiff.app.presets import get_preset
from minidiff.app.text_to_video import TextToVideo
from minidiff.metrics.binding import ball_patches, bound_balls, colour_binding, word_attention
from minidiff.models.text import split_words
from minidiff.world import make_dataset

FRAMES, SIZE, PATCH = 4, 16, 4


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16))
def test_a_ball_covers_the_patch_of_its_centre(seed):
    _, _, specs = make_dataset(1, "id", FRAMES, SIZE, seed=seed)
    spec = specs[0]
    covered = ball_patches(spec, FRAMES, SIZE, PATCH)
    track = spec.simulate(FRAMES, SIZE)
    assert covered.shape == (len(spec.colours), FRAMES, SIZE // PATCH, SIZE // PATCH)
    for ball in range(len(spec.colours)):
        for frame in range(FRAMES):
            x, y = track.positions[frame, ball]
            if 0 <= x < SIZE and 0 <= y < SIZE:
                assert covered[ball, frame, int(y // PATCH), int(x // PATCH)]
            # a ball of radius under a patch reaches at most the 3 x 3 patches around its centre
            assert covered[ball, frame].sum() <= 9


def _scenes(n=12, seed=0):
    return make_dataset(n, "id", FRAMES, SIZE, seed=seed, counts=(2,))


def _weights(captions, specs, pick):
    """Hand-written attention (clips, 1 block, patches, words): each ball's patches put all
    their weight on the word ``pick(ball)`` of the ball's scene, every other patch on word 0."""
    length = max(len(split_words(c)) for c in captions)
    weights = np.zeros((len(captions), 1, FRAMES * (SIZE // PATCH) ** 2, length))
    weights[..., 0] = 1.0
    for n, (caption, spec) in enumerate(zip(captions, specs)):
        words = split_words(caption)
        covered = ball_patches(spec, FRAMES, SIZE, PATCH).reshape(2, -1)
        for ball in range(2):
            alone = covered[ball] & ~covered[1 - ball]
            weights[n, 0, alone] = 0.0
            weights[n, 0, alone, words.index(spec.colours[pick(ball)])] = 1.0
    return weights


def test_eq_colour_binding_counts_the_balls_that_weigh_their_own_word_more():
    _, captions, specs = _scenes()
    own = bound_balls(_weights(captions, specs, lambda b: b), captions, specs, FRAMES, SIZE, PATCH)
    assert own["bound"].all() and len(own["bound"]) > 0
    np.testing.assert_allclose(own["own"], 1.0)
    np.testing.assert_allclose(own["other"], 0.0)
    np.testing.assert_allclose(own["text"], 1.0)
    swapped = _weights(captions, specs, lambda b: 1 - b)
    assert not bound_balls(swapped, captions, specs, FRAMES, SIZE, PATCH)["bound"].any()
    even = np.full_like(swapped, 1.0 / swapped.shape[-1])  # a tie binds no ball
    assert not bound_balls(even, captions, specs, FRAMES, SIZE, PATCH)["bound"].any()


def test_colour_binding_refuses_a_scene_of_another_count():
    _, captions, specs = make_dataset(4, "id", FRAMES, SIZE, seed=0, counts=(1,))
    with pytest.raises(ValueError, match="two balls"):
        bound_balls(np.zeros((4, 1, 64, 12)), captions, specs, FRAMES, SIZE, PATCH)


def test_word_attention_of_a_network_is_a_share_of_each_patchs_attention():
    system = TextToVideo(get_preset("tiny-cpu"))
    frames, size = system.config.frames, system.config.height
    clips, captions, specs = make_dataset(3, "id", frames, size, seed=1, counts=(2,))
    noise = np.random.default_rng(0).standard_normal(clips.shape)
    weights = word_attention(system, clips, captions, 500, noise)
    network = system.model
    blocks = len(network.in_blocks) + 1 + len(network.out_blocks)
    patches = frames * (size // network.config.patch) ** 2
    assert weights.shape == (3, blocks, patches, network.config.text_length)
    assert (weights >= 0).all() and (weights.sum(axis=-1) <= 1 + 1e-6).all()
    result = colour_binding(system, scenes=3, level=500)
    assert len(result["blocks"]) == blocks and result["balls"] <= 6
    assert all(0.0 <= b["binding"]["mean"] <= 1.0 for b in result["blocks"])
