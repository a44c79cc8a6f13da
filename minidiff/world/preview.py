"""Look at the world: a grid of clips, each with its caption written under it, as an animated GIF.

The captions are drawn into every frame (with matplotlib, off screen), so the GIF can be read on
its own: opened in a browser, pasted in a notebook, or attached to a report.

    python -m minidiff.world.preview --out world.gif --n 16 --split ood --frames 8 --size 16

:func:`write_grid_gif` takes any clips and captions, so generated samples can be shown the same
way as the data.
"""

from __future__ import annotations

import argparse
import math
import textwrap
from pathlib import Path

import imageio.v3 as iio
import numpy
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .. import config
from ..config import positive_float_arg, positive_int_arg
from .captions import SPLITS, make_dataset, ood_axes

CELL_INCHES = 1.9  # width of one clip's cell; the caption adds a little height
DPI = 90


def write_grid_gif(path, clips, captions, fps: float = 4.0, title: str = "") -> Path:
    """Write ``clips`` (n, frames, 3, height, width) in [0, 1] as a grid GIF with ``captions``
    under the clips and ``title`` with the frame number above; returns the path."""
    clips = numpy.clip(numpy.asarray(clips, dtype=numpy.float32), 0.0, 1.0)
    count, frames = clips.shape[:2]
    config.refuse(
        "write_grid_gif",
        [config.integer("the number of clips", count), config.number("fps", fps, 0, open_low=True)],
    )
    columns = math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    labels = [textwrap.fill(text, 24) for text in captions]
    caption_lines = max(label.count("\n") + 1 for label in labels)
    cell_height = CELL_INCHES + 0.13 * caption_lines + 0.1
    figure = Figure(
        figsize=(columns * CELL_INCHES, rows * cell_height + 0.3), dpi=DPI, layout="constrained"
    )
    canvas = FigureCanvasAgg(figure)
    figure.patch.set_facecolor("white")
    images = []
    for index in range(rows * columns):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.set_axis_off()
        if index < count:
            # nearest-neighbour enlargement: each simulated pixel stays a visible square
            images.append(axes.imshow(clips[index, 0].transpose(1, 2, 0), interpolation="nearest"))
            axes.set_title(labels[index], fontsize=7, pad=3)
    heading = figure.suptitle(f"{title}  frame {frames}/{frames}".strip(), fontsize=9)
    canvas.draw()
    figure.set_layout_engine("none")  # lay out once, so nothing shifts from frame to frame
    pictures = []
    for frame in range(frames):
        for index, image in enumerate(images):
            image.set_data(clips[index, frame].transpose(1, 2, 0))
        heading.set_text(f"{title}  frame {frame + 1}/{frames}".strip())
        canvas.draw()
        pictures.append(numpy.asarray(canvas.buffer_rgba())[..., :3].copy())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    iio.imwrite(path, numpy.stack(pictures), duration=1000.0 / fps, loop=0)
    return path


def main(argv=None, prog: str = "python -m minidiff.world.preview") -> int:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Write a grid GIF of sampled clips of the ball world with their captions.",
    )
    parser.add_argument("--out", default="world_preview.gif", help="where to write the GIF")
    parser.add_argument("--n", type=positive_int_arg, default=16, help="number of clips")
    parser.add_argument("--split", choices=SPLITS, default="train")
    parser.add_argument("--frames", type=positive_int_arg, default=8)
    parser.add_argument(
        "--size", type=positive_int_arg, default=16, help="height and width in pixels"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--fps", type=positive_float_arg, default=4.0, help="frames per second of the GIF"
    )
    args = parser.parse_args(argv)
    clips, captions, specs = make_dataset(args.n, args.split, args.frames, args.size, args.seed)
    if args.split == "ood":
        # say what makes each clip out of distribution: the caption alone often cannot
        captions = [f"{text} [{', '.join(ood_axes(spec))}]" for text, spec in zip(captions, specs)]
    title = f"split {args.split}, seed {args.seed}"
    path = write_grid_gif(args.out, clips, captions, fps=args.fps, title=title)
    print(f"wrote {path} ({args.n} clips of {args.frames} frames at {args.size}x{args.size})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
