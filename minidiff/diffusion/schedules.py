"""Noise schedules: the variances beta_1..beta_T of the forward chain and everything derived
from them, computed once in float64 on the host.

Timesteps are 0-indexed in code: array index ``t`` = 0..T-1 holds the book's step t + 1, so
``alpha_bars[t]`` is the book's bar-alpha_{t+1} and ``alpha_bars_prev[t]`` is bar-alpha_t
(with bar-alpha_0 = 1).

* ``linear(T)``: beta linear from 1e-4 to 0.02 (DDPM), optionally scaled by 1000 / T;
* ``cosine(T)``: bar-alpha(t) = f(t) / f(0), f(t) = cos^2(((t/T + s) / (1 + s)) pi/2)
  (eq-cosine-schedule), betas clipped at ``max_beta``;
* ``sigmoid(T)``: bar-alpha(t) follows a shifted, scaled sigmoid in t;
* ``rescale_zero_terminal_snr``: shift and scale sqrt(bar-alpha) so that the last step is pure
  noise (bar-alpha_T = 0) while the first step is unchanged (eq-zero-terminal-snr).
"""

from __future__ import annotations

import math

import numpy

from .. import backend
from ..autograd.tensor import unwrap

_COEFFICIENTS = (
    "betas alphas alpha_bars alpha_bars_prev sqrt_alpha_bars sqrt_one_minus_alpha_bars snr "
    "log_snr posterior_variance posterior_log_variance_clipped posterior_mean_coef1 "
    "posterior_mean_coef2"
).split()


class NoiseSchedule:
    """Every schedule-derived coefficient, in float64 on the host (book chapter 6).

    * alphas = 1 - betas; alpha_bars = cumulative product of alphas (eq-closed-form);
    * snr = alpha_bar / (1 - alpha_bar), log_snr its logarithm (-inf at zero terminal SNR);
    * posterior q(x_{t-1} | x_t, x_0) = N(coef1 x_0 + coef2 x_t, beta tilde) (eq-posterior):
      beta tilde = beta_t (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t),
      coef1 = beta_t sqrt(alpha_bar_{t-1}) / (1 - alpha_bar_t),
      coef2 = (1 - alpha_bar_{t-1}) sqrt(alpha_t) / (1 - alpha_bar_t).

    ``schedule.at("alpha_bars", t, like=x)`` gathers a coefficient at a batch of timesteps,
    shaped (B, 1, ..., 1) to broadcast against ``x``, in ``x``'s dtype and on its device.
    """

    def __init__(self, betas, name: str = "custom"):
        betas = numpy.asarray(betas, dtype=numpy.float64)
        if betas.ndim != 1 or betas.size == 0:
            raise ValueError(f"betas must be a non-empty 1-D array, got shape {betas.shape}")
        if not ((betas > 0) & (betas <= 1)).all():
            raise ValueError("every beta must lie in (0, 1]")
        self.name = name
        self.num_timesteps = betas.size
        self.betas = betas
        self.alphas = 1.0 - betas
        self.alpha_bars = numpy.cumprod(self.alphas)
        self.alpha_bars_prev = numpy.concatenate([[1.0], self.alpha_bars[:-1]])
        self.sqrt_alpha_bars = numpy.sqrt(self.alpha_bars)
        self.sqrt_one_minus_alpha_bars = numpy.sqrt(1.0 - self.alpha_bars)
        with numpy.errstate(divide="ignore"):
            self.snr = self.alpha_bars / (1.0 - self.alpha_bars)
            self.log_snr = numpy.log(self.snr)
        one_minus = 1.0 - self.alpha_bars
        self.posterior_variance = betas * (1.0 - self.alpha_bars_prev) / one_minus
        # beta tilde is 0 at the first step; its log is clipped to the next value (as DDPM does)
        first = self.posterior_variance[1] if betas.size > 1 else self.betas[0]
        self.posterior_log_variance_clipped = numpy.log(
            numpy.concatenate([[first], self.posterior_variance[1:]])
        )
        self.posterior_mean_coef1 = betas * numpy.sqrt(self.alpha_bars_prev) / one_minus
        self.posterior_mean_coef2 = (
            (1.0 - self.alpha_bars_prev) * numpy.sqrt(self.alphas) / one_minus
        )
        self._cache: dict = {}

    def __len__(self) -> int:
        return self.num_timesteps

    def __repr__(self) -> str:
        return (
            f"NoiseSchedule({self.name}, T={self.num_timesteps}, "
            f"alpha_bar_T={self.alpha_bars[-1]:.3g})"
        )

    def at(self, name: str, t, like):
        """Coefficient ``name`` at integer timesteps ``t`` (shape (B,)), as an array shaped
        (B, 1, ..., 1) for ``like`` (array or tensor), in its float dtype and on its device."""
        if name not in _COEFFICIENTS:
            raise KeyError(f"unknown schedule coefficient {name!r}; known: {_COEFFICIENTS}")
        data = unwrap(like)
        dtype = data.dtype if numpy.dtype(data.dtype).kind == "f" else backend.DEFAULT_FLOAT
        device = backend.device_of(data)
        key = (name, device, numpy.dtype(dtype).str)
        if key not in self._cache:  # one device copy per coefficient: no host sync per step
            self._cache[key] = backend.to_device(getattr(self, name).astype(dtype), device)
        t = unwrap(t)
        xp = backend.xp_of(self._cache[key])
        t = xp.asarray(t)
        if t.dtype.kind not in "iu":
            raise TypeError(f"timesteps must be integers, got dtype {t.dtype}")
        values = self._cache[key][t]
        return values.reshape(t.shape + (1,) * (data.ndim - t.ndim))


def linear(
    T: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02, scale_to_T: bool = False
) -> NoiseSchedule:
    """DDPM's linear betas. With ``scale_to_T``, both ends are multiplied by 1000 / T so that a
    shorter chain still ends near pure noise."""
    if scale_to_T:
        beta_start, beta_end = beta_start * 1000 / T, beta_end * 1000 / T
    if not 0 < beta_start <= beta_end < 1:
        raise ValueError(
            f"linear schedule needs 0 < beta_start <= beta_end < 1, got "
            f"{beta_start:g} .. {beta_end:g} (T={T}, scale_to_T={scale_to_T})"
        )
    return NoiseSchedule(
        numpy.linspace(beta_start, beta_end, T, dtype=numpy.float64), name="linear"
    )


def _betas_from_alpha_bar(alpha_bar, T: int, max_beta: float) -> numpy.ndarray:
    """beta_t = min(1 - alpha_bar(t/T) / alpha_bar((t-1)/T), max_beta) for t = 1..T."""
    grid = numpy.array([alpha_bar(i / T) for i in range(T + 1)], dtype=numpy.float64)
    return numpy.minimum(1.0 - grid[1:] / grid[:-1], max_beta)


def cosine(T: int = 1000, s: float = 0.008, max_beta: float = 0.999) -> NoiseSchedule:
    """Nichol & Dhariwal's cosine schedule (eq-cosine-schedule), betas clipped at max_beta."""

    def f(u):
        return math.cos((u + s) / (1 + s) * math.pi / 2) ** 2

    return NoiseSchedule(_betas_from_alpha_bar(lambda u: f(u) / f(0.0), T, max_beta), name="cosine")


def sigmoid(
    T: int = 1000, start: float = -3.0, end: float = 3.0, tau: float = 1.0, max_beta: float = 0.999
) -> NoiseSchedule:
    """alpha_bar(u) = (sigma(end/tau) - sigma((start + u (end - start)) / tau))
    / (sigma(end/tau) - sigma(start/tau)), u in [0, 1]: flat at both ends, steep in between."""

    def sig(z):
        return 1.0 / (1.0 + math.exp(-z))

    low, high = sig(start / tau), sig(end / tau)
    alpha_bar = lambda u: (high - sig((start + u * (end - start)) / tau)) / (high - low)  # noqa: E731
    return NoiseSchedule(_betas_from_alpha_bar(alpha_bar, T, max_beta), name="sigmoid")


def rescale_zero_terminal_snr(schedule: NoiseSchedule) -> NoiseSchedule:
    """Lin et al.'s fix (eq-zero-terminal-snr): with r = sqrt(alpha_bar),
    r' = (r - r_T) r_1 / (r_1 - r_T), so r'_T = 0 (the last step is pure noise) and r'_1 = r_1."""
    root = schedule.sqrt_alpha_bars
    first, last = root[0], root[-1]
    rescaled = (root - last) * first / (first - last)
    alpha_bars = rescaled**2
    alphas = numpy.concatenate([alpha_bars[:1], alpha_bars[1:] / alpha_bars[:-1]])
    return NoiseSchedule(1.0 - alphas, name=f"{schedule.name}+zero-terminal-snr")


def comparison_figure(schedules: dict):
    """A figure comparing schedules: alpha_bar, log SNR and beta against t / T."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4), dpi=100)
    for label, schedule in schedules.items():
        u = numpy.arange(1, len(schedule) + 1) / len(schedule)
        axes[0].plot(u, schedule.alpha_bars, label=label)
        axes[1].plot(u, schedule.log_snr, label=label)
        axes[2].semilogy(u, schedule.betas, label=label)
    axes[0].set(xlabel="t / T", title=r"$\bar\alpha_t$")
    axes[1].set(xlabel="t / T", title=r"$\log \mathrm{SNR}_t$")
    axes[2].set(xlabel="t / T", title=r"$\beta_t$")
    axes[0].legend()
    fig.tight_layout()
    return fig
