"""Training losses: the simple MSE on eps, x0 or v targets, min-SNR-gamma weighting, uniform
timestep sampling, and the flow-matching loss."""

from __future__ import annotations

import numpy

from .. import backend
from ..autograd.tensor import Tensor, unwrap
from .process import q_sample, v_from
from .samplers import flow_interpolate
from .schedules import NoiseSchedule


def sample_timesteps(batch: int, num_timesteps: int, device=None, generator=None):
    """t ~ Uniform{0, ..., T-1}, one per example, as an int64 array on ``device``."""
    device = backend.check_device(device or backend.default_device())
    rng = generator or backend.generator(device)
    return rng.integers(0, num_timesteps, size=batch, dtype=numpy.int64)


def min_snr_weight(schedule: NoiseSchedule, t, like, target: str = "eps", gamma: float = 5.0):
    """Min-SNR-gamma loss weights (eq-min-snr), as a per-example array shaped for ``like``:
    min(SNR, gamma) / SNR for eps, min(SNR, gamma) / (SNR + 1) for v, min(SNR, gamma) for x0.
    They cap the weight of the low-noise steps, whose x0-equivalent weight SNR explodes."""
    snr = schedule.at("snr", t, like)
    xp = backend.xp_of(snr)
    capped = xp.minimum(snr, gamma)
    if target == "eps":
        return xp.where(snr > 0, capped / xp.where(snr > 0, snr, 1.0), 1.0)
    if target == "v":
        return capped / (snr + 1.0)
    if target == "x0":
        return capped
    raise ValueError(f"target must be 'eps', 'x0' or 'v', got {target!r}")


def diffusion_loss(
    model,
    schedule: NoiseSchedule,
    x0,
    target: str = "eps",
    t=None,
    noise=None,
    min_snr_gamma: float | None = None,
    generator=None,
    known=None,
    frame_difference_weight: float = 0.0,
    whole_batch: int | None = None,
    whole_known=None,
) -> Tensor:
    """The simple loss (eq-simple-loss): E_{t, eps} || target - model(x_t, t) ||^2 with
    x_t = q_sample(x0, t, eps), averaged over entries, optionally min-SNR weighted per example.

    ``known`` (bool, shaped like the leading axes of ``x0``, e.g. (B, F) frames of a clip) makes
    it the masked loss (eq-masked-loss): known entries enter clean, x_t = x0 there, the model is
    told which (``model(x_t, t, known)``), and the error is averaged over the unknown entries
    only. ``frame_difference_weight`` lambda adds the frame-difference term (eq-motion-loss),
    lambda times the mean of (e_{f+1} - e_f)^2 for the error e along axis 1 (frames).

    ``whole_batch`` says that ``x0`` is a shard of a batch of that many examples spread over
    processes (:mod:`minidiff.distributed`), and ``whole_known`` that batch's known mask (with
    ``known``): each mean then divides this shard's sum by the whole batch's count of entries
    (eq-data-parallel), so that the shards' losses, and their gradients, add up to the whole
    batch's."""
    data = unwrap(x0)
    device = backend.device_of(data)
    rng = generator or backend.generator(device)
    if t is None:
        t = sample_timesteps(data.shape[0], len(schedule), device, rng)
    if noise is None:
        noise = rng.standard_normal(data.shape, dtype=data.dtype)
    x_t = q_sample(schedule, data, t, noise)
    wanted = {
        "eps": lambda: noise,
        "x0": lambda: data,
        "v": lambda: v_from(schedule, data, t, noise),
    }
    if target not in wanted:
        raise ValueError(f"target must be 'eps', 'x0' or 'v', got {target!r}")
    if known is None:
        error = model(Tensor(x_t, dtype=x_t.dtype), t) - wanted[target]()
        unknown = None
    else:
        xp = backend.xp_of(data)
        known = xp.asarray(known, dtype=bool)
        if known.shape != data.shape[: known.ndim]:
            raise ValueError(
                f"known mask of shape {known.shape} does not match the leading axes of x0 "
                f"{data.shape}"
            )
        spread = known.reshape(known.shape + (1,) * (data.ndim - known.ndim))
        x_t = xp.where(spread, data, x_t)
        unknown = _unknown(known, data)
        error = (model(Tensor(x_t, dtype=x_t.dtype), t, known) - wanted[target]()) * unknown
    whole_unknown = _whole_unknown(whole_batch, whole_known, known, data)
    weight = None
    if min_snr_gamma is not None:
        weight = min_snr_weight(schedule, t, data, target, min_snr_gamma)
    total = _whole_count(whole_unknown, whole_batch, data.shape)
    loss = _weighted_mean(error * error, weight, unknown, total)
    if frame_difference_weight:
        if data.ndim < 3:
            raise ValueError(f"frame differences need clips (B, F, ...), got x0 of {data.shape}")
        change = error[:, 1:] - error[:, :-1]
        moved = None if unknown is None else _moved(unknown)
        whole_moved = None if whole_unknown is None else _moved(whole_unknown)
        total = _whole_count(whole_moved, whole_batch, change.shape)
        loss = loss + frame_difference_weight * _weighted_mean(
            change * change, weight, moved, total
        )
    return loss


def _unknown(known, data):
    """1 where an entry of ``data`` is not known (``known`` spread over the trailing axes)."""
    spread = known.reshape(known.shape + (1,) * (data.ndim - known.ndim))
    return (~spread).astype(data.dtype)


def _moved(unknown):
    """1 where a frame difference e_{f+1} - e_f involves an unknown frame."""
    return unknown[:, 1:] + unknown[:, :-1] - unknown[:, 1:] * unknown[:, :-1]


def _whole_unknown(whole_batch, whole_known, known, data):
    """The whole batch's :func:`_unknown` mask when ``data`` is a shard with a known mask."""
    if whole_batch is None or known is None:
        return None
    if whole_known is None:
        raise ValueError("a shard with a known mask needs the whole batch's (whole_known)")
    whole_known = backend.xp_of(data).asarray(whole_known, dtype=bool)
    if whole_known.shape != (whole_batch, *known.shape[1:]):
        raise ValueError(
            f"whole_known of shape {whole_known.shape} is not the known mask of a batch of "
            f"{whole_batch} shaped like this shard's {known.shape}"
        )
    return _unknown(whole_known, data)


def _whole_count(counted, whole_batch, shape):
    """How many entries the whole batch (``whole_batch`` examples of ``shape[1:]``) counts:
    all, or those where ``counted`` (the whole batch's 0/1 mask) is 1, and at least 1; None
    for no shard."""
    if whole_batch is None:
        return None
    whole = (whole_batch, *shape[1:])
    if counted is None:
        return float(numpy.prod(whole))
    xp = backend.xp_of(counted)
    return xp.maximum(xp.broadcast_to(counted, whole).sum(), 1.0)


def _weighted_mean(squared: Tensor, weight, counted, total=None) -> Tensor:
    """Mean of ``squared`` times the per-example ``weight``, over the entries where ``counted``
    (a 0/1 array; all entries when None); with ``total`` the sum divided by that count instead
    (the whole batch's, for a shard of it)."""
    if weight is not None:
        squared = squared * weight
    if total is not None:
        return squared.sum() / total
    if counted is None:
        return squared.mean()
    xp = backend.xp_of(counted)
    total = xp.broadcast_to(counted, squared.shape).sum()
    return squared.sum() / xp.maximum(total, 1.0)


def flow_matching_loss(model, x0, t=None, noise=None, generator=None) -> Tensor:
    """(eq-flow-loss): E_{t ~ U[0,1], z} || (z - x0) - model(x_t, t) ||^2,
    with x_t = (1 - t) x0 + t z."""
    data = unwrap(x0)
    rng = generator or backend.generator(backend.device_of(data))
    if t is None:
        t = rng.random(data.shape[0], dtype=data.dtype)
    if noise is None:
        noise = rng.standard_normal(data.shape, dtype=data.dtype)
    x_t, velocity = flow_interpolate(data, noise, t)
    error = model(Tensor(x_t, dtype=x_t.dtype), t) - velocity
    return (error * error).mean()
