"""Exercises 8.6 and 8.7 (flow matching): the checks of ``minidiff.checks.ex08_flow`` pass a
right answer, fail typical mistakes with a shrunk case, and say NOT DONE for the stub."""

import pytest

import minidiff as md
from minidiff.checks import ex08_flow as E

from .verdicts import assert_not_done, assert_shrunk_failure, by_name


def _column(t, like):
    return t.reshape((-1,) + (1,) * (like.ndim - 1))


def path_correct(x0, z, t):
    t = _column(t, x0)
    return (1.0 - t) * x0 + t * z, z - x0 + 0.0 * t


def path_noise_at_zero(x0, z, t):
    """The papers' convention, noise at t = 0, where this book puts the data."""
    t = _column(t, x0)
    return t * x0 + (1.0 - t) * z, x0 - z + 0.0 * t


def path_velocity_reversed(x0, z, t):
    """The right path with the velocity x0 - z of the sampler's direction."""
    x_t, velocity = path_correct(x0, z, t)
    return x_t, -velocity


def path_arc(x0, z, t):
    """The diffusion's quarter circle with its true derivative: not a straight path."""
    xp = md.backend.xp_of(x0)
    angle = xp.pi / 2 * _column(t, x0)
    x_t = xp.cos(angle) * x0 + xp.sin(angle) * z
    return x_t, xp.pi / 2 * (xp.cos(angle) * z - xp.sin(angle) * x0)


def euler_correct(velocity, x1, steps):
    x = x1
    for i in range(steps):
        x = x - velocity(x, (steps - i) / steps) / steps
    return x


def euler_forward_sign(velocity, x1, steps):
    """x + dt v: a step along the velocity, forwards in time."""
    x = x1
    for i in range(steps):
        x = x + velocity(x, (steps - i) / steps) / steps
    return x


def euler_time_at_the_end(velocity, x1, steps):
    """The velocity evaluated where each step ends, t - dt, reaching t = 0."""
    x = x1
    for i in range(steps):
        x = x - velocity(x, (steps - i - 1) / steps) / steps
    return x


def test_flow_path_passes_a_right_answer():
    verdict = E.check_flow_path(path_correct)
    assert verdict.passed, verdict.message


def test_flow_euler_passes_a_right_answer():
    verdict = E.check_flow_euler(euler_correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "wrong, says",
    [
        (path_noise_at_zero, "start at the data"),
        (path_velocity_reversed, "central differences"),
        (path_arc, "straight path"),
    ],
    ids=by_name,
)
def test_flow_path_fails_a_typical_mistake(wrong, says):
    assert_shrunk_failure(E.check_flow_path(wrong), "eq-flow-path", says)


@pytest.mark.parametrize(
    "wrong, says",
    [(euler_forward_sign, "it must be x0"), (euler_time_at_the_end, "never at 0")],
    ids=by_name,
)
def test_flow_euler_fails_a_typical_mistake(wrong, says):
    assert_shrunk_failure(E.check_flow_euler(wrong), "eq-flow-euler", says)


def test_not_done():
    assert_not_done(E.check_flow_path, "Exercise 8.6: write the straight path", "8.6")
    assert_not_done(E.check_flow_euler, "Exercise 8.7: write the Euler sampler", "8.7")
