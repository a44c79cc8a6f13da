"""The checks of exercise 7 (chapter 7, the reverse process): the posterior and its noise form.

The notebook ``exercises/src/ex07_reverse.md`` asks for the posterior q(x_{t-1} | x_t, x_0)
(:func:`check_q_posterior`, eq-posterior) and for its mean written through the noise
(:func:`check_posterior_mean_from_eps`, eq-posterior-mean-eps). Both are compared with Bayes'
rule by completing the square, computed independently here, and with the library's
``q_posterior`` and ``posterior_mean_from_eps``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy

from .. import backend
from ..diffusion import process
from .compare import compare, float64_result, unpack_results
from .diffusion_cases import DiffusionCase, describe_diffusion, diffusion_cases, per_example
from .grading import DEFAULT_EXAMPLES, Mismatch, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "7.1": [
        (
            "Multiply the two Gaussians q(x_t | x_{t-1}) and q(x_{t-1} | x0) as functions of y = "
            "x_{t-1} and collect the y^2 and y terms."
        ),
        (
            "The precision A is the sum of the two precisions in y: alpha_t / beta_t + 1 / (1 - "
            "alpha_bar_{t-1}); the variance is 1/A and the mean B/A. The identity alpha_t (1 - "
            "alpha_bar_{t-1}) + beta_t = 1 - alpha_bar_t simplifies both."
        ),
        (
            "variance = (1 - ab_prev) / (1 - ab) beta; mean = (sqrt(ab_prev) beta x0 + sqrt(alpha)"
            " (1 - ab_prev) x_t) / (1 - ab); at t = 0 the mean is x0 and the variance 0."
        ),
    ],
    "7.2": [
        (
            "Write x0 through x_t and eps from the closed form, substitute it into the posterior "
            "mean of 7.1, and collect the x_t terms."
        ),
        (
            "The coefficient of x_t simplifies to 1 / sqrt(alpha_t) using the same identity as in "
            "7.1; the eps coefficient keeps beta_t and sqrt(1 - alpha_bar_t)."
        ),
        "mean = (x_t - beta / sqrt(1 - ab) eps) / sqrt(alpha).",
    ],
}

# The equations exercise 7 checks, as chapter 7 states them (shown when a check fails).
EQUATIONS = {
    "eq-posterior": "with beta = betas[t], alpha = 1 - beta, ab = alpha_bars[t] and ab_prev = "
    "alpha_bars[t - 1] (1 at t = 0): mean = sqrt(ab_prev) beta / (1 - ab) x0 + sqrt(alpha) "
    "(1 - ab_prev) / (1 - ab) x_t and variance = beta tilde = (1 - ab_prev) / (1 - ab) beta",
    "eq-posterior-mean-eps": "mean = (x_t - beta / sqrt(1 - alpha_bar) eps) / sqrt(alpha), with "
    "beta = betas[t], alpha = 1 - beta, alpha_bar = alpha_bars[t]",
}


def _bayes_posterior(sched, x0, x_t, t):
    """Mean and variance of q(x_{t-1} | x_t, x0) from completing the square in the product
    q(x_t | x_{t-1}) q(x_{t-1} | x0): precision alpha / beta + 1 / (1 - ab_prev), mean =
    (sqrt(alpha) x_t / beta + sqrt(ab_prev) x0 / (1 - ab_prev)) / precision; at t = 0 the
    second factor is a point mass at x0, so the posterior is x0 with variance 0."""
    beta = per_example(sched.betas[t], x0)
    alpha = 1.0 - beta
    ab_prev = per_example(sched.alpha_bars_prev[t], x0)
    first = ab_prev == 1.0
    spread = numpy.where(first, 1.0, 1.0 - ab_prev)
    precision = alpha / beta + 1.0 / spread
    mean = (numpy.sqrt(alpha) * x_t / beta + numpy.sqrt(ab_prev) * x0 / spread) / precision
    variance = numpy.broadcast_to(1.0 / precision, x0.shape)
    return numpy.where(first, x0, mean), numpy.where(first, 0.0, variance)


def check_q_posterior(fn: Callable, exercise: str = "7.1", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(betas, x0, x_t, t)`` returns (mean, variance) of q(x_{t-1} | x_t, x0) (eq-posterior);
    the variance may have shape (B, 1, ..., 1) or the data's shape.

    Both must agree (to 1e-9 relative) with Bayes' rule by completing the square, computed
    independently as precision and precision-weighted mean, and with the library's
    ``q_posterior``.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: DiffusionCase):
        sched, x0, x_t, t = case.sched, case.arrays["x0"], case.arrays["x_t"], case.t
        returned = fn(xp.asarray(sched.betas), xp.array(x0), xp.array(x_t), xp.asarray(t))
        mean, variance = unpack_results(returned, ("mean", "variance"))
        mean = float64_result("the mean", mean, x0.shape, device)
        if not hasattr(variance, "shape"):
            raise Mismatch(f"the variance is a {type(variance).__name__}, not an array")
        try:
            full = xp.broadcast_to(variance, x0.shape)
        except ValueError:
            raise Mismatch(
                f"the variance has shape {tuple(variance.shape)}, which does not broadcast to "
                f"the data's shape {x0.shape}: give one value per example, shaped (B, 1, ..., 1)"
            ) from None
        variance = float64_result("the variance", full, x0.shape, device)
        want_mean, want_var = _bayes_posterior(sched, x0, x_t, t)
        compare("the variance (against Bayes' rule)", variance, want_var, 1e-9, 1e-15)
        compare("the mean (against Bayes' rule)", mean, want_mean, 1e-9, 1e-12)
        lib_mean, lib_var, _ = process.q_posterior(sched, x0, x_t, t)
        compare(
            "the variance (against minidiff's q_posterior)",
            variance,
            numpy.broadcast_to(lib_var, x0.shape),
            1e-9,
            1e-15,
        )
        compare("the mean (against minidiff's q_posterior)", mean, lib_mean, 1e-9, 1e-12)

    return grade(
        exercise,
        "the posterior q(x_{t-1} | x_t, x_0)",
        "eq-posterior",
        prop,
        diffusion_cases(("x0", "x_t")),
        statement=EQUATIONS["eq-posterior"],
        describe=describe_diffusion,
        forbid=("minidiff.diffusion.process.q_posterior",),
        max_examples=max_examples,
    )


def check_posterior_mean_from_eps(
    fn: Callable, exercise: str = "7.2", max_examples: int = DEFAULT_EXAMPLES
):
    """``fn(betas, x_t, t, eps)`` returns the posterior mean written through the noise
    (eq-posterior-mean-eps).

    With x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps it must equal the posterior mean of
    x0 by Bayes' rule, and it must agree with the library's ``posterior_mean_from_eps`` (to
    1e-9 relative), for any x_t and eps.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: DiffusionCase):
        sched, x0, eps, t = case.sched, case.arrays["x0"], case.arrays["eps"], case.t
        x_t = process.q_sample(sched, x0, t, eps)
        got = fn(xp.asarray(sched.betas), xp.array(x_t), xp.asarray(t), xp.array(eps))
        got = float64_result("the mean", got, x0.shape, device)
        want, _ = _bayes_posterior(sched, x0, x_t, t)
        compare(
            "the mean (against Bayes' rule with x0 = (x_t - sqrt(1 - alpha_bar) eps) / "
            "sqrt(alpha_bar))",
            got,
            want,
            1e-7,
            1e-9,
        )
        library = process.posterior_mean_from_eps(sched, x_t, t, eps)
        compare("the mean (against minidiff's posterior_mean_from_eps)", got, library, 1e-9, 1e-12)

    return grade(
        exercise,
        "the posterior mean from the noise",
        "eq-posterior-mean-eps",
        prop,
        diffusion_cases(("x0", "eps"), keep_alpha_positive=True),
        statement=EQUATIONS["eq-posterior-mean-eps"],
        describe=describe_diffusion,
        forbid=(
            "minidiff.diffusion.process.posterior_mean_from_eps",
            "minidiff.diffusion.process.q_posterior",
            "minidiff.diffusion.process.x0_from_eps",
        ),
        max_examples=max_examples,
    )
