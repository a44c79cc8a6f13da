"""The checks of exercises 8.3 to 8.5 (chapter 8, three things a network can predict).

The notebook ``exercises/src/ex08_ddim.md`` asks for the velocity target v
(:func:`check_v_target`), the conversion of any prediction (eps, x0 or v) with x_t into the pair
(x0, eps) (:func:`check_to_x0_and_eps`), both eq-parameterizations, and the min-SNR-gamma
multipliers of the three losses (:func:`check_min_snr_weights`, eq-min-snr). Each is checked
through a property it must have, computed here independently:

* v is the derivative of x_t = cos(phi) x0 + sin(phi) eps along the angle phi, by float64
  central differences;
* the conversions give back the x0 and eps that made x_t from their true prediction, and any
  prediction converts to a pair with sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps = x_t;
* with the multipliers, one prediction error costs the same in all three losses, and that cost
  is min(SNR, gamma) times the x0 error (so the v multiplier is min(SNR, gamma) / (SNR + 1)).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy
from hypothesis import strategies as st

from .. import backend
from .compare import compare, float64_result, unpack_results
from .diffusion_cases import (
    DiffusionCase,
    built_schedule,
    describe_diffusion,
    diffusion_cases,
    per_example,
)
from .grading import DEFAULT_EXAMPLES, Mismatch, grade

EQUATIONS = {
    "eq-parameterizations": "with a = sqrt(alpha_bar_t), s = sqrt(1 - alpha_bar_t): x_t = a x0 + "
    "s eps, and v = d x_t / d phi for x_t = cos(phi) x0 + sin(phi) eps; any one of eps, x0, v "
    "with x_t gives back the other two",
    "eq-min-snr": "the weighted losses w_eps |eps - eps_hat|^2, w_x0 |x0 - x0_hat|^2 and "
    "w_v |v - v_hat|^2 of one prediction are equal, and equal min(SNR, gamma) |x0 - x0_hat|^2; "
    "at SNR = 0, w_eps is its limit 1",
}

HINTS = {
    "8.3": [
        "Write a = cos(phi) and s = sin(phi); then x_t = cos(phi) x0 + sin(phi) eps.",
        "Differentiate with respect to phi: d cos(phi) / d phi = -sin(phi), d sin(phi) / d phi "
        "= cos(phi); then write the result back in a and s.",
    ],
    "8.4": [
        "(x_t, v) is (x0, eps) rotated by phi; the inverse rotation, by -phi, gives x0 and eps "
        "from x_t and v.",
        "From eps: solve x_t = a x0 + s eps for x0. From x0: solve it for eps.",
        "Only the eps route divides by a, which is 0 at zero terminal SNR: that is why the check "
        "gives you an eps prediction only where a > 0.",
    ],
    "8.5": [
        "Fix x_t. From x_t = a x0 + s eps, an error in x0 fixes the errors in eps and v: "
        "eps - eps_hat = -(a / s)(x0 - x0_hat).",
        "Square and use a^2 / s^2 = SNR and 1 / s^2 = SNR + 1: each loss is the x0 loss times "
        "its own rate (SNR, 1 or SNR + 1).",
        "Divide the capped rate min(SNR, gamma) by each loss's own rate; for eps at SNR = 0 "
        "return the limit, 1 (xp.where, guarding the division).",
    ],
}

LIBRARY = {
    "8.3": ("minidiff.diffusion.process.v_from",),
    "8.4": (
        "minidiff.diffusion.process.to_x0_and_eps",
        "minidiff.diffusion.process.x0_from_v",
        "minidiff.diffusion.process.eps_from_v",
        "minidiff.diffusion.process.x0_from_eps",
        "minidiff.diffusion.process.eps_from_x0",
    ),
    "8.5": ("minidiff.diffusion.losses.min_snr_weight",),
}


def _a_and_s(case: DiffusionCase, like):
    ab = per_example(case.sched.alpha_bars[case.t], like)
    return numpy.sqrt(ab), numpy.sqrt(1.0 - ab)


def check_v_target(fn: Callable, exercise: str = "8.3", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(alpha_bars, x0, t, eps)`` returns the velocity v (eq-parameterizations).

    With phi_t = atan2(s, a), a = sqrt(alpha_bar_t) and s = sqrt(1 - alpha_bar_t), it must
    equal the derivative of cos(phi) x0 + sin(phi) eps at phi_t, by central differences of
    step 1e-5 (to 1e-7).
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: DiffusionCase):
        x0, eps = case.arrays["x0"], case.arrays["eps"]
        got = fn(xp.asarray(case.sched.alpha_bars), xp.array(x0), xp.asarray(case.t), xp.array(eps))
        got = float64_result("v", got, x0.shape, device)
        a, s = _a_and_s(case, x0)
        phi, h = numpy.arctan2(s, a), 1e-5
        path = lambda angle: numpy.cos(angle) * x0 + numpy.sin(angle) * eps  # noqa: E731
        slope = (path(phi + h) - path(phi - h)) / (2 * h)
        compare("v (against d x_t / d phi by central differences)", got, slope, 1e-7, 1e-7)

    return grade(
        exercise,
        "the velocity target",
        "eq-parameterizations",
        prop,
        diffusion_cases(("x0", "eps")),
        statement=EQUATIONS["eq-parameterizations"],
        describe=describe_diffusion,
        forbid=LIBRARY.get("8.3", ()),
        max_examples=max_examples,
    )


@st.composite
def _conversion_cases(draw):
    parameterization = draw(st.sampled_from(["v", "x0", "eps"]))
    case = draw(
        diffusion_cases(("x0", "eps", "prediction"), keep_alpha_positive=parameterization == "eps")
    )
    return DiffusionCase(case.schedule, case.arrays, case.t, {"parameterization": parameterization})


def check_to_x0_and_eps(fn: Callable, exercise: str = "8.4", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(alpha_bars, x_t, t, prediction, parameterization)`` returns (x0, eps) from a
    prediction of ``"eps"``, ``"x0"`` or ``"v"`` (eq-parameterizations).

    Given the true value of the prediction for x_t = a x0 + s eps, it must give back x0 and eps
    (to 1e-9); given any other prediction, its pair must still rebuild x_t, a x0 + s eps = x_t
    (to 1e-9). Eps predictions come only where a > 0.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def convert(case, x_t, prediction):
        returned = fn(
            xp.asarray(case.sched.alpha_bars),
            xp.array(x_t),
            xp.asarray(case.t),
            xp.array(prediction),
            case.params["parameterization"],
        )
        x0, eps = unpack_results(returned, ("x0", "eps"))
        shape = x_t.shape
        return float64_result("x0", x0, shape, device), float64_result("eps", eps, shape, device)

    def prop(case: DiffusionCase):
        x0, eps = case.arrays["x0"], case.arrays["eps"]
        a, s = _a_and_s(case, x0)
        x_t = a * x0 + s * eps
        truth = {"eps": eps, "x0": x0, "v": a * eps - s * x0}[case.params["parameterization"]]
        got_x0, got_eps = convert(case, x_t, truth)
        compare("x0 from the true prediction (it must give back x0)", got_x0, x0, 1e-9, 1e-9)
        compare("eps from the true prediction (it must give back eps)", got_eps, eps, 1e-9, 1e-9)
        other_x0, other_eps = convert(case, x_t, case.arrays["prediction"])
        compare(
            "sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps from another prediction (it must "
            "rebuild x_t)",
            a * other_x0 + s * other_eps,
            x_t,
            1e-9,
            1e-9,
        )

    return grade(
        exercise,
        "conversions among eps, x0 and v",
        "eq-parameterizations",
        prop,
        _conversion_cases(),
        statement=EQUATIONS["eq-parameterizations"],
        describe=describe_diffusion,
        forbid=LIBRARY.get("8.4", ()),
        max_examples=max_examples,
    )


_ZERO_TERMINAL_SNR = "rescale_zero_terminal_snr(cosine(30))"


@st.composite
def _weight_cases(draw):
    case = draw(diffusion_cases(("x0", "eps", "x0_hat")))
    gamma = draw(st.sampled_from([5.0, 1.0, 0.5, 20.0]))
    schedule, t = case.schedule, case.t
    if draw(st.booleans()):  # the last step of a zero terminal SNR schedule, where SNR = 0
        schedule = _ZERO_TERMINAL_SNR
        last = len(built_schedule(schedule)) - 1
        t = numpy.minimum(t, last)
        t[draw(st.integers(0, len(t) - 1))] = last
    return DiffusionCase(schedule, case.arrays, t, {"gamma": gamma})


def _per_example_sum(squares):
    return squares.reshape(squares.shape[0], -1).sum(axis=1)


def check_min_snr_weights(
    fn: Callable, exercise: str = "8.5", max_examples: int = DEFAULT_EXAMPLES
):
    """``fn(alpha_bars, t, gamma)`` returns (w_eps, w_x0, w_v), the min-SNR-gamma multipliers
    per example, each of shape (B,) (eq-min-snr).

    For a prediction x0_hat and the eps_hat and v_hat it implies with x_t, the weighted losses
    w_eps |eps - eps_hat|^2, w_v |v - v_hat|^2 and w_x0 |x0 - x0_hat|^2 must agree with
    min(SNR, gamma) |x0 - x0_hat|^2 (to 1e-8 relative), and at SNR = 0, w_eps must be 1.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: DiffusionCase):
        x0, eps, x0_hat = (case.arrays[k] for k in ("x0", "eps", "x0_hat"))
        gamma, batch = case.params["gamma"], (x0.shape[0],)
        returned = fn(xp.asarray(case.sched.alpha_bars), xp.asarray(case.t), gamma)
        weights = unpack_results(returned, ("w_eps", "w_x0", "w_v"))
        w_eps, w_x0, w_v = (
            float64_result(name, w, batch, device)
            for name, w in zip(("w_eps", "w_x0", "w_v"), weights)
        )
        a, s = _a_and_s(case, x0)
        x_t = a * x0 + s * eps
        eps_hat = (x_t - a * x0_hat) / s
        v, v_hat = a * eps - s * x0, a * eps_hat - s * x0_hat
        snr = case.sched.snr[case.t]
        wanted = numpy.minimum(snr, gamma) * _per_example_sum((x0 - x0_hat) ** 2)
        for name, weight, error in [
            ("w_x0 |x0 - x0_hat|^2", w_x0, x0 - x0_hat),
            ("w_eps |eps - eps_hat|^2", w_eps, eps - eps_hat),
            ("w_v |v - v_hat|^2", w_v, v - v_hat),
        ]:
            compare(
                f"the weighted loss {name} (it must cost what min(SNR, gamma) |x0 - x0_hat|^2 "
                "does, given as expected)",
                weight * _per_example_sum(error**2),
                wanted,
                1e-8,
                1e-10,
            )
        zero = snr == 0
        if zero.any() and not numpy.allclose(w_eps[zero], 1.0, rtol=1e-12, atol=0.0):
            raise Mismatch(
                f"w_eps at SNR = 0 is {w_eps[zero].tolist()}: there min(SNR, gamma) / SNR is "
                "0 / 0, and its limit, 1, is what the weight must be"
            )

    return grade(
        exercise,
        "min-SNR-gamma multipliers",
        "eq-min-snr",
        prop,
        _weight_cases(),
        statement=EQUATIONS["eq-min-snr"],
        describe=describe_diffusion,
        forbid=LIBRARY.get("8.5", ()),
        max_examples=max_examples,
    )
