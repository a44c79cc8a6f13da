"""Exercise 5.3 (rotary encoding): the check of ``minidiff.checks.ex05_rope`` passes a right
answer, fails typical mistakes with a shrunk case, and says NOT DONE for the stub."""

import numpy as np
import pytest

from minidiff.checks import ex05_rope as E

from .verdicts import assert_not_done, assert_shrunk_failure, by_name


def _angles(x, positions, max_period, spacing=2.0):
    dim = x.shape[-1]
    frequencies = max_period ** (-np.arange(dim // 2) * spacing / dim)
    return np.asarray(positions, dtype=np.float64)[:, None] * frequencies[None, :]


def _turn(a, b, angles):
    return a * np.cos(angles) - b * np.sin(angles), a * np.sin(angles) + b * np.cos(angles)


def rope_correct(x, positions, max_period):
    first, second = _turn(x[:, 0::2], x[:, 1::2], _angles(x, positions, max_period))
    return np.stack([first, second], axis=-1).reshape(x.shape)


def rope_rotate_half(x, positions, max_period):
    """Pairs (x_k, x_{k + d/2}), the other common layout: relative and norm-keeping too."""
    half = x.shape[-1] // 2
    first, second = _turn(x[:, :half], x[:, half:], _angles(x, positions, max_period))
    return np.concatenate([first, second], axis=-1)


def rope_clockwise(x, positions, max_period):
    """The rotation by -p w_k."""
    return rope_correct(x, -np.asarray(positions), max_period)


def rope_not_a_rotation(x, positions, max_period):
    """The sine's sign dropped in the first entry: (a cos + b sin, a sin + b cos)."""
    angles = _angles(x, positions, max_period)
    a, b = x[:, 0::2], x[:, 1::2]
    first = a * np.cos(angles) + b * np.sin(angles)
    second = a * np.sin(angles) + b * np.cos(angles)
    return np.stack([first, second], axis=-1).reshape(x.shape)


def rope_squared_position(x, positions, max_period):
    """The angle grows with p^2: lengths are kept, but the score sees more than n - m."""
    return rope_correct(x, np.asarray(positions, dtype=np.float64) ** 2, max_period)


def test_rope_passes_a_right_answer():
    verdict = E.check_rope(rope_correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "wrong, says",
    [
        (rope_rotate_half, "turned counter-clockwise"),
        (rope_clockwise, "turned counter-clockwise"),
        (rope_not_a_rotation, "the length"),
        (rope_squared_position, "rope(q, m)"),
    ],
    ids=by_name,
)
def test_rope_fails_a_typical_mistake(wrong, says):
    assert_shrunk_failure(E.check_rope(wrong), "eq-rope", says)


def test_rope_not_done():
    assert_not_done(E.check_rope, "Exercise 5.3: rotate the pairs by their position", "5.3")
