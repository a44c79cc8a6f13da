"""The forward chain, its closed form, the posterior, and the three parameterizations.

Every function takes the schedule first and works on arrays or tensors alike (the coefficients
come from ``schedule.at``, on the data's device and in its dtype). ``t`` is a batch of integer
timesteps, one per leading entry of the data.
"""

from __future__ import annotations

import math

from .. import backend
from ..autograd.tensor import Tensor, unwrap
from .schedules import NoiseSchedule


def q_step(schedule: NoiseSchedule, x_prev, t, noise):
    """One Markov step (eq-forward-step): x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) noise,
    a sample of q(x_t | x_{t-1}) = N(sqrt(1 - beta_t) x_{t-1}, beta_t I)."""
    beta = schedule.at("betas", t, x_prev)
    xp = backend.xp_of(beta)
    return xp.sqrt(1.0 - beta) * x_prev + xp.sqrt(beta) * noise


def q_sample(schedule: NoiseSchedule, x0, t, noise):
    """The closed form (eq-closed-form): x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps,
    a sample of q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I)."""
    return (
        schedule.at("sqrt_alpha_bars", t, x0) * x0
        + schedule.at("sqrt_one_minus_alpha_bars", t, x0) * noise
    )


def q_posterior(schedule: NoiseSchedule, x0, x_t, t):
    """Mean, variance and clipped log-variance of q(x_{t-1} | x_t, x_0) (eq-posterior):
    mean = coef1 x_0 + coef2 x_t, variance = beta tilde_t."""
    mean = (
        schedule.at("posterior_mean_coef1", t, x_t) * x0
        + schedule.at("posterior_mean_coef2", t, x_t) * x_t
    )
    return (
        mean,
        schedule.at("posterior_variance", t, x_t),
        schedule.at("posterior_log_variance_clipped", t, x_t),
    )


# --- parameterizations (eq-parameterizations) -------------------------------------------------
# With a = sqrt(alpha_bar_t) and s = sqrt(1 - alpha_bar_t), so that a^2 + s^2 = 1:
#   x_t = a x0 + s eps,   v = a eps - s x0,   x0 = a x_t - s v,   eps = s x_t + a v.


def x0_from_eps(schedule: NoiseSchedule, x_t, t, eps):
    """x0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar) (undefined where alpha_bar = 0)."""
    return (x_t - schedule.at("sqrt_one_minus_alpha_bars", t, x_t) * eps) / schedule.at(
        "sqrt_alpha_bars", t, x_t
    )


def eps_from_x0(schedule: NoiseSchedule, x_t, t, x0):
    """eps = (x_t - sqrt(alpha_bar) x0) / sqrt(1 - alpha_bar)."""
    return (x_t - schedule.at("sqrt_alpha_bars", t, x_t) * x0) / schedule.at(
        "sqrt_one_minus_alpha_bars", t, x_t
    )


def v_from(schedule: NoiseSchedule, x0, t, eps):
    """The velocity v = sqrt(alpha_bar) eps - sqrt(1 - alpha_bar) x0."""
    return (
        schedule.at("sqrt_alpha_bars", t, x0) * eps
        - schedule.at("sqrt_one_minus_alpha_bars", t, x0) * x0
    )


def x0_from_v(schedule: NoiseSchedule, x_t, t, v):
    """x0 = sqrt(alpha_bar) x_t - sqrt(1 - alpha_bar) v (defined at every t, zero SNR too)."""
    return (
        schedule.at("sqrt_alpha_bars", t, x_t) * x_t
        - schedule.at("sqrt_one_minus_alpha_bars", t, x_t) * v
    )


def eps_from_v(schedule: NoiseSchedule, x_t, t, v):
    """eps = sqrt(1 - alpha_bar) x_t + sqrt(alpha_bar) v."""
    return (
        schedule.at("sqrt_one_minus_alpha_bars", t, x_t) * x_t
        + schedule.at("sqrt_alpha_bars", t, x_t) * v
    )


def to_x0_and_eps(schedule: NoiseSchedule, x_t, t, prediction, parameterization: str):
    """Both x0 and eps from a model's prediction of ``eps``, ``x0`` or ``v``."""
    if parameterization == "eps":
        return x0_from_eps(schedule, x_t, t, prediction), prediction
    if parameterization == "x0":
        return prediction, eps_from_x0(schedule, x_t, t, prediction)
    if parameterization == "v":
        return x0_from_v(schedule, x_t, t, prediction), eps_from_v(schedule, x_t, t, prediction)
    raise ValueError(f"parameterization must be 'eps', 'x0' or 'v', got {parameterization!r}")


def posterior_mean_from_eps(schedule: NoiseSchedule, x_t, t, eps):
    """(eq-posterior-mean-eps): mu = (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_t),
    the posterior mean with x0 written through eps."""
    beta = schedule.at("betas", t, x_t)
    return (x_t - beta / schedule.at("sqrt_one_minus_alpha_bars", t, x_t) * eps) / backend.xp_of(
        beta
    ).sqrt(schedule.at("alphas", t, x_t))


# --- KL divergences and the variational bound (eq-gaussian-kl, eq-vlb) ------------------------


def _exp(x):
    return x.exp() if isinstance(x, Tensor) else backend.xp_of(x).exp(x)


def gaussian_kl(mean1, log_var1, mean2, log_var2):
    """KL(N(mean1, e^log_var1) || N(mean2, e^log_var2)) per entry (eq-gaussian-kl):
    0.5 (log_var2 - log_var1 + (e^log_var1 + (mean1 - mean2)^2) / e^log_var2 - 1)."""
    return 0.5 * (
        log_var2 - log_var1 - 1.0 + (_exp(log_var1) + (mean1 - mean2) ** 2) * _exp(-log_var2)
    )


def prior_kl(schedule: NoiseSchedule, x0):
    """L_T = KL(q(x_T | x_0) || N(0, I)) per entry: what the last step leaves of the data."""
    xp = backend.xp_of(unwrap(x0))
    last = xp.full((x0.shape[0],), len(schedule) - 1)
    mean = schedule.at("sqrt_alpha_bars", last, x0) * x0
    log_var = xp.log(schedule.at("sqrt_one_minus_alpha_bars", last, x0) ** 2)
    return gaussian_kl(mean, log_var, 0.0 * mean, 0.0 * log_var)


def vlb_term(schedule: NoiseSchedule, x0, x_t, t, model_mean, model_log_variance):
    """L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) in nats per entry (eq-vlb),
    where t > 0; at t = 0 the decoder term -log N(x_0; model_mean, e^model_log_variance)."""
    true_mean, _, true_log_var = q_posterior(schedule, x0, x_t, t)
    kl = gaussian_kl(true_mean, true_log_var, model_mean, model_log_variance)
    nll = 0.5 * (
        math.log(2 * math.pi)
        + model_log_variance
        + (x0 - model_mean) ** 2 * _exp(-model_log_variance)
    )
    xp = backend.xp_of(true_log_var)
    t = xp.asarray(unwrap(t))
    first = (
        (t == 0).astype(true_log_var.dtype).reshape(t.shape + (1,) * (true_log_var.ndim - t.ndim))
    )
    return first * nll + (1.0 - first) * kl
