r"""Diffusion on points in the plane: the first generative model of the book, end to end.

The data are 2-D point clouds that lie near a 1-D curve (the swiss roll, two moons) or around
eight points (eight Gaussians). A small MLP, the :class:`Denoiser`, learns one of three
regression targets from the library's losses:

* ``"eps"``: the added noise eps of x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps
  (eq-simple-loss), sampled by DDPM's ancestral chain or by DDIM on a subsequence;
* ``"v"``: the velocity v = sqrt(alpha_bar_t) eps - sqrt(1 - alpha_bar_t) x_0, same samplers;
* ``"flow"``: the flow-matching velocity z - x_0 along x_t = (1 - t) x_0 + t z, t in [0, 1]
  (eq-flow-loss), sampled by Euler steps from t = 1 to t = 0.

Samples are judged by sample-based distances (:mod:`minidiff.metrics`) to *held-out* data,
beside two reference values: the floor (two independent held-out sets, which differ only by
sampling noise) and the ceiling (standard Gaussian noise, the sampler's starting point).

``python -m minidiff toy --out runs/toy`` runs :func:`compare` and writes its table, figures and
an animation of the reverse process.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy
from tqdm import tqdm

from .. import backend, nn, optim
from ..autograd import ops
from ..autograd.tensor import Tensor, no_grad, unwrap
from ..diffusion import losses, samplers, schedules
from ..diffusion.process import x0_from_eps
from ..diffusion.schedules import NoiseSchedule
from ..metrics import energy_distance, median_bandwidth, mmd_rbf
from ..nn import functional as F
from ..nn.encodings import timestep_embedding

# --- data --------------------------------------------------------------------------------------
# Each dataset is centred and scaled by fixed constants (the exact mean and the rounded standard
# deviation of its noiseless law), not by the statistics of the drawn sample, so that a point
# means the same thing whatever n is.


def swiss_roll(n: int, rng: numpy.random.Generator, noise: float = 0.03) -> numpy.ndarray:
    """The spiral (s cos s, s sin s), s ~ U[1.5 pi, 4.5 pi]: a 1-D curve in the plane.

    Its mean is (2, 2 / (3 pi)) and its per-axis standard deviation about 6.8; both are
    removed, then Gaussian noise of standard deviation ``noise`` thickens the curve a little.
    """
    s = 1.5 * math.pi * (1.0 + 2.0 * rng.random(n))
    points = numpy.stack([s * numpy.cos(s) - 2.0, s * numpy.sin(s) - 2.0 / (3.0 * math.pi)], 1)
    points = points / 6.8 + noise * rng.standard_normal((n, 2))
    return points.astype(numpy.float32)


def two_moons(n: int, rng: numpy.random.Generator, noise: float = 0.05) -> numpy.ndarray:
    """Two interleaved half circles, (cos s, sin s) and (1 - cos s, 1/2 - sin s), s ~ U[0, pi],
    each point on either with probability 1/2; centred at (1/2, 1/4) and scaled by 1 / 0.7."""
    s = math.pi * rng.random(n)
    upper = rng.random(n) < 0.5
    x = numpy.where(upper, numpy.cos(s), 1.0 - numpy.cos(s)) - 0.5
    y = numpy.where(upper, numpy.sin(s), 0.5 - numpy.sin(s)) - 0.25
    points = numpy.stack([x, y], 1) / 0.7 + noise * rng.standard_normal((n, 2))
    return points.astype(numpy.float32)


def eight_gaussians(n: int, rng: numpy.random.Generator, std: float = 0.1) -> numpy.ndarray:
    """Eight equally likely Gaussians of standard deviation ``std`` at angles k pi / 4 on the
    circle of radius sqrt(2): per-axis variance 2 / 2 + std^2, about 1."""
    angle = rng.integers(0, 8, size=n) * (math.pi / 4.0)
    centres = math.sqrt(2.0) * numpy.stack([numpy.cos(angle), numpy.sin(angle)], 1)
    return (centres + std * rng.standard_normal((n, 2))).astype(numpy.float32)


DATASETS = {"swiss_roll": swiss_roll, "two_moons": two_moons, "eight_gaussians": eight_gaussians}
OBJECTIVES = ("eps", "v", "flow")
METHODS = ("ddpm", "ddim", "flow")

# Independent random streams for the training set and the two held-out sets, so that the
# held-out points are never seen in training, whatever the seed.
_TRAIN, _HELD_OUT, _HELD_OUT_2 = 0, 1, 2


def make_data(dataset: str, n: int, seed: int, split: int = _TRAIN) -> numpy.ndarray:
    """``n`` points of ``dataset`` from the random stream (seed, split): (n, 2) float32."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(DATASETS)}")
    return DATASETS[dataset](n, numpy.random.default_rng([seed, split]))


def make_schedule(schedule: str | NoiseSchedule = "linear", T: int = 1000) -> NoiseSchedule:
    """A :class:`NoiseSchedule` by name (``linear``, ``cosine``, ``sigmoid``) or as given."""
    if isinstance(schedule, NoiseSchedule):
        return schedule
    builders = {
        "linear": schedules.linear,
        "cosine": schedules.cosine,
        "sigmoid": schedules.sigmoid,
    }
    if schedule not in builders:
        raise ValueError(f"unknown schedule {schedule!r}; choose one of {sorted(builders)}")
    return builders[schedule](T)


# --- the network ------------------------------------------------------------------------------


class Denoiser(nn.Module):
    """An MLP on [x, timestep_embedding(t)] with residual hidden layers:

        h_0 = W_in [x, emb(time_scale t)],   h_{k+1} = h_k + W_k silu(h_k),   out = W_out silu(h_L).

    The residual form keeps every layer close to the identity at the start, so a deeper stack
    trains as easily as a shallow one. The output layer starts at zero: the first prediction
    is 0, a sensible guess for a noise, a velocity or a flow alike.

    Diffusion times are integer steps 0..T-1 and enter the embedding as they are
    (``time_scale=1``). Flow-matching times are floats in [0, 1]; with ``time_scale=1000`` they
    span the same range of phases in the sinusoidal embedding as 1000 diffusion steps, so the
    same network suits both. ``objective="flow"`` in :func:`build_denoiser` sets this.
    """

    def __init__(
        self,
        dim: int = 2,
        hidden: int = 128,
        depth: int = 4,
        time_dim: int = 64,
        time_scale: float = 1.0,
        dtype=None,
        device=None,
    ):
        super().__init__()
        self.dim, self.time_dim, self.time_scale = dim, time_dim, time_scale
        self.input = nn.Linear(dim + time_dim, hidden, dtype=dtype, device=device)
        self.blocks = nn.ModuleList(
            nn.Linear(hidden, hidden, dtype=dtype, device=device) for _ in range(depth)
        )
        self.output = nn.Linear(hidden, dim, init_weight="zeros", dtype=dtype, device=device)

    def forward(self, x: Tensor, t) -> Tensor:
        t = unwrap(t)
        embedding = timestep_embedding(t * self.time_scale, self.time_dim)
        h = self.input(ops.concatenate([x, embedding], axis=1))
        for block in self.blocks:
            h = h + block(F.silu(h))
        return self.output(F.silu(h))

    def extra_repr(self) -> str:
        return f"time_dim={self.time_dim}, time_scale={self.time_scale:g}"


def build_denoiser(objective: str, hidden: int = 128, depth: int = 4, device=None) -> Denoiser:
    """The :class:`Denoiser` for ``objective``: flow times are scaled by 1000, others by 1."""
    _check_objective(objective)
    return Denoiser(
        hidden=hidden, depth=depth, time_scale=1000.0 if objective == "flow" else 1.0, device=device
    )


def _check_objective(objective: str) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")


# --- training ---------------------------------------------------------------------------------


@dataclass
class Trained:
    """What :func:`train` returns: the model carrying its EMA weights, and the loss curve."""

    model: Denoiser
    objective: str
    losses: numpy.ndarray  # the training loss at every step (before the EMA)
    seconds: float
    config: dict = field(default_factory=dict)


def train(
    dataset: str = "swiss_roll",
    objective: str = "eps",
    steps: int = 8000,
    batch: int = 512,
    lr: float = 2e-3,
    schedule: str | NoiseSchedule = "linear",
    seed: int = 0,
    n_train: int = 20_000,
    hidden: int = 128,
    depth: int = 4,
    ema_decay: float = 0.995,
    log_every: int = 50,
    progress: bool = True,
) -> Trained:
    """Train a :class:`Denoiser` on ``n_train`` points of ``dataset`` with AdamW, a linear
    warm-up over the first 5% of ``steps`` followed by a cosine decay, and an EMA of the
    weights; return the EMA model and the per-step losses.

    Minibatches are drawn with replacement from the fixed training set on the model's device.
    The losses stay on the device and come to the host once every ``log_every`` steps, when the
    progress bar shows their mean: no per-step synchronisation.
    """
    _check_objective(objective)
    for name, value in (("steps", steps), ("batch", batch), ("n_train", n_train)):
        if value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value}")
    noise_schedule = make_schedule(schedule)
    device = backend.default_device()
    backend.manual_seed(seed)
    generator = backend.generator(device)
    xp = backend.module_for(device)
    data = backend.to_device(make_data(dataset, n_train, seed, _TRAIN), device)

    model = build_denoiser(objective, hidden, depth, device)
    optimizer = optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    lr_schedule = optim.LRSchedule.warmup_cosine(
        optimizer, warmup_steps=max(1, steps // 20), total_steps=steps, min_ratio=0.02
    )
    ema = optim.EMA(model, decay=ema_decay)

    curve, pending = [], []
    start = time.perf_counter()
    bar = tqdm(range(steps), desc=f"train {objective}", unit="step", disable=not progress)
    for step in bar:
        x0 = data[generator.integers(0, n_train, size=batch)]
        if objective == "flow":
            loss = losses.flow_matching_loss(model, x0, generator=generator)
        else:
            loss = losses.diffusion_loss(
                model, noise_schedule, x0, target=objective, generator=generator
            )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update(model)
        lr_schedule.step()
        pending.append(loss.data)
        if len(pending) == log_every or step == steps - 1:
            curve.append(backend.to_numpy(xp.stack(pending)))
            pending = []
            bar.set_postfix(loss=f"{curve[-1].mean():.4f}")
    seconds = time.perf_counter() - start
    model.load_state_dict(ema.shadow)
    config = {
        "dataset": dataset,
        "objective": objective,
        "steps": steps,
        "batch": batch,
        "lr": lr,
        "schedule": noise_schedule.name,
        "T": len(noise_schedule),
        "seed": seed,
        "n_train": n_train,
        "hidden": hidden,
        "depth": depth,
        "ema_decay": ema_decay,
        "parameters": model.num_parameters(),
    }
    return Trained(model, objective, numpy.concatenate(curve), seconds, config)


# --- sampling ---------------------------------------------------------------------------------


class _Counted:
    """A model wrapper that counts its evaluations (each call is one batched evaluation)."""

    def __init__(self, model):
        self.model, self.calls = model, 0

    def __call__(self, x, t):
        self.calls += 1
        return self.model(x, t)


def sample(
    model,
    objective: str,
    method: str = "ddim",
    steps: int = 50,
    n: int = 2000,
    schedule: str | NoiseSchedule = "linear",
    seed: int = 0,
    return_trajectory: bool = False,
    progress: bool = False,
) -> dict:
    """Draw ``n`` points with ``method``: DDPM (``steps`` must be the schedule's T), DDIM
    (eta = 0, ``steps`` evenly spaced timesteps), or flow Euler. Diffusion methods need an
    ``eps`` or ``v`` model, ``flow`` a flow model.

    Returns a dict with ``samples`` (n, 2) float32 on the host, ``evaluations`` (model calls),
    ``seconds`` (wall time of sampling) and, when asked, ``trajectory`` (steps + 1, n, 2).
    """
    _check_objective(objective)
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if (method == "flow") != (objective == "flow"):
        raise ValueError(
            f"method {method!r} cannot sample a model trained with objective {objective!r}: "
            "ddpm and ddim need 'eps' or 'v', flow needs 'flow'"
        )
    noise_schedule = make_schedule(schedule)
    if method == "ddpm" and steps != len(noise_schedule):
        raise ValueError(
            f"DDPM walks every step of the chain: steps must be T = {len(noise_schedule)}, "
            f"got {steps} (use method='ddim' for fewer)"
        )
    device = backend.default_device()
    generator = backend.module_for(device).random.default_rng(seed)
    counted = _Counted(model)
    common = {
        "shape": (n, 2),
        "generator": generator,
        "device": device,
        "progress": progress,
        "return_trajectory": return_trajectory,
    }
    start = time.perf_counter()
    if method == "ddpm":
        out = samplers.ddpm_sample(counted, noise_schedule, parameterization=objective, **common)
    elif method == "ddim":
        out = samplers.ddim_sample(
            counted, noise_schedule, steps=steps, parameterization=objective, **common
        )
    else:
        out = samplers.flow_euler_sample(counted, steps=steps, **common)
    x, trajectory = out if return_trajectory else (out, None)
    points = backend.to_numpy(x)  # the host copy waits for the device to finish
    result = {
        "samples": points,
        "evaluations": counted.calls,
        "seconds": time.perf_counter() - start,
    }
    if return_trajectory:
        result["trajectory"] = numpy.stack([backend.to_numpy(frame) for frame in trajectory])
    return result


# --- evaluation -------------------------------------------------------------------------------


FINE_BANDWIDTH = 0.1  # about three times the swiss roll's thickness, a tenth of its arms' gap


def evaluate(
    samples,
    dataset: str = "swiss_roll",
    seed: int = 0,
    noise_seed: int = 1,
    fine_bandwidth: float = FINE_BANDWIDTH,
) -> dict:
    """Distances to held-out data of each point set in ``samples`` (a dict name -> (n, 2)
    array, or one array, named ``"samples"``), all of the same size n:

    * ``energy``: the energy distance, which sees the overall shape (where the mass is) but
      hardly notices a blur of the curve by a tenth of its scale;
    * ``mmd``: RBF-MMD^2 with the median-heuristic bandwidth (about the data's own scale);
    * ``mmd_fine``: RBF-MMD^2 with bandwidth ``fine_bandwidth``, which sees whether samples
      sit *on* the thin curve or in a haze around it.

    Two reference rows come with them, at the same n: ``floor`` (a second, independent
    held-out set: what a perfect model reaches up to sampling noise; these unbiased estimates
    scatter around 0 and can come out slightly negative) and ``ceiling`` (standard Gaussian
    noise, the sampler's starting point: what a model that learned nothing gets). The median
    bandwidth comes from the two held-out sets, so every ``mmd`` uses the same kernel.

    Returns {name: {"energy": ..., "mmd": ..., "mmd_fine": ...}} for the floor, the ceiling
    and every named set, and ``"settings"``: n and both bandwidths.
    """
    if not isinstance(samples, dict):
        samples = {"samples": samples}
    samples = {name: backend.to_numpy(points) for name, points in samples.items()}
    sizes = {points.shape[0] for points in samples.values()}
    if len(sizes) != 1:
        raise ValueError(f"every point set must have the same size, got sizes {sorted(sizes)}")
    (n,) = sizes
    held_out = make_data(dataset, n, seed, _HELD_OUT)
    references = {
        "floor": make_data(dataset, n, seed, _HELD_OUT_2),
        "ceiling": numpy.random.default_rng(noise_seed).standard_normal((n, 2)),
    }
    median = median_bandwidth(held_out, references["floor"])
    result = {
        name: {
            "energy": energy_distance(points, held_out),
            "mmd": mmd_rbf(points, held_out, median),
            "mmd_fine": mmd_rbf(points, held_out, fine_bandwidth),
        }
        for name, points in {**references, **samples}.items()
    }
    result["settings"] = {"n": n, "bandwidth": median, "fine_bandwidth": fine_bandwidth}
    return result


# --- the comparison and its figures -----------------------------------------------------------


def compare(
    dataset: str = "swiss_roll",
    out=None,
    steps: int = 8000,
    batch: int = 512,
    lr: float = 2e-3,
    n: int = 5000,
    ddim_steps: int = 50,
    flow_steps: int = 50,
    seed: int = 0,
    hidden: int = 128,
    depth: int = 4,
    progress: bool = True,
) -> dict:
    """Train an eps-prediction model and a flow-matching model (same network, same steps,
    batch and learning rate) on ``dataset``, then sample n points three ways:

    * DDPM, the ancestral chain, all T = 1000 steps of the eps model;
    * DDIM (eta = 0) on ``ddim_steps`` evenly spaced timesteps of the same eps model;
    * Euler integration of the flow model's velocity in ``flow_steps`` steps.

    Each is scored by :func:`evaluate` (energy distance, MMD^2 at two scales, beside the floor
    and the ceiling), with its number of model evaluations and its sampling wall time. With
    ``out``, writes ``results.md`` (the table), ``results.json``, ``samples.png``,
    ``losses.png``, ``field.png`` (the learned denoising field) and ``reverse.gif``.
    """
    common = {"steps": steps, "batch": batch, "lr": lr, "seed": seed, "hidden": hidden}
    eps_model = train(dataset, "eps", depth=depth, progress=progress, **common)
    flow_model = train(dataset, "flow", depth=depth, progress=progress, **common)
    noise_schedule = make_schedule("linear")
    runs = {
        "DDPM": sample(
            eps_model.model,
            "eps",
            "ddpm",
            len(noise_schedule),
            n,
            noise_schedule,
            seed,
            return_trajectory=out is not None,
            progress=progress,
        ),
        "DDIM": sample(
            eps_model.model, "eps", "ddim", ddim_steps, n, noise_schedule, seed, progress=progress
        ),
        "flow Euler": sample(
            flow_model.model, "flow", "flow", flow_steps, n, seed=seed, progress=progress
        ),
    }
    scores = evaluate({name: run["samples"] for name, run in runs.items()}, dataset, seed)
    rows = [
        {
            "sampler": name,
            "model": "flow" if name == "flow Euler" else "eps",
            "evaluations": run["evaluations"],
            "seconds": run["seconds"],
            **scores[name],
        }
        for name, run in runs.items()
    ]
    result = {
        "dataset": dataset,
        "rows": rows,
        "floor": scores["floor"],
        "ceiling": scores["ceiling"],
        "settings": scores["settings"],
        "training": {
            name: {
                **trained.config,
                "seconds": trained.seconds,
                "final_loss": _final_loss(trained.losses),
            }
            for name, trained in (("eps", eps_model), ("flow", flow_model))
        },
    }
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
        (out / "results.md").write_text(markdown_table(result))
        data = make_data(dataset, n, seed, _HELD_OUT)
        plot_samples(
            data, {name: run["samples"] for name, run in runs.items()}, rows, out / "samples.png"
        )
        plot_losses({"eps": eps_model.losses, "flow": flow_model.losses}, out / "losses.png")
        plot_field(eps_model.model, noise_schedule, data, out / "field.png")
        reverse_gif(runs["DDPM"]["trajectory"], noise_schedule, out / "reverse.gif")
    return result


def _final_loss(curve) -> float:
    """The mean loss over the last 2% of the steps (at least one): one step's loss is noisy."""
    return float(curve[-max(1, len(curve) // 50) :].mean())


def markdown_table(result: dict) -> str:
    """The comparison as a Markdown table: one row per sampler, then the floor and ceiling."""
    settings = result["settings"]
    lines = [
        f"Samplers on `{result['dataset']}`: {settings['n']} samples each against "
        f"{settings['n']} held-out points. Lower is better; `floor` is a second held-out set "
        "(sampling noise only), `ceiling` is standard Gaussian noise.",
        "",
        "| sampler | model | model evaluations | sampling time (s) | energy distance "
        f"| MMD² (h = {settings['bandwidth']:.2f}, median) "
        f"| MMD² (h = {settings['fine_bandwidth']:g}) |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]

    def scores(row):
        return f"{row['energy']:.5f} | {row['mmd']:.6f} | {row['mmd_fine']:.6f}"

    for row in result["rows"]:
        lines.append(
            f"| {row['sampler']} | {row['model']} | {row['evaluations']} "
            f"| {row['seconds']:.2f} | {scores(row)} |"
        )
    lines.append(f"| floor (held-out vs held-out) | | | | {scores(result['floor'])} |")
    lines.append(f"| ceiling (Gaussian noise) | | | | {scores(result['ceiling'])} |")
    eps, flow = result["training"]["eps"], result["training"]["flow"]
    lines += [
        "",
        f"Both models: the same {eps['parameters']}-parameter denoiser, {eps['steps']} steps of "
        f"batch {eps['batch']}, peak learning rate {eps['lr']:g}; training took "
        f"{eps['seconds']:.0f} s (eps, final loss {eps['final_loss']:.3f}) and "
        f"{flow['seconds']:.0f} s (flow, final loss {flow['final_loss']:.3f}).",
    ]
    return "\n".join(lines) + "\n"


# --- figures ----------------------------------------------------------------------------------

LIMITS = (-2.5, 2.5)  # every dataset, scaled to unit variance, fits in this square


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _scatter(ax, points, title: str, color: str = "C0", size: float = 1.0) -> None:
    ax.scatter(points[:, 0], points[:, 1], s=size, color=color, alpha=0.6, linewidths=0)
    ax.set(xlim=LIMITS, ylim=LIMITS, aspect="equal", xticks=[], yticks=[])
    ax.set_title(title, fontsize=9)


def plot_samples(data, samples: dict, rows: list, path) -> None:
    """Held-out data beside each sampler's points, titled with its energy distance, fine MMD,
    model evaluations and sampling time."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(samples) + 1, figsize=(3.2 * (len(samples) + 1), 3.7))
    _scatter(axes[0], data, "held-out data", color="0.3")
    for ax, row, (name, points) in zip(axes[1:], rows, samples.items()):
        title = (
            f"{name}: {row['evaluations']} evals, {row['seconds']:.1f} s\n"
            f"energy {row['energy']:.4f}, MMD² fine {row['mmd_fine']:.5f}"
        )
        _scatter(ax, points, title)
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def plot_losses(curves: dict, path, window: int = 100) -> None:
    """Training losses per step (faint) and their moving average over ``window`` steps."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(curves), figsize=(4.5 * len(curves), 3.2))
    for ax, (name, curve) in zip(numpy.atleast_1d(axes), curves.items()):
        width = min(window, len(curve))
        smooth = numpy.convolve(curve, numpy.ones(width) / width, mode="valid")
        ax.plot(curve, color="C0", alpha=0.25, linewidth=0.5)
        ax.plot(numpy.arange(width - 1, len(curve)), smooth, color="C0")
        ax.set(xlabel="step", ylabel="loss", title=f"{name} objective", yscale="log")
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def noise_level_step(schedule: NoiseSchedule, sigma: float) -> int:
    """The timestep whose noise level sqrt(1 - alpha_bar_t) is closest to ``sigma``."""
    return int(numpy.abs(schedule.sqrt_one_minus_alpha_bars - sigma).argmin())


@no_grad()
def denoising_field(model, schedule: NoiseSchedule, t: int, grid):
    """At the points x_t of ``grid`` (m, 2), the eps model's estimate of E[x_0 | x_t]:
    x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat(x_t, t)) / sqrt(alpha_bar_t)."""
    device = backend.default_device()
    x = backend.to_device(numpy.asarray(grid, dtype=numpy.float32), device)
    steps = backend.module_for(device).full((x.shape[0],), t, dtype=numpy.int64)
    eps = model(Tensor(x), steps).data
    return backend.to_numpy(x0_from_eps(schedule, x, steps, eps))


def plot_field(model, schedule: NoiseSchedule, data, path, sigmas=(0.2, 0.5)) -> None:
    """The learned field x0_hat(x_t) - x_t on a grid at two noise levels: from each grid point,
    an arrow towards where the model believes its clean version lies, coloured by how far that
    is. Near the data the arrows point back onto the curve, the 1-D manifold the 2-D points
    live on; at more noise they point to broader averages of it. Arrows longer than the grid
    spacing are drawn at that length, so that the far field stays readable."""
    plt = _pyplot()
    ticks = numpy.linspace(LIMITS[0] + 0.2, LIMITS[1] - 0.2, 25, dtype=numpy.float32)
    spacing = float(ticks[1] - ticks[0])
    gx, gy = numpy.meshgrid(ticks, ticks)
    grid = numpy.stack([gx.ravel(), gy.ravel()], 1)
    fig, axes = plt.subplots(1, len(sigmas), figsize=(4.8 * len(sigmas), 4.6))
    for ax, sigma in zip(numpy.atleast_1d(axes), sigmas):
        t = noise_level_step(schedule, sigma)
        arrows = denoising_field(model, schedule, t, grid) - grid
        length = numpy.linalg.norm(arrows, axis=1)
        drawn = (
            arrows * (numpy.minimum(length, 0.9 * spacing) / numpy.maximum(length, 1e-12))[:, None]
        )
        ax.scatter(data[:, 0], data[:, 1], s=0.5, color="0.55", linewidths=0)
        field = ax.quiver(
            grid[:, 0],
            grid[:, 1],
            drawn[:, 0],
            drawn[:, 1],
            length,
            cmap="plasma",
            angles="xy",
            scale_units="xy",
            scale=1.0,
            width=0.005,
        )
        fig.colorbar(field, ax=ax, shrink=0.8, label=r"$\|\hat x_0(x_t) - x_t\|$")
        ax.set(xlim=LIMITS, ylim=LIMITS, aspect="equal", xticks=[], yticks=[])
        ax.set_title(
            f"towards $\\hat x_0(x_t)$ at t = {t + 1}, "
            f"$\\sqrt{{1-\\bar\\alpha_t}}$ = {schedule.sqrt_one_minus_alpha_bars[t]:.2f}",
            fontsize=10,
        )
    fig.tight_layout()
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def gif_frames(schedule: NoiseSchedule, frames: int = 40) -> list[int]:
    """Indices into a DDPM trajectory (entry k is x after k reverse steps, at timestep T - k)
    whose noise levels sqrt(1 - alpha_bar) are evenly spaced from 1 to 0. Spacing by noise
    level rather than by step shows the change where it happens: late in the chain."""
    T = len(schedule)
    levels = numpy.linspace(1.0, 0.0, frames)
    steps = [T] + [noise_level_step(schedule, level) for level in levels[1:-1]] + [0]
    return sorted({T - step for step in steps})


def reverse_gif(trajectory, schedule: NoiseSchedule, path, frames: int = 40, points: int = 1500):
    """An animated GIF of the reverse process: ``points`` trajectories of the DDPM chain seen at
    about ``frames`` noise levels, the last frame held for two seconds."""
    import imageio.v3 as iio

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(3.2, 3.2), dpi=80)
    images = []
    T = len(schedule)
    for k in gif_frames(schedule, frames):
        ax.clear()
        _scatter(ax, trajectory[k, :points], f"DDPM reverse process, t = {T - k}", size=2.0)
        fig.canvas.draw()
        images.append(numpy.asarray(fig.canvas.buffer_rgba())[..., :3].copy())
    plt.close(fig)
    durations = [80] * (len(images) - 1) + [2000]  # milliseconds per frame
    iio.imwrite(path, numpy.stack(images), extension=".gif", duration=durations, loop=0)
