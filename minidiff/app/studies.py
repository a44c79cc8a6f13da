"""Experiments that decide the recipe: named variants trained for a budget, measured, and written
into the repository, so the book reads their results instead of retraining them.

A :class:`Study` is a preset plus the changes it tests (network, training, world). Running it
(``python -m minidiff study NAME``) trains it into ``runs/studies/NAME`` and writes
``studies/NAME/``:

* ``result.json``: everything below, with the command that made it;
* ``report.md``: the same as tables;
* ``samples.gif``: the demo prompts sampled by the final model.

What is measured, every rate with its 95% bootstrap interval (eq-bootstrap):

* a **learning curve**: at each step of ``curve``, the EMA model's text-to-video rates on
  ``curve_clips`` in-distribution scenes, against the clips seen so far (and, for a network
  trained with frame masks, its prediction from the first frames);
* **text-to-video** at the end: ``id_clips`` ID scenes and ``ood_clips`` per OOD axis, beside
  real clips of the same scenes (the ceiling);
* **prediction** (PhyWorld's protocol): the first ``GIVEN`` real frames given, the rest
  generated, velocity and gravity errors of the generated frames
  (:mod:`minidiff.metrics.prediction`) ID and per OOD axis, beside the real-clip floor; by
  frame masks for a network trained with them, and by replacement (the baseline) always;
* **continuation** to ``VIDEO_FRAMES`` frames window by window: jumps at seams and permanence;
* **length extrapolation**: clips of twice the training length sampled in one go;
* the **x0 error by noise level** on held-out ID clips.

``python -m minidiff study --table`` gathers every ``result.json`` into ``studies/README.md``.
"""

from __future__ import annotations

import json
import platform
import shlex
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy

from .. import backend, io, parallel, runlock
from ..metrics.continuation import evaluate_videos, reference_video
from ..metrics.intervals import ratio_interval
from ..metrics.prediction import evaluate_predictions
from ..metrics.video import evaluate_clips
from ..metrics.words import (
    bayes_word_effect,
    feature_similarity,
    one_step_x0_errors,
    opposite_direction,
    other_colours,
    word_effect,
)
from ..world import make_dataset, ood_axes, to_signed
from ..world.captions import OOD_AXES
from ..world.preview import write_grid_gif
from .pipeline import DEMO_PROMPTS, EVAL_SEED, build_trainer
from .presets import FRAME_MASKS, Preset, get_preset
from .text_to_video import TextToVideo
from .train import TrainConfig

GIVEN = 3  # frames given in the prediction protocol, as in PhyWorld
VIDEO_FRAMES = 32  # length of the continued videos
CONTEXT = 4  # frames each continuation window keeps
LEVELS = (100, 300, 500, 700, 850, 950)  # noise levels of the x0-error profile
HEADLINE = (
    ("fidelity", "colour"),
    ("fidelity", "count"),
    ("fidelity", "direction"),
    ("consistency", "permanence"),
)
MASKS = FRAME_MASKS


@dataclass(frozen=True)
class Study:
    """A named variant of a preset: ``model``, ``train`` and ``world`` are merged into the
    preset's dicts, ``preset_fields`` replaces top-level fields (e.g. ``train_clips``). A study
    that ``ship``s also writes its EMA weights and its training log beside its results."""

    name: str
    question: str
    preset: str = "tiny-cpu-plain"
    model: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    world: dict = field(default_factory=dict)
    preset_fields: dict = field(default_factory=dict)
    ship: bool = False

    def build(self, steps: int | None = None) -> Preset:
        """The preset this study trains (with ``steps`` training steps if given)."""
        base = get_preset(self.preset)
        train = {**base.train, **self.train}
        if steps is not None:
            train["steps"] = steps
        return base.with_overrides(
            model={**base.model, **self.model},
            train=train,
            world={**base.world, **self.world},
            **self.preset_fields,
        )


MOVES = ["moves left", "moves right", "moves up", "moves down"]
ONE_BALL = {"counts": [1], "motions": MOVES}  # the smallest task with a direction


def one_ball_demo(name: str, question: str, model: dict | None = None, **fields) -> Study:
    """A study of the one-ball task with the demo's recipe (frame masks and adaLN-Zero), plus
    the ``model`` changes and other :class:`Study` fields given."""
    return Study(
        name,
        question,
        model={"frame_conditioning": True, "adaln": True, **(model or {})},
        train={"frame_masks": MASKS},
        world=ONE_BALL,
        **fields,
    )


STUDIES = {
    study.name: study
    for study in [
        Study("baseline", "the recipe before these studies: text-to-video only"),
        Study(
            "masks",
            "frame masks (none / first k / last k / random): one network for text-to-video, "
            "prediction and continuation",
            model={"frame_conditioning": True},
            train={"frame_masks": MASKS},
        ),
        Study(
            "adaln",
            "time and pooled caption as adaLN-Zero modulation of every block",
            model={"adaln": True},
        ),
        Study(
            "frame-difference",
            "a frame-difference term in the loss (lambda = 0.5)",
            train={"frame_difference_weight": 0.5},
        ),
        Study(
            "tubelet-2",
            "tokens of two frames (half the tokens, so more steps in the same time)",
            model={"tubelet": 2},
        ),
        Study(
            "absolute-positions",
            "absolute sincos positions added beside the rotary ones",
            model={"pos_encoding": "rope3d+sincos3d"},
        ),
        Study(
            "sincos-positions",
            "fixed sincos positions over (t, i, j), wavelengths up to 2 pi x 8, instead of rotary",
            model={"pos_encoding": "sincos3d"},
        ),
        Study(
            "learned-positions",
            "a learned vector per (t, i, j) position instead of rotary",
            model={"pos_encoding": "learned"},
        ),
        Study(
            "factorized",
            "factorized attention: spatial and temporal blocks in turn instead of joint",
            model={"attention": "factorized"},
        ),
        Study(
            "batch-32",
            "batches of 32 clips (fewer, less noisy steps in the same time)",
            train={"batch_size": 32},
        ),
        Study(
            "masks-adaln",
            "frame masks and adaLN-Zero together",
            model={"frame_conditioning": True, "adaln": True},
            train={"frame_masks": MASKS},
        ),
        Study(
            "word-init",
            "frame masks and adaLN-Zero, with the text encoder's word table drawn at standard "
            "deviation 1 instead of 0.02",
            model={"frame_conditioning": True, "adaln": True},
            train={"frame_masks": MASKS},
            preset_fields={"text": {**get_preset("tiny-cpu").text, "embedding_std": 1.0}},
        ),
        Study(
            "frame-noise",
            "frame masks, adaLN-Zero and, for half the clips, one noise level per frame",
            model={"frame_conditioning": True, "adaln": True, "frame_times": True},
            train={"frame_masks": MASKS, "frame_noise": 0.5},
        ),
        Study(
            "baseline-curve",
            "the learning curve of the baseline recipe, 20,000 steps",
            train={"steps": 20000},
        ),
        Study(
            "masks-adaln-curve",
            "the learning curve of frame masks with adaLN-Zero, 20,000 steps",
            model={"frame_conditioning": True, "adaln": True},
            train={"frame_masks": MASKS, "steps": 20000},
            ship=True,
        ),
        Study(
            "recipe-curve",
            "the learning curve of frame masks with adaLN-Zero, the word table drawn at "
            "standard deviation 1 and absolute sincos positions beside the rotary ones, "
            "20,000 steps",
            model={"frame_conditioning": True, "adaln": True, "pos_encoding": "rope3d+sincos3d"},
            train={"frame_masks": MASKS, "steps": 20000},
            preset_fields={"text": {**get_preset("tiny-cpu").text, "embedding_std": 1.0}},
            ship=True,
        ),
        Study(
            "demo",
            "the recipe of recipe-curve (frame masks, adaLN-Zero, the word table at 1, absolute "
            "positions beside the rotary ones, batches of 16) for the demo's time",
            preset="tiny-cpu",
            train={"batch_size": 16},
        ),
        Study(
            "demo-batch-8",
            "the recipe with batches of 8 clips (the demo's): about twice the steps in the same "
            "time, each on half the clips",
            preset="tiny-cpu",
            train={"batch_size": 8},
        ),
        Study(
            "demo-lr-4e-3",
            "the demo (batches of 8 for its 3,600 steps) at twice the learning rate, 4e-3: does "
            "motion come sooner when each of the few steps moves further?",
            preset="tiny-cpu",
            train={"batch_size": 8, "lr": 4e-3},
        ),
        Study(
            "demo-tubelet-2",
            "the demo with tokens of 2 frames x 4 x 4 pixels: half the tokens, so a step takes "
            "about 0.55 of the time and the demo's time holds 6,000 steps of 8; and each token "
            "sees a ball move between its two frames",
            preset="tiny-cpu",
            model={"tubelet": 2},
            train={"batch_size": 8},
        ),
        Study(
            "demo-t2v-70",
            "the demo (3,600 steps of 8) with 70% of the clips text-only instead of 40% (first "
            "k frames given 20%, last k 5%, a random subset 5%): does the text-only task learn "
            "sooner when it gets more of the few steps?",
            preset="tiny-cpu",
            train={
                "batch_size": 8,
                "frame_masks": {"none": 0.7, "first": 0.2, "last": 0.05, "random": 0.05},
            },
        ),
        Study(
            "demo-depth-3",
            "the demo with 3 blocks instead of 5: a step takes about 0.78 of the time, so the "
            "demo's time holds 4,600 steps of 8; is a shallower network that sees more clips "
            "better at this budget?",
            preset="tiny-cpu",
            model={"depth": 3},
            train={"batch_size": 8},
        ),
        Study(
            "demo-no-min-snr",
            "the demo (3,600 steps of 8) with the v loss unweighted instead of min-SNR-5: the "
            "high noise levels, where a clip's layout and motion are decided, weigh about 1 "
            "each instead of their SNR (eq-min-snr)",
            preset="tiny-cpu",
            train={"batch_size": 8, "min_snr_gamma": None},
        ),
        Study(
            "demo-batch-4",
            "the recipe with batches of 4 clips: about four times the steps in the same time, "
            "each on a quarter of the clips",
            preset="tiny-cpu",
            train={"batch_size": 4},
        ),
        Study(
            "proxy-baseline",
            "the smallest failing task: one ball, four directions",
            world=ONE_BALL,
        ),
        Study(
            "proxy-no-min-snr",
            "one ball, four directions, the v loss unweighted: the high noise levels, where the "
            "layout is decided, weigh as much as the rest",
            train={"min_snr_gamma": None},
            world=ONE_BALL,
        ),
        one_ball_demo(
            "proxy-masks-adaln",
            "one ball, four directions, with the demo's frame masks and adaLN-Zero",
        ),
        one_ball_demo(
            "proxy-patch-2-tubelet-4",
            "one ball, four directions, masks and adaLN-Zero, with tokens of 4 frames x 2 x 2 "
            "pixels: as many tokens as now, a grid four times finer in space, so a ball crosses "
            "tokens as it moves and each token holds a piece of its path",
            model={"patch": 2, "tubelet": 4},
        ),
        one_ball_demo(
            "proxy-patch-2-tubelet-2",
            "one ball, four directions, masks and adaLN-Zero, with tokens of 2 frames x 2 x 2 "
            "pixels (twice the tokens)",
            model={"patch": 2, "tubelet": 2},
        ),
        one_ball_demo(
            "proxy-stem",
            "one ball, four directions, masks and adaLN-Zero, with a convolutional stem (two "
            "3 x 3 layers of 16 feature maps per frame, beside the pixels in each token)",
            model={"stem_channels": 16},
        ),
        one_ball_demo(
            "proxy-motion-rope",
            "one ball, four directions, masks and adaLN-Zero, with four rotary pairs per head "
            "tilted along motions of 0.2 tokens per frame (eq-rope-motion): attention can look "
            "along a ball's path, and the direction's sign is which pairs it weighs",
            model={"motion_slope": 0.2},
        ),
        one_ball_demo(
            "proxy-word-init",
            "one ball, four directions, masks and adaLN-Zero, with the text encoder's word "
            "table drawn at standard deviation 1 instead of 0.02: every word distinct from the "
            "first step",
            preset_fields={"text": {**get_preset("tiny-cpu").text, "embedding_std": 1.0}},
        ),
        one_ball_demo(
            "proxy-absolute-positions",
            "one ball, four directions, masks and adaLN-Zero, with absolute sincos positions "
            "beside the rotary ones: each token knows its frame",
            model={"pos_encoding": "rope3d+sincos3d"},
        ),
    ]
}


def load_result(name: str, out_root="studies") -> dict:
    """The ``result.json`` a study wrote, or an error saying how to make it."""
    path = Path(out_root) / name / "result.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `python -m minidiff study {name}`")
    return json.loads(path.read_text())


def get_study(name: str) -> Study:
    """The study called ``name``, or an error listing the known ones."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}; known studies: {', '.join(STUDIES)}")
    return STUDIES[name]


# --- measurements ---------------------------------------------------------------------------------


def scenes(preset: Preset, split: str, n: int):
    """``n`` evaluation scenes of ``split`` (fixed seed): (clips, captions, specs)."""
    return make_dataset(n, split, preset.frames, preset.size, seed=EVAL_SEED, **preset.world)


def ood_scenes(preset: Preset, per_axis: int) -> dict:
    """``per_axis`` OOD scenes for each axis along which the preset's world can leave training:
    axis -> (clips, captions, specs)."""
    clips, captions, specs = make_dataset(
        6 * per_axis, "ood", preset.frames, preset.size, seed=EVAL_SEED, **preset.world
    )
    groups = {}
    for axis in OOD_AXES:
        chosen = [i for i, spec in enumerate(specs) if ood_axes(spec)[:1] == (axis,)][:per_axis]
        if len(chosen) == per_axis:
            groups[axis] = (
                clips[chosen],
                [captions[i] for i in chosen],
                [specs[i] for i in chosen],
            )
    return groups


def rates(summary: dict) -> dict:
    """The headline rates of an :func:`evaluate_clips` summary."""
    return {name: summary[group][name] for group, name in HEADLINE}


def _sample(system: TextToVideo, captions, seed: int, **kwargs):
    state = backend.get_rng_state()  # sampling reseeds: keep training's stream untouched
    clips = system.sample(captions, seed=seed, progress=False, **kwargs)
    backend.set_rng_state(state)
    return clips


def text_to_video(system: TextToVideo, scenes_) -> dict:
    clips, captions, specs = scenes_
    return evaluate_clips(_sample(system, captions, EVAL_SEED), specs)


def prediction(system: TextToVideo, scenes_, conditioning: str) -> dict:
    """PhyWorld's protocol: the first GIVEN frames given, the rest generated and measured."""
    clips, captions, specs = scenes_
    known = numpy.zeros(clips.shape, dtype=numpy.float32)
    known[:, :GIVEN] = to_signed(clips[:, :GIVEN])
    mask = numpy.zeros(clips.shape, dtype=bool)
    mask[:, :GIVEN] = True
    device = system.encoder.device
    generated = _sample(
        system,
        captions,
        EVAL_SEED + 1,
        known=backend.to_device(known, device),
        known_mask=backend.to_device(mask, device),
        conditioning=conditioning,
    )
    return evaluate_predictions(generated, specs, GIVEN)


def continuation(system: TextToVideo, scenes_, conditioning: str) -> dict:
    """Videos of VIDEO_FRAMES frames continued from the real first clip, window by window."""
    clips, captions, specs = scenes_
    state = backend.get_rng_state()
    video = system.continue_clips(
        captions,
        clips,
        VIDEO_FRAMES,
        CONTEXT,
        seed=EVAL_SEED + 2,
        progress=False,
        conditioning=conditioning,
    )
    backend.set_rng_state(state)
    return evaluate_videos(video, specs, system.config.frames, CONTEXT)


def extrapolation(system: TextToVideo, preset: Preset, scenes_) -> dict:
    """Clips of twice the training length in one go (length extrapolation): the headline
    rates of the stretched network (:meth:`TextToVideo.stretched`) and of the real videos, which
    run the same scenes on for the extra frames. None for learned positions, which cannot."""
    frames = 2 * preset.frames
    clips, captions, specs = scenes_
    try:
        longer = system.stretched(frames)
    except ValueError:
        return {"frames": frames, "real": None, "model": None}
    real = numpy.stack([reference_video(s, preset.frames, preset.size, frames) for s in specs])
    return {
        "frames": frames,
        "real": rates(evaluate_clips(real, specs)),
        "model": rates(evaluate_clips(_sample(longer, captions, EVAL_SEED + 3), specs)),
    }


def real_videos(preset: Preset, specs) -> dict:
    videos = numpy.stack(
        [reference_video(s, preset.frames, preset.size, VIDEO_FRAMES) for s in specs]
    )
    return evaluate_videos(videos, specs, preset.frames, CONTEXT)


def x0_error_by_level(system: TextToVideo, scenes_, levels=LEVELS) -> dict:
    """Mean squared error of the model's one-step x0 estimate on held-out clips, by noise level
    (fixed noise, conditional on the true captions)."""
    clips, captions, _ = scenes_
    data = to_signed(clips).astype(numpy.float32)
    noise = numpy.random.default_rng(EVAL_SEED).standard_normal(data.shape).astype(numpy.float32)
    return {
        str(level): float(one_step_x0_errors(system, data, captions, level, noise).mean())
        for level in levels
    }


WORD_SCENES = 128  # constant-velocity ID scenes the word effect is measured on
WORDS = ("direction", "colour")
BAYES_SCENES, BAYES_POOL = 64, 8000  # scenes, and rendered training scenes the oracle averages
BAYES_LEVELS = (500, 700, 850, 950)


def word_scenes(preset: Preset, clips: int = WORD_SCENES) -> list:
    """The ID scenes the word effect is measured on: ``clips`` scenes of the preset's world with
    balls moving at constant velocity (the scenes whose direction can be reversed)."""
    motions = [m for m in preset.world.get("motions") or MOVES if m in MOVES]
    world = {**preset.world, "motions": motions}
    return make_dataset(clips, "id", preset.frames, preset.size, seed=EVAL_SEED, **world)[2]


GIVEN_FIRST = "direction, first frame given"  # the word effect with frame 0 given clean


def word_effects(
    system: TextToVideo, preset: Preset, clips: int = WORD_SCENES, bayes: bool = False
) -> dict:
    """The word effect (eq-word-effect) of the direction and of the colour word, at the levels
    of the x0-error profile, on the :func:`word_scenes`; for a network trained with frame
    masks also that of the direction with the first frame given clean (``GIVEN_FIRST``), where
    the ball's place is known and the word alone says where it goes. With ``bayes``, in a
    one-ball world, each word also gets ``"bayes"``: the Bayes-optimal denoiser's effect on the
    first ``BAYES_SCENES`` of those scenes
    (:func:`~minidiff.metrics.words.bayes_word_effect`), what reading the word could give."""
    specs = word_scenes(preset, clips)
    effects = {word: word_effect(system, specs, word, LEVELS, seed=EVAL_SEED) for word in WORDS}
    if system.config.frame_conditioning:
        effects[GIVEN_FIRST] = word_effect(
            system, specs, "direction", LEVELS, seed=EVAL_SEED, given=1
        )
    if bayes and preset.world.get("counts") == [1]:
        for word in WORDS:
            effects[word]["bayes"] = bayes_word_effect(
                specs[:BAYES_SCENES],
                word,
                system.schedule,
                BAYES_LEVELS,
                preset.frames,
                preset.size,
                pool=BAYES_POOL,
                seed=EVAL_SEED,
            )
    return effects


# each "moves" motion turned a quarter: another axis, for the captions of word_features only
TURNED = {
    "moves left": "moves up",
    "moves up": "moves right",
    "moves right": "moves down",
    "moves down": "moves left",
}


def word_features(system: TextToVideo, preset: Preset, clips: int = WORD_SCENES) -> dict:
    """How alike the text encoder makes the words that two captions of a :func:`word_scenes`
    scene differ in (:func:`~minidiff.metrics.words.feature_similarity`, a cosine with its
    interval): the direction reversed (left and right, up and down), the direction turned a
    quarter (left and up, ...) and the colours changed. Near 1 for the reversed direction and
    well below for the turned one: the encoder tells the axis of a motion, not its sign."""
    specs = word_scenes(preset, clips)
    frames, size = preset.frames, preset.size
    captions = [spec.caption for spec in specs]
    others = {
        "reversed": [opposite_direction(spec, frames, size).caption for spec in specs],
        "turned": [replace(spec, motion=TURNED[spec.motion]).caption for spec in specs],
        "recoloured": [other_colours(spec, frames, size).caption for spec in specs],
    }
    return {name: feature_similarity(system, captions, other) for name, other in others.items()}


# --- the runner -----------------------------------------------------------------------------------


def seconds_per_step(preset: Preset, repeats: int = 15) -> float:
    """Wall time of one training step of ``preset``, measured on a throwaway copy (its own
    model and 64 clips, three warm-up steps first), so that studies can be given equal time."""
    import tempfile

    from .train import Trainer

    clips, captions, _ = make_dataset(64, "train", preset.frames, preset.size, seed=1)
    state = backend.get_rng_state()
    system = TextToVideo(preset)
    ids, mask = system.tokenize(captions)
    config = TrainConfig.from_dict({**preset.train, "checkpoint_every": 0, "sample_every": 0})
    with tempfile.TemporaryDirectory() as folder:
        trainer = Trainer(
            system.model,
            system.schedule,
            to_signed(clips),
            config,
            folder,
            conditioner=system.encoder,
            ids=ids,
            mask=mask,
        )
        for _ in range(3):
            trainer.train_step()
        started = time.perf_counter()
        for _ in range(repeats):
            trainer.train_step().item()
        per_step = (time.perf_counter() - started) / repeats
    backend.set_rng_state(state)
    return per_step


def run_study(
    name: str | Study,
    out_root="studies",
    runs_root="runs/studies",
    steps: int | None = None,
    seconds: float | None = None,
    curve=(),
    curve_clips: int = 128,
    id_clips: int = 256,
    ood_clips: int = 64,
    videos: int = 64,
    fresh: bool = False,
    progress: bool = True,
    command: str | None = None,
) -> Path:
    """Train study ``name`` (resuming from ``runs_root/name`` unless ``fresh``), measure it at
    every step of ``curve`` and at the end, and write ``out_root/name``; returns that folder.
    ``name`` may also be a :class:`Study` of one's own. With ``seconds`` the steps are as many
    as fit in that wall time at the speed :func:`seconds_per_step` measures here."""
    study = name if isinstance(name, Study) else get_study(name)
    name = study.name
    out, run_dir = Path(out_root) / name, Path(runs_root) / name
    timing = None
    if seconds is not None:
        timing = _budget(study, seconds, run_dir, fresh)
        steps = timing["steps"]
    preset = study.build(steps)
    total = preset.train["steps"]
    curve = sorted({int(s) for s in curve if 0 < int(s) < total} | {total})
    out.mkdir(parents=True, exist_ok=True)
    with runlock.hold(run_dir):  # no other run trains here between the curve's points
        _check_resumable(run_dir / "checkpoint.npz", preset, fresh)
        system, trainer = build_trainer(preset, run_dir, resume=not fresh, snapshots=False)
        # what an interrupted run had measured: its training time and curve, up to its checkpoint
        progress_path = run_dir / "progress.json"
        previous = _load(progress_path) if trainer.step else {}
        points = [p for p in previous.get("curve", []) if p["step"] <= trainer.step]
        seconds = previous.get("train_seconds", 0.0)
        curve_scenes = scenes(preset, "id", curve_clips)
        for point in curve:
            if point <= trainer.step:
                continue
            started = time.perf_counter()
            trainer.run(until=point, progress=progress)
            seconds += time.perf_counter() - started
            entry = {
                "step": point,
                "clips_seen": point * preset.train["batch_size"],
                "train_seconds": round(seconds, 1),
            }
            with trainer.emas["model"].swapped(system.model):
                with trainer.emas["conditioner"].swapped(system.encoder):
                    entry["id"] = rates(text_to_video(system, curve_scenes))
                    if system.config.frame_conditioning:
                        entry["prediction"] = prediction(system, curve_scenes, "mask")
            points.append(entry)
            progress_path.write_text(json.dumps({"train_seconds": seconds, "curve": points}))
            if progress:
                shown = {k: round(v["mean"] or 0.0, 3) for k, v in points[-1]["id"].items()}
                print(f"step {point}: {shown}")
        trainer.emas["model"].copy_to(system.model)
        trainer.emas["conditioner"].copy_to(system.encoder)
    result = {
        "study": asdict(study),
        "command": command or f"python -m minidiff study {name}",
        "preset": {
            "name": preset.name,
            "model": preset.model,
            "train": preset.train,
            "world": preset.world,
            "train_clips": preset.train_clips,
        },
        "parameters": system.model.num_parameters() + system.encoder.num_parameters(),
        "steps": trainer.step,
        "clips_seen": trainer.step * preset.train["batch_size"],
        "train_seconds": round(seconds, 1),
        "machine": {
            "threads": parallel.threads(),
            "device": system.encoder.device,
            "processor": platform.processor() or platform.machine(),
        },
        "curve": points,
        "final_loss": float(numpy.mean(trainer.losses[-200:])),
        "budget": timing,
    }
    result |= evaluate_study(system, preset, id_clips, ood_clips, videos)
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "report.md").write_text(report(result))
    prompts = [p for p, _ in DEMO_PROMPTS]
    write_grid_gif(out / "samples.gif", _sample(system, prompts, 0), prompts, title=name)
    if study.ship:
        ship_weights(system, trainer, out, result["command"])
    return out


def add_word_effects(name: str, out_root="studies", runs_root="runs/studies", command=None) -> Path:
    """Measure the word effects (:func:`word_effects`, with the Bayes-optimal reference in a
    one-ball world) of study ``name``'s trained EMA weights and add them, with the ``command``,
    to its ``result.json`` and ``report.md``: for a study measured before the word effect was
    part of :func:`evaluate_study`, or to add the reference."""
    out, checkpoint = Path(out_root) / name, Path(runs_root) / name / "checkpoint.npz"
    path = out / "result.json"
    if not path.exists() or not checkpoint.exists():
        missing = path if not path.exists() else checkpoint
        raise FileNotFoundError(
            f"{missing} does not exist: run `python -m minidiff study {name}` first"
        )
    result = json.loads(path.read_text())
    system = TextToVideo.from_checkpoint(checkpoint)
    if system.preset.train.get("steps") != result["steps"]:
        raise ValueError(
            f"{checkpoint} holds {system.preset.train.get('steps')} steps but {path} measured "
            f"{result['steps']}: the run is not the one the results describe"
        )
    result["word_effect"] = word_effects(system, system.preset, bayes=True)
    result["word_features"] = word_features(system, system.preset)
    result["word_effect_command"] = command or f"python -m minidiff study {name} --word-effect"
    path.write_text(json.dumps(result, indent=1) + "\n")
    (out / "report.md").write_text(report(result))
    return out


def ship_weights(system: TextToVideo, trainer, out: Path, command: str) -> Path:
    """``out/weights.npz``: the system with its EMA weights (:meth:`TextToVideo.save_weights`,
    a few MB), and ``out/training_log.json``: the command, the seed and the loss of every
    step, so the shipped model says how it was made."""
    path = out / "weights.npz"
    system.save_weights(path, command=command, seed=trainer.config.seed, steps=trainer.step)
    losses = [float(f"{loss:.6g}") for loss in trainer.losses]
    log = {"command": command, "seed": trainer.config.seed, "losses": losses}
    (out / "training_log.json").write_text(json.dumps(log) + "\n")
    return path


def evaluate_study(
    system: TextToVideo, preset: Preset, id_clips: int, ood_clips: int, videos: int
) -> dict:
    """Every final measurement of the module docstring, as one JSON-able dict."""
    in_dist = scenes(preset, "id", id_clips)
    by_axis = ood_scenes(preset, ood_clips)
    methods = ["replacement"] + (["mask"] if system.config.frame_conditioning else [])
    t2v = {"id": {"real": rates(evaluate_clips(in_dist[0], in_dist[2]))}}
    t2v["id"]["model"] = rates(text_to_video(system, in_dist))
    for axis, group in by_axis.items():
        t2v[axis] = {
            "real": rates(evaluate_clips(group[0], group[2])),
            "model": rates(text_to_video(system, group)),
        }
    predict = {"id": {"real": evaluate_predictions(in_dist[0], in_dist[2], GIVEN)}}
    for method in methods:
        predict["id"][method] = prediction(system, in_dist, method)
    best = methods[-1]
    for axis, group in by_axis.items():
        predict[axis] = {
            "real": evaluate_predictions(group[0], group[2], GIVEN),
            best: prediction(system, group, best),
        }
    ratios = {
        axis: {
            name: ratio_interval(
                predict[axis][best]["values"][name], predict["id"][best]["values"][name]
            )
            for name in ("velocity_error", "gravity_error")
        }
        for axis in by_axis
    }
    short = tuple(part[:videos] for part in in_dist)
    cont = {"real": real_videos(preset, short[2])}
    for method in methods:
        cont[method] = continuation(system, short, method)
    return {
        "extrapolation": extrapolation(system, preset, short),
        "text_to_video": t2v,
        "prediction": {"given": GIVEN, "best": best, "splits": predict, "ood_over_id": ratios},
        "continuation": {"frames": VIDEO_FRAMES, "context": CONTEXT, "sources": cont},
        "x0_error_by_level": x0_error_by_level(system, scenes(preset, "id", 64)),
        "word_effect": word_effects(system, preset),
        "word_features": word_features(system, preset),
    }


def _budget(study: Study, seconds: float, run_dir: Path, fresh: bool) -> dict:
    """An equal wall-clock budget: as many steps as fit in ``seconds`` at the speed measured
    here. The timing is kept beside the run (``budget.json``), so that an interrupted study
    resumes with the steps it started with instead of a new, slightly different estimate."""
    path = run_dir / "budget.json"
    saved = _load(path) if not fresh and (run_dir / "checkpoint.npz").exists() else {}
    if saved.get("budget_seconds") == seconds:
        return saved
    per_step = seconds_per_step(study.build())
    timing = {
        "budget_seconds": seconds,
        "measured_seconds_per_step": round(per_step, 4),
        "steps": max(1, int(seconds / per_step)),
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(timing, indent=1))
    return timing


def _check_resumable(path: Path, preset: Preset, fresh: bool) -> None:
    """A study resumes its own run only: a checkpoint there trained with other settings (another
    budget, say) is an error that says what to do, not a silent mix of two runs."""
    if fresh or not path.exists():
        return
    saved = asdict(TrainConfig.from_dict(io.load(path).get("train_config", {})))
    wanted = asdict(TrainConfig.from_dict(preset.train))
    if saved != wanted:
        changed = sorted(k for k in wanted if saved[k] != wanted[k])
        raise ValueError(
            f"{path} was trained with other settings ({', '.join(changed)} differ); pass "
            "--fresh to start this study again, or remove the folder"
        )


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}


# --- reports --------------------------------------------------------------------------------------


def cell(entry: dict | None, digits: int = 2) -> str:
    """A summary as "mean [low, high]"."""
    if not entry or entry.get("mean") is None:
        return "-"
    return f"{entry['mean']:.{digits}f} [{entry['low']:.{digits}f}, {entry['high']:.{digits}f}]"


def report(result: dict) -> str:
    """``report.md`` of one study."""
    names = [name for _, name in HEADLINE]
    lines = [
        f"# Study `{result['study']['name']}`",
        "",
        result["study"]["question"],
        "",
        f"- command: `{result['command']}`",
        f"- steps {result['steps']}, clips seen {result['clips_seen']:,}, "
        f"training {result['train_seconds']:.0f} s on {result['machine']['threads']} thread(s)",
        f"- parameters {result['parameters']:,}; final loss {result['final_loss']:.4f}",
        *([f"- note: {result['note']}"] if result.get("note") else []),
        "",
        "Every cell: mean [95% bootstrap interval].",
        "",
        "## Learning curve (ID, text only)",
        "",
        "| step | clips seen | seconds | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for point in result["curve"]:
        cells = [cell(point["id"][n]) for n in names]
        lines.append(
            f"| {point['step']} | {point['clips_seen']:,} | {point['train_seconds']:.0f} | "
            + " | ".join(cells)
            + " |"
        )
    lines += ["", "## Text to video", "", "| split | clips | " + " | ".join(names) + " |"]
    lines.append("|---|---|" + "---|" * len(names))
    for split, entry in result["text_to_video"].items():
        for who in ("real", "model"):
            count = entry[who][names[0]]["count"]
            cells = [cell(entry[who][n]) for n in names]
            lines.append(f"| {split} ({who}) | {count} | " + " | ".join(cells) + " |")
    pred = result["prediction"]
    lines += [
        "",
        f"## Prediction from the first {pred['given']} frames",
        "",
        "| split | source | all balls present | velocity error | gravity error |",
        "|---|---|---|---|---|",
    ]
    for split, entry in pred["splits"].items():
        for who, summary in entry.items():
            lines.append(
                f"| {split} | {who} | {cell(summary['present'])} | "
                f"{cell(summary['velocity_error'], 3)} | {cell(summary['gravity_error'], 3)} |"
            )
    lines += [
        "",
        "OOD / ID ratio of the prediction errors (model; 95% bootstrap interval):",
        "",
        "| axis | velocity error ratio | gravity error ratio |",
        "|---|---|---|",
    ]
    for axis, entry in pred.get("ood_over_id", {}).items():
        lines.append(
            f"| {axis} | {cell(entry['velocity_error'])} | {cell(entry['gravity_error'])} |"
        )
    cont = result["continuation"]
    lines += [
        "",
        f"## Continuation to {cont['frames']} frames ({cont['context']} frames of context)",
        "",
        "| source | jumps at seams | jumps elsewhere | permanence |",
        "|---|---|---|---|",
    ]
    for who, summary in cont["sources"].items():
        lines.append(
            f"| {who} | {cell(summary['seam_jumps'])} | {cell(summary['inner_jumps'])} | "
            f"{cell(summary['permanence'])} |"
        )
    ext = result.get("extrapolation")
    if ext and ext["model"]:
        lines += [
            "",
            f"## Length extrapolation: {ext['frames']} frames in one go",
            "",
            "| source | " + " | ".join(names) + " |",
            "|---|" + "---|" * len(names),
        ]
        for who in ("real", "model"):
            lines.append(f"| {who} | " + " | ".join(cell(ext[who][n]) for n in names) + " |")
    lines += ["", "## x0 error by noise level (ID, one step)", ""]
    lines.append("| " + " | ".join(result["x0_error_by_level"]) + " |")
    lines.append("|" + "---|" * len(result["x0_error_by_level"]))
    lines.append("| " + " | ".join(f"{v:.4f}" for v in result["x0_error_by_level"].values()) + " |")
    if result.get("word_effect"):
        lines += ["", *word_effect_table(result["word_effect"])]
    if result.get("word_features"):
        lines += [
            "",
            "## The text encoder's features of the changed word (cosine between the two captions)",
            "",
            "| " + " | ".join(result["word_features"]) + " |",
            "|" + "---|" * len(result["word_features"]),
            "| " + " | ".join(cell(v, 3) for v in result["word_features"].values()) + " |",
        ]
    return "\n".join(lines) + "\n"


def word_effect_table(effects: dict) -> list[str]:
    """Markdown lines of the word effects (eq-word-effect) of a study, by noise level."""
    words = list(effects)
    first = effects[words[0]]
    lines = [
        f"## Word effect: x0 error added by the wrong word ({first['clips']} ID scenes)",
        "",
        "| noise level | " + " | ".join(f"{w} effect (relative)" for w in words) + " |",
        "|---|" + "---|" * len(words),
    ]
    for level in first["levels"]:
        cells = [
            f"{cell(effects[w]['levels'][level]['effect'], 5)} "
            f"({effects[w]['levels'][level]['relative']:+.1%})"
            for w in words
        ]
        lines.append(f"| {level} | " + " | ".join(cells) + " |")
    gaps = " | ".join(cell(effects[w]["data_gap"], 4) for w in words)
    lines.append(f"| data gap | {gaps} |")
    if any("bayes" in effects[w] for w in words):
        words = [w for w in words if "bayes" in effects[w]]
        bayes = {w: effects[w]["bayes"] for w in words}
        lines += [
            "",
            f"The Bayes-optimal denoiser on the first {bayes[words[0]]['clips']} scenes (its "
            f"posterior over at least {bayes[words[0]]['references']} rendered training scenes "
            "per caption):",
            "",
            "| noise level | " + " | ".join(f"{w} effect (relative)" for w in words) + " |",
            "|---|" + "---|" * len(words),
        ]
        for level in bayes[words[0]]["levels"]:
            cells = [
                f"{cell(bayes[w]['levels'][level]['effect'], 5)} "
                f"({bayes[w]['levels'][level]['relative']:+.0%})"
                for w in words
            ]
            lines.append(f"| {level} | " + " | ".join(cells) + " |")
    return lines


def table(out_root="studies") -> Path:
    """``studies/README.md``: one row per study, from every ``result.json`` under ``out_root``."""
    root = Path(out_root)
    results = [json.loads(p.read_text()) for p in sorted(root.glob("*/result.json"))]
    names = [name for _, name in HEADLINE]
    lines = [
        "# Studies",
        "",
        "Written by `python -m minidiff study --table` from each study's `result.json`; every "
        "cell is the mean and its 95% bootstrap interval. ID text-to-video rates; prediction "
        f"from the first {GIVEN} frames (the better method of the study); continuation to "
        f"{VIDEO_FRAMES} frames.",
        "",
        "| study | what it tests | steps | seconds | "
        + " | ".join(names)
        + " | velocity error (pred.) | seam jumps | permanence (video) |",
        "|---|---|---|---|" + "---|" * (len(names) + 3),
    ]
    for r in results:
        model = r["text_to_video"]["id"]["model"]
        pred = r["prediction"]["splits"]["id"][r["prediction"]["best"]]
        sources = r["continuation"]["sources"]
        video = sources["mask"] if "mask" in sources else sources["replacement"]
        lines.append(
            f"| [{r['study']['name']}]({r['study']['name']}/report.md) | {r['study']['question']} "
            f"| {r['steps']} | {r['train_seconds']:.0f} | "
            + " | ".join(cell(model[n]) for n in names)
            + f" | {cell(pred['velocity_error'], 3)} | {cell(video['seam_jumps'])} | "
            f"{cell(video['permanence'])} |"
        )
    path = root / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main_command(argv: list[str]) -> str:
    """The command line that ran, for the record."""
    return "python -m minidiff " + " ".join(shlex.quote(a) for a in argv)
