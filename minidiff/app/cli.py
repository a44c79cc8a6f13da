"""Command line: ``python -m minidiff COMMAND``.

* ``demo``: the main job: train the ``tiny-cpu`` text-to-video model on the simulated world,
  sample a fixed set of prompts, measure real / untrained / trained clips in and out of
  distribution, and write GIFs, a loss curve, ``report.md`` and ``metrics.json``;
* ``train``, ``sample``, ``evaluate``: the same steps one at a time, for any preset;
* ``world --preview``: a grid GIF of the world's clips with their captions;
* ``toy``: diffusion and flow matching on 2-D points (chapter 8's comparison);
* ``spirals``: the small classifier of chapter 3.

``mpiexec -n W python -m minidiff train ...`` (or ``demo``) trains data parallel over W
processes (:mod:`minidiff.distributed`); rank 0 prints, samples, measures and writes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

from .. import backend, distributed
from ..config import positive_float_arg as positive_float
from ..config import positive_int_arg as positive_int
from ..errors import DeviceError, DTypeError, NonFiniteError, RunLockError, ShapeError
from ..io import CheckpointError

EVALUATION_FILES = ("evaluation.md", "evaluation.json")  # evaluate's report and metrics

# what a person can cause and fix (a bad prompt, setting or path, a missing, foreign or diverged
# checkpoint, a busy run folder): one line and exit status 2, not a traceback
USER_ERRORS = (
    ShapeError,
    DTypeError,
    DeviceError,
    CheckpointError,
    NonFiniteError,
    RunLockError,
    distributed.DistributedError,
    ValueError,
    KeyError,
    OSError,
)


def _spirals(args) -> int:
    from ..examples import spirals

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(
        "An MLP from minidiff.nn, gradient-checked in float64 and trained with AdamW, a warmup\n"
        "+ cosine schedule and an EMA of its weights, classifies two spirals.\n"
    )
    result = spirals.train(steps=args.steps, seed=args.seed, checkpoint=out / "spirals.npz")
    spirals.plot(result, out / "spirals.png")
    metrics = {
        "example": "two-spirals MLP (minidiff.nn, AdamW, EMA)",
        "steps": args.steps,
        "final_loss": result["losses"][-1],
        "accuracy": result["accuracy"],
        "seconds": round(result["seconds"], 2),
        "steps_per_second": round(args.steps / result["seconds"], 1),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    print(json.dumps(metrics, indent=2))
    print(f"\nwrote {out / 'spirals.png'}, {out / 'metrics.json'} and {out / 'spirals.npz'}")
    return 0


def _preset(args):
    from .presets import get_preset

    preset = get_preset(args.preset)
    if getattr(args, "steps", None):
        preset = preset.with_overrides(train={**preset.train, "steps": args.steps})
    return preset


def _train(args) -> int:
    from . import pipeline

    system, trainer, seconds = pipeline.train_system(_preset(args), args.out, resume=not args.fresh)
    processes = f" on {trainer.world.size} processes" if trainer.world.size > 1 else ""
    print(
        f"trained to step {trainer.step} in {seconds:.0f} s{processes}; checkpoint "
        f"{trainer.checkpoint_path}, loss curve {Path(args.out) / 'loss.png'}"
    )
    return 0


def _sample(args) -> int:
    from ..world.preview import write_grid_gif
    from .text_to_video import TextToVideo

    out = _output_file(args.out, "--out")
    system = TextToVideo.from_checkpoint(args.ckpt)
    kwargs = {"steps": args.steps, "guidance": args.guidance, "seed": args.seed}
    if args.frames and args.frames < system.config.frames:
        raise ValueError(
            f"--frames {args.frames} is shorter than the model's clips of "
            f"{system.config.frames} frames: leave it out, or ask for more frames (they are made "
            "by continuation)"
        )
    if args.frames and args.frames > system.config.frames:
        context = system.config.frames // 2
        first = system.sample(args.prompt, **kwargs)
        clips = system.continue_clips(args.prompt, first, args.frames, context, **kwargs)
    else:
        clips = system.sample(args.prompt, **kwargs)
    path = write_grid_gif(out, clips, args.prompt, title="generated")
    print(f"wrote {path}")
    return 0


def _output_folder(path, option: str) -> Path:
    """``path`` as a folder to write into, created if missing, checked before any work: a file
    there is an error naming ``option``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{option} {path} is a file; give a folder (created if missing)")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _output_file(path, option: str) -> Path:
    """``path`` as a file to write, its folder created, checked before any work: a folder
    there is an error naming ``option``."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{option} {path} is a folder; give a file name, e.g. clip.gif")
    _output_folder(path.parent, f"the folder of {option}")
    return path


def _evaluate(args) -> int:
    from . import pipeline
    from .text_to_video import TextToVideo

    out = _output_folder(args.out or Path(args.ckpt).parent, "--out")
    system = TextToVideo.from_checkpoint(args.ckpt)
    untrained = TextToVideo(system.preset)
    sampling = {
        "steps": args.steps or system.preset.sample_steps,
        "guidance": system.preset.guidance if args.guidance is None else args.guidance,
        "eta": args.eta,
    }
    results = pipeline.evaluate_system(
        system,
        untrained,
        splits=tuple(args.split or ("id", "ood")),
        clips_per_split=args.clips,
        sampling=sampling,
    )
    info = {"preset": system.preset.name, "checkpoint": str(args.ckpt), **sampling}
    path = pipeline.write_report(out, results, info, names=EVALUATION_FILES)
    print(path.read_text())
    print(f"wrote {path} and {out / EVALUATION_FILES[1]}")
    return 0


def _world(args) -> int:
    from ..world import preview

    asks_help = any(arg in ("-h", "--help") for arg in args.rest)
    if not args.preview and not asks_help:
        raise ValueError("world: say --preview (python -m minidiff world --help lists its options)")
    return preview.main(
        ["--help"] if asks_help else args.rest, prog="python -m minidiff world --preview"
    )


def _demo(args) -> int:
    from .. import runlock

    with runlock.hold(args.out):  # training, samples and report: one writer for all of them
        return _demo_in(Path(args.out), args)


def _demo_in(out: Path, args) -> int:
    from .. import memory, parallel
    from . import pipeline
    from .text_to_video import TextToVideo

    preset = _preset(args)
    print(f"minidiff demo: preset {preset.name} ({preset.description}); run folder {out}\n")
    started = time.perf_counter()
    system, trainer, seconds = pipeline.train_system(preset, out, resume=not args.fresh)
    if not trainer.world.is_root:  # the other processes of a data-parallel job only train
        return 0
    gif = pipeline.sample_demo_prompts(system, out / "prompts.gif")
    print(f"sampled the demo prompts: {gif}")
    backend.manual_seed(1)
    untrained = TextToVideo(preset)
    results = pipeline.evaluate_system(system, untrained, clips_per_split=args.eval_clips)
    continuation = pipeline.evaluate_continuation(system)
    info = {
        "preset": preset.name,
        "steps": trainer.step,
        "training seconds (this run)": round(seconds, 1),
        "total seconds": round(time.perf_counter() - started, 1),
        "model parameters": system.model.num_parameters(),
        "text encoder parameters": system.encoder.num_parameters(),
        "final loss (mean of last 100 steps)": round(
            sum(trainer.losses[-100:]) / max(1, len(trainer.losses[-100:])), 4
        ),
        "sampler": f"DDIM {preset.sample_steps} steps, guidance {preset.guidance}",
        "device": system.encoder.device,
        "CPU threads (MINIDIFF_NUM_THREADS)": parallel.threads(),
        "peak memory MB": round(memory.peak_bytes(system.encoder.device) / 2**20),
    }
    report = pipeline.write_report(out, results, info, continuation)
    print(report.read_text())
    print("headline (model):", json.dumps(pipeline.headline(results)))
    return 0


def _study(args) -> int:
    from . import studies

    if args.list:
        for study in studies.STUDIES.values():
            print(f"{study.name:24s} {study.question}")
        return 0
    if args.name and args.word_effect:
        out = studies.add_word_effects(
            args.name, out_root=args.out, command=studies.main_command(args.argv)
        )
        print((out / "report.md").read_text())
    elif args.name:
        curve = [int(s) for s in args.curve.split(",")] if args.curve else []
        out = studies.run_study(
            args.name,
            out_root=args.out,
            steps=args.steps,
            seconds=args.seconds,
            curve=curve,
            id_clips=args.id_clips,
            ood_clips=args.ood_clips,
            fresh=args.fresh,
            command=studies.main_command(args.argv),
        )
        print((out / "report.md").read_text())
    if args.table or args.name:
        print(f"wrote {studies.table(args.out)}")
    return 0


def _toy(args) -> int:
    from ..examples import toy2d

    T = len(toy2d.make_schedule())
    if args.ddim_steps > T:
        args.parser.error(
            f"--ddim-steps must be at most {T} (the chain's length), got {args.ddim_steps}"
        )
    if args.samples < 2:
        args.parser.error(f"--samples must be at least 2 to measure distances, got {args.samples}")
    out = Path(args.out)
    start = time.perf_counter()
    result = toy2d.compare(
        dataset=args.dataset,
        out=out,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        n=args.samples,
        ddim_steps=args.ddim_steps,
        flow_steps=args.flow_steps,
        seed=args.seed,
        hidden=args.hidden,
        depth=args.depth,
        progress=not args.quiet,
    )
    seconds = time.perf_counter() - start
    print(toy2d.markdown_table(result))
    print(f"total time {seconds:.1f} s; wrote results.md, results.json, samples.png, losses.png,")
    print(f"field.png and reverse.gif to {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the command in ``argv`` (default: the process's arguments); returns its exit status.

    A user's error (:data:`USER_ERRORS`: a bad prompt, a missing or foreign checkpoint, a busy
    run folder, ...) is one line ``minidiff COMMAND: error: MESSAGE`` on stderr and exit
    status 2, as argparse does for bad options; ``--debug`` or ``MINIDIFF_DEBUG=1`` shows its
    traceback instead.

    The process belongs to the command, so the command runs with glibc's malloc tuned to keep
    freed blocks for reuse (:func:`minidiff.backend.tune_host_allocator`), about a quarter
    faster per training step.

    Under mpiexec with several processes (:mod:`minidiff.distributed`) only rank 0 prints to
    stdout, and an error on any process aborts the whole job with a message naming its rank.
    """
    parser = _parser()
    args, rest = parser.parse_known_args(argv)
    if rest and args.command != "world":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    args.rest = rest
    args.argv = list(sys.argv[1:] if argv is None else argv)
    backend.tune_host_allocator()
    try:
        world = distributed.world()
        with contextlib.ExitStack() as stack:
            if not world.is_root:
                devnull = stack.enter_context(open(os.devnull, "w"))
                stack.enter_context(contextlib.redirect_stdout(devnull))
            stack.enter_context(world.aborting_on_error())
            return args.run(args)
    except USER_ERRORS as error:
        if args.debug or os.environ.get("MINIDIFF_DEBUG", "0") not in ("", "0"):
            raise
        print(f"minidiff {args.command}: error: {_one_line(error)}", file=sys.stderr)
        return 2


def _one_line(error: BaseException) -> str:
    """``error``'s message on one line (a KeyError's without the quotes ``str`` adds)."""
    message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(message).split())


def _parser() -> argparse.ArgumentParser:
    """The command line's parser: one subcommand per job, each running its ``_command``."""
    parser = argparse.ArgumentParser(prog="python -m minidiff", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--debug",
        action="store_true",
        help="show an error's full traceback (also MINIDIFF_DEBUG=1)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    from .presets import PRESETS

    demo = commands.add_parser("demo", help="the main job: train, sample and measure tiny-cpu")
    demo.add_argument("--out", default="runs/demo", help="run folder (resumed if present)")
    demo.add_argument("--preset", choices=sorted(PRESETS), default="tiny-cpu")
    demo.add_argument("--steps", type=positive_int, help="override the preset's steps")
    demo.add_argument("--eval-clips", type=positive_int, help="clips per split to measure")
    demo.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    demo.set_defaults(run=_demo)

    train = commands.add_parser("train", help="train a preset (resumes from --out)")
    train.add_argument("--preset", choices=sorted(PRESETS), default="tiny-cpu")
    train.add_argument("--out", default="runs/train", help="run folder")
    train.add_argument("--steps", type=positive_int, help="override the preset's steps")
    train.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    train.set_defaults(run=_train)

    sample = commands.add_parser("sample", help="generate a clip for a prompt")
    sample.add_argument("--ckpt", required=True, help="checkpoint.npz written by training")
    sample.add_argument(
        "--prompt",
        required=True,
        action="append",
        help='e.g. "a red ball bounces to the right" (repeat for several)',
    )
    sample.add_argument("--guidance", type=float, default=None, help="guidance scale w")
    sample.add_argument("--steps", type=positive_int, default=None, help="DDIM steps")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument(
        "--frames",
        type=positive_int,
        default=None,
        help="make a longer clip by continuation (context: half a window)",
    )
    sample.add_argument("--out", default="clip.gif", help="GIF to write")
    sample.set_defaults(run=_sample)

    evaluate = commands.add_parser(
        "evaluate",
        help="measure a checkpoint on a split",
        description="Measure a checkpoint on the in- and out-of-distribution splits and write "
        f"{' and '.join(EVALUATION_FILES)} (the run's own report.md and metrics.json stay as "
        "they are; a previous evaluation there is replaced).",
    )
    evaluate.add_argument("--ckpt", required=True)
    evaluate.add_argument(
        "--split", choices=["id", "ood"], action="append", help="id and/or ood (default both)"
    )
    evaluate.add_argument("--clips", type=positive_int, default=None, help="clips per split")
    evaluate.add_argument(
        "--guidance", type=float, default=None, help="guidance scale w (default: the preset's)"
    )
    evaluate.add_argument(
        "--steps", type=positive_int, default=None, help="DDIM steps (default: the preset's)"
    )
    evaluate.add_argument(
        "--eta", type=float, default=0.0, help="DDIM eta: 0 deterministic, 1 DDPM-like"
    )
    evaluate.add_argument(
        "--out",
        default=None,
        help=f"folder for {' and '.join(EVALUATION_FILES)} (default: the checkpoint's folder)",
    )
    evaluate.set_defaults(run=_evaluate)

    study = commands.add_parser(
        "study", help="train a named variant and write its measured results to studies/"
    )
    study.add_argument("name", nargs="?", help="the study to run (see --list)")
    study.add_argument("--list", action="store_true", help="list the studies")
    study.add_argument("--table", action="store_true", help="rewrite studies/README.md")
    study.add_argument("--steps", type=positive_int, help="override the study's steps")
    study.add_argument(
        "--seconds", type=positive_float, help="train for this wall time instead (equal budget)"
    )
    study.add_argument("--curve", default="", help="steps to measure on the way, e.g. 500,1000")
    study.add_argument("--id-clips", type=positive_int, default=256, help="ID scenes at the end")
    study.add_argument("--ood-clips", type=positive_int, default=64, help="scenes per OOD axis")
    study.add_argument("--out", default="studies", help="results folder")
    study.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint")
    study.add_argument(
        "--word-effect",
        action="store_true",
        help="only measure the trained run's word effect and add it to its results",
    )
    study.set_defaults(run=_study)

    world = commands.add_parser("world", help="the simulated world", add_help=False)
    world.add_argument(
        "--preview", action="store_true", help="write a grid GIF of clips and captions"
    )
    world.set_defaults(run=_world)

    spirals = commands.add_parser("spirals", help="chapter 3's spiral classifier")
    spirals.add_argument("--out", default="runs/spirals", help="folder for figures and metrics")
    spirals.add_argument("--steps", type=positive_int, default=1500, help="training steps")
    spirals.add_argument("--seed", type=int, default=0)
    spirals.set_defaults(run=_spirals)

    from ..examples.toy2d import DATASETS

    toy = commands.add_parser(
        "toy",
        help="diffusion on 2-D points: DDPM vs DDIM vs flow matching",
        description="Train an eps-prediction and a flow-matching model on 2-D data, sample "
        "with DDPM (1000 steps), DDIM and flow Euler, and score the samples against held-out "
        "data.",
    )
    toy.add_argument("--out", default="runs/toy", help="folder for the table, figures and GIF")
    toy.add_argument("--dataset", choices=sorted(DATASETS), default="swiss_roll")
    toy.add_argument("--steps", type=positive_int, default=8000, help="training steps per model")
    toy.add_argument("--batch", type=positive_int, default=512, help="training batch size")
    toy.add_argument("--lr", type=positive_float, default=2e-3, help="peak learning rate")
    toy.add_argument("--samples", type=positive_int, default=5000, help="points per sampler")
    toy.add_argument("--ddim-steps", type=positive_int, default=50, help="DDIM steps (<= 1000)")
    toy.add_argument("--flow-steps", type=positive_int, default=50, help="flow Euler steps")
    toy.add_argument("--hidden", type=positive_int, default=128, help="width of the denoiser")
    toy.add_argument("--depth", type=positive_int, default=4, help="residual hidden layers")
    toy.add_argument("--seed", type=int, default=0)
    toy.add_argument("--quiet", action="store_true", help="no progress bars")
    toy.set_defaults(run=_toy, parser=toy)
    return parser


if __name__ == "__main__":
    sys.exit(main())
