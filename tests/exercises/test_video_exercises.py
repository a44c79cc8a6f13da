"""Exercises 9 and 10 (tubelets, classifier-free guidance) and the checks behind them.

The notebooks themselves run in tests/exercises/test_exercises.py with every other exercise;
here the checks fail typical wrong answers (patchify with the transpose that ignores the channel
order, an unpatchify that reuses the forward permutation, guidance with the roles of the two
predictions swapped, a guided model that runs the network twice) with the counterexample.
"""

import numpy as np
import pytest

import minidiff as md
from minidiff.checks import grading
from minidiff.checks import video as V
from minidiff.diffusion.samplers import classifier_free_guidance


@pytest.fixture(autouse=True)
def fresh_verdicts():
    grading.reset()
    yield
    grading.reset()


# --- exercise 9: patchify and unpatchify --------------------------------------------------------


def patchify(x, patch, tubelet=1, order=(0, 1, 4, 6, 2, 5, 7, 3)):
    b, f, c, h, w = x.shape
    x = x.reshape(b, f // tubelet, tubelet, c, h // patch, patch, w // patch, patch)
    x = x.transpose(*order)
    return x.reshape(b, (f // tubelet) * (h // patch) * (w // patch), tubelet * patch * patch * c)


def unpatchify(
    tokens, frames, channels, height, width, patch, tubelet=1, order=(0, 1, 4, 7, 2, 5, 3, 6)
):
    b = tokens.shape[0]
    grid = (frames // tubelet, height // patch, width // patch)
    x = tokens.reshape(b, *grid, tubelet, patch, patch, channels)
    return x.transpose(*order).reshape(b, frames, channels, height, width)


def test_patchify_check_passes_a_correct_patchify():
    verdict = V.check_patchify(patchify)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 9.1 (patchify with tubelets, eq-patchify)")


def test_patchify_check_fails_channels_before_pixels():
    """Channel-first values inside a token: right shape, right set of values, wrong order."""
    verdict = V.check_patchify(lambda x, p, t=1: patchify(x, p, t, order=(0, 1, 4, 6, 3, 2, 5, 7)))
    assert verdict.status == "FAILED"
    assert "(frame, row, column, channel) order" in verdict.message
    assert "it must satisfy (eq-patchify)" in verdict.message


def test_patchify_check_fails_a_wrong_token_order():
    verdict = V.check_patchify(lambda x, p, t=1: patchify(x, p, t, order=(0, 6, 4, 1, 2, 5, 7, 3)))
    assert verdict.status == "FAILED" and "should be the tubelet at" in verdict.message


def test_unpatchify_check_passes_a_correct_inverse():
    verdict = V.check_unpatchify(unpatchify)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 9.2")


def test_unpatchify_check_fails_the_forward_permutation():
    """Reusing patchify's transpose instead of its inverse scrambles the clip."""
    verdict = V.check_unpatchify(lambda *a: unpatchify(*a, order=(0, 1, 4, 6, 2, 5, 7, 3)))
    assert verdict.status == "FAILED"
    assert "unpatchify(patchify(x)) differs from x" in verdict.message


def test_patchify_checks_not_done():
    def stub(*args):
        raise NotImplementedError("Exercise 9.1: cut a clip into tubelet tokens")

    assert V.check_patchify(stub).status == "NOT DONE"
    assert V.check_unpatchify(stub).status == "NOT DONE"


def test_reference_patchify_is_the_library_one():
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 4, 6))
    want = md.models.patchify(md.tensor(x, dtype=np.float64), 2, 2).numpy()
    np.testing.assert_array_equal(patchify(x, 2, 2), want)


# --- exercise 10: guidance ------------------------------------------------------------------------


def batched_guided(model, condition, null_condition, w):
    both = np.concatenate([condition, null_condition])

    def guided(x, t):
        out = model(np.concatenate([x, x]), np.concatenate([t, t]), both)
        return classifier_free_guidance(out[len(x) :], out[: len(x)], w)

    return guided


def test_guidance_check_passes_the_library():
    verdict = V.check_guidance(classifier_free_guidance)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 10.1 (classifier-free guidance, eq-cfg)")


def test_guidance_check_fails_swapped_roles():
    """eps_c + w (eps_c - eps_u), the (1 + w) convention of some papers, breaks w = 0."""
    verdict = V.check_guidance(lambda u, c, w: c + w * (c - u))
    assert verdict.status == "FAILED"
    assert "at w = 0 guidance must return eps_uncond" in verdict.message
    assert "it must satisfy (eq-cfg)" in verdict.message


def test_batched_guidance_check_passes_one_batch():
    verdict = V.check_batched_guidance(batched_guided)
    assert verdict.passed, verdict.message


def test_batched_guidance_check_fails_two_calls():
    def twice(model, condition, null_condition, w):
        return lambda x, t: classifier_free_guidance(
            model(x, t, null_condition), model(x, t, condition), w
        )

    verdict = V.check_batched_guidance(twice)
    assert verdict.status == "FAILED"
    assert "it should be called once, with one batch of" in verdict.message


def test_batched_guidance_check_fails_swapped_halves():
    def swapped(model, condition, null_condition, w):
        both = np.concatenate([condition, null_condition])

        def guided(x, t):
            out = model(np.concatenate([x, x]), np.concatenate([t, t]), both)
            return classifier_free_guidance(out[: len(x)], out[len(x) :], w)

        return guided

    verdict = V.check_batched_guidance(swapped)
    assert verdict.status == "FAILED" and "the guided prediction at w" in verdict.message


def test_guidance_checks_not_done():
    def stub(*args):
        raise NotImplementedError("Exercise 10.1: combine the two predictions")

    assert V.check_guidance(stub).status == "NOT DONE"
    assert V.check_batched_guidance(stub).status == "NOT DONE"
