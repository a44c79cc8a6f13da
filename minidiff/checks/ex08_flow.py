"""The checks of exercises 8.6 and 8.7 (chapter 8, flow matching).

The notebook ``exercises/src/ex08_ddim.md`` asks for the straight path of flow matching and its
velocity target (:func:`check_flow_path`, eq-flow-path), then for the Euler sampler that runs
the velocity backwards from noise at t = 1 to data at t = 0 (:func:`check_flow_euler`,
eq-flow-euler). Both are checked through properties:

* the path starts at the data (t = 0), ends at the noise (t = 1), its velocity is the same at
  every t (a straight line), and it is the path's derivative, by float64 central differences;
* for data that is a single point x0 the exact velocity is (x - x0) / t, along which every path
  is straight, so Euler steps are exact: from any noise the sampler must land on x0, and it must
  ask for the velocity at the chapter's times 1, 1 - dt, ..., dt, in that order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import strategies as st

from .. import backend
from . import strategies as S
from .compare import compare, float64_result, show, unpack_results
from .grading import DEFAULT_EXAMPLES, Mismatch, grade

EQUATIONS = {
    "eq-flow-path": "x_t is x0 at t = 0 and z at t = 1, its velocity is d x_t / dt, and the path "
    "is straight: the velocity is the same at every t",
    "eq-flow-euler": "x_{t - dt} = x_t - dt v(x_t, t) for t = 1, 1 - dt, ..., dt with dt = 1 / "
    "steps, starting from x_1 = the noise; for point-mass data x0 each step is exact, so the "
    "sample is x0",
}

HINTS = {
    "8.6": [
        "A straight line through x0 at t = 0 and z at t = 1 is a weighted average of the two.",
        "Its derivative in t does not depend on t, nor on where on the line you are.",
    ],
    "8.7": [
        "Time runs backwards: the step from t lands at t - dt, so it moves against the velocity.",
        "Evaluate the velocity at the time you step from: t = 1 first, dt last (never at 0).",
        "Compute the times as (steps - i) / steps for i = 0, ..., steps - 1 rather than by "
        "subtracting dt repeatedly, which drifts by rounding.",
    ],
}

LIBRARY = {
    "8.6": (
        "minidiff.diffusion.samplers.flow_interpolate",
        "minidiff.diffusion.losses.flow_matching_loss",
    ),
    "8.7": ("minidiff.diffusion.samplers.flow_euler_sample",),
}


@dataclass(frozen=True)
class _PathCase:
    x0: numpy.ndarray
    z: numpy.ndarray
    t: numpy.ndarray
    u: numpy.ndarray


@st.composite
def _path_cases(draw):
    batch = draw(st.integers(1, 3))
    shape = (batch, *draw(S.shapes(max_dims=2, min_side=1, max_side=3)))
    times = st.lists(st.floats(0.01, 0.99), min_size=batch, max_size=batch)
    return _PathCase(
        draw(S.arrays(shape, -2.0, 2.0)),
        draw(S.arrays(shape, -2.0, 2.0)),
        numpy.array(draw(times)),
        numpy.array(draw(times)),
    )


def _describe_path(case: _PathCase) -> str:
    return (
        f"x0 = {show(case.x0)}\nz = {show(case.z)}\nt = {show(case.t)}\n"
        f"a second time u = {show(case.u)}"
    )


def check_flow_path(fn: Callable, exercise: str = "8.6", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(x0, z, t)`` returns (x_t, velocity) of the flow-matching path, t of shape (B,) in
    [0, 1] (eq-flow-path).

    x_t must be x0 at t = 0 and z at t = 1 (to 1e-12); the velocity must be the same at t and
    at another time u (a straight path, to 1e-12), and equal the central difference of x_t of
    step 1e-6 at t (to 1e-6).
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def path(case, t):
        returned = fn(xp.array(case.x0), xp.array(case.z), xp.array(t))
        x_t, velocity = unpack_results(returned, ("x_t", "velocity"))
        shape = case.x0.shape
        return (
            float64_result("x_t", x_t, shape, device),
            float64_result("the velocity", velocity, shape, device),
        )

    def prop(case: _PathCase):
        batch = case.t.shape
        start, _ = path(case, numpy.zeros(batch))
        compare("x_t at t = 0 (the path must start at the data x0)", start, case.x0, 1e-12, 1e-12)
        end, _ = path(case, numpy.ones(batch))
        compare("x_t at t = 1 (the path must end at the noise z)", end, case.z, 1e-12, 1e-12)
        _, velocity = path(case, case.t)
        _, later = path(case, case.u)
        compare(
            "the velocity at the second time u (a straight path has the same velocity at "
            "every t, given as expected: the one at t)",
            later,
            velocity,
            1e-12,
            1e-12,
        )
        h = 1e-6
        ahead, _ = path(case, case.t + h)
        behind, _ = path(case, case.t - h)
        compare(
            "the velocity (against d x_t / dt by central differences of your x_t)",
            velocity,
            (ahead - behind) / (2 * h),
            1e-6,
            1e-6,
        )

    return grade(
        exercise,
        "the flow-matching path",
        "eq-flow-path",
        prop,
        _path_cases(),
        statement=EQUATIONS["eq-flow-path"],
        describe=_describe_path,
        forbid=LIBRARY.get("8.6", ()),
        max_examples=max_examples,
    )


@dataclass(frozen=True)
class _EulerCase:
    x0: numpy.ndarray
    noise: numpy.ndarray
    steps: int


@st.composite
def _euler_cases(draw):
    shape = (draw(st.integers(1, 3)), *draw(S.shapes(max_dims=2, min_side=1, max_side=3)))
    return _EulerCase(
        draw(S.arrays(shape, -2.0, 2.0)),
        draw(S.arrays(shape, -2.0, 2.0)),
        draw(st.integers(1, 12)),
    )


def _describe_euler(case: _EulerCase) -> str:
    return (
        f"data: a single point x0 = {show(case.x0)}\nnoise x_1 = {show(case.noise)}\n"
        f"steps = {case.steps}"
    )


def check_flow_euler(fn: Callable, exercise: str = "8.7", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(velocity, x1, steps)`` runs ``steps`` Euler steps of eq-flow-euler from the noise
    ``x1`` at t = 1 and returns x at t = 0; ``velocity(x, t)`` takes a float t.

    With the exact velocity (x - x0) / t of point-mass data x0, the sampler must call it at
    t = 1, 1 - dt, ..., dt in that order (to 1e-12), each time at the point on the straight
    path from x1 to x0, and return x0 (to 1e-9).
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: _EulerCase):
        times = []
        x0 = xp.array(case.x0)

        def velocity(x, t):
            t = float(t)
            times.append(t)
            if t <= 0:
                raise Mismatch(
                    f"the velocity was asked for at t = {t:g}: Euler steps of eq-flow-euler "
                    "evaluate it where each step starts, t = 1, 1 - dt, ..., dt, never at 0"
                )
            here = float64_result("the point passed to the velocity", x, case.x0.shape, device)
            on_path = (1.0 - t) * case.x0 + t * case.noise
            compare(
                f"the point at t = {t:g} (it must lie on the straight path from the noise to "
                "x0, where every Euler step of this velocity lands)",
                here,
                on_path,
                1e-9,
                1e-9,
            )
            return (x - x0) / t

        got = fn(velocity, xp.array(case.noise), case.steps)
        got = float64_result("the sample", got, case.x0.shape, device)
        wanted = (case.steps - numpy.arange(case.steps)) / case.steps
        if len(times) != case.steps or not numpy.allclose(times, wanted, rtol=0, atol=1e-12):
            raise Mismatch(
                f"the velocity was asked for at t = {[round(t, 6) for t in times]}; "
                f"{case.steps} Euler steps from t = 1 ask at {wanted.round(6).tolist()}"
            )
        compare("the sample (for point-mass data it must be x0)", got, case.x0, 1e-9, 1e-9)

    return grade(
        exercise,
        "Euler steps of the flow",
        "eq-flow-euler",
        prop,
        _euler_cases(),
        statement=EQUATIONS["eq-flow-euler"],
        describe=_describe_euler,
        forbid=LIBRARY.get("8.7", ()),
        max_examples=max_examples,
    )
