"""The text-to-video job end to end: train a preset, sample prompts, measure, report.

``train_system`` builds the world's training clips and the system of a preset and trains it
(resuming from the run folder's checkpoint if there is one). ``evaluate_system`` scores clips
with the world's metrics on the in-distribution and out-of-distribution splits, for real clips
(the ceiling), an untrained network (the floor) and the trained model, all asked for the same
captions. ``write_report`` turns the numbers into ``metrics.json`` and ``report.md``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy

from .. import backend, io, runlock
from ..metrics.continuation import evaluate_videos, reference_video
from ..metrics.video import evaluate_clips
from ..world import make_dataset, to_signed
from ..world.preview import write_grid_gif
from .presets import Preset
from .text_to_video import TextToVideo
from .train import TrainConfig, Trainer

DEMO_PROMPTS = (
    ("a small red ball moves right", "id"),
    ("a blue ball moves left", "id"),
    ("a green ball falls and bounces", "id"),
    ("a large yellow ball bounces to the left", "id"),
    ("a cyan ball and a magenta ball move up", "id"),
    ("a red ball moves left", "ood: held-out colour and motion pair"),
)
DATA_SEED, EVAL_SEED = 0, 1234


def build_trainer(
    preset: Preset, out_dir, resume: bool = True, snapshots: bool = True
) -> tuple[TextToVideo, Trainer]:
    """The world's training clips, the system of ``preset`` and its :class:`Trainer` writing
    into ``out_dir``, resumed from the checkpoint there if there is one (and ``resume``). With
    ``snapshots`` the demo prompts are sampled every ``sample_every`` steps into
    ``out_dir/samples`` (:func:`snapshot_samples`); without ``resume`` the snapshots of a
    previous run there are removed. Both happen holding the folder (:mod:`minidiff.runlock`), so
    a folder another run is writing is refused before anything is touched."""
    out_dir = Path(out_dir)
    clips, captions, _ = make_dataset(
        preset.train_clips, "train", preset.frames, preset.size, seed=DATA_SEED, **preset.world
    )
    backend.manual_seed(preset.train.get("seed", 0))
    system = TextToVideo(preset)
    ids, mask = system.tokenize(captions)
    config = TrainConfig.from_dict(preset.train)
    trainer = Trainer(
        system.model,
        system.schedule,
        to_signed(clips),
        config,
        out_dir,
        conditioner=system.encoder,
        ids=ids,
        mask=mask,
        on_sample=snapshot_samples(system, out_dir / "samples") if snapshots else None,
        metadata={**system.metadata(), "preset_overrides": preset.overrides()},
    )
    world = trainer.world
    with runlock.hold(out_dir):
        if resume and world.broadcast_object(trainer.checkpoint_path.exists()):
            step = _resume(trainer)
            if world.is_root:
                print(f"resuming from {trainer.checkpoint_path} at step {step}")
        elif not resume and world.is_root:
            _clear_snapshots(out_dir / "samples")
    return system, trainer


def _resume(trainer: Trainer) -> int:
    """:meth:`Trainer.resume` from the run folder's checkpoint; one of another model (another
    preset, other sizes) is a :class:`~minidiff.io.CheckpointError` that says what to do."""
    try:
        return trainer.resume()
    except io.CheckpointError:
        raise  # not readable at all: its own message says so
    except (KeyError, ValueError) as error:
        problems = str(error.args[0] if error.args else error).split("; ")
        more = f"; {len(problems) - 1} more" if len(problems) > 1 else ""
        raise io.CheckpointError(
            f"{trainer.checkpoint_path} is a checkpoint of another model, which this preset "
            f"cannot resume ({problems[0]}{more}). Start afresh in this folder (--fresh; "
            "resume=False in Python) or choose another run folder (--out)"
        ) from error


def _clear_snapshots(folder: Path) -> None:
    """Remove the snapshots of a previous run in ``folder`` (:func:`snapshot_samples`), so that
    a fresh run's archive holds its own steps only."""
    old = sorted(folder.glob("step_*.gif")) + sorted(folder.glob("snapshots.npz"))
    for path in old:
        path.unlink()
    if old:
        print(f"starting afresh: removed the previous run's {len(old)} snapshot files in {folder}")


def train_system(
    preset: Preset, out_dir, resume: bool = True, progress: bool = True
) -> tuple[TextToVideo, Trainer, float]:
    """Train ``preset`` into ``out_dir`` (:func:`build_trainer`); returns the system (with its
    EMA weights loaded), the trainer and the wall time of this call's training in seconds."""
    with runlock.hold(out_dir):  # from the resume (or the clearing) to the last save
        system, trainer = build_trainer(preset, out_dir, resume)
        started = time.perf_counter()
        trainer.run(progress=progress)
        seconds = time.perf_counter() - started
    trainer.emas["model"].copy_to(system.model)
    trainer.emas["conditioner"].copy_to(system.encoder)
    return system, trainer, seconds


def snapshot_samples(system: TextToVideo, folder, seed: int = 0):
    """An ``on_sample`` callback for :class:`Trainer`: at each call, the demo prompts sampled
    with the EMA weights go to ``folder/step_XXXXX.gif`` and, as arrays, into
    ``folder/snapshots.npz`` (one entry per step), so a run's progress can be watched and
    plotted afterwards. Training continues with its own weights and its own random streams
    (sampling reseeds the generator, so its state is put back), so snapshots do not change
    what is trained."""
    folder = Path(folder)
    prompts = [p for p, _ in DEMO_PROMPTS]

    def on_sample(trainer: Trainer, step: int) -> None:
        state = backend.get_rng_state()
        try:  # an interrupt while sampling leaves the training streams as they were too
            with trainer.emas["model"].swapped(system.model):
                with trainer.emas["conditioner"].swapped(system.encoder):
                    clips = system.sample(prompts, seed=seed, progress=False)
        finally:
            backend.set_rng_state(state)
        write_grid_gif(folder / f"step_{step:05d}.gif", clips, prompts, title=f"step {step}")
        archive = folder / "snapshots.npz"
        saved = io.load(archive) if archive.exists() else {}
        saved[f"step_{step:05d}"] = clips
        io.save(archive, **saved)

    return on_sample


def load_snapshots(folder) -> dict[int, numpy.ndarray]:
    """The clips written by :func:`snapshot_samples`, by training step."""
    saved = io.load(Path(folder) / "snapshots.npz")
    return {int(name.split("_")[1]): clips for name, clips in sorted(saved.items())}


def evaluate_system(
    system: TextToVideo,
    untrained: TextToVideo | None = None,
    splits=("id", "ood"),
    clips_per_split: int | None = None,
    progress: bool = True,
    sampling: dict | None = None,
) -> dict:
    """Metrics of real clips, the untrained network and the model on each split, all for the
    captions of the same held-out scenes. ``sampling`` holds :meth:`TextToVideo.sample`'s
    settings (``steps``, ``guidance``, ``eta``) for both networks; left out, the preset's."""
    preset = system.preset
    n = clips_per_split or preset.eval_clips
    results = {}
    for split in splits:
        clips, captions, specs = make_dataset(
            n, split, preset.frames, preset.size, seed=EVAL_SEED, **preset.world
        )
        entry = {"real": evaluate_clips(clips, specs)}
        for name, candidate in (("untrained", untrained), ("model", system)):
            if candidate is not None:
                samples = candidate.sample(
                    captions, seed=EVAL_SEED, progress=progress, **(sampling or {})
                )
                entry[name] = evaluate_clips(samples, specs)
        results[split] = entry
    return results


def evaluate_continuation(
    system: TextToVideo, clips: int = 24, total_frames: int = 20, context: int = 4
) -> dict:
    """Seam metrics (:mod:`minidiff.metrics.continuation`) of ``clips`` in-distribution scenes
    extended to ``total_frames``: real videos, and the model continuing from the real first
    clip and from its own."""
    preset = system.preset
    window = preset.frames
    first, captions, specs = make_dataset(
        clips, "id", window, preset.size, seed=EVAL_SEED, **preset.world
    )
    real = numpy.stack([reference_video(s, window, preset.size, total_frames) for s in specs])
    own = system.sample(captions, seed=EVAL_SEED + 1, progress=False)
    videos = {
        "real": real,
        "model, from the real first clip": system.continue_clips(
            captions, first, total_frames, context, seed=EVAL_SEED + 2, progress=False
        ),
        "model, from its own first clip": system.continue_clips(
            captions, own, total_frames, context, seed=EVAL_SEED + 2, progress=False
        ),
    }
    return {
        "total_frames": total_frames,
        "context": context,
        "sources": {name: evaluate_videos(v, specs, window, context) for name, v in videos.items()},
    }


def sample_demo_prompts(system: TextToVideo, path, seed: int = 0) -> Path:
    """A grid GIF of the demo prompts (one clip each)."""
    prompts = [p for p, _ in DEMO_PROMPTS]
    clips = system.sample(prompts, seed=seed, progress=False)
    labels = [f"{p} [{kind}]" if kind != "id" else p for p, kind in DEMO_PROMPTS]
    return write_grid_gif(path, clips, labels, title="generated")


ROWS = (
    ("fidelity", "colour", "colour fidelity", "rate"),
    ("fidelity", "direction", "direction fidelity", "rate"),
    ("fidelity", "count", "count fidelity", "rate"),
    ("fidelity", "bounce", "bounce fidelity", "rate"),
    ("fidelity", "all", "all of the above", "rate"),
    ("consistency", "permanence", "object permanence", "rate"),
    ("consistency", "size_cv", "size variation (CV)", "lower"),
    ("consistency", "colour_std", "colour drift (std)", "lower"),
    ("consistency", "flicker", "background flicker (std)", "lower"),
    ("physics", "velocity_error", "velocity error", "lower"),
    ("physics", "gravity_error", "gravity error", "lower"),
    ("physics", "restitution_error", "restitution error", "lower"),
)


def _cell(summary: dict | None, group: str, name: str) -> str:
    if summary is None or name not in summary.get(group, {}):
        return "-"
    return _entry(summary[group][name])


def _entry(entry: dict) -> str:
    """A {"mean", "count", "low", "high"} summary as "mean [low, high] (count)"."""
    if entry["mean"] is None:
        return "n/a"
    return f"{entry['mean']:.3f} [{entry['low']:.3f}, {entry['high']:.3f}] ({entry['count']})"


def write_report(
    out_dir,
    results: dict,
    info: dict,
    continuation: dict | None = None,
    names: tuple[str, str] = ("report.md", "metrics.json"),
) -> Path:
    """The tables (``names[0]``, default ``report.md``) and everything as JSON (``names[1]``,
    default ``metrics.json``) in ``out_dir``; returns the tables' path."""
    out_dir = Path(out_dir)
    (out_dir / names[1]).write_text(
        json.dumps({"info": info, "results": results, "continuation": continuation}, indent=2)
        + "\n"
    )
    lines = [f"# minidiff text-to-video report: preset `{info['preset']}`", ""]
    lines += [f"- {key}: {value}" for key, value in info.items()]
    lines += [
        "",
        "Each cell is the mean over clips, its 95% bootstrap interval in square brackets and, "
        "in round brackets, how many clips the metric applies to. Real clips are the ceiling, "
        "the untrained network the floor.",
        "",
    ]
    for split, entry in results.items():
        columns = [name for name in ("real", "untrained", "model") if name in entry]
        lines += [
            f"## {split.upper()} ({entry['real']['clips']} scenes)",
            "",
            "| metric | " + " | ".join(columns) + " |",
            "|---|" + "---|" * len(columns),
        ]
        for group, name, label, kind in ROWS:
            arrow = "higher is better" if kind == "rate" else "lower is better"
            cells = [_cell(entry[c], group, name) for c in columns]
            lines.append(f"| {label} ({arrow}) | " + " | ".join(cells) + " |")
        lines.append("")
    if continuation:
        lines += [
            f"## Longer videos ({continuation['total_frames']} frames, windows of the model's "
            f"length keeping {continuation['context']} frames of context)",
            "",
            "A jump is an acceleration error above 5% of the box side; seams are the first "
            "frames of each new window.",
            "",
            "| video | jumps at seams | jumps elsewhere | permanence | velocity error, across "
            "seams |",
            "|---|---|---|---|---|",
        ]
        for name, r in continuation["sources"].items():
            cells = [r["seam_jumps"], r["inner_jumps"], r["permanence"]]
            cells.append(r["across"]["velocity_error"])
            lines.append(f"| {name} | " + " | ".join(_entry(c) for c in cells) + " |")
        lines.append("")
    path = out_dir / names[0]
    path.write_text("\n".join(lines))
    return path


def headline(results: dict) -> dict:
    """The target numbers: model's colour, direction and permanence rates per split."""
    return {
        split: {
            name: entry.get("model", {}).get(group, {}).get(name, {}).get("mean")
            for group, name in (
                ("fidelity", "colour"),
                ("fidelity", "direction"),
                ("consistency", "permanence"),
            )
        }
        for split, entry in results.items()
    }
