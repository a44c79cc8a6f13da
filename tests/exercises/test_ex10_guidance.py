"""Exercise 10 (classifier-free guidance): the checks of ``minidiff.checks.ex10_guidance``.

The checks fail typical wrong answers (guidance with the roles of the two predictions swapped,
a guided model that runs the network twice or swaps the halves of its batch) with the
counterexample.
"""

import numpy as np

from minidiff.checks import ex10_guidance as E
from minidiff.diffusion.samplers import classifier_free_guidance


def batched_guided(model, condition, null_condition, w):
    both = np.concatenate([condition, null_condition])

    def guided(x, t):
        out = model(np.concatenate([x, x]), np.concatenate([t, t]), both)
        return classifier_free_guidance(out[len(x) :], out[: len(x)], w)

    return guided


def test_guidance_check_passes_the_library():
    verdict = E.check_guidance(classifier_free_guidance)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 10.1 (classifier-free guidance, eq-cfg)")


def test_guidance_check_fails_swapped_roles():
    """eps_c + w (eps_c - eps_u), the (1 + w) convention of some papers, breaks w = 0."""
    verdict = E.check_guidance(lambda u, c, w: c + w * (c - u))
    assert verdict.status == "FAILED"
    assert "at w = 0 guidance must return eps_uncond" in verdict.message
    assert "it must satisfy (eq-cfg)" in verdict.message


def test_batched_guidance_check_passes_one_batch():
    verdict = E.check_batched_guidance(batched_guided)
    assert verdict.passed, verdict.message


def test_batched_guidance_check_fails_two_calls():
    def twice(model, condition, null_condition, w):
        return lambda x, t: classifier_free_guidance(
            model(x, t, null_condition), model(x, t, condition), w
        )

    verdict = E.check_batched_guidance(twice)
    assert verdict.status == "FAILED"
    assert "it should be called once, with one batch of" in verdict.message


def test_batched_guidance_check_fails_swapped_halves():
    def swapped(model, condition, null_condition, w):
        both = np.concatenate([condition, null_condition])

        def guided(x, t):
            out = model(np.concatenate([x, x]), np.concatenate([t, t]), both)
            return classifier_free_guidance(out[: len(x)], out[len(x) :], w)

        return guided

    verdict = E.check_batched_guidance(swapped)
    assert verdict.status == "FAILED" and "the guided prediction at w" in verdict.message


def test_guidance_checks_not_done():
    def stub(*args):
        raise NotImplementedError("Exercise 10.1: combine the two predictions")

    assert E.check_guidance(stub).status == "NOT DONE"
    assert E.check_batched_guidance(stub).status == "NOT DONE"
