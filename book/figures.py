"""Diagrams for the book, drawn with matplotlib from the library's own code.

Each function draws one figure and returns it; a chapter's cell calls it and ``plt.show()``.
Where a diagram shows numbers (the points of a noise schedule, the depth of a network, which of
its blocks are joined), they are computed by the library when the figure is drawn, so the
picture cannot drift from the code.

* :func:`pre_and_post_ln_blocks`, :func:`adaln_zero_block`: transformer blocks (chapter 4);
* :func:`diffusion_chains`: the forward and reverse chains as a graphical model (chapters 6, 7);
* :func:`ddim_and_flow_paths`: the deterministic paths of DDIM and of flow matching (chapter 8);
* :func:`uvit_long_skips`: U-ViT's tokens and long skips, for a preset's network (chapter 9).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.patches import Circle, FancyBboxPatch

from minidiff.app.presets import get_preset
from minidiff.app.text_to_video import TextToVideo
from minidiff.diffusion import process, samplers
from minidiff.models.uvit import UViT

__all__ = [
    "adaln_zero_block",
    "ddim_and_flow_paths",
    "diffusion_chains",
    "pre_and_post_ln_blocks",
    "preset_network",
    "skip_connections",
    "uvit_long_skips",
]

NORM_COLOUR = "#fde9a9"
ATTENTION_COLOUR = "#c6dbef"
MLP_COLOUR = "#c7e9c0"
CONDITION_COLOUR = "#f2d7ee"
RESIDUAL_COLOUR = "tab:red"
ZERO_COLOUR = "tab:purple"
FORWARD_COLOUR = "black"
REVERSE_COLOUR = "tab:blue"


# --- drawing helpers ------------------------------------------------------------------------------


def _canvas(ax, width: float, height: float) -> None:
    """Data coordinates (0, 0) .. (width, height) with equal scales and no axes."""
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.axis("off")


def _box(ax, centre, text, width=1.7, height=0.55, colour="white", edge="black", lw=1.0, **text_kw):
    """A rounded box with centred text; returns its (left, right, bottom, top) edges."""
    x, y = centre
    ax.add_patch(
        FancyBboxPatch(
            (x - width / 2, y - height / 2),
            width,
            height,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=colour,
            edgecolor=edge,
            lw=lw,
            zorder=3,
        )
    )
    ax.text(x, y, text, ha="center", va="center", zorder=4, **{"fontsize": 9, **text_kw})
    return x - width / 2, x + width / 2, y - height / 2, y + height / 2


def _plus(ax, centre, radius=0.17, edge="black"):
    """The circled plus of a residual sum."""
    ax.add_patch(Circle(centre, radius, facecolor="white", edgecolor=edge, lw=1.2, zorder=3))
    ax.text(*centre, "+", ha="center", va="center", fontsize=11, zorder=4)


def _arrow(ax, start, end, colour="black", lw=1.1, head=True, bend=0.0, **kw):
    """A straight (``bend`` = 0) or curved arrow from ``start`` to ``end``."""
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={
            "arrowstyle": "-|>" if head else "-",
            "color": colour,
            "lw": lw,
            "shrinkA": 0,
            "shrinkB": 0,
            "connectionstyle": f"arc3,rad={bend}",
            "mutation_scale": 11,
            **kw,
        },
        zorder=2,
    )


def _line(ax, points, colour="black", lw=1.1):
    """A polyline through ``points`` (no arrow head)."""
    xs, ys = zip(*points)
    ax.plot(xs, ys, color=colour, lw=lw, solid_capstyle="round", zorder=2)


# --- chapter 4: transformer blocks -------------------------------------------------------------


def _branch(ax, trunk_x, branch_x, tap_y, boxes, join_y, trunk_colour):
    """A residual branch: leave the trunk at ``tap_y``, run up through ``boxes`` (text, colour)
    at ``branch_x`` and come back into a plus on the trunk at ``join_y``; returns the box tops."""
    step = (join_y - tap_y) / (len(boxes) + 1)
    _line(ax, [(trunk_x, tap_y), (branch_x, tap_y)])
    _arrow(ax, (branch_x, tap_y), (branch_x, tap_y + step - 0.275))
    tops = []
    for k, (text, colour) in enumerate(boxes):
        y = tap_y + (k + 1) * step
        _, _, _, top = _box(ax, (branch_x, y), text, colour=colour)
        tops.append(top)
        if k + 1 < len(boxes):
            _arrow(ax, (branch_x, top), (branch_x, y + step - 0.275))
    _line(ax, [(branch_x, tops[-1]), (branch_x, join_y)])
    _arrow(ax, (branch_x, join_y), (trunk_x + 0.17, join_y))
    _plus(ax, (trunk_x, join_y), edge=trunk_colour)
    return tops


def pre_and_post_ln_blocks():
    """Post-LN and pre-LN transformer blocks side by side (eq-pre-ln), the residual path in red.

    In post-LN the path from input to output passes through both LayerNorms; in pre-LN it meets
    only the two sums, so the block's Jacobian contains the identity.
    """
    fig, axes = plt.subplots(1, 2, figsize=(8.4, 5.0))
    trunk, branch = 1.2, 3.3
    r, h = 0.17, 0.275  # a plus's radius, half a box's height: where trunk arrows stop
    for ax, ordering in zip(axes, ("post-LN", "pre-LN")):
        _canvas(ax, 4.8, 8.6)
        ax.text(trunk, 0.25, "$x$", ha="center", va="center", fontsize=11)
        if ordering == "post-LN":
            _branch(
                ax,
                trunk,
                branch,
                1.0,
                [("multi-head\nattention", ATTENTION_COLOUR)],
                2.6,
                RESIDUAL_COLOUR,
            )
            _box(ax, (trunk, 3.4), "LayerNorm", colour=NORM_COLOUR, edge=RESIDUAL_COLOUR, lw=2)
            _branch(ax, trunk, branch, 4.2, [("MLP", MLP_COLOUR)], 5.8, RESIDUAL_COLOUR)
            _box(ax, (trunk, 6.6), "LayerNorm", colour=NORM_COLOUR, edge=RESIDUAL_COLOUR, lw=2)
            trunk_stops = [
                0.45,
                2.6 - r,
                2.6 + r,
                3.4 - h,
                3.4 + h,
                5.8 - r,
                5.8 + r,
                6.6 - h,
                6.6 + h,
                7.75,
            ]
            title = r"post-LN: $x \leftarrow \mathrm{LN}(x + F(x))$"
            title += "\nthe path from $x$ passes through every LayerNorm"
        else:
            _branch(
                ax,
                trunk,
                branch,
                0.9,
                [("LayerNorm$_1$", NORM_COLOUR), ("multi-head\nattention", ATTENTION_COLOUR)],
                3.5,
                RESIDUAL_COLOUR,
            )
            _branch(
                ax,
                trunk,
                branch,
                4.1,
                [("LayerNorm$_2$", NORM_COLOUR), ("MLP", MLP_COLOUR)],
                6.7,
                RESIDUAL_COLOUR,
            )
            trunk_stops = [0.45, 3.5 - r, 3.5 + r, 6.7 - r, 6.7 + r, 7.75]
            title = r"pre-LN: $x \leftarrow x + F(\mathrm{LN}(x))$"
            title += "\nthe path from $x$ meets only the two sums"
        for start, end in zip(trunk_stops[0::2], trunk_stops[1::2]):
            _arrow(ax, (trunk, start), (trunk, end), colour=RESIDUAL_COLOUR, lw=2.4)
        ax.text(trunk, 8.05, "output", ha="center", va="center", fontsize=10)
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def adaln_zero_block():
    """A pre-LN block conditioned by adaLN-Zero (eq-adaln).

    The condition c goes through SiLU and one Linear layer whose weight and bias start at zero;
    its six outputs scale and shift each branch's normalized input and gate its output. At
    initialization every gate alpha is 0, so the block is the identity.
    """
    fig, ax = plt.subplots(figsize=(7.4, 6.4))
    _canvas(ax, 8.6, 10.6)
    trunk, branch, linear_x = 1.0, 3.2, 6.9
    joins = (5.0, 9.5)
    rows = []  # (label, height, is a gate) of each output of the modulation
    ax.text(trunk, 0.25, "$x$", ha="center", va="center", fontsize=11)
    for half, (tap, join, inner, colour) in enumerate(
        [
            (0.9, joins[0], "multi-head\nattention", ATTENTION_COLOUR),
            (5.4, joins[1], "MLP", MLP_COLOUR),
        ],
        start=1,
    ):
        step = (join - tap) / 5
        boxes = [
            (f"LayerNorm$_{half}$", NORM_COLOUR),
            (rf"$\odot(1 + \gamma_{half}) + \beta_{half}$", CONDITION_COLOUR),
            (inner, colour),
            (rf"$\odot\,\alpha_{half}$", CONDITION_COLOUR),
        ]
        _branch(ax, trunk, branch, tap, boxes, join, RESIDUAL_COLOUR)
        rows.append((rf"$\gamma_{half}, \beta_{half}$", tap + 2 * step, False))
        rows.append((rf"$\alpha_{half}$ = 0 at init", tap + 4 * step, True))
    r = 0.17  # a plus's radius
    for start, end in [(0.45, joins[0] - r), (joins[0] + r, joins[1] - r), (joins[1] + r, 10.15)]:
        _arrow(ax, (trunk, start), (trunk, end), colour=RESIDUAL_COLOUR, lw=2.4)
    ax.text(trunk, 10.42, "output", ha="center", va="center", fontsize=10)

    # the condition: c -> SiLU -> Linear(dim, 6 dim), zeros at initialization
    ax.text(linear_x, 0.25, "$c$ (time + caption)", ha="center", va="center", fontsize=10)
    _arrow(ax, (linear_x, 0.45), (linear_x, 0.87))
    _box(ax, (linear_x, 1.15), "SiLU", width=1.2, colour="white")
    _arrow(ax, (linear_x, 1.43), (linear_x, 1.8))
    bottom, top = 1.8, 9.2
    ax.add_patch(
        FancyBboxPatch(
            (linear_x - 0.6, bottom),
            1.2,
            top - bottom,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=CONDITION_COLOUR,
            edgecolor=ZERO_COLOUR,
            lw=2,
            zorder=3,
        )
    )
    ax.text(
        linear_x,
        (bottom + top) / 2,
        "Linear(dim, 6 dim)\n$W = 0,\\ b = 0$ at init",
        ha="center",
        va="center",
        rotation=90,
        fontsize=10,
        zorder=4,
    )
    for label, y, gate in rows:
        _arrow(
            ax,
            (linear_x - 0.6, y),
            (branch + 0.85, y),
            colour=ZERO_COLOUR if gate else "black",
            lw=1.8 if gate else 1.1,
        )
        ax.text(
            (linear_x - 0.6 + branch + 0.85) / 2,
            y + 0.12,
            label,
            ha="center",
            va="bottom",
            fontsize=9,
            color=ZERO_COLOUR if gate else "black",
        )
    ax.set_title(
        "adaLN-Zero: the condition sets a scale, a shift and a gate per branch;\n"
        "with every gate at 0 the block starts as the identity",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


# --- chapters 6 and 7: the two chains ----------------------------------------------------------


def diffusion_chains(reverse: bool = True, jump: bool = False):
    """The diffusion model as a graphical model: x_0 -> x_1 -> ... -> x_T.

    Forward arrows (above) are the fixed steps q(x_t | x_{t-1}) (eq-forward-step); with
    ``reverse`` the learned steps p_theta(x_{t-1} | x_t) run back underneath, from
    x_T ~ N(0, I) to the data; with ``jump`` an arc under the chain shows the closed form
    q(x_t | x_0) (eq-closed-form), one jump from the data to any step t.
    """
    names = ["x_0", "x_1", None, "x_{t-1}", "x_t", None, "x_T"]
    spacing, radius, y = 1.75, 0.42, 0.0
    xs = [1.3 + spacing * k for k in range(len(names))]
    below = 0.75 if reverse else 0.0  # room for the reverse arrows' labels
    bottom = y - radius - 0.2 - (0.3 if reverse else 0.0)
    if jump:
        bottom = y - radius - below - 1.3
    top = y + 1.0
    fig, ax = plt.subplots(figsize=(10, 0.75 * (top - bottom) + 0.55))
    _canvas(ax, xs[-1] + 1.9, top - bottom)
    ax.set_ylim(bottom, top)
    for x, name in zip(xs, names):
        if name is None:
            ax.text(x, y, r"$\cdots$", ha="center", va="center", fontsize=14)
            continue
        face = "0.85" if name == "x_0" else "white"
        ax.add_patch(Circle((x, y), radius, facecolor=face, edgecolor="black", lw=1.3, zorder=3))
        ax.text(x, y, f"${name}$", ha="center", va="center", fontsize=12, zorder=4)
    ax.text(xs[0] - radius - 0.12, y, "data", ha="right", va="center", fontsize=9)
    ax.text(
        xs[-1] + radius + 0.12,
        y,
        r"$\approx \mathcal{N}(0, I)$",
        ha="left",
        va="center",
        fontsize=9,
    )

    def arrow_label(colour):
        return dict(ha="center", fontsize=10, color=colour)

    labelled = {1: r"$q(x_1 \mid x_0)$", 4: r"$q(x_t \mid x_{t-1})$"}
    reverse_labelled = {1: r"$p_\theta(x_0 \mid x_1)$", 4: r"$p_\theta(x_{t-1} \mid x_t)$"}
    for k in range(1, len(names)):
        gap = radius + 0.06
        left = xs[k - 1] + (gap if names[k - 1] else 0.3)
        right = xs[k] - (gap if names[k] else 0.3)
        _arrow(ax, (left, y + 0.12), (right, y + 0.12), colour=FORWARD_COLOUR, bend=-0.35, lw=1.3)
        middle = (xs[k - 1] + xs[k]) / 2
        if k in labelled:
            ax.text(middle, y + 0.5, labelled[k], va="bottom", **arrow_label(FORWARD_COLOUR))
        if reverse:
            _arrow(
                ax, (right, y - 0.12), (left, y - 0.12), colour=REVERSE_COLOUR, bend=-0.35, lw=1.3
            )
            if k in reverse_labelled:
                ax.text(
                    middle, y - 0.52, reverse_labelled[k], va="top", **arrow_label(REVERSE_COLOUR)
                )
    if jump:
        leave = y - radius - 0.05 - below
        if below:
            for x in (xs[0], xs[4]):
                _line(ax, [(x, y - radius), (x, leave)], colour="tab:red")
        _arrow(
            ax,
            (xs[0] + 0.1, leave),
            (xs[4] - 0.1, leave),
            colour="tab:red",
            bend=0.25,
            lw=1.6,
            linestyle="--",
        )
        ax.text(
            (xs[0] + xs[4]) / 2,
            leave - 0.95,
            r"$q(x_t \mid x_0)$: the closed form, one jump",
            ha="center",
            va="top",
            fontsize=10,
            color="tab:red",
        )
    title = "forward chain $q$ (fixed, adds noise)"
    if reverse:
        title += r" and reverse chain $p_\theta$ (learned, removes it)"
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


# --- chapter 8: two deterministic paths --------------------------------------------------------


def ddim_and_flow_paths(schedule, steps: int = 10):
    """x_t in the plane spanned by x_0 and eps, for DDIM and for flow matching.

    The diffusion point is ``process.q_sample`` (eq-closed-form) applied to x_0 = (1, 0) and
    eps = (0, 1), so its coordinates are (sqrt(alpha_bar_t), sqrt(1 - alpha_bar_t)): a quarter
    circle. The flow point is ``samplers.flow_interpolate`` (eq-flow-path) on the same pair, the
    straight line ((1 - t), t). Dots are where a sampler of ``steps`` steps stops: DDIM at
    ``samplers.ddim_timesteps``, Euler at t = k / steps. Right: the two coefficients against the
    fraction of the way from data to noise.
    """
    num_timesteps = len(schedule)
    data_axis, noise_axis = np.array([1.0, 0.0]), np.array([0.0, 1.0])

    def diffusion_point(t):
        t = np.asarray(t)
        x0 = np.tile(data_axis, (len(t), 1))
        noise = np.tile(noise_axis, (len(t), 1))
        return process.q_sample(schedule, x0, t, noise)

    def flow_point(u):
        u = np.asarray(u, dtype=np.float64)
        x0 = np.tile(data_axis, (len(u), 1))
        noise = np.tile(noise_axis, (len(u), 1))
        return samplers.flow_interpolate(x0, noise, u)[0]

    all_steps = np.arange(num_timesteps)
    diffusion = np.concatenate([data_axis[None], diffusion_point(all_steps)])
    flow = flow_point(np.linspace(0.0, 1.0, 201))
    ddim_stops = np.concatenate(
        [data_axis[None], diffusion_point(samplers.ddim_timesteps(num_timesteps, steps))]
    )
    euler_stops = flow_point(np.arange(steps + 1) / steps)

    fig, (plane, against) = plt.subplots(
        1, 2, figsize=(10.5, 4.4), gridspec_kw={"width_ratios": [1, 1.25]}
    )
    for point in euler_stops[1:-1]:  # a ray from the origin is one noise-to-signal ratio
        far = point / np.linalg.norm(point) * 1.08
        plane.plot([0, far[0]], [0, far[1]], color="0.85", lw=0.7, zorder=1)
    ddim_label = r"DDIM: $(\sqrt{\bar\alpha_t}, \sqrt{1 - \bar\alpha_t})$, " + schedule.name
    plane.plot(*diffusion.T, color="tab:blue", lw=2, label=ddim_label)
    plane.plot(*ddim_stops.T, "o", color="tab:blue", ms=5, label=f"{steps} DDIM steps")
    plane.plot(*flow.T, color="tab:orange", lw=2, label="flow matching: $(1 - t, t)$")
    plane.plot(*euler_stops.T, "s", color="tab:orange", ms=4.5, label=f"{steps} Euler steps")
    plane.annotate("data $x_0$", (1, 0), (0.97, 0.09), ha="right", fontsize=9)
    plane.annotate(r"noise $\varepsilon$", (0, 1), (0.04, 1.02), ha="left", fontsize=9)
    plane.set(
        xlim=(-0.03, 1.12),
        ylim=(-0.03, 1.12),
        aspect="equal",
        xlabel=r"coefficient of $x_0$",
        ylabel=r"coefficient of $\varepsilon$",
        title=r"$x_t$ in the plane of $x_0$ and $\varepsilon$",
    )
    plane.legend(fontsize=7.5, loc="lower left")

    fraction = np.arange(num_timesteps + 1) / num_timesteps
    against.plot(
        fraction,
        diffusion[:, 0],
        color="tab:blue",
        lw=2,
        label=r"DDIM: $\sqrt{\bar\alpha_t}$ (of $x_0$)",
    )
    against.plot(
        fraction,
        diffusion[:, 1],
        color="tab:blue",
        lw=2,
        ls="--",
        label=r"DDIM: $\sqrt{1 - \bar\alpha_t}$ (of $\varepsilon$)",
    )
    u = np.linspace(0, 1, 201)
    against.plot(u, flow_point(u)[:, 0], color="tab:orange", lw=2, label="flow: $1 - t$")
    against.plot(u, flow_point(u)[:, 1], color="tab:orange", lw=2, ls="--", label="flow: $t$")
    against.plot(
        fraction,
        np.hypot(*diffusion.T),
        color="tab:blue",
        lw=0.9,
        ls=":",
        label="DDIM: length of $x_t$'s coefficients",
    )
    against.plot(
        u,
        np.hypot(*flow_point(u).T),
        color="tab:orange",
        lw=0.9,
        ls=":",
        label="flow: length of $x_t$'s coefficients",
    )
    against.set(
        xlabel="fraction of the way from data to noise ($t / T$, or $t$)",
        ylabel="coefficient",
        ylim=(-0.03, 1.08),
        title="the same coefficients against time",
    )
    against.legend(fontsize=7.5, loc="center right")
    fig.tight_layout()
    return fig


# --- chapter 9: U-ViT --------------------------------------------------------------------------


def preset_network(name: str) -> UViT:
    """The U-ViT of preset ``name``, as the text-to-video system builds it."""
    return TextToVideo(get_preset(name)).model


def skip_connections(model: UViT) -> tuple[list[str], dict[str, str]]:
    """Run one forward pass of ``model`` and report what it did: the names of the blocks in the
    order they ran, and for each block that a long skip enters, the block whose output it
    brings.

    Every block's output is labelled as it is made; each skip mixer receives the concatenation
    [h, s], and the parent of that concatenation that is not the running tokens h is the kept
    output s of an earlier block.
    """
    config = model.config
    order: list[str] = []
    joins: dict[str, str] = {}
    made_by: dict[int, str] = {}
    pending: list[str] = []
    blocks = [(f"in-block {k}", b) for k, b in enumerate(model.in_blocks)]
    blocks += [("middle block", model.mid_block)]
    blocks += [(f"out-block {k}", b) for k, b in enumerate(model.out_blocks)]

    def watch_block(name, block):
        forward = block.forward

        def watched(*args, **kwargs):
            out = forward(*args, **kwargs)
            made_by[id(out)] = name
            order.append(name)
            if pending:
                joins[name] = pending.pop()
            return out

        block.forward = watched

    def watch_skip(skip):
        forward = skip.forward

        def watched(joined, *args, **kwargs):
            sources = [made_by.get(id(parent)) for parent in joined.grad_fn.parents]
            kept = [name for name in sources if name is not None and name != order[-1]]
            if len(kept) != 1:
                raise RuntimeError(
                    f"a skip mixer after {order[-1]} got {sources}: expected the running tokens "
                    "and one kept block output; has UViT.forward changed how skips join?"
                )
            pending.append(kept[0])
            return forward(joined, *args, **kwargs)

        skip.forward = watched

    for name, block in blocks:
        watch_block(name, block)
    for skip in model.skips:
        watch_skip(skip)
    dtype = model.patch_embed.weight.dtype
    clips = np.zeros((1, config.frames, config.channels, config.height, config.width), dtype)
    text = mask = None
    if config.text_dim:
        text = np.zeros((1, config.text_length, config.text_dim), dtype)
        mask = np.ones((1, config.text_length), dtype=bool)
    try:
        model(clips, np.array([0]), text, mask)
    finally:
        for module in [*(block for _, block in blocks), *model.skips]:
            del module.forward  # the class's forward again
    return order, joins


def _token_strip(ax, left, y, count, shown, colour, label, size=0.32):
    """``count`` tokens as squares (the first ``shown`` - 1 and the last, with dots between);
    returns the strip's right edge."""
    x = left
    drawn = range(count) if count <= shown else [*range(shown - 1), None, count - 1]
    for k in drawn:
        if k is None:
            ax.text(x + size / 2, y, r"$\cdots$", ha="center", va="center", fontsize=9)
        else:
            ax.add_patch(
                FancyBboxPatch(
                    (x, y - size / 2),
                    size,
                    size,
                    boxstyle="square,pad=0",
                    facecolor=colour,
                    edgecolor="black",
                    lw=0.8,
                    zorder=3,
                )
            )
        x += size * 1.15
    ax.text((left + x) / 2, y + 0.35, label, ha="center", va="bottom", fontsize=9)
    return x


def uvit_long_skips(preset_name: str = "tiny-cpu"):
    """U-ViT as the preset ``preset_name`` builds it: the token sequence (time, text, patches)
    and the blocks in a U, each long skip drawn from the block whose output it keeps to the
    block it enters, as :func:`skip_connections` finds them in a forward pass."""
    model = preset_network(preset_name)
    config = model.config
    order, joins = skip_connections(model)
    depth = len(order)
    middle = order.index("middle block")
    # in a U: down to the middle block, then back up; a skip joins blocks on one level
    spacing, rise, base = 2.6, 1.05, 0.75
    place = {}
    for k, name in enumerate(order):
        level = abs(middle - k)
        place[name] = (1.2 + spacing * k, base + rise * level)
    top = base + rise * middle
    width = 1.2 + spacing * (depth - 1) + 1.2
    strip_y = top + 1.5
    fig, ax = plt.subplots(figsize=(max(9.0, 1.05 * width), 0.95 * (strip_y + 1.2)))
    _canvas(ax, width, strip_y + 1.0)

    # the token sequence, in the order the network concatenates it
    frames, rows, columns = config.grid
    x = _token_strip(ax, 0.25, strip_y, 1, 1, CONDITION_COLOUR, "time")
    if config.text_length:
        x = _token_strip(
            ax, x + 0.2, strip_y, config.text_length, 4, "#fdd0a2", f"text ({config.text_length})"
        )
    right = _token_strip(
        ax,
        x + 0.2,
        strip_y,
        config.num_patches,
        6,
        ATTENTION_COLOUR,
        f"patches ({frames} x {rows} x {columns} = {config.num_patches})",
    )
    ax.text(
        right + 0.2,
        strip_y,
        f"{config.num_extra_tokens + config.num_patches} tokens of width {config.dim}",
        ha="left",
        va="center",
        fontsize=9,
    )

    first = place[order[0]]  # the whole sequence goes into the first block
    _line(ax, [(0.25, strip_y - 0.3), (right - 0.05, strip_y - 0.3)])
    _arrow(ax, (first[0], strip_y - 0.3), (first[0], first[1] + 0.3))
    for name in order:
        colour = "#bcbddc" if name == "middle block" else "#dadaeb"
        _box(ax, place[name], name, width=1.4, height=0.6, colour=colour)
    mixers = {later: (place[later][0] - 1.25, place[later][1]) for later in joins}
    for earlier, later in zip(order, order[1:]):
        (x0, y0), (x1, y1) = place[earlier], place[later]
        if later in mixers:  # [h, s] -> Linear, just before the block
            mixer = mixers[later]
            _arrow(ax, (x0 + 0.45, y0 + 0.3), (mixer[0], mixer[1] - 0.25))
            _arrow(ax, (mixer[0] + 0.45, mixer[1]), (x1 - 0.7, y1))
        elif y1 < y0:
            _arrow(ax, (x0 + 0.45, y0 - 0.3), (x1 - 0.45, y1 + 0.3))
        else:
            _arrow(ax, (x0 + 0.45, y0 + 0.3), (x1 - 0.45, y1 - 0.3))
    for later, earlier in joins.items():
        (x0, y0), mixer = place[earlier], mixers[later]
        _box(
            ax,
            mixer,
            "Linear\n$[h, s]$",
            width=0.9,
            height=0.5,
            colour="white",
            edge=RESIDUAL_COLOUR,
            lw=1.5,
            fontsize=8,
        )
        _arrow(ax, (x0 + 0.7, y0), (mixer[0] - 0.45, mixer[1]), colour=RESIDUAL_COLOUR, lw=2)
        ax.text(
            (x0 + 0.7 + mixer[0] - 0.45) / 2,
            y0 + 0.08,
            f"{earlier}'s output $s$",
            ha="center",
            va="bottom",
            fontsize=8,
            color=RESIDUAL_COLOUR,
        )
    ax.text(
        0.25,
        0.1,
        "red: the long skips; each mixer concatenates the running tokens $h$ "
        f"with the kept $s$ ({2 * config.dim} features) and maps them back to "
        f"{config.dim}",
        ha="left",
        va="bottom",
        fontsize=9,
        color=RESIDUAL_COLOUR,
    )
    last = place[order[-1]]
    _arrow(ax, (last[0], last[1] + 0.3), (last[0], strip_y - 0.3))
    ax.text(
        last[0],
        strip_y,
        "patch tokens only:\nLayerNorm, Linear, unpatchify",
        ha="center",
        va="center",
        fontsize=8.5,
    )
    note = f"{preset_name}: depth {depth}, {config.attention} attention"
    if config.adaln:
        note += ", every block modulated by $c$ (adaLN-Zero)"
    ax.set_title(note, fontsize=10)
    fig.tight_layout()
    return fig
