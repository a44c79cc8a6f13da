"""Exercise 12 (the masked loss and the frame masks): the checks of
``minidiff.checks.ex12_training`` pass a right answer, fail typical mistakes with a shrunk case,
and say NOT DONE for the stub."""

import numpy as np
import pytest

import minidiff as md
from minidiff.checks import ex12_training as E

from .verdicts import assert_not_done, by_name


def _loss(
    alpha_bars,
    model,
    x0,
    t,
    eps,
    known,
    gamma,
    clean=True,
    every_entry=False,
    rate=1.0,
    count_known=False,
):
    xp = md.backend.xp_of(x0)
    ab = alpha_bars[t].reshape((-1,) + (1,) * (x0.ndim - 1))
    a, s = ab**0.5, (1.0 - ab) ** 0.5
    spread = known.reshape(known.shape + (1,) * (x0.ndim - known.ndim))
    x_t = a * x0 + s * eps
    if clean:
        x_t = xp.where(spread, x0, x_t)
    snr = ab / (1.0 - ab)
    weight = xp.minimum(snr, gamma) / (snr + rate)
    counted = spread & False if count_known else spread
    unknown = xp.broadcast_to(~counted, x0.shape).astype(x0.dtype)
    squared = weight * (model(x_t, t, known) - (a * eps - s * x0)) ** 2 * unknown
    return squared.sum() / (unknown.size if every_entry else unknown.sum())


def loss_correct(alpha_bars, model, x0, t, eps, known, gamma):
    return _loss(alpha_bars, model, x0, t, eps, known, gamma)


def loss_known_frames_noised(alpha_bars, model, x0, t, eps, known, gamma):
    """The known frames noised like the others."""
    return _loss(alpha_bars, model, x0, t, eps, known, gamma, clean=False)


def loss_over_every_entry(alpha_bars, model, x0, t, eps, known, gamma):
    """Known frames zeroed but still counted in the mean."""
    return _loss(alpha_bars, model, x0, t, eps, known, gamma, every_entry=True)


def loss_eps_weight(alpha_bars, model, x0, t, eps, known, gamma):
    """min(SNR, gamma) / SNR, the eps multiplier, on the v loss."""
    return _loss(alpha_bars, model, x0, t, eps, known, gamma, rate=0.0)


def loss_unmasked(alpha_bars, model, x0, t, eps, known, gamma):
    """Every frame in the loss, the known ones too."""
    return _loss(alpha_bars, model, x0, t, eps, known, gamma, count_known=True)


def _masks(rng, batch, frames, mix, low=1, last_as_first=False, repair=True):
    kinds = ["none", "first", "last", "random"]
    kind = rng.choice(len(kinds), size=batch, p=[mix.get(k, 0.0) for k in kinds])
    count = rng.integers(low, frames, size=batch)[:, None]
    index = np.arange(frames)[None, :]
    coins = rng.random((batch, frames)) < 0.5
    if repair:
        full = np.flatnonzero(coins.all(axis=1))
        coins[full, rng.integers(0, frames, size=len(full))] = False
    last = index < count if last_as_first else index >= frames - count
    column = kind[:, None]
    return ((column == 1) & (index < count)) | ((column == 2) & last) | ((column == 3) & coins)


def masks_correct(rng, batch, frames, mix):
    return _masks(rng, batch, frames, mix)


def masks_k_from_zero(rng, batch, frames, mix):
    """k drawn from 0 .. F - 1: a "first" or "last" mask may know nothing."""
    return _masks(rng, batch, frames, mix, low=0)


def masks_last_as_first(rng, batch, frames, mix):
    """The "last" kind knows the first k frames."""
    return _masks(rng, batch, frames, mix, last_as_first=True)


def masks_random_unrepaired(rng, batch, frames, mix):
    """A random mask that knows every frame is kept."""
    return _masks(rng, batch, frames, mix, repair=False)


def test_masked_loss_passes_a_right_answer():
    verdict = E.check_masked_loss(loss_correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "wrong, says",
    [
        (loss_known_frames_noised, "the x_t given to the model"),
        (loss_over_every_entry, "the loss"),
        (loss_eps_weight, "the loss"),
        (loss_unmasked, "the loss"),
    ],
    ids=by_name,
)
def test_masked_loss_fails_a_typical_mistake(wrong, says):
    verdict = E.check_masked_loss(wrong)
    assert verdict.status == "FAILED" and "the smallest failing case found" in verdict.message
    assert "it must satisfy (eq-masked-loss)" in verdict.message and says in verdict.message
    assert "(shape (1, 2, 1, 1, 1), float64)" in verdict.message, verdict.message


def test_frame_masks_pass_a_right_answer():
    verdict = E.check_frame_masks(masks_correct)
    assert verdict.passed, verdict.message


@pytest.mark.parametrize(
    "wrong, says",
    [
        (masks_k_from_zero, "frequencies"),
        (masks_last_as_first, "frequencies"),
        (masks_random_unrepaired, "know every frame"),
    ],
    ids=by_name,
)
def test_frame_masks_fail_a_typical_mistake(wrong, says):
    verdict = E.check_frame_masks(wrong)
    assert verdict.status == "FAILED", verdict.message
    assert "the smallest failing case found" in verdict.message
    assert "frames = 2\n" in verdict.message or "frames = 3\n" in verdict.message, verdict.message
    assert says in verdict.message and "it must satisfy:" in verdict.message, verdict.message


def test_not_done():
    assert_not_done(E.check_masked_loss, "Exercise 12.1: write the masked loss", "12.1")
    assert_not_done(E.check_frame_masks, "Exercise 12.2: draw the frame masks", "12.2")
