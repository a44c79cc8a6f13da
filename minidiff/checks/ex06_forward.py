"""The checks of exercise 6 (chapter 6, the forward process): the closed form and one step.

The notebook ``exercises/src/ex06_forward.md`` asks for the closed form q_sample
(:func:`check_q_sample`, eq-closed-form) and for one Markov step q_step (:func:`check_q_step`,
eq-forward-step). Both are compared with the library's ``minidiff.diffusion.process`` and with
Monte Carlo runs of the chain: the closed form against the chain walked one step at a time, and
the student's step, composed from t = 0, against the moments of the closed form.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy

from .. import backend
from ..diffusion import process
from .compare import compare, float64_result, host
from .diffusion_cases import DiffusionCase, describe_diffusion, diffusion_cases, per_example
from .grading import DEFAULT_EXAMPLES, Mismatch, grade

# The hints of hint() (minidiff.checks.hints), from a nudge to nearly the answer.
HINTS = {
    "6.1": [
        "x_t is a Gaussian with a known mean and variance given x0: scale x0 and add scaled noise.",
        "Gather alpha_bars at t and reshape to (B, 1, ..., 1) so it broadcasts over each example.",
        "ab = alpha_bars[t].reshape(shape); return sqrt(ab) * x0 + sqrt(1 - ab) * noise.",
    ],
    "6.2": [
        "One step keeps most of x_prev and adds a little noise, with variance beta.",
        (
            "The scale on x_prev keeps the total variance at 1: what is it, given the noise "
            "variance beta?"
        ),
        "b = betas[t].reshape(shape); return sqrt(1 - b) * x_prev + sqrt(b) * noise.",
    ],
}

# The equations exercise 6 checks, as chapter 6 states them (shown when a check fails).
EQUATIONS = {
    "eq-forward-step": "x_t = sqrt(1 - beta) x_prev + sqrt(beta) noise, with beta = betas[t] "
    "for each example, shaped (B, 1, ..., 1) to broadcast over the example's entries",
    "eq-closed-form": "x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) noise, with alpha_bar = "
    "alpha_bars[t] for each example (code index t is the book's step t + 1): the law of t + 1 "
    "steps of the chain in one jump",
}


def _chain_coefficients(sched, t: numpy.ndarray):
    """sqrt(alpha_bar) and 1 - alpha_bar at code index t, by composing t + 1 steps of the chain
    (eq-forward-step) on the mean coefficient and the variance, not from alpha_bars."""
    mean, var = numpy.ones(t.shape), numpy.zeros(t.shape)
    for step in range(int(t.max()) + 1):
        active = step <= t
        beta = sched.betas[step]
        mean = numpy.where(active, numpy.sqrt(1.0 - beta) * mean, mean)
        var = numpy.where(active, (1.0 - beta) * var + beta, var)
    return mean, var


def _moments_agree(what: str, samples, mean, var, reference: str) -> None:
    """Raise :class:`Mismatch` unless the sample mean and variance of ``samples`` (n, ...) are
    within six standard errors of ``mean`` and ``var`` (per entry)."""
    n = samples.shape[0]
    got_mean, got_var = samples.mean(axis=0), samples.var(axis=0)
    mean_tol = 6.0 * numpy.sqrt(var / n) + 1e-12
    var_tol = 6.0 * var * numpy.sqrt(2.0 / n) + 1e-12
    for name, got, want, tol in (
        ("mean", got_mean, mean, mean_tol),
        ("variance", got_var, var, var_tol),
    ):
        want = numpy.broadcast_to(want, got.shape)
        bad = numpy.abs(got - want) > numpy.broadcast_to(tol, got.shape)
        if bad.any():
            i = tuple(int(k) for k in numpy.argwhere(bad)[0])
            allowed = numpy.broadcast_to(tol, got.shape)[i]
            entry = f" of entry {i}" if i else ""
            raise Mismatch(
                f"{what}: over {n} draws, the {name}{entry} is {got[i]:.6g}, but "
                f"{reference} gives {want[i]:.6g} (allowed: +-{allowed:.2g})"
            )


_MONTE_CARLO_DRAWS = 2000


def check_q_sample(fn: Callable, exercise: str = "6.1", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(alpha_bars, x0, t, noise)`` returns x_t by the closed form (eq-closed-form).

    It must agree (to 1e-9 relative) with the composed chain's mean coefficient and variance,
    computed by running the recursion of (eq-forward-step), and with the library's ``q_sample``;
    and over 2000 fresh noises its moments must match those of 2000 runs of the chain, one step
    at a time, from the first example.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: DiffusionCase):
        sched, x0, noise, t = case.sched, case.arrays["x0"], case.arrays["noise"], case.t
        got = fn(xp.asarray(sched.alpha_bars), xp.array(x0), xp.asarray(t), xp.array(noise))
        got = float64_result("x_t", got, x0.shape, device)
        mean, var = _chain_coefficients(sched, t)
        chain = per_example(mean, x0) * x0 + per_example(numpy.sqrt(var), x0) * noise
        compare("x_t (against t + 1 composed steps of the chain)", got, chain, 1e-9, 1e-12)
        library = process.q_sample(sched, x0, t, noise)
        compare("x_t (against minidiff's q_sample)", got, library, 1e-9, 1e-12)
        # Monte Carlo: the student's jump against the chain walked one step at a time.
        rng = numpy.random.default_rng(int(t[0]))
        n = _MONTE_CARLO_DRAWS
        start = numpy.broadcast_to(x0[:1], (n, *x0.shape[1:]))
        fresh = rng.standard_normal(start.shape)
        jumps = host(
            fn(
                xp.asarray(sched.alpha_bars),
                xp.array(start),
                xp.asarray(numpy.full(n, t[0])),
                xp.array(fresh),
            )
        )
        walked = numpy.array(start)
        for step in range(int(t[0]) + 1):
            beta = sched.betas[step]
            walked = numpy.sqrt(1 - beta) * walked + numpy.sqrt(beta) * rng.standard_normal(
                start.shape
            )
        _moments_agree(
            f"x_t for the first example (t = {t[0]})",
            jumps,
            walked.mean(axis=0),
            walked.var(axis=0),
            f"walking the chain {int(t[0]) + 1} steps",
        )

    return grade(
        exercise,
        "the closed form q_sample",
        "eq-closed-form",
        prop,
        diffusion_cases(("x0", "noise")),
        statement=EQUATIONS["eq-closed-form"],
        describe=describe_diffusion,
        forbid=("minidiff.diffusion.process.q_sample",),
        max_examples=max_examples,
    )


def check_q_step(fn: Callable, exercise: str = "6.2", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(betas, x_prev, t, noise)`` returns one Markov step x_t (eq-forward-step).

    It must agree with the formula and with the library's ``q_step`` (to 1e-9 relative); and
    composing it from step 0 to t over 2000 runs must give the moments of the closed form,
    sqrt(alpha_bar_t) x_0 and 1 - alpha_bar_t.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: DiffusionCase):
        sched, x, noise, t = case.sched, case.arrays["x_prev"], case.arrays["noise"], case.t
        betas = xp.asarray(sched.betas)
        got = fn(betas, xp.array(x), xp.asarray(t), xp.array(noise))
        got = float64_result("x_t", got, x.shape, device)
        beta = per_example(sched.betas[t], x)
        compare("x_t", got, numpy.sqrt(1 - beta) * x + numpy.sqrt(beta) * noise, 1e-9, 1e-12)
        compare(
            "x_t (against minidiff's q_step)", got, process.q_step(sched, x, t, noise), 1e-9, 1e-12
        )
        rng = numpy.random.default_rng(int(t[0]))
        n = _MONTE_CARLO_DRAWS
        start = numpy.broadcast_to(x[:1], (n, *x.shape[1:]))
        walked = xp.array(start)
        for step in range(int(t[0]) + 1):
            walked = fn(
                betas,
                walked,
                xp.asarray(numpy.full(n, step)),
                xp.asarray(rng.standard_normal(start.shape)),
            )
        a_bar = sched.alpha_bars[t[0]]
        _moments_agree(
            f"composing your step from t = 0 to t = {t[0]}, starting at the first example",
            host(walked),
            numpy.sqrt(a_bar) * start[0],
            numpy.full(start.shape[1:], 1.0 - a_bar),
            "the closed form (eq-closed-form)",
        )

    return grade(
        exercise,
        "one step q_step",
        "eq-forward-step",
        prop,
        diffusion_cases(("x_prev", "noise")),
        statement=EQUATIONS["eq-forward-step"],
        describe=describe_diffusion,
        forbid=("minidiff.diffusion.process.q_step",),
        max_examples=max_examples,
    )
