"""Exercise 5 (position encodings): the checks of ``minidiff.checks.ex05_encodings``.

The checks fail typical wrong answers (cosines before sines, wrong frequencies, a wrong width
split, a wrong token order, a code that is not relative) with the shrunk counterexample and
the equation.
"""

import numpy as np

from minidiff.checks import ex05_encodings as E
from minidiff.nn import encodings

# --- exercise 5.1: the 1-D code -----------------------------------------------------------------


def sincos_1d(positions, dim, max_period=10000.0, *, exponent=2.0, cos_first=False):
    frequencies = max_period ** (-np.arange(dim // 2) * exponent / dim)
    angles = np.asarray(positions, dtype=np.float64)[:, None] * frequencies
    parts = [np.cos(angles), np.sin(angles)] if cos_first else [np.sin(angles), np.cos(angles)]
    return np.concatenate(parts, axis=1)


def test_sincos_1d_check_passes_a_correct_code():
    verdict = E.check_sincos_1d(sincos_1d)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 5.1 (1-D sincos code, eq-sincos)")


def test_sincos_1d_check_fails_cosines_first():
    """The dot products are the same either way: only the comparison with the library sees it."""
    verdict = E.check_sincos_1d(lambda *a: sincos_1d(*a, cos_first=True))
    assert verdict.status == "FAILED"
    assert "against minidiff.nn.encodings.sincos_1d" in verdict.message
    assert "it must satisfy (eq-sincos)" in verdict.message


def test_sincos_1d_check_fails_wrong_frequencies_on_the_dot_product():
    verdict = E.check_sincos_1d(lambda *a: sincos_1d(*a, exponent=1.0))
    assert verdict.status == "FAILED"
    assert "must depend on p - q alone" in verdict.message


def test_sincos_1d_check_fails_float32():
    verdict = E.check_sincos_1d(lambda *a: sincos_1d(*a).astype(np.float32))
    assert verdict.status == "FAILED" and "float64" in verdict.message


# --- exercise 5.2: the 3-D code -----------------------------------------------------------------


def sincos_3d(frames, height, width, dim, time_fraction=0.25, *, split=None, order="tij"):
    widths = split(dim) if split else encodings.split_width(dim, time_fraction)
    positions = encodings.grid_positions(frames, height, width)
    if order == "jit":  # the column varies slowest: not the order of patchify
        j, i, t = np.meshgrid(np.arange(width), np.arange(height), np.arange(frames), indexing="ij")
        positions = np.stack([t.ravel(), i.ravel(), j.ravel()], axis=1)
    parts = [sincos_1d(positions[:, axis], w) for axis, w in enumerate(widths) if w]
    return np.concatenate(parts, axis=1)


def _thirds(dim):
    third = dim // 3 // 2 * 2
    return third, third, dim - 2 * third


def test_sincos_3d_check_passes_a_correct_code():
    verdict = E.check_sincos_3d(sincos_3d)
    assert verdict.passed, verdict.message
    assert verdict.message.startswith("PASSED  exercise 5.2 (3-D sincos code, eq-sincos-3d)")


def test_sincos_3d_check_fails_a_wrong_split():
    verdict = E.check_sincos_3d(lambda *a: sincos_3d(*a, split=_thirds))
    assert verdict.status == "FAILED"
    assert "differs from minidiff.nn.encodings.sincos_3d" in verdict.message
    assert "part of the split" in verdict.message
    assert "it must satisfy (eq-sincos-3d)" in verdict.message


def test_sincos_3d_check_fails_a_wrong_token_order():
    verdict = E.check_sincos_3d(lambda *a: sincos_3d(*a, order="jit"))
    assert verdict.status == "FAILED"
    assert "differs from minidiff.nn.encodings.sincos_3d" in verdict.message


def test_sincos_3d_check_fails_a_code_that_is_not_relative():
    """Squared positions give unique codes, but the dot product then depends on where."""

    def squared(frames, height, width, dim, time_fraction=0.25):
        d_t, d_i, d_j = encodings.split_width(dim, time_fraction)
        positions = encodings.grid_positions(frames, height, width) ** 2
        parts = [sincos_1d(positions[:, a], w) for a, w in enumerate((d_t, d_i, d_j)) if w]
        return np.concatenate(parts, axis=1)

    verdict = E.check_sincos_3d(squared)
    assert verdict.status == "FAILED"
    assert "the code is not relative" in verdict.message


def test_sincos_3d_check_not_done():
    def stub(frames, height, width, dim, time_fraction=0.25):
        raise NotImplementedError("Exercise 5.2: write the 3-D sinusoidal code")

    verdict = E.check_sincos_3d(stub)
    assert verdict.status == "NOT DONE" and "Exercise 5.2" in verdict.message
