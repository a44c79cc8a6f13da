"""The checks of exercises 7.3 and 7.4 (chapter 7, the variational bound).

The notebook ``exercises/src/ex07_reverse.md`` asks for the KL divergence of two diagonal
Gaussians per example (:func:`check_gaussian_kl`, eq-gaussian-kl), then for the terms of the
bound (:func:`check_vlb`, eq-vlb): the prior term L_T and the step terms L_{t-1}, the decoder
L_0 at the first step. Neither check compares with a formula for the answer:

* the KL is checked against its definition, the expectation under the first Gaussian of the
  difference of the two log-densities, computed by Gauss-Hermite quadrature (exact for that
  quadratic), and it must vanish when the two Gaussians are equal;
* the bound is assembled from the student's terms for Gaussian data x0 ~ N(mu, s^2) and a
  linear Gaussian reverse model, the expectation over x_t by quadrature (again exact), and
  compared with two facts derived independently: it is at least the model's exact negative
  log-likelihood -log p(x0), computed by running the model's chain forward from N(0, 1); and
  when the model is the exact reverse chain of the data, L = -log q(x0) + E_{q(x_T | x0)}
  log(q(x_T) / N(x_T; 0, 1)), which is exactly -log q(x0) when the schedule ends at zero SNR.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import strategies as st

from .. import backend
from . import strategies as S
from .compare import compare, float64_result, show
from .diffusion_cases import SCHEDULES, built_schedule
from .grading import DEFAULT_EXAMPLES, Mismatch, grade

EQUATIONS = {
    "eq-gaussian-kl": "KL(N(m1, v1) || N(m2, v2)) = E_{x ~ N(m1, v1)}[log N(x; m1, v1) - "
    "log N(x; m2, v2)] per entry, added over the entries of an example; it is 0 when the two "
    "Gaussians are equal",
    "eq-vlb": "L = L_T + sum over t of E_{x_t ~ q(x_t | x0)} L_{t-1}, with L_T = KL(q(x_T | x0) "
    "|| N(0, I)), L_{t-1} = KL(q(x_{t-1} | x_t, x0) || p(x_{t-1} | x_t)) and L_0 = -log p(x0 | "
    "x_1); L >= -log p(x0) for every model, and for the exact reverse chain L = -log q(x0) + "
    "E_{q(x_T | x0)} log(q(x_T) / N(x_T; 0, I))",
}

HINTS = {
    "7.3": [
        "Work per entry first: write log N(x; m, v) out, subtract, and take the expectation "
        "under x ~ N(m1, v1) using E(x - m1)^2 = v1 and E(x - m2)^2 = v1 + (m1 - m2)^2.",
        "The inputs are log-variances: v = exp(log_var), and log(v2 / v1) = log_var2 - log_var1.",
        "Entries of a diagonal Gaussian are independent, so their KLs add: sum the per-entry "
        "KL over every axis but the first (the batch).",
    ],
    "7.4": [
        "L_T compares q(x_T | x0) = N(sqrt(alpha_bar_T) x0, 1 - alpha_bar_T) with N(0, 1): one "
        "call of your gaussian_kl, with alpha_bar_T the last entry of the cumulative product.",
        "For t > 0 in code the term is your gaussian_kl between the posterior of 7.1 and the "
        "model's Gaussian; at t = 0 the posterior is a point, so the term is the decoder's "
        "negative log-density of x0 instead.",
        "The decoder term per entry is 0.5 (log(2 pi) + log_var + (x0 - mean)^2 / exp(log_var)), "
        "summed over the entries; choose between the two with xp.where on t == 0 (the posterior's "
        "log-variance is -inf there, and where keeps it out).",
    ],
}

LIBRARY = {
    "7.3": ("minidiff.diffusion.process.gaussian_kl",),
    "7.4": (
        "minidiff.diffusion.process.vlb_term",
        "minidiff.diffusion.process.prior_kl",
        "minidiff.diffusion.process.gaussian_kl",
    ),
}

# Probabilists' Gauss-Hermite rule: E f(z), z ~ N(0, 1), exactly for polynomials of degree < 10.
_NODES, _WEIGHTS = numpy.polynomial.hermite_e.hermegauss(5)
_WEIGHTS = _WEIGHTS / _WEIGHTS.sum()


def _log_normal(x, mean, var):
    return -0.5 * (numpy.log(2 * math.pi * var) + (x - mean) ** 2 / var)


# ============================================================================================
# exercise 7.3: the KL divergence of two Gaussians, per example
# ============================================================================================


@dataclass(frozen=True)
class _KLCase:
    mean1: numpy.ndarray
    log_var1: numpy.ndarray
    mean2: numpy.ndarray
    log_var2: numpy.ndarray


@st.composite
def _kl_cases(draw):
    batch = draw(st.integers(1, 3))
    rest = draw(S.shapes(max_dims=2, min_side=1, max_side=3))
    shape = (batch, *rest)
    variance_shape = (batch,) + (1,) * len(rest) if draw(st.booleans()) else shape
    return _KLCase(
        draw(S.arrays(shape, -2.0, 2.0)),
        draw(S.arrays(variance_shape, -3.0, 2.0)),
        draw(S.arrays(shape, -2.0, 2.0)),
        draw(S.arrays(variance_shape, -3.0, 2.0)),
    )


def _describe_kl(case: _KLCase) -> str:
    return "\n".join(
        f"{name} = {show(getattr(case, name))}"
        for name in ("mean1", "log_var1", "mean2", "log_var2")
    )


def _kl_by_quadrature(m1, log_v1, m2, log_v2) -> numpy.ndarray:
    """E_{x ~ N(m1, v1)}[log N(x; m1, v1) - log N(x; m2, v2)], summed per example."""
    v1, v2 = numpy.exp(log_v1), numpy.exp(log_v2)
    x = m1[..., None] + numpy.sqrt(v1)[..., None] * _NODES
    ratio = _log_normal(x, m1[..., None], v1[..., None]) - _log_normal(
        x, m2[..., None], v2[..., None]
    )
    per_entry = ratio @ _WEIGHTS
    return per_entry.reshape(per_entry.shape[0], -1).sum(axis=1)


def check_gaussian_kl(fn: Callable, exercise: str = "7.3", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(mean1, log_var1, mean2, log_var2)`` returns KL(N(mean1, e^log_var1) || N(mean2,
    e^log_var2)) per example, shape (B,), the entries of an example added (eq-gaussian-kl).

    It must be 0 for two equal Gaussians (to 1e-12), and equal (to 1e-9 relative) the
    expectation under the first Gaussian of the difference of the log-densities, computed by
    Gauss-Hermite quadrature, exact for that quadratic. The log-variances have the means' shape
    or one value per example, shaped (B, 1, ..., 1).
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: _KLCase):
        batch = (case.mean1.shape[0],)
        inputs = [xp.array(a) for a in (case.mean1, case.log_var1, case.mean2, case.log_var2)]
        same = fn(inputs[0], inputs[1], xp.array(case.mean1), xp.array(case.log_var1))
        same = float64_result("the KL of a Gaussian with itself", same, batch, device)
        zero = numpy.zeros(batch)
        compare("the KL of a Gaussian with itself (it must be 0)", same, zero, 0.0, 1e-12)
        got = float64_result("the KL", fn(*inputs), batch, device)
        want = _kl_by_quadrature(
            case.mean1,
            numpy.broadcast_to(case.log_var1, case.mean1.shape),
            case.mean2,
            numpy.broadcast_to(case.log_var2, case.mean2.shape),
        )
        compare(
            "the KL per example (against the expectation of log N1 - log N2 under N1, by "
            "quadrature, added over each example's entries)",
            got,
            want,
            1e-9,
            1e-12,
        )

    return grade(
        exercise,
        "KL of two Gaussians",
        "eq-gaussian-kl",
        prop,
        _kl_cases(),
        statement=EQUATIONS["eq-gaussian-kl"],
        describe=_describe_kl,
        forbid=LIBRARY.get("7.3", ()),
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 7.4: the variational bound on Gaussian data
# ============================================================================================


@dataclass(frozen=True)
class _BoundCase:
    schedule: str
    mu: float
    s: float
    x0: numpy.ndarray
    exact: bool
    slope: float
    offset: float
    log_scale: float

    @property
    def sched(self):
        return built_schedule(self.schedule)


@st.composite
def _bound_cases(draw):
    exact = draw(st.booleans())
    perturb = st.just(0.0) if exact else st.floats(-0.3, 0.3)
    return _BoundCase(
        draw(st.sampled_from(sorted(SCHEDULES))),
        draw(st.floats(-1.0, 1.0)),
        draw(st.floats(0.3, 2.0)),
        draw(S.arrays((draw(st.integers(1, 3)),), -3.0, 3.0)),
        exact,
        draw(perturb),
        draw(perturb),
        draw(perturb),
    )


def _describe_bound(case: _BoundCase) -> str:
    model = (
        "the exact reverse chain of the data"
        if case.exact
        else f"the exact reverse chain with its slopes times (1 + {case.slope!r}), "
        f"{case.offset!r} added to its means and its variances times exp({case.log_scale!r})"
    )
    return (
        f"schedule = {case.schedule}  (T = {len(case.sched)}, alpha_bar_T = "
        f"{case.sched.alpha_bars[-1]:.3g})\n"
        f"data x0 ~ N(mu, s^2) with mu = {case.mu!r}, s = {case.s!r}\n"
        f"x0 = {show(case.x0)}\n"
        f"model: {model}"
    )


def _marginals(sched, mu: float, s: float):
    """Mean and variance of q(x_t) for Gaussian data, index 0 the data, index t + 1 step t."""
    ab = numpy.concatenate([[1.0], sched.alpha_bars])
    return numpy.sqrt(ab) * mu, ab * s**2 + 1.0 - ab


def _model(case: _BoundCase):
    """The reverse model p(x_{t-1} | x_t) = N(slope_t x_t + offset_t, var_t) for each code
    index t: the exact reverse chain of N(mu, s^2), q(x_{t-1} | x_t), perturbed by the case."""
    sched = case.sched
    mean, var = _marginals(sched, case.mu, case.s)
    slope = numpy.sqrt(sched.alphas) * var[:-1] / var[1:]
    offset = mean[:-1] - slope * mean[1:]
    variance = var[:-1] * sched.betas / var[1:]
    slope = slope * (1.0 + case.slope)
    return slope, offset + case.offset, variance * math.exp(case.log_scale)


def _model_nll(case: _BoundCase, slope, offset, variance) -> numpy.ndarray:
    """-log p(x0) of the model's chain, its Gaussian marginal carried from N(0, 1) at T."""
    mean, var = 0.0, 1.0
    for t in range(len(case.sched) - 1, -1, -1):
        mean, var = slope[t] * mean + offset[t], slope[t] ** 2 * var + variance[t]
    return -_log_normal(case.x0, mean, var)


def _exact_chain_bound(case: _BoundCase) -> numpy.ndarray:
    """For the exact reverse chain: -log q(x0) + E_{q(x_T | x0)} log(q(x_T) / N(x_T; 0, 1))."""
    ab = case.sched.alpha_bars[-1]
    mean, var = _marginals(case.sched, case.mu, case.s)
    x_T = math.sqrt(ab) * case.x0[:, None] + math.sqrt(1.0 - ab) * _NODES
    prior_gap = (_log_normal(x_T, mean[-1], var[-1]) - _log_normal(x_T, 0.0, 1.0)) @ _WEIGHTS
    return -_log_normal(case.x0, case.mu, case.s**2) + prior_gap


def _bound(vlb_term, prior_term, case: _BoundCase, xp, device) -> numpy.ndarray:
    """L = L_T + sum_t E_{x_t ~ q(x_t | x0)} L_{t-1} from the student's terms, every (example,
    step, quadrature node) one row of a single call."""
    sched = case.sched
    steps, batch, nodes = len(sched), len(case.x0), len(_NODES)
    slope, offset, variance = _model(case)
    t = numpy.broadcast_to(numpy.arange(steps)[None, :, None], (batch, steps, nodes))
    x0 = numpy.broadcast_to(case.x0[:, None, None], t.shape)
    ab = sched.alpha_bars[t]
    x_t = numpy.sqrt(ab) * x0 + numpy.sqrt(1.0 - ab) * _NODES
    mean = slope[t] * x_t + offset[t]
    log_var = numpy.log(variance[t])
    rows = (-1, 1)
    terms = vlb_term(
        xp.asarray(sched.betas),
        xp.array(x0.reshape(rows)),
        xp.array(x_t.reshape(rows)),
        xp.array(t.reshape(-1)),
        xp.array(mean.reshape(rows)),
        xp.array(log_var.reshape(rows)),
    )
    terms = float64_result("the terms L_{t-1}", terms, (t.size,), device)
    expected_terms = terms.reshape(t.shape) @ _WEIGHTS
    prior = prior_term(xp.asarray(sched.betas), xp.array(case.x0[:, None]))
    prior = float64_result("the prior term L_T", prior, (batch,), device)
    if not numpy.isfinite(expected_terms).all():
        step = int(numpy.argwhere(~numpy.isfinite(expected_terms))[0][1])
        raise Mismatch(
            f"the term at code index t = {step} is not finite: at t = 0 the posterior is a "
            "point (variance 0), so the term there is the decoder's -log p(x0 | x_1), not a KL"
        )
    return prior + expected_terms.sum(axis=1)


def check_vlb(
    vlb_term: Callable,
    prior_term: Callable,
    exercise: str = "7.4",
    max_examples: int = DEFAULT_EXAMPLES,
):
    """``vlb_term(betas, x0, x_t, t, model_mean, model_log_var)`` returns L_{t-1} per example,
    shape (B,) (the decoder term L_0 where t == 0), and ``prior_term(betas, x0)`` L_T per
    example (eq-vlb).

    On Gaussian data N(mu, s^2) with a linear Gaussian reverse model, the bound assembled from
    the two (the expectation over x_t by Gauss-Hermite quadrature, exact for these quadratics)
    must be at least the model's exact -log p(x0) (to 1e-9 relative), and for the exact reverse
    chain equal -log q(x0) + E_{q(x_T | x0)} log(q(x_T) / N(x_T; 0, 1)) (to 1e-8 relative).
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: _BoundCase):
        bound = _bound(vlb_term, prior_term, case, xp, device)
        nll = _model_nll(case, *_model(case))
        gap = bound - nll
        if (gap < -1e-9 * numpy.maximum(1.0, numpy.abs(nll))).any():
            i = int(numpy.argmin(gap))
            raise Mismatch(
                f"the bound L = {bound[i]:.9g} is below the model's exact -log p(x0) = "
                f"{nll[i]:.9g} at x0 = {case.x0[i]!r}; by Jensen's inequality L >= -log p(x0) "
                f"for every model\nbound L:        {show(bound)}\n-log p(x0):     {show(nll)}"
            )
        if case.exact:
            compare(
                "the bound L for the exact reverse chain (it must equal -log q(x0) plus the "
                "expected log(q(x_T) / N(x_T; 0, 1)) under q(x_T | x0), given as expected)",
                bound,
                _exact_chain_bound(case),
                1e-8,
                1e-8,
            )

    return grade(
        exercise,
        "the variational bound",
        "eq-vlb",
        prop,
        _bound_cases(),
        statement=EQUATIONS["eq-vlb"],
        describe=_describe_bound,
        forbid=LIBRARY.get("7.4", ()),
        max_examples=max_examples,
    )
