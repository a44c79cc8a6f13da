"""The checks of exercise 12 (chapter 12, training the video model with frame masks).

The notebook ``exercises/src/ex12_training.md`` asks for the masked min-SNR v loss
(:func:`check_masked_loss`, eq-masked-loss) and for the draw of the frame masks
(:func:`check_frame_masks`, the kinds of ``minidiff.diffusion.masking``). The loss is compared
with an independent computation, with a model whose predictions on the known frames are far off
(they must not count), and the model must be given the known frames clean. The masks are
checked by Monte Carlo: over many draws, every one of the 2^F possible masks must come up as
often as the mix of kinds says, within five standard deviations, and no mask may know every
frame.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy
from hypothesis import strategies as st

from .. import backend
from . import strategies as S
from .compare import as_array, as_float64, compare, float64_result, show
from .diffusion_cases import SCHEDULES, built_schedule
from .grading import DEFAULT_EXAMPLES, Mismatch, grade

EQUATIONS = {
    "eq-masked-loss": "x_t = x0 on the known frames and sqrt(alpha_bar) x0 + sqrt(1 - "
    "alpha_bar) eps on the others; the loss is the sum over the unknown frames' entries of "
    "w_v (prediction - v)^2, with w_v the min-SNR multiplier of v, divided by the number of "
    "those entries in the batch; known frames contribute nothing",
    "frame-masks": "each clip's kind is drawn from the mix: none (no frame known), first k, "
    "last k (k uniform in 1 .. F - 1), or random (each frame known with probability 1/2; if "
    "that knows every frame, one frame drawn uniformly is made unknown); no mask knows every "
    "frame",
}

HINTS = {
    "12.1": [
        "Build x_t in closed form for every frame, then put x0 back on the known frames with "
        "xp.where and the mask reshaped to (B, F, 1, 1, 1).",
        "The target is v = a eps - s x0 (exercise 8.3) and its min-SNR multiplier "
        "min(SNR, gamma) / (SNR + 1) (exercise 8.5), one per clip.",
        "Multiply the squared error by the per-clip weight and by the unknown-frame mask, sum "
        "it all, and divide by the count of unknown entries of the whole batch (the mask's "
        "count times C H W), not by the size of the batch.",
    ],
    "12.2": [
        "Draw every random choice for the whole batch at once: the kinds with rng.choice and "
        "the mix's probabilities, a k per clip with rng.integers(1, frames), coins with "
        "rng.random((batch, frames)) < 0.5.",
        "With index = np.arange(frames), the first k frames are index < k and the last k are "
        "index >= frames - k.",
        "A random mask that knows every frame must be repaired, not redrawn: make one of its "
        "frames, drawn uniformly, unknown.",
    ],
}

LIBRARY = {
    "12.1": (
        "minidiff.diffusion.losses.diffusion_loss",
        "minidiff.diffusion.losses.min_snr_weight",
        "minidiff.diffusion.process.v_from",
        "minidiff.diffusion.process.q_sample",
    ),
    "12.2": ("minidiff.diffusion.masking.draw_frame_masks",),
}

KINDS = ("none", "first", "last", "random")

# ============================================================================================
# exercise 12.1: the masked min-SNR v loss
# ============================================================================================

# How far off the check's model is on the known frames: far enough that counting them shows.
_OFF = 100.0


@dataclass(frozen=True)
class _LossCase:
    schedule: str
    x0: numpy.ndarray
    eps: numpy.ndarray
    t: numpy.ndarray
    known: numpy.ndarray
    gamma: float

    @property
    def sched(self):
        return built_schedule(self.schedule)


@st.composite
def _loss_cases(draw):
    schedule = draw(st.sampled_from(sorted(SCHEDULES)))
    batch, frames = draw(st.integers(1, 3)), draw(st.integers(2, 4))
    shape = (batch, frames, *(draw(st.integers(1, 2)) for _ in range(3)))
    known = numpy.array(
        draw(st.lists(st.booleans(), min_size=batch * frames, max_size=batch * frames))
    ).reshape(batch, frames)
    known[known.all(axis=1), -1] = False
    steps = len(built_schedule(schedule))
    return _LossCase(
        schedule,
        draw(S.arrays(shape, -2.0, 2.0)),
        draw(S.arrays(shape, -2.0, 2.0)),
        numpy.array(draw(st.lists(st.integers(0, steps - 1), min_size=batch, max_size=batch))),
        known,
        draw(st.sampled_from([5.0, 1.0, 20.0])),
    )


def _describe_loss(case: _LossCase) -> str:
    return (
        f"schedule = {case.schedule}  (T = {len(case.sched)})\n"
        f"x0 = {show(case.x0)}\neps = {show(case.eps)}\n"
        f"t = {case.t.tolist()}  (code indices)\nknown = {show(case.known)}\n"
        f"gamma = {case.gamma!r}\n"
        f"the model predicts 0.5 x_t, plus {_OFF:g} on the known frames"
    )


def _spread(values: numpy.ndarray, like: numpy.ndarray) -> numpy.ndarray:
    return values.reshape(values.shape + (1,) * (like.ndim - values.ndim))


def _reference(case: _LossCase):
    """x_t and the loss of eq-masked-loss for the check's model, computed here."""
    ab = _spread(case.sched.alpha_bars[case.t], case.x0)
    a, s = numpy.sqrt(ab), numpy.sqrt(1.0 - ab)
    known = _spread(case.known, case.x0)
    x_t = numpy.where(known, case.x0, a * case.x0 + s * case.eps)
    prediction = 0.5 * x_t + _OFF * known
    snr = case.sched.snr[case.t]
    weight = _spread(numpy.minimum(snr, case.gamma) / (snr + 1.0), case.x0)
    unknown = numpy.broadcast_to(~known, case.x0.shape)
    squared = weight * (prediction - (a * case.eps - s * case.x0)) ** 2
    return x_t, squared[unknown].sum() / unknown.sum()


def check_masked_loss(fn: Callable, exercise: str = "12.1", max_examples: int = DEFAULT_EXAMPLES):
    """``fn(alpha_bars, model, x0, t, eps, known, gamma)`` returns the masked min-SNR v loss
    of eq-masked-loss, a scalar; ``model(x_t, t, known)`` is called once.

    The model must be given x_t with the known frames clean (to 1e-12), and the loss must equal
    the check's own computation (to 1e-9), although the model is off by 100 on the known frames.
    """
    device = backend.default_device()
    xp = backend.module_for(device)

    def prop(case: _LossCase):
        seen = []

        def model(x_t, t, known):
            seen.append(float64_result("the x_t given to the model", x_t, case.x0.shape, device))
            return 0.5 * x_t + _OFF * xp.asarray(_spread(case.known, case.x0), dtype=x_t.dtype)

        got = fn(
            xp.asarray(case.sched.alpha_bars),
            model,
            xp.array(case.x0),
            xp.asarray(case.t),
            xp.array(case.eps),
            xp.asarray(case.known),
            case.gamma,
        )
        if len(seen) != 1:
            raise Mismatch(f"the model was called {len(seen)} times; call it once, on x_t")
        x_t, loss = _reference(case)
        compare(
            "the x_t given to the model (known frames clean, x_t = x0; the others in closed form)",
            seen[0],
            x_t,
            1e-12,
            1e-12,
        )
        got = as_float64("the loss", got, ())
        compare(
            "the loss (against the sum over the unknown frames of w_v (prediction - v)^2, "
            "divided by their number of entries; the model is off by 100 on the known frames)",
            got,
            numpy.array(loss),
            1e-9,
            1e-12,
        )

    return grade(
        exercise,
        "the masked min-SNR v loss",
        "eq-masked-loss",
        prop,
        _loss_cases(),
        statement=EQUATIONS["eq-masked-loss"],
        describe=_describe_loss,
        forbid=LIBRARY.get("12.1", ()),
        max_examples=max_examples,
    )


# ============================================================================================
# exercise 12.2: drawing frame masks
# ============================================================================================

_DRAWS = 20_000


@dataclass(frozen=True)
class _MaskCase:
    frames: int
    mix: dict
    seed: int


@st.composite
def _mask_cases(draw):
    shares = draw(st.lists(st.sampled_from([0, 1, 2, 3]), min_size=4, max_size=4))
    if not any(shares):
        shares[0] = 1
    mix = {kind: share / sum(shares) for kind, share in zip(KINDS, shares) if share}
    return _MaskCase(draw(st.integers(2, 5)), mix, draw(st.integers(0, 2**16)))


def _describe_masks(case: _MaskCase) -> str:
    mix = ", ".join(f"{kind}: {p:.3g}" for kind, p in case.mix.items())
    return f"frames = {case.frames}\nmix = {{{mix}}}\nbatch = {_DRAWS} clips"


def _probability(mask: tuple, mix: dict) -> float:
    """The chance of drawing ``mask`` (a tuple of bools, one per frame) under ``mix``."""
    frames, count = len(mask), sum(mask)
    if count == frames:
        return 0.0
    prefix = 0 < count and all(mask[:count])
    suffix = 0 < count and all(mask[frames - count :])
    random = 0.5**frames * (1.0 + (1.0 / frames if count == frames - 1 else 0.0))
    return (
        mix.get("none", 0.0) * (count == 0)
        + mix.get("first", 0.0) * prefix / (frames - 1)
        + mix.get("last", 0.0) * suffix / (frames - 1)
        + mix.get("random", 0.0) * random
    )


def check_frame_masks(fn: Callable, exercise: str = "12.2", max_examples: int = 30):
    """``fn(rng, batch, frames, mix)`` returns (batch, frames) bool masks of known frames, one
    kind per clip drawn from ``mix`` (kind -> probability).

    No mask may know every frame; and over 20,000 clips the count of every possible mask must
    be within 5 standard deviations (plus 3) of its expected count under the mix, which the
    check computes from the kinds' definitions.
    """

    def prop(case: _MaskCase):
        rng = numpy.random.default_rng(case.seed)
        got = as_array(
            "the masks", fn(rng, _DRAWS, case.frames, dict(case.mix)), (_DRAWS, case.frames)
        )
        if got.dtype != numpy.bool_:
            raise Mismatch(f"the masks have dtype {got.dtype}; they must be bool")
        full = got.all(axis=1)
        if full.any():
            raise Mismatch(
                f"{int(full.sum())} of {_DRAWS} masks know every frame: every mask must leave "
                "at least one frame to generate"
            )
        codes = got.astype(numpy.int64) @ (1 << numpy.arange(case.frames))
        counts = numpy.bincount(codes, minlength=2**case.frames)
        for bits in itertools.product((False, True), repeat=case.frames):
            mask = bits[::-1]
            p = _probability(mask, case.mix)
            code = sum(1 << f for f, known in enumerate(mask) if known)
            mean, spread = _DRAWS * p, math.sqrt(_DRAWS * p * (1.0 - p))
            if abs(counts[code] - mean) > 5.0 * spread + 3.0:
                shown = "".join("K" if known else "." for known in mask)
                raise Mismatch(
                    f"the mask {shown} (K = known frame) came up {counts[code]} times in "
                    f"{_DRAWS} clips; the mix makes it {mean:.1f} +- {spread:.1f} on average, "
                    "so the kinds are not drawn with the frequencies they should have"
                )

    return grade(
        exercise,
        "drawing frame masks",
        "",
        prop,
        _mask_cases(),
        statement=EQUATIONS["frame-masks"],
        describe=_describe_masks,
        forbid=LIBRARY.get("12.2", ()),
        max_examples=max_examples,
    )
