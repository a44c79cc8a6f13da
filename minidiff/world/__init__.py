"""The simulated world the video models learn from: balls in a box, their clips and captions.

``physics`` moves the balls, ``render`` draws them, ``captions`` samples scenes, writes their
captions and splits them into training, in-distribution and out-of-distribution sets, and
``preview`` shows a grid of samples as a GIF.
"""

from .captions import (
    COLOURS,
    MOTIONS,
    SIZES,
    VOCABULARY,
    SceneSpec,
    caption,
    make_dataset,
    ood_axes,
    parse_caption,
    sample_spec,
)
from .physics import Ball, Bounce, Trajectory, World, simulate
from .render import BACKGROUND, PALETTE, from_signed, render, render_clip, to_signed
