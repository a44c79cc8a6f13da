"""Samplers: DDPM's ancestral chain, DDIM (any subsequence, any eta) and its inversion,
classifier-free guidance, and the Euler sampler of flow matching.

A model is any callable ``model(x_t, t)`` returning its prediction (a tensor or an array) of
``eps``, ``x0`` or ``v`` (say which with ``parameterization``); ``x_t`` comes as a tensor,
``t`` as an integer array of shape (B,). Sampling runs under ``no_grad``, draws its noise from
the device's seeded generator (``md.manual_seed`` makes it repeat), and shows a progress bar.
"""

from __future__ import annotations

import math

import numpy
from tqdm import tqdm

from .. import backend
from ..autograd.tensor import Tensor, no_grad, unwrap
from .process import q_posterior, to_x0_and_eps
from .schedules import NoiseSchedule


def _predict(model, x, t):
    out = model(Tensor(x, dtype=x.dtype), t)
    return unwrap(out)


def _start(shape, x_T, device, dtype, generator):
    device = backend.check_device(device or backend.default_device())
    rng = generator or backend.generator(device)
    if x_T is None:
        x_T = rng.standard_normal(tuple(shape), dtype=dtype or backend.DEFAULT_FLOAT)
    x = unwrap(x_T)
    return backend.xp_of(x), rng, x.copy()


def classifier_free_guidance(eps_uncond, eps_cond, scale: float):
    """(eq-cfg): eps_u + w (eps_c - eps_u). w = 0 is unconditional, w = 1 conditional, w > 1
    extrapolates away from the unconditional prediction."""
    return eps_uncond + scale * (eps_cond - eps_uncond)


def guided(model, condition, null_condition, scale: float):
    """A model ``(x, t) -> prediction`` that applies classifier-free guidance to a conditional
    ``model(x, t, condition)``."""

    def guided_model(x, t):
        return classifier_free_guidance(model(x, t, null_condition), model(x, t, condition), scale)

    return guided_model


@no_grad()
def ddpm_sample(
    model,
    schedule: NoiseSchedule,
    shape,
    parameterization: str = "eps",
    variance: str = "small",
    x_T=None,
    clip_x0: float | None = None,
    device=None,
    dtype=None,
    generator=None,
    progress: bool = True,
    return_trajectory: bool = False,
):
    """Ancestral sampling (eq-ddpm-step): x_{t-1} = mu(x_t, x0_hat) + sigma_t z, with the
    posterior mean of the predicted x0, and sigma_t^2 = beta tilde_t (``variance="small"``) or
    beta_t (``"large"``; beta tilde_2 at the first step, as its log is otherwise -inf)."""
    if variance not in ("small", "large"):
        raise ValueError(f"variance must be 'small' or 'large', got {variance!r}")
    xp, rng, x = _start(shape, x_T, device, dtype, generator)
    trajectory = [x.copy()] if return_trajectory else None
    T = len(schedule)
    for step in tqdm(range(T - 1, -1, -1), desc="DDPM", disable=not progress, leave=False):
        t = xp.full((x.shape[0],), step, dtype=numpy.int64)
        x0, _ = to_x0_and_eps(schedule, x, t, _predict(model, x, t), parameterization)
        if clip_x0 is not None:
            x0 = xp.clip(x0, -clip_x0, clip_x0)
        mean, posterior_variance, _ = q_posterior(schedule, x0, x, t)
        if variance == "small":
            std = xp.sqrt(posterior_variance)
        else:
            # a Python float: a NumPy float64 scalar would turn float32 samples into float64
            std = math.sqrt(
                schedule.betas[step] if step > 0 else schedule.posterior_variance[min(1, T - 1)]
            )
        x = mean
        if step > 0:
            x = x + std * rng.standard_normal(x.shape, dtype=x.dtype)
        if return_trajectory:
            trajectory.append(x.copy())
    return (x, trajectory) if return_trajectory else x


def ddim_timesteps(num_timesteps: int, steps: int) -> numpy.ndarray:
    """``steps`` timesteps spread evenly over 0..T-1, ascending, the last one T-1."""
    if not 1 <= steps <= num_timesteps:
        raise ValueError(f"steps must be in [1, {num_timesteps}], got {steps}")
    return numpy.unique(numpy.linspace(0, num_timesteps - 1, steps).round().astype(numpy.int64))


def ddim_sigma(schedule: NoiseSchedule, t: int, s: int, eta: float) -> float:
    """(eq-ddim-sigma): sigma = eta sqrt((1 - a_s) / (1 - a_t)) sqrt(1 - a_t / a_s), a = alpha_bar,
    for a step from t down to s (s = -1 is the data, a_s = 1)."""
    if eta == 0:
        return 0.0
    a_t = schedule.alpha_bars[t]
    a_s = schedule.alpha_bars[s] if s >= 0 else 1.0
    return eta * math.sqrt((1.0 - a_s) / (1.0 - a_t) * (1.0 - a_t / a_s))


def ddim_step(schedule: NoiseSchedule, x0, eps, t: int, s: int, eta: float, noise=None):
    """(eq-ddim-step): x_s = sqrt(a_s) x0 + sqrt(1 - a_s - sigma^2) eps + sigma z."""
    a_s = schedule.alpha_bars[s] if s >= 0 else 1.0
    sigma = ddim_sigma(schedule, t, s, eta)
    x = math.sqrt(a_s) * x0 + math.sqrt(max(1.0 - a_s - sigma**2, 0.0)) * eps
    return x + sigma * noise if sigma > 0 and noise is not None else x


@no_grad()
def ddim_sample(
    model,
    schedule: NoiseSchedule,
    shape,
    steps: int = 50,
    eta: float = 0.0,
    timesteps=None,
    parameterization: str = "eps",
    x_T=None,
    clip_x0: float | None = None,
    known=None,
    known_mask=None,
    known_clean: bool = False,
    device=None,
    dtype=None,
    generator=None,
    progress: bool = True,
    return_trajectory: bool = False,
):
    """DDIM over a subsequence of timesteps (default: ``steps`` evenly spaced). eta = 0 is the
    deterministic sampler; eta = 1 on the full sequence is DDPM with beta tilde.

    Conditioning by replacement (eq-replacement): where ``known_mask`` is True, x_s is replaced
    after every step by a fresh sample of q(x_s | known) (the known data itself at the end), so
    the model fills in the rest consistently with it, e.g. the next frames of a clip. With
    ``known_clean`` the known entries are the known data itself at every step instead, for a
    network trained with masked frames (eq-masked-loss) that is told which entries are known."""
    seq = ddim_timesteps(len(schedule), steps) if timesteps is None else numpy.asarray(timesteps)
    xp, rng, x = _start(shape, x_T, device, dtype, generator)
    trajectory = [x.copy()] if return_trajectory else None
    pairs = list(zip(seq[::-1], [*seq[::-1][1:], -1]))
    if known is not None and known_clean:
        x = xp.where(known_mask, known, x)
    for t, s in tqdm(pairs, desc="DDIM", disable=not progress, leave=False):
        tt = xp.full((x.shape[0],), int(t), dtype=numpy.int64)
        x0, eps = to_x0_and_eps(schedule, x, tt, _predict(model, x, tt), parameterization)
        if clip_x0 is not None:
            x0 = xp.clip(x0, -clip_x0, clip_x0)
            a, s_ = float(schedule.sqrt_alpha_bars[t]), float(schedule.sqrt_one_minus_alpha_bars[t])
            eps = (x - a * x0) / s_
        noise = rng.standard_normal(x.shape, dtype=x.dtype) if eta > 0 and s >= 0 else None
        x = ddim_step(schedule, x0, eps, int(t), int(s), eta if s >= 0 else 0.0, noise)
        if known is not None:
            x = xp.where(known_mask, known if known_clean else _noised(schedule, known, s, rng), x)
        if return_trajectory:
            trajectory.append(x.copy())
    return (x, trajectory) if return_trajectory else x


def _noised(schedule: NoiseSchedule, x0, s, rng):
    """A sample of q(x_s | x0) (eq-closed-form); x0 itself for s = -1."""
    s = int(s)
    if s < 0:
        return x0
    noise = rng.standard_normal(x0.shape, dtype=x0.dtype)
    return math.sqrt(schedule.alpha_bars[s]) * x0 + math.sqrt(1.0 - schedule.alpha_bars[s]) * noise


@no_grad()
def ddim_invert(
    model,
    schedule: NoiseSchedule,
    x0,
    steps: int = 50,
    timesteps=None,
    parameterization: str = "eps",
    progress: bool = True,
):
    """Run deterministic DDIM forwards, from data to x_T (eq-ddim-step read upwards): at each
    step the model's noise estimate at the current point carries x to the next timestep."""
    seq = ddim_timesteps(len(schedule), steps) if timesteps is None else numpy.asarray(timesteps)
    x = unwrap(x0).copy()
    xp = backend.xp_of(x)
    current = -1
    for t in tqdm(seq, desc="DDIM inversion", disable=not progress, leave=False):
        at = int(t) if current < 0 else current
        tt = xp.full((x.shape[0],), at, dtype=numpy.int64)
        x0_hat, eps = to_x0_and_eps(schedule, x, tt, _predict(model, x, tt), parameterization)
        if current < 0:
            x0_hat = x  # at the data, x is x0 itself
        x = math.sqrt(schedule.alpha_bars[t]) * x0_hat + math.sqrt(1 - schedule.alpha_bars[t]) * eps
        current = int(t)
    return x


# --- flow matching (eq-flow-path) ---------------------------------------------------------------


def flow_interpolate(x0, noise, t):
    """The straight path x_t = (1 - t) x0 + t noise, t in [0, 1] (data at 0, noise at 1), and
    its velocity dx_t/dt = noise - x0 (the regression target), returned as (x_t, v)."""
    xp = backend.xp_of(unwrap(x0))
    t = xp.asarray(unwrap(t))
    t = t.reshape(t.shape + (1,) * (len(x0.shape) - t.ndim)).astype(x0.dtype)
    return (1.0 - t) * x0 + t * noise, noise - x0


@no_grad()
def flow_euler_sample(
    model,
    shape,
    steps: int = 50,
    x_T=None,
    device=None,
    dtype=None,
    generator=None,
    progress: bool = True,
    return_trajectory: bool = False,
):
    """Integrate dx/dt = v(x, t) from t = 1 (noise) to t = 0 with ``steps`` Euler steps
    (eq-flow-euler): x <- x - (1 / steps) v(x, t). ``model(x, t)`` gets float times (B,)."""
    xp, _, x = _start(shape, x_T, device, dtype, generator)
    trajectory = [x.copy()] if return_trajectory else None
    dt = 1.0 / steps
    for i in tqdm(range(steps), desc="flow Euler", disable=not progress, leave=False):
        t = xp.full((x.shape[0],), 1.0 - i * dt, dtype=x.dtype)
        x = x - dt * _predict(model, x, t)
        if return_trajectory:
            trajectory.append(x.copy())
    return (x, trajectory) if return_trajectory else x
