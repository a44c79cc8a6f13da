"""The checks of exercise 8 (chapter 8, faster sampling): the DDIM noise level and step.

The notebook ``exercises/src/ex08_ddim.md`` asks for DDIM's sigma (:func:`check_ddim_sigma`,
eq-ddim-sigma) and for one DDIM step (:func:`check_ddim_step`, eq-ddim-step). Both are compared
with the library's ``ddim_sigma`` and ``ddim_step`` and with the limits that define them: at
eta = 1 on one step, DDPM's posterior (eq-posterior); at eta = 0, the closed form
(eq-closed-form), deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy
from hypothesis import strategies as st

from .. import backend
from ..autograd.tensor import unwrap
from ..diffusion import process, samplers
from . import strategies as S
from .compare import compare, float64_result, show
from .diffusion_cases import SCHEDULES, DiffusionCase, built_schedule
from .grading import DEFAULT_EXAMPLES, Mismatch, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "8.1": [
        "sigma is the posterior's standard deviation for a step from t to s, scaled by eta.",
        (
            "For a jump from t to s, the roles of alpha and beta in the one-step posterior "
            "variance are played by alpha_bar_t / alpha_bar_s."
        ),
        "sigma = eta sqrt((1 - ab_s) / (1 - ab_t)) sqrt(1 - ab_t / ab_s).",
    ],
    "8.2": [
        (
            "The step rebuilds x_s from the predicted x0, the predicted noise direction, and fresh"
            " noise of size sigma."
        ),
        (
            "The noise direction's weight is chosen so that the total noise variance is 1 - "
            "alpha_bar_s."
        ),
        "x_s = sqrt(ab_s) x0 + sqrt(1 - ab_s - sigma^2) eps + sigma noise.",
    ],
}

# The equations exercise 8 checks, as chapter 8 states them (shown when a check fails).
EQUATIONS = {
    "eq-ddim-sigma": "sigma = eta sqrt((1 - a_s) / (1 - a_t)) sqrt(1 - a_t / a_s), with "
    "a = alpha_bars (a_s = 1 for s = -1)",
    "eq-ddim-step": "x_s = sqrt(a_s) x0 + sqrt(1 - a_s - sigma^2) eps + sigma noise, with "
    "a = alpha_bars (a_s = 1 for s = -1) and sigma from (eq-ddim-sigma)",
}


@st.composite
def _ddim_cases(draw, names: tuple = ()):
    """A schedule, a step from code index t down to s (-1 <= s < t; s = -1 is the data), eta,
    and arrays named ``names`` of one shape."""
    schedule = draw(st.sampled_from(sorted(SCHEDULES)))
    T = len(built_schedule(schedule))
    t = draw(st.integers(0, T - 1))
    s = draw(st.integers(-1, t - 1))
    eta = draw(st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0)))
    shape = draw(S.shapes(min_dims=1, max_dims=2, min_side=1, max_side=3))
    arrays = {name: draw(S.arrays(shape, -2.0, 2.0)) for name in names}
    return DiffusionCase(schedule, arrays, numpy.array([t]), {"t": t, "s": s, "eta": eta})


def _describe_ddim(case: DiffusionCase) -> str:
    lines = [f"schedule = {case.schedule}  (T = {len(case.sched)})"]
    lines += [f"{name} = {show(a)}" for name, a in case.arrays.items()]
    lines += [f"{k} = {v!r}" for k, v in case.params.items()]
    lines.append("(code indices: t = 0 is the book's step 1; s = -1 is the data, alpha_bar = 1)")
    return "\n".join(lines)


def _number(what: str, value) -> float:
    value = unwrap(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Mismatch(f"{what} should be a number, got {type(value).__name__}") from None


def check_ddim_sigma(fn: Callable, exercise: str = "8.1", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(alpha_bars, t, s, eta)`` returns the DDIM noise level sigma (eq-ddim-sigma) for a
    step from code index t down to s (s = -1: the data, alpha_bar = 1).

    It must agree with the library's ``ddim_sigma``; with eta = 1 on a single step (s = t - 1)
    sigma^2 must be the DDPM posterior variance beta tilde (eq-posterior); with eta = 0 it must
    be 0; and it must be proportional to eta.
    """

    def prop(case: DiffusionCase):
        sched, p = case.sched, case.params
        t, s, eta = p["t"], p["s"], p["eta"]
        got = _number("sigma", fn(sched.alpha_bars.copy(), t, s, eta))
        want = samplers.ddim_sigma(sched, t, s, eta)
        compare(
            "sigma (against minidiff's ddim_sigma)",
            numpy.array(got),
            numpy.array(want),
            1e-9,
            1e-12,
        )
        one = _number("sigma", fn(sched.alpha_bars.copy(), t, t - 1, 1.0))
        compare(
            f"sigma^2 for eta = 1 and s = t - 1 = {t - 1} (against beta tilde, eq-posterior)",
            numpy.array(one**2),
            numpy.array(sched.posterior_variance[t]),
            1e-9,
            1e-15,
        )
        zero = _number("sigma", fn(sched.alpha_bars.copy(), t, s, 0.0))
        compare("sigma for eta = 0", numpy.array(zero), numpy.array(0.0), 0.0, 0.0)
        unit = _number("sigma", fn(sched.alpha_bars.copy(), t, s, 1.0))
        compare(
            "sigma (against eta times sigma at eta = 1)",
            numpy.array(got),
            numpy.array(eta * unit),
            1e-9,
            1e-12,
        )

    return grade(
        exercise,
        "the DDIM noise level sigma",
        "eq-ddim-sigma",
        prop,
        _ddim_cases(),
        statement=EQUATIONS["eq-ddim-sigma"],
        describe=_describe_ddim,
        forbid=("minidiff.diffusion.samplers.ddim_sigma",),
        max_examples=max_examples,
    )


def check_ddim_step(fn: Callable, exercise: str = "8.2", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(alpha_bars, x0, eps, t, s, eta, noise)`` returns x_s of one DDIM step from code
    index t down to s, from the predicted x0 and eps (eq-ddim-step).

    It must agree with the library's ``ddim_step``; keep the marginal q(x_s | x0): coefficient
    sqrt(a_s) on x0, and the squares of the coefficients on eps and noise adding to 1 - a_s;
    with eta = 0 move along the closed form (x_s = sqrt(a_s) x0 + sqrt(1 - a_s) eps, the same
    eps, so that sampling can be run backwards: inversion); and with eta = 1 on one step be
    DDPM's step: the posterior mean (eq-posterior) plus sqrt(beta tilde) noise.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: DiffusionCase):
        sched, p = case.sched, case.params
        t, s, eta = p["t"], p["s"], p["eta"]
        x0, eps, noise = (case.arrays[k] for k in ("x0", "eps", "noise"))
        a_s = sched.alpha_bars[s] if s >= 0 else 1.0
        zeros, ones = numpy.zeros(x0.shape), numpy.ones(x0.shape)

        def step(x0_, eps_, noise_, t_=t, s_=s, eta_=eta):
            got = fn(
                sched.alpha_bars.copy(),
                xp.array(x0_),
                xp.array(eps_),
                t_,
                s_,
                eta_,
                xp.array(noise_),
            )
            return float64_result("x_s", got, x0.shape, device)

        got = step(x0, eps, noise)
        library = samplers.ddim_step(sched, x0, eps, t, s, eta, noise)
        compare("x_s (against minidiff's ddim_step)", got, library, 1e-9, 1e-12)
        on_x0 = step(ones, zeros, zeros)
        on_eps = step(zeros, ones, zeros)
        on_noise = step(zeros, zeros, ones)
        compare(
            "the coefficient of x0 (it must be sqrt(a_s))",
            on_x0,
            math.sqrt(a_s) * ones,
            1e-9,
            1e-12,
        )
        compare(
            "(coefficient of eps)^2 + (coefficient of noise)^2, the variance of x_s given x0 "
            "(it must be 1 - a_s, the closed form's)",
            on_eps**2 + on_noise**2,
            (1.0 - a_s) * ones,
            1e-9,
            1e-12,
        )
        deterministic = step(x0, eps, noise, eta_=0.0)
        compare(
            "x_s for eta = 0 (against sqrt(a_s) x0 + sqrt(1 - a_s) eps: deterministic DDIM "
            "keeps the noise, which is what makes inversion possible)",
            deterministic,
            math.sqrt(a_s) * x0 + math.sqrt(1.0 - a_s) * eps,
            1e-9,
            1e-12,
        )
        tt = numpy.array([t])
        x_t = process.q_sample(sched, x0[None], tt, eps[None])[0]
        posterior_mean, _, _ = process.q_posterior(sched, x0[None], x_t[None], tt)
        ddpm = posterior_mean[0] + math.sqrt(sched.posterior_variance[t]) * noise
        compare(
            f"x_s for eta = 1 and s = t - 1 = {t - 1} (against DDPM's step: the posterior mean "
            "plus sqrt(beta tilde) noise)",
            step(x0, eps, noise, s_=t - 1, eta_=1.0),
            ddpm,
            1e-9,
            1e-12,
        )

    return grade(
        exercise,
        "one DDIM step",
        "eq-ddim-step",
        prop,
        _ddim_cases(("x0", "eps", "noise")),
        statement=EQUATIONS["eq-ddim-step"],
        describe=_describe_ddim,
        forbid=(
            "minidiff.diffusion.samplers.ddim_step",
            "minidiff.diffusion.samplers.ddim_sigma",
        ),
        max_examples=max_examples,
    )
