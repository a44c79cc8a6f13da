"""Command line: ``python -m minidiff demo --out runs/demo``, ``python -m minidiff toy``.

The text-to-video model is not built yet; until it is, ``demo`` runs the largest end-to-end
example the library supports today and says so. ``toy`` trains diffusion and flow-matching
models on 2-D points and compares their samplers (``minidiff.examples.toy2d``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def _demo(args) -> int:
    from .examples import spirals

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(
        "minidiff demo: the text-to-video diffusion model is not part of the library yet.\n"
        "This demo trains what the library supports today: an MLP from minidiff.nn, trained\n"
        "with AdamW, a warmup + cosine schedule and an EMA of its weights, gradient-checked in\n"
        "float64, classifying two spirals.\n"
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


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def _toy(args) -> int:
    from .examples import toy2d

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
    parser = argparse.ArgumentParser(prog="python -m minidiff", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="run the main end-to-end example")
    demo.add_argument("--out", default="runs/demo", help="folder for figures and metrics")
    demo.add_argument("--steps", type=int, default=1500, help="training steps")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)

    from .examples.toy2d import DATASETS

    toy = commands.add_parser(
        "toy",
        help="diffusion on 2-D points: DDPM vs DDIM vs flow matching",
        description="Train an eps-prediction and a flow-matching model on 2-D data, sample "
        "with DDPM (1000 steps), DDIM and flow Euler, and score the samples against held-out "
        "data.",
    )
    toy.add_argument("--out", default="runs/toy", help="folder for the table, figures and GIF")
    toy.add_argument("--dataset", choices=sorted(DATASETS), default="swiss_roll")
    toy.add_argument("--steps", type=_positive_int, default=8000, help="training steps per model")
    toy.add_argument("--batch", type=_positive_int, default=512, help="training batch size")
    toy.add_argument("--lr", type=_positive_float, default=2e-3, help="peak learning rate")
    toy.add_argument("--samples", type=_positive_int, default=5000, help="points per sampler")
    toy.add_argument("--ddim-steps", type=_positive_int, default=50, help="DDIM steps (<= 1000)")
    toy.add_argument("--flow-steps", type=_positive_int, default=50, help="flow Euler steps")
    toy.add_argument("--hidden", type=_positive_int, default=128, help="width of the denoiser")
    toy.add_argument("--depth", type=_positive_int, default=4, help="residual hidden layers")
    toy.add_argument("--seed", type=int, default=0)
    toy.add_argument("--quiet", action="store_true", help="no progress bars")
    toy.set_defaults(run=_toy, parser=toy)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
