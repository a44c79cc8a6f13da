"""The simulator: determinism, exact free flight, restitution at walls, balls stay in the box,
elastic ball-ball contacts, and balls coming to rest."""

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.world.physics import Ball, World, simulate


def test_same_input_same_trajectory_bit_for_bit():
    balls = [
        Ball("red", 2.0, (5.0, 4.0), (1.3, -0.7)),
        Ball("blue", 3.0, (20.0, 20.0), (-2.1, 0.4)),
    ]
    world = World(32, 32, gravity=0.3, restitution=0.7, collisions=True)
    first, second = simulate(balls, world, 40), simulate(balls, world, 40)
    assert numpy.array_equal(first.positions, second.positions)
    assert numpy.array_equal(first.velocities, second.velocities)
    assert first.bounces == second.bounces and first.contacts == second.contacts


def test_free_flight_is_the_parabola_of_the_worlds_gravity():
    g, v0, p0 = 0.37, (0.8, -2.5), (6.0, 20.0)
    trajectory = simulate([Ball("green", 2.0, p0, v0)], World(64, 64, gravity=g), 12)
    assert trajectory.bounces == []
    t = numpy.arange(12.0)
    y = trajectory.positions[:, 0, 1]
    numpy.testing.assert_allclose(y, p0[1] + v0[1] * t + 0.5 * g * t**2, rtol=0, atol=1e-12)
    numpy.testing.assert_allclose(trajectory.positions[:, 0, 0], p0[0] + v0[0] * t, atol=1e-12)
    curvature = numpy.polyfit(t, y, 2)[0]
    assert 2 * curvature == pytest.approx(g, rel=1e-9)
    numpy.testing.assert_allclose(trajectory.velocities[:, 0, 1], v0[1] + g * t, atol=1e-12)


@pytest.mark.parametrize("restitution", [0.3, 0.6, 0.9, 1.0])
def test_a_floor_bounce_scales_the_vertical_speed_by_the_restitution(restitution):
    g, radius, height = 0.5, 2.0, 32.0
    world = World(32, height, gravity=g, restitution=restitution)
    trajectory = simulate([Ball("red", radius, (10.0, 3.0), (0.5, 0.0))], world, 16)
    bounce = trajectory.bounces[0]
    assert bounce.wall == "floor"
    assert -bounce.normal_velocity_after / bounce.normal_velocity_before == pytest.approx(
        restitution, rel=1e-12
    )
    # the same ratio read from the frames: extrapolate the recorded velocities to the contact
    before, after = int(numpy.floor(bounce.time)), int(numpy.ceil(bounce.time))
    v_before = trajectory.velocities[before, 0, 1] + g * (bounce.time - before)
    v_after = trajectory.velocities[after, 0, 1] - g * (after - bounce.time)
    assert -v_after / v_before == pytest.approx(restitution, rel=1e-9)
    # contact happens when the disc touches the floor: the fall from 3 to height - radius
    assert bounce.time == pytest.approx(numpy.sqrt(2 * (height - radius - 3.0) / g), rel=1e-12)


def test_side_walls_reflect_the_horizontal_velocity():
    world = World(20, 20, restitution=0.5)
    trajectory = simulate([Ball("cyan", 2.0, (15.0, 10.0), (2.0, 0.0))], world, 6)
    bounce = trajectory.bounces[0]
    assert bounce.wall == "right" and bounce.time == pytest.approx(1.5)
    assert trajectory.velocities[-1, 0, 0] == pytest.approx(-1.0)
    assert trajectory.velocities[-1, 0, 1] == 0.0


@given(
    st.lists(
        st.tuples(
            st.floats(1.0, 4.0),
            st.floats(0.0, 1.0),
            st.floats(0.0, 1.0),
            st.floats(-4.0, 4.0),
            st.floats(-4.0, 4.0),
        ),
        min_size=1,
        max_size=4,
    ),
    st.floats(0.0, 1.0),
    st.floats(0.0, 1.0),
    st.booleans(),
)
def test_no_ball_ever_leaves_the_box(params, gravity, restitution, collisions):
    size = 24.0
    balls = [
        Ball("red", r, (r + u * (size - 2 * r), r + w * (size - 2 * r)), (vx, vy))
        for r, u, w, vx, vy in params
    ]
    world = World(size, size, gravity=gravity, restitution=restitution, collisions=collisions)
    trajectory = simulate(balls, world, 30)
    radii = trajectory.radii[None, :, None]
    assert numpy.all(trajectory.positions >= radii - 1e-9)
    assert numpy.all(trajectory.positions <= size - radii + 1e-9)


def test_ball_contacts_conserve_momentum_and_energy():
    balls = [
        Ball("red", 2.0, (10.0, 20.0), (1.5, 0.2)),
        Ball("blue", 3.0, (30.0, 21.0), (-1.0, 0.0)),
    ]
    trajectory = simulate(balls, World(48, 48, collisions=True, substeps=16), 12)
    assert len(trajectory.contacts) == 1 and trajectory.bounces == []
    mass = trajectory.radii**2
    momentum = numpy.einsum("n,fnc->fc", mass, trajectory.velocities)
    energy = 0.5 * numpy.einsum("n,fn->f", mass, numpy.sum(trajectory.velocities**2, axis=-1))
    numpy.testing.assert_allclose(momentum, momentum[:1].repeat(12, 0), atol=1e-12)
    numpy.testing.assert_allclose(energy, numpy.full(12, energy[0]), rtol=1e-12)
    assert not numpy.allclose(trajectory.velocities[-1], trajectory.velocities[0])


def test_equal_balls_head_on_swap_velocities():
    balls = [
        Ball("red", 2.0, (10.0, 20.0), (1.0, 0.0)),
        Ball("blue", 2.0, (30.0, 20.0), (-1.0, 0.0)),
    ]
    trajectory = simulate(balls, World(48, 48, collisions=True), 14)
    numpy.testing.assert_allclose(trajectory.velocities[-1], [[-1.0, 0.0], [1.0, 0.0]], atol=1e-12)


def test_a_dropped_ball_comes_to_rest_on_the_floor():
    world = World(16, 16, gravity=0.5, restitution=0.5)
    trajectory = simulate([Ball("yellow", 2.0, (8.0, 3.0), (0.0, 0.0))], world, 60)
    assert trajectory.positions[-1, 0, 1] == 14.0 and trajectory.velocities[-1, 0, 1] == 0.0
    speeds = [abs(b.normal_velocity_before) for b in trajectory.bounces]
    assert len(speeds) < 30 and all(a > b for a, b in zip(speeds, speeds[1:]))


def test_a_ball_outside_the_box_is_refused():
    with pytest.raises(ValueError, match="inside the box"):
        simulate([Ball("red", 3.0, (1.0, 8.0), (0.0, 0.0))], World(16, 16), 4)
