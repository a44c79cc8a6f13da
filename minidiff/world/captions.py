r"""Scenes, their captions, and the split into training, in-distribution and out-of-distribution.

A :class:`SceneSpec` is everything that decides a clip: the balls' colours and sizes, one motion
shared by all of them, its speed, gravity, the floor's restitution and where each ball starts. Its
caption is written from those same fields ("a small blue ball falls and bounces", "a red ball and
a large green ball move left"), so the ground truth of every clip is known and the metrics in
:mod:`minidiff.metrics.video` can check a generated clip against the caption it was asked for.

Scale-free units
----------------
A spec is independent of resolution: lengths are fractions of the box side ``L`` and time is in
clip durations ``T`` (the time from the first frame to the last). A clip of ``F`` frames at
``S x S`` pixels has ``L = S`` px and ``T = F - 1`` frames, so

.. math:: v_{px/frame} = v \, S / (F - 1), \qquad g_{px/frame^2} = g \, S / (F - 1)^2 .

The 8-frame 16 x 16 demo and a 16-frame 32 x 32 preset therefore show the same scenes, sampled
more finely. A speed of 0.4 crosses 40% of the box in one clip.

Motions
-------
========================  =========================================================  =========
motion                    initial state and forces                                   speed
========================  =========================================================  =========
moves left/right/up/down  constant velocity ``speed`` along the direction; g = 0;    yes
                          never reaches a wall within the clip
falls and bounces         starts near the top at rest; gravity g; hits the floor     no
                          (restitution e) at least once, early enough to be seen
bounces to the left/right like "falls and bounces", with horizontal velocity          yes
                          ``speed``; never reaches a side wall
========================  =========================================================  =========

Several balls share the motion and are placed so that they never overlap: in separate rows for
horizontal moves, separate columns otherwise. Colours within a scene are distinct. A caption names
sizes or leaves them out (``mention_sizes``), so prompts come in two levels of precision.

Splits
------
``"train"`` and ``"id"`` draw from the same ranges (with different random streams); ``"ood"``
changes exactly one axis of a training scene, drawn uniformly, and :func:`ood_axes` reports which:

=========  ==========================================  ==========================================
axis       train and id                                ood
=========  ==========================================  ==========================================
pair       every colour with every motion except the   one ball has a held-out pair:
           held-out pairs                              red moves left, green moves up,
                                                       blue falls and bounces, yellow bounces to
                                                       the right, magenta moves down, cyan
                                                       bounces to the left
speed      0.25 to 0.50 box per clip                   0.55 to 0.65 box per clip
gravity    4 to 7 box per clip squared                 9 to 12 box per clip squared
count      1 or 2 balls                                3 balls
=========  ==========================================  ==========================================

Restitution is 0.55 to 0.85 and sizes are small (radius 0.09 box) or large (0.14) everywhere.
Every colour and every motion is seen in training, only not every pairing, so the pair axis tests
composition; speed and gravity are not in the captions, so those axes test how a model's physics
behaves on scenes its prompts cannot tell apart from training ones.

>>> clips, captions, specs = make_dataset(4, split="train", frames=8, size=16, seed=0)
>>> clips.shape, clips.dtype, all(ood_axes(spec) == () for spec in specs)
((4, 8, 3, 16, 16), dtype('float32'), True)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy

from .physics import Ball, Trajectory, World, simulate
from .render import PALETTE, render

COLOURS = tuple(PALETTE)
SIZES = {"small": 0.09, "large": 0.14}  # radius as a fraction of the box side
MOTIONS = (
    "moves left",
    "moves right",
    "moves up",
    "moves down",
    "falls and bounces",
    "bounces to the left",
    "bounces to the right",
)
PLURAL = {
    "moves left": "move left",
    "moves right": "move right",
    "moves up": "move up",
    "moves down": "move down",
    "falls and bounces": "fall and bounce",
    "bounces to the left": "bounce to the left",
    "bounces to the right": "bounce to the right",
}
DIRECTIONS = {  # unit direction of the motion's speed, (x, y) with y down
    "moves left": (-1.0, 0.0),
    "moves right": (1.0, 0.0),
    "moves up": (0.0, -1.0),
    "moves down": (0.0, 1.0),
    "falls and bounces": (0.0, 0.0),
    "bounces to the left": (-1.0, 0.0),
    "bounces to the right": (1.0, 0.0),
}
SPEED_MOTIONS = tuple(m for m in MOTIONS if m != "falls and bounces")
GRAVITY_MOTIONS = ("falls and bounces", "bounces to the left", "bounces to the right")
HELD_OUT_PAIRS = frozenset(
    {
        ("red", "moves left"),
        ("green", "moves up"),
        ("blue", "falls and bounces"),
        ("yellow", "bounces to the right"),
        ("magenta", "moves down"),
        ("cyan", "bounces to the left"),
    }
)
TRAIN_RANGES = {
    "speed": (0.25, 0.50),
    "gravity": (4.0, 7.0),
    "restitution": (0.55, 0.85),
    "count": (1, 2),
}
OOD_RANGES = {"speed": (0.55, 0.65), "gravity": (9.0, 12.0), "count": (3, 3)}
OOD_AXES = ("pair", "speed", "gravity", "count")
SPLITS = ("train", "id", "ood")
VOCABULARY = tuple(
    sorted(
        {"a", "and", "ball"}
        | set(SIZES)
        | set(COLOURS)
        | {word for phrase in (*MOTIONS, *PLURAL.values()) for word in phrase.split()}
    )
)

_MARGIN = 0.02  # gap between a ball and a wall it must not reach, as a fraction of the box
_GAP = 0.08  # gap between neighbouring balls: over a pixel at 16 x 16, so rims do not touch
_DROP_BAND = 0.10  # falling balls start within this distance below the highest start
_PLACEMENT_TRIES = 20


@dataclass(frozen=True)
class SceneSpec:
    """A scene in scale-free units (see the module docstring): per-ball ``colours``, ``sizes``
    and start ``positions`` (x, y as fractions of the box), the shared ``motion``, ``speed``
    (box per clip; 0 for "falls and bounces"), ``gravity`` (box per clip squared; 0 for the
    "moves" motions), the floor's ``restitution`` and whether the caption names the sizes."""

    colours: tuple[str, ...]
    sizes: tuple[str, ...]
    motion: str
    speed: float
    gravity: float
    restitution: float
    positions: tuple[tuple[float, float], ...]
    mention_sizes: bool = True

    @property
    def count(self) -> int:
        return len(self.colours)

    @property
    def caption(self) -> str:
        return caption(self)

    def radii(self, size: int) -> numpy.ndarray:
        """Ball radii in pixels for an ``size x size`` clip."""
        return numpy.array([SIZES[name] * size for name in self.sizes])

    def velocity(self, frames: int, size: int) -> numpy.ndarray:
        """The initial velocity shared by the balls, in pixels per frame, (x, y)."""
        return numpy.array(DIRECTIONS[self.motion]) * self.speed * size / (frames - 1)

    def world(self, frames: int, size: int) -> World:
        """The world in pixels and frames; gravity is in px/frame^2."""
        gravity = self.gravity * size / (frames - 1) ** 2
        return World(width=size, height=size, gravity=gravity, restitution=self.restitution)

    def simulate(self, frames: int, size: int, total: int | None = None) -> Trajectory:
        """The scene in pixels and frames of a ``frames``-frame clip, run for ``total`` frames
        (default ``frames``): a longer run continues the same physics past the clip's end."""
        if frames < 2:
            raise ValueError(f"a clip needs at least 2 frames, got {frames}")
        velocity = tuple(self.velocity(frames, size))
        balls = [
            Ball(colour, radius, (x * size, y * size), velocity)
            for colour, radius, (x, y) in zip(self.colours, self.radii(size), self.positions)
        ]
        return simulate(balls, self.world(frames, size), total or frames)

    def render(self, frames: int, size: int, total: int | None = None) -> numpy.ndarray:
        """The clip, float32 (total or frames, 3, size, size) in [0, 1]; see :meth:`simulate`."""
        return render(self.simulate(frames, size, total))


def caption(spec: SceneSpec) -> str:
    """The caption of a spec: each ball as "a [size] colour ball", joined by "and", then the
    motion, singular for one ball and plural for several."""
    balls = [
        f"a {size} {colour} ball" if spec.mention_sizes else f"a {colour} ball"
        for colour, size in zip(spec.colours, spec.sizes)
    ]
    verb = spec.motion if spec.count == 1 else PLURAL[spec.motion]
    return f"{' and '.join(balls)} {verb}"


def parse_caption(text: str) -> dict:
    """Read a caption back: ``{"colours", "sizes" (None where unnamed), "motion", "count"}``.

    Raises ValueError for text that no template produces.
    """
    words = text.split()
    colours, sizes, size = [], [], None
    index = 0
    while index < len(words) and words[index] in ("a", "and", "ball", *SIZES, *COLOURS):
        word = words[index]
        if word in SIZES:
            size = word
        elif word in COLOURS:
            colours.append(word)
            sizes.append(size)
            size = None
        index += 1
    verb = " ".join(words[index:])
    motions = {m: m for m in MOTIONS} if len(colours) == 1 else {p: m for m, p in PLURAL.items()}
    if not colours or verb not in motions:
        raise ValueError(f"not a caption of this world: {text!r}")
    return {"colours": colours, "sizes": sizes, "motion": motions[verb], "count": len(colours)}


def ood_axes(spec: SceneSpec) -> tuple[str, ...]:
    """The axes along which ``spec`` lies outside the training distribution; () when inside."""

    def outside(value, bounds):
        return not bounds[0] <= value <= bounds[1]

    axes = []
    if any((colour, spec.motion) in HELD_OUT_PAIRS for colour in spec.colours):
        axes.append("pair")
    if spec.motion in SPEED_MOTIONS and outside(spec.speed, TRAIN_RANGES["speed"]):
        axes.append("speed")
    if spec.motion in GRAVITY_MOTIONS and outside(spec.gravity, TRAIN_RANGES["gravity"]):
        axes.append("gravity")
    if outside(spec.count, TRAIN_RANGES["count"]):
        axes.append("count")
    if spec.motion in GRAVITY_MOTIONS and outside(spec.restitution, TRAIN_RANGES["restitution"]):
        axes.append("restitution")
    return tuple(axes)


def _separated(radii, rng, low, high):
    """Draw one coordinate per ball, each in [low_i, high_i], with neighbours at least
    r_i + r_j + gap apart; None if rejection sampling finds no such draw."""
    for _ in range(_PLACEMENT_TRIES):
        values = rng.uniform(low, high)
        order = numpy.argsort(values)
        gaps = numpy.diff(values[order])
        needed = radii[order][:-1] + radii[order][1:] + _GAP
        if numpy.all(gaps >= needed):
            return values
    return None


def _place(rng, radii, motion, speed):
    """Start positions (balls, 2) in box fractions for which the motion plays out as its
    caption says (see the module docstring), or None if the balls do not fit."""
    low = radii + _MARGIN
    high = 1.0 - radii - _MARGIN
    if numpy.any(low > high):
        return None
    travel = speed + _MARGIN
    dx, dy = DIRECTIONS[motion]
    # the coordinate along the motion must leave room for the whole travel of one clip
    along_low = low + travel * (dx < 0 or dy < 0)
    along_high = high - travel * (dx > 0 or dy > 0)
    if numpy.any(along_low > along_high):
        return None
    if motion in ("moves left", "moves right"):
        x = rng.uniform(along_low, along_high)
        y = _separated(radii, rng, low, high)
    elif motion in ("moves up", "moves down"):
        y = rng.uniform(along_low, along_high)
        x = _separated(radii, rng, low, high)
    else:
        y = rng.uniform(low, low + _DROP_BAND)
        x = _separated(radii, rng, along_low, along_high)
    if x is None or y is None:
        return None
    return numpy.stack([x, y], axis=1)


def sample_spec(rng: numpy.random.Generator, split: str = "train") -> SceneSpec:
    """Draw one scene of ``split`` ("train", "id" or "ood"); see the module docstring."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    axis = OOD_AXES[rng.integers(len(OOD_AXES))] if split == "ood" else None
    while True:
        count = 3 if axis == "count" else int(rng.integers(1, 3))
        if axis == "speed":
            motion = SPEED_MOTIONS[rng.integers(len(SPEED_MOTIONS))]
        elif axis == "gravity":
            motion = GRAVITY_MOTIONS[rng.integers(len(GRAVITY_MOTIONS))]
        elif axis == "pair":
            held_out = sorted(HELD_OUT_PAIRS)
            held_colour, motion = held_out[rng.integers(len(held_out))]
        else:
            motion = MOTIONS[rng.integers(len(MOTIONS))]
        if axis == "pair":
            others = [c for c in COLOURS if c != held_colour]
            colours = [held_colour, *rng.choice(others, size=count - 1, replace=False)]
            colours = [colours[i] for i in rng.permutation(count)]
        else:
            allowed = [c for c in COLOURS if (c, motion) not in HELD_OUT_PAIRS]
            colours = list(rng.choice(allowed, size=count, replace=False))
        sizes = [tuple(SIZES)[i] for i in rng.integers(len(SIZES), size=count)]
        speed = 0.0
        if motion in SPEED_MOTIONS:
            bounds = OOD_RANGES["speed"] if axis == "speed" else TRAIN_RANGES["speed"]
            speed = float(rng.uniform(*bounds))
        gravity = 0.0
        if motion in GRAVITY_MOTIONS:
            bounds = OOD_RANGES["gravity"] if axis == "gravity" else TRAIN_RANGES["gravity"]
            gravity = float(rng.uniform(*bounds))
        restitution = float(rng.uniform(*TRAIN_RANGES["restitution"]))
        radii = numpy.array([SIZES[name] for name in sizes])
        positions = _place(rng, radii, motion, speed)
        if positions is None:
            continue
        return SceneSpec(
            colours=tuple(str(c) for c in colours),
            sizes=tuple(sizes),
            motion=motion,
            speed=speed,
            gravity=gravity,
            restitution=restitution,
            positions=tuple((float(x), float(y)) for x, y in positions),
            mention_sizes=bool(rng.random() < 0.5),
        )


def make_dataset(
    n: int,
    split: str = "train",
    frames: int = 8,
    size: int = 16,
    seed: int = 0,
    motions=None,
    counts=None,
):
    """``n`` clips of ``split``: (clips float32 (n, frames, 3, size, size) in [0, 1], captions,
    specs). The random stream depends on (seed, split), so "train" and "id" never repeat.

    ``motions`` and ``counts`` (collections, None for all) keep only the scenes with one of
    those motions and numbers of balls, drawn from the same stream: a smaller world for probes
    (one ball that moves, say) whose scenes are the full world's scenes that qualify."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if motions is not None and not set(motions) <= set(MOTIONS):
        raise ValueError(f"unknown motions {sorted(set(motions) - set(MOTIONS))}; known {MOTIONS}")
    possible = {1, 2, 3} if split == "ood" else set(range(TRAIN_RANGES["count"][0], 3))
    if counts is not None and not set(counts) & possible:
        raise ValueError(f"counts {sorted(counts)}: {split} scenes have {sorted(possible)} balls")
    rng = numpy.random.default_rng([seed, SPLITS.index(split)])
    specs = []
    while len(specs) < n:
        spec = sample_spec(rng, split)
        if (motions is None or spec.motion in motions) and (counts is None or spec.count in counts):
            specs.append(spec)
    clips = numpy.empty((n, frames, 3, size, size), dtype=numpy.float32)
    for index, spec in enumerate(specs):
        clips[index] = spec.render(frames, size)
    return clips, [spec.caption for spec in specs], specs
