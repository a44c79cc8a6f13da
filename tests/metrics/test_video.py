"""Video metrics: near perfect on clips of the world itself, in and out of distribution, and
clearly worse on noise and on clips whose consistency or physics is deliberately broken."""

import dataclasses
import json

import numpy
import pytest

from minidiff.metrics.video import GROUPS, evaluate_clip, evaluate_clips
from minidiff.world import make_dataset
from minidiff.world.captions import GRAVITY_MOTIONS
from minidiff.world.render import render_clip

FRAMES, SIZE = 8, 16


def means(summary):
    return {name: summary[g][name]["mean"] for g, names in GROUPS.items() for name in names}


@pytest.fixture(scope="module")
def real():
    return {
        split: make_dataset(80, split, frames=FRAMES, size=SIZE, seed=11) for split in ("id", "ood")
    }


@pytest.mark.parametrize("split", ["id", "ood"])
def test_real_clips_score_near_perfect(real, split):
    clips, _, specs = real[split]
    summary = evaluate_clips(clips, specs)
    m = means(summary)
    for name in GROUPS["fidelity"]:
        assert m[name] >= 0.98, name
    assert m["permanence"] >= 0.98
    assert m["size_cv"] < 0.03 and m["colour_std"] < 0.01 and m["flicker"] < 1e-6
    assert m["residual_px"] < 0.1 and m["velocity_error"] < 0.02
    assert m["reflection_flip"] >= 0.95
    if split == "id":
        assert m["gravity_error"] < 0.03 and abs(m["gravity_ratio"] - 1) < 0.03
        assert m["restitution_error"] < 0.03
    else:  # strong gravity: more bounces than 8 frames resolve, so a looser but honest bound
        assert m["gravity_error"] < 0.1 and m["restitution_error"] < 0.1
    assert summary["physics"]["gravity_error"]["count"] == sum(
        s.motion in GRAVITY_MOTIONS for s in specs
    )


def test_finer_clips_measure_the_physics_more_precisely():
    clips, _, specs = make_dataset(40, "id", frames=16, size=32, seed=3)
    m = means(evaluate_clips(clips, specs))
    assert m["all"] == 1.0 and m["gravity_error"] < 0.01 and m["restitution_error"] < 0.01


def test_the_summary_is_json_with_counts(real):
    clips, _, specs = real["id"]
    summary = evaluate_clips(clips[:10], specs[:10])
    text = json.dumps(summary, allow_nan=False)
    assert json.loads(text)["clips"] == 10
    assert all(summary["fidelity"][name]["count"] == 10 for name in GROUPS["fidelity"])


def test_noise_fails_every_group(real):
    clips, _, specs = real["id"]
    noise = numpy.random.default_rng(0).random(clips.shape, dtype=numpy.float32)
    m = means(evaluate_clips(noise, specs))
    assert m["all"] <= 0.05 and m["colour"] <= 0.05 and m["count"] <= 0.05
    assert m["permanence"] <= 0.05 and m["flicker"] > 0.1
    assert m["residual_px"] > 1.0 and m["velocity_error"] > 0.5


def moving_specs(real, motion_prefix):
    clips, _, specs = real["id"]
    return [(clip, s) for clip, s in zip(clips, specs) if s.motion.startswith(motion_prefix)]


def test_a_teleporting_ball_breaks_constant_velocity(real):
    honest, broken = [], []
    for clip, spec in moving_specs(real, "moves")[:15]:
        trajectory = spec.simulate(FRAMES, SIZE)
        positions = trajectory.positions.copy()
        jump = numpy.array([-3.0, -3.0]) * numpy.sign(positions[FRAMES // 2, 0] - SIZE / 2)
        positions[FRAMES // 2, 0] += jump  # one frame, one ball, 4 px away and back
        fake = render_clip(positions, trajectory.radii, trajectory.colours, SIZE, SIZE)
        honest.append(evaluate_clip(clip, spec))
        broken.append(evaluate_clip(fake, spec))
    assert numpy.mean([r["residual_px"] for r in broken]) > 20 * numpy.mean(
        [r["residual_px"] for r in honest]
    )
    assert numpy.mean([r["residual_px"] for r in broken]) > 0.4


def test_a_blinking_ball_breaks_permanence(real):
    reports = []
    for _, spec in moving_specs(real, "moves")[:10]:
        trajectory = spec.simulate(FRAMES, SIZE)
        first = [t % 2 for t in range(FRAMES)]  # the first ball is missing from odd frames
        frames = [
            render_clip(
                trajectory.positions[t : t + 1, first[t] :],
                trajectory.radii[first[t] :],
                trajectory.colours[first[t] :],
                SIZE,
                SIZE,
            )
            for t in range(FRAMES)
        ]
        reports.append(evaluate_clip(numpy.concatenate(frames), spec))
    assert not any(r["permanence"] for r in reports)


def test_flicker_pulsing_and_recolouring_are_measured(real):
    clip, spec = moving_specs(real, "moves")[0]
    trajectory = spec.simulate(FRAMES, SIZE)
    flickering = clip + 0.05 * (numpy.arange(FRAMES) % 2)[:, None, None, None]
    assert evaluate_clip(flickering, spec)["flicker"] > 0.02
    pulsing = numpy.concatenate(
        [
            render_clip(
                trajectory.positions[t : t + 1],
                trajectory.radii * (1.0 + 0.3 * numpy.sin(t)),
                trajectory.colours,
                SIZE,
                SIZE,
            )
            for t in range(FRAMES)
        ]
    )
    assert evaluate_clip(pulsing, spec)["size_cv"] > 0.15
    dimming = clip * numpy.linspace(1.0, 0.6, FRAMES)[:, None, None, None]
    assert evaluate_clip(dimming, spec)["colour_std"] > 0.05


def test_wrong_gravity_is_read_off_the_parabola(real):
    ratios = []
    for _, spec in moving_specs(real, "falls")[:8]:
        heavy = dataclasses.replace(spec, gravity=1.5 * spec.gravity)
        ratios.append(evaluate_clip(heavy.render(FRAMES, SIZE), spec)["gravity_ratio"])
    assert numpy.median(ratios) == pytest.approx(1.5, rel=0.1)


def test_a_clip_that_does_something_else_fails_fidelity(real):
    clip, spec = moving_specs(real, "moves left")[0]
    assert evaluate_clip(clip, spec)["direction"]
    assert not evaluate_clip(clip, dataclasses.replace(spec, motion="moves right"))["direction"]
    bouncing = dataclasses.replace(spec, motion="bounces to the left", gravity=5.0)
    report = evaluate_clip(clip, bouncing)
    assert not report["bounce"]
    other = "green" if "green" not in spec.colours else "red"
    report = evaluate_clip(clip, dataclasses.replace(spec, colours=(other, *spec.colours[1:])))
    assert not report["colour"] and not report["all"]
