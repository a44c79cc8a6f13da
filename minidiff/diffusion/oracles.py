"""Exact denoisers for Gaussian-mixture data, to verify samplers without training anything.

For data x0 ~ sum_k pi_k N(mu_k, sigma_k^2 I) and x_t = a x0 + s z (a = sqrt(alpha_bar_t),
s = sqrt(1 - alpha_bar_t) for diffusion; a = 1 - t, s = t on the flow-matching path), x_t is
again a mixture, sum_k pi_k N(a mu_k, v_k I) with v_k = a^2 sigma_k^2 + s^2, and per component
(x_t, z) and (x_t, x0) are jointly Gaussian. Conditioning (eq-mixture-oracle):

    E[z | x_t]  = sum_k r_k(x_t) s (x_t - a mu_k) / v_k,
    E[x0 | x_t] = sum_k r_k(x_t) (mu_k + a sigma_k^2 (x_t - a mu_k) / v_k),

with r_k the posterior responsibilities. These are the minimizers of the eps- and x0-MSE
losses, so a sampler driven by them must reproduce the data distribution.
"""

from __future__ import annotations

import numpy

from .. import backend
from ..autograd.tensor import unwrap
from ..kernels.plain import stable_shift
from .schedules import NoiseSchedule


class GaussianMixture:
    """An isotropic Gaussian mixture in ``dim`` dimensions (host NumPy, float64)."""

    def __init__(self, weights, means, stds):
        self.weights = numpy.asarray(weights, dtype=numpy.float64)
        self.weights = self.weights / self.weights.sum()
        self.means = numpy.atleast_2d(numpy.asarray(means, dtype=numpy.float64))
        if self.means.shape[0] != self.weights.size:
            self.means = self.means.T
        self.stds = numpy.asarray(stds, dtype=numpy.float64)

    def sample(self, n: int, rng: numpy.random.Generator) -> numpy.ndarray:
        k = rng.choice(self.weights.size, size=n, p=self.weights)
        return self.means[k] + self.stds[k, None] * rng.standard_normal((n, self.means.shape[1]))

    def _posterior(self, x, a, s):
        """Responsibilities r (n, K), and per component x - a mu (n, K, d) and v (n, K, 1)."""
        xp = backend.xp_of(x)
        means, stds = xp.asarray(self.means, dtype=x.dtype), xp.asarray(self.stds, dtype=x.dtype)
        a, s = a[:, None, None], s[:, None, None]
        v = a**2 * stds[None, :, None] ** 2 + s**2
        centered = x[:, None, :] - a * means[None]
        d = x.shape[1]
        log_weights = xp.log(xp.asarray(self.weights, dtype=x.dtype))
        log_p = (
            log_weights[None]
            - 0.5 * d * xp.log(v[..., 0])
            - 0.5 * (centered**2).sum(-1) / v[..., 0]
        )
        log_p -= stable_shift(log_p, (1,))
        r = xp.exp(log_p)
        return r / r.sum(axis=1, keepdims=True), centered, v

    def expected_noise(self, x, a, s):
        """E[z | x_t = x] for x_t = a x0 + s z; ``a`` and ``s`` of shape (n,)."""
        r, centered, v = self._posterior(x, a, s)
        return (r[..., None] * s[:, None, None] * centered / v).sum(axis=1)

    def expected_data(self, x, a, s):
        """E[x0 | x_t = x] for x_t = a x0 + s z."""
        r, centered, v = self._posterior(x, a, s)
        xp = backend.xp_of(x)
        stds2 = xp.asarray(self.stds, dtype=x.dtype)[None, :, None] ** 2
        means = xp.asarray(self.means, dtype=x.dtype)
        component = means[None] + a[:, None, None] * stds2 * centered / v
        return (r[..., None] * component).sum(axis=1)

    def eps_model(self, schedule: NoiseSchedule):
        """The exact eps-prediction model for ``schedule``: (x_t, t) -> E[eps | x_t]."""

        def model(x, t):
            x = unwrap(x)
            a = schedule.at("sqrt_alpha_bars", t, x)[:, 0]
            s = schedule.at("sqrt_one_minus_alpha_bars", t, x)[:, 0]
            return self.expected_noise(x, a, s)

        return model

    def velocity_model(self):
        """The exact flow-matching velocity: (x_t, t) -> E[z - x0 | x_t], x_t = (1-t) x0 + t z."""

        def model(x, t):
            x = unwrap(x)
            t = backend.xp_of(x).asarray(t, dtype=x.dtype)
            return self.expected_noise(x, 1.0 - t, t) - self.expected_data(x, 1.0 - t, t)

        return model
