r"""A two-dimensional world of balls in a box, simulated exactly enough to be measured against.

Units are the ones a clip is measured in: lengths in pixels, time in frames, so a velocity is in
pixels per frame and an acceleration in pixels per frame squared. Positions are continuous: the
box spans ``[0, width] x [0, height]``, pixel (row i, column j) covers ``[j, j+1) x [i, i+1)``,
and the y axis points down, as image rows do, so gravity ``g > 0`` pulls towards the floor at
``y = height``.

Physics
-------
Between contacts a ball flies freely under constant acceleration ``a = (0, g)``:

.. math:: p(t) = p_0 + v_0 t + \tfrac12 a t^2, \qquad v(t) = v_0 + a t.

This is solved in closed form, not integrated, so a clip of free flight is *exactly* a parabola
sampled at whole frames, and the metrics can fit one and recover ``g``.

A ball of radius ``r`` touches a wall when its centre reaches ``r`` from it. The moment of contact
is the first root of the quadratic ``p_0 + v_0 t + a t^2 / 2 = r`` (or ``= width - r``, ...)
within the step; the ball is advanced to that moment, its velocity component normal to the wall is
reversed and scaled by the coefficient of restitution ``e``,

.. math:: v_\perp^{+} = -e\, v_\perp^{-}, \qquad v_\parallel^{+} = v_\parallel^{-},

and the rest of the step is flown from there. The two axes are independent (the walls are axis
aligned and gravity is vertical), so each axis of each ball is advanced on its own. With ``e < 1``
a ball on the floor would bounce infinitely often in finite time; once a rebound would lift it less
than ``REST_HEIGHT`` pixels it is put to rest on the floor instead.

Optional ball-ball contacts are elastic collisions of discs of equal density (mass proportional to
``r^2``). For masses ``m_1, m_2``, unit normal ``n`` from ball 1 to ball 2 and closing speed
``u = (v_1 - v_2) \cdot n > 0``, the impulse ``J = 2u / (1/m_1 + 1/m_2)`` gives

.. math:: v_1^{+} = v_1 - \frac{J}{m_1} n, \qquad v_2^{+} = v_2 + \frac{J}{m_2} n,

which conserves momentum and kinetic energy. Contacts are looked for after every sub-step of
``1 / substeps`` frame, so ``substeps`` bounds how deep two fast balls can overlap before they are
separated. Walls and free flight are exact at any step size, so without ball contacts the
sub-steps would change nothing and are skipped.

Nothing here draws random numbers: the same balls and world give the same trajectory, bit for
bit. Scenes are made random (and reproducible from a seed) in :mod:`minidiff.world.captions`.

>>> world = World(width=16, height=16, gravity=0.5, restitution=0.8)
>>> trajectory = simulate([Ball("red", 2.0, (8.0, 3.0), (0.0, 0.0))], world, frames=8)
>>> trajectory.positions.shape, trajectory.bounces[0].wall
((8, 1, 2), 'floor')
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy

REST_HEIGHT = 1e-3  # pixels: a rebound lower than this is treated as coming to rest
_WALLS = (("left", "right"), ("top", "floor"))  # (low, high) wall of the x and y axes


@dataclass(frozen=True)
class Ball:
    """One ball: a colour name, a radius (px), a centre position (px) and a velocity (px/frame)."""

    colour: str
    radius: float
    position: tuple[float, float]
    velocity: tuple[float, float]


@dataclass(frozen=True)
class World:
    """The box (``width`` x ``height`` px), gravity ``g`` (px/frame^2, positive is down), the
    walls' coefficient of restitution ``e``, and whether balls collide with each other."""

    width: float
    height: float
    gravity: float = 0.0
    restitution: float = 1.0
    collisions: bool = False
    substeps: int = 8

    def __post_init__(self):
        if not 0.0 <= self.restitution <= 1.0:
            raise ValueError(f"restitution must lie in [0, 1], got {self.restitution}")
        if self.substeps < 1:
            raise ValueError(f"substeps must be at least 1, got {self.substeps}")


@dataclass(frozen=True)
class Bounce:
    """A wall contact: when (in frames, fractional), which ball, which wall, and the ball's
    velocity component normal to that wall just before and just after it."""

    time: float
    ball: int
    wall: str
    normal_velocity_before: float
    normal_velocity_after: float


@dataclass
class Trajectory:
    """The state at each frame: ``positions`` and ``velocities`` of shape (frames, balls, 2) in
    (x, y) order, the balls' ``radii`` and ``colours``, and every wall ``bounces`` and ball
    ``contacts`` (time, i, j) in time order."""

    positions: numpy.ndarray
    velocities: numpy.ndarray
    radii: numpy.ndarray
    colours: tuple[str, ...]
    world: World
    bounces: list[Bounce] = field(default_factory=list)
    contacts: list[tuple[float, int, int]] = field(default_factory=list)


def _roots(a2: float, a1: float, a0: float) -> list[float]:
    """Real roots of ``a2 t^2 + a1 t + a0 = 0`` in increasing order.

    Uses the cancellation-free form ``q = -(a1 + sign(a1) sqrt(disc)) / 2``, roots ``q / a2`` and
    ``a0 / q``: the textbook formula loses every digit of the small root when gravity is tiny.
    """
    if a2 == 0.0:
        return [] if a1 == 0.0 else [-a0 / a1]
    discriminant = a1 * a1 - 4.0 * a2 * a0
    if discriminant < 0.0:
        return []
    q = -0.5 * (a1 + math.copysign(math.sqrt(discriminant), a1))
    if q == 0.0:
        return [0.0]
    return sorted((q / a2, a0 / q))


def _first_contact(p, v, a, low, high, horizon):
    """Earliest time in ``[0, horizon]`` at which ``p + v t + a t^2 / 2`` reaches a wall while
    moving into it, as ``(time, side)`` with side 0 for ``low`` and 1 for ``high``; else None.

    Requiring motion into the wall discards the root at t = 0 right after a bounce (the ball is
    on the wall but leaving it) and keeps it for a ball on the wall moving into it.
    """
    best = None
    for side, wall, inward in ((0, low, -1.0), (1, high, 1.0)):
        for t in _roots(0.5 * a, v, p - wall):
            if 0.0 <= t <= horizon and inward * (v + a * t) > 0.0:
                if best is None or t < best[0]:
                    best = (t, side)
                break
    return best


def _advance_axis(p, v, a, low, high, restitution, duration, start):
    """Fly one coordinate for ``duration`` frames from time ``start`` between walls ``low`` and
    ``high``, bouncing exactly at each contact.

    Returns the new ``(p, v)`` and the list of contacts as ``(time, side, v_before, v_after)``;
    an arrival too slow to rebound ``REST_HEIGHT`` (the ball settling) is not a bounce.
    """
    contacts = []
    remaining = duration
    while remaining > 0.0:
        resting = (p >= high and a > 0.0 and v >= 0.0) or (p <= low and a < 0.0 and v <= 0.0)
        if resting:
            return (high if a > 0.0 else low), 0.0, contacts
        hit = _first_contact(p, v, a, low, high, remaining)
        if hit is None:
            return p + v * remaining + 0.5 * a * remaining * remaining, v + a * remaining, contacts
        t, side = hit
        v_before = v + a * t
        v = -restitution * v_before
        p = high if side else low
        remaining -= t
        if a != 0.0 and v * v / (2.0 * abs(a)) < REST_HEIGHT:
            v = 0.0
            if v_before * v_before / (2.0 * abs(a)) < REST_HEIGHT:
                continue
        contacts.append((start + duration - remaining, side, v_before, v))
    return p, v, contacts


def _collide(positions, velocities, radii, time, contacts):
    """Resolve overlapping, approaching pairs as elastic collisions of equal-density discs,
    then push each pair apart along the normal in inverse proportion to mass."""
    inverse_mass = 1.0 / radii**2
    count = len(radii)
    for i in range(count):
        for j in range(i + 1, count):
            offset = positions[j] - positions[i]
            distance = math.hypot(offset[0], offset[1])
            overlap = radii[i] + radii[j] - distance
            if overlap <= 0.0 or distance == 0.0:
                continue
            normal = offset / distance
            closing = float((velocities[i] - velocities[j]) @ normal)
            share = inverse_mass[i] + inverse_mass[j]
            if closing > 0.0:
                impulse = 2.0 * closing / share
                velocities[i] -= impulse * inverse_mass[i] * normal
                velocities[j] += impulse * inverse_mass[j] * normal
                contacts.append((time, i, j))
            positions[i] -= overlap * inverse_mass[i] / share * normal
            positions[j] += overlap * inverse_mass[j] / share * normal


def simulate(balls: list[Ball], world: World, frames: int) -> Trajectory:
    """Run the world for ``frames`` frames; frame 0 is the initial state.

    Raises ValueError if a ball starts outside the box (its disc must fit inside).
    """
    radii = numpy.array([ball.radius for ball in balls], dtype=numpy.float64)
    positions = numpy.array([ball.position for ball in balls], dtype=numpy.float64).reshape(-1, 2)
    velocities = numpy.array([ball.velocity for ball in balls], dtype=numpy.float64).reshape(-1, 2)
    size = numpy.array([world.width, world.height])
    if numpy.any(positions < radii[:, None] - 1e-9) or numpy.any(
        positions > size - radii[:, None] + 1e-9
    ):
        raise ValueError("every ball must start with its whole disc inside the box")
    numpy.clip(positions, radii[:, None], size - radii[:, None], out=positions)
    trajectory = Trajectory(
        positions=numpy.empty((frames, len(balls), 2)),
        velocities=numpy.empty((frames, len(balls), 2)),
        radii=radii,
        colours=tuple(ball.colour for ball in balls),
        world=world,
    )
    acceleration = (0.0, world.gravity)
    steps = world.substeps if world.collisions and len(balls) > 1 else 1
    dt = 1.0 / steps
    for frame in range(frames):
        trajectory.positions[frame] = positions
        trajectory.velocities[frame] = velocities
        if frame == frames - 1:
            break
        for step in range(steps):
            start = frame + step * dt
            for index, radius in enumerate(radii):
                for axis in (0, 1):
                    p, v, contacts = _advance_axis(
                        float(positions[index, axis]),
                        float(velocities[index, axis]),
                        acceleration[axis],
                        float(radius),
                        float(size[axis] - radius),
                        world.restitution,
                        dt,
                        start,
                    )
                    positions[index, axis], velocities[index, axis] = p, v
                    for time, side, v_before, v_after in contacts:
                        wall = _WALLS[axis][side]
                        trajectory.bounces.append(Bounce(time, index, wall, v_before, v_after))
            if steps > 1:
                _collide(positions, velocities, radii, start + dt, trajectory.contacts)
                numpy.clip(positions, radii[:, None], size - radii[:, None], out=positions)
    trajectory.bounces.sort(key=lambda bounce: bounce.time)
    return trajectory
