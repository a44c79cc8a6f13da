"""The drawn cases of the diffusion exercises 6, 7 and 8: a schedule, data and timesteps.

The checks of the forward chain (``ex06_forward``), the posterior (``ex07_reverse``) and the DDIM
step (``ex08_ddim``) all draw a named noise schedule from :data:`SCHEDULES` and data-shaped
float64 arrays with one timestep per example (:func:`diffusion_cases`), and show a failing case
with its schedule and the code's index convention (:func:`describe_diffusion`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy
from hypothesis import strategies as st

from ..diffusion import schedules
from . import strategies as S
from .compare import show

# Schedules are small (T <= 100) so that a Monte Carlo run of the whole chain costs little, and
# include zero terminal SNR (alpha_bar_T = 0, beta_T = 1), the edge case of every formula.
SCHEDULES = {
    "linear(50, scale_to_T=True)": lambda: schedules.linear(50, scale_to_T=True),
    "cosine(20)": lambda: schedules.cosine(20),
    "cosine(100)": lambda: schedules.cosine(100),
    "sigmoid(40)": lambda: schedules.sigmoid(40),
    "rescale_zero_terminal_snr(cosine(30))": lambda: schedules.rescale_zero_terminal_snr(
        schedules.cosine(30)
    ),
}
_BUILT: dict = {}


def built_schedule(name: str):
    """The schedule called ``name`` in :data:`SCHEDULES`, built once."""
    if name not in _BUILT:
        _BUILT[name] = SCHEDULES[name]()
    return _BUILT[name]


@dataclass(frozen=True)
class DiffusionCase:
    """A schedule (by name), a batch of data-shaped arrays, and timesteps (one per example)."""

    schedule: str
    arrays: dict
    t: numpy.ndarray
    params: dict

    @property
    def sched(self):
        return built_schedule(self.schedule)


@st.composite
def diffusion_cases(draw, names: tuple, keep_alpha_positive: bool = False):
    """Arrays named ``names`` of one shape (B, ...) with B in 1..3, and integer timesteps t of
    shape (B,) valid for the drawn schedule (with alpha_t > 0 if ``keep_alpha_positive``)."""
    schedule = draw(st.sampled_from(sorted(SCHEDULES)))
    sched = built_schedule(schedule)
    batch = draw(st.integers(1, 3))
    rest = draw(S.shapes(max_dims=2, min_side=1, max_side=3))
    shape = (batch, *rest)
    top = len(sched) - 1
    if keep_alpha_positive and sched.alphas[top] == 0:
        top -= 1
    t = numpy.array(draw(st.lists(st.integers(0, top), min_size=batch, max_size=batch)))
    arrays = {name: draw(S.arrays(shape, -2.0, 2.0)) for name in names}
    return DiffusionCase(schedule, arrays, t, {})


def describe_diffusion(case: DiffusionCase) -> str:
    """A drawn case for people: the schedule, each array, and the timesteps."""
    lines = [f"schedule = {case.schedule}  (T = {len(case.sched)})"]
    lines += [f"{name} = {show(a)}" for name, a in case.arrays.items()]
    lines.append(f"t = {case.t.tolist()}  (code indices: t = 0 is the book's step 1)")
    lines += [f"{k} = {v!r}" for k, v in case.params.items()]
    return "\n".join(lines)


def per_example(values: numpy.ndarray, like: numpy.ndarray) -> numpy.ndarray:
    """One value per example, shaped (B, 1, ..., 1) to broadcast against ``like``."""
    return values.reshape(values.shape + (1,) * (like.ndim - 1))
