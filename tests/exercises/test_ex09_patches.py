"""Exercise 9 (tubelets): the checks of ``minidiff.checks.ex09_patches``.

The checks fail typical wrong answers (patchify with the transpose that ignores the channel
order or the token order, an unpatchify that reuses the forward permutation) with the
counterexample.
"""

import numpy as np

import minidiff as md
from minidiff.checks import ex09_patches as E


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
    verdict = E.check_patchify(patchify)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 9.1 (patchify with tubelets, eq-patchify)")


def test_patchify_check_fails_channels_before_pixels():
    """Channel-first values inside a token: right shape, right set of values, wrong order."""
    verdict = E.check_patchify(lambda x, p, t=1: patchify(x, p, t, order=(0, 1, 4, 6, 3, 2, 5, 7)))
    assert verdict.status == "FAILED"
    assert "(frame, row, column, channel) order" in verdict.message
    assert "it must satisfy (eq-patchify)" in verdict.message


def test_patchify_check_fails_a_wrong_token_order():
    verdict = E.check_patchify(lambda x, p, t=1: patchify(x, p, t, order=(0, 6, 4, 1, 2, 5, 7, 3)))
    assert verdict.status == "FAILED" and "should be the tubelet at" in verdict.message


def test_unpatchify_check_passes_a_correct_inverse():
    verdict = E.check_unpatchify(unpatchify)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 9.2")


def test_unpatchify_check_fails_the_forward_permutation():
    """Reusing patchify's transpose instead of its inverse scrambles the clip."""
    verdict = E.check_unpatchify(lambda *a: unpatchify(*a, order=(0, 1, 4, 6, 2, 5, 7, 3)))
    assert verdict.status == "FAILED"
    assert "unpatchify(patchify(x)) differs from x" in verdict.message


def test_patchify_checks_not_done():
    def stub(*args):
        raise NotImplementedError("Exercise 9.1: cut a clip into tubelet tokens")

    assert E.check_patchify(stub).status == "NOT DONE"
    assert E.check_unpatchify(stub).status == "NOT DONE"


def test_reference_patchify_is_the_library_one():
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 4, 6))
    want = md.models.patchify(md.tensor(x, dtype=np.float64), 2, 2).numpy()
    np.testing.assert_array_equal(patchify(x, 2, 2), want)
