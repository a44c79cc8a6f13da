r"""How much a trained network reads one word of its caption: the error it makes with that word
changed.

Take a held-out clip :math:`x_0` with its caption :math:`c`, and a *counterfactual* caption
:math:`c'` that differs in one word: the opposite direction, or other colours. Noise the clip
once, :math:`x_t = \sqrt{\bar\alpha_t} x_0 + \sqrt{1 - \bar\alpha_t}\,\varepsilon`, and ask the
network for its one-step estimate :math:`\hat x_0(x_t, t, \cdot)` under both captions, with the
same :math:`x_t`. The *word effect* at level t is how much worse the wrong word makes it
(eq-word-effect):

.. math:: \Delta(t) = \mathbb{E}\,\lVert \hat x_0(x_t, t, c') - x_0 \rVert^2
                      - \mathbb{E}\,\lVert \hat x_0(x_t, t, c) - x_0 \rVert^2 .

A network that ignores the word has :math:`\Delta = 0` at every level; one that uses it is
hurt by the wrong word, most where the noisy clip itself cannot tell (high t). The word's worth
in the data is the *data gap* :math:`\mathbb{E}\lVert x_0' - x_0 \rVert^2`, where :math:`x_0'`
is the same scene rendered as :math:`c'` says: with other colours, or run backwards (a ball
moving at constant velocity, run backwards, is the ball of the opposite direction started where
the first one ended; :func:`opposite_direction`). Two words with similar data gaps but effects
a hundred times apart say which of them the network has learned to read.

What a network *could* get from the word is the effect of the Bayes-optimal denoiser,
:math:`\hat x_0^*(x_t, c) = \mathbb{E}[x_0 \mid x_t, c]`, the minimizer of the x0 loss. For
one-ball scenes it is computable: the scenes of a caption are a pool of rendered clips of its
motion and size painted its colour (a one-ball clip is linear in the ball's colour), and the
posterior mean over such a pool is the mixture oracle (eq-mixture-oracle) with zero widths
(:func:`bayes_word_effect`). It is exact for the pool's distribution, so it slightly overstates
what a network can get at low noise, where it recognizes the pool's clips one by one.

Two ways to see where a word gets lost:

* **Given frames.** A network trained with frame masks can be handed the first ``given`` frames
  clean (x_t = x_0 there, eq-masked-loss), and the error then counts the other frames only.
  With the first frame given, the ball's place is known, and the direction word is all that
  says where it goes next: the word's worth is largest there.
* **The word's features** (:func:`feature_similarity`): the cosine between the text encoder's
  features at the word that two captions do not share. An encoder that gives "left" and
  "right" the same features leaves nothing downstream to read, whatever the network after it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy

from .. import backend
from ..autograd.tensor import Tensor, no_grad
from ..diffusion import process
from ..diffusion.oracles import GaussianMixture
from ..world import make_dataset, to_signed
from ..world.captions import COLOURS, SceneSpec
from ..world.render import BACKGROUND, colour_of
from .intervals import summarize

OPPOSITE = {
    "moves left": "moves right",
    "moves right": "moves left",
    "moves up": "moves down",
    "moves down": "moves up",
}


def opposite_direction(spec: SceneSpec, frames: int, size: int) -> SceneSpec:
    """The scene whose clip is ``spec``'s run backwards: the opposite "moves" motion, each ball
    starting where it ends in ``spec``'s ``frames``-frame clip at ``size`` pixels."""
    if spec.motion not in OPPOSITE:
        raise ValueError(
            f"only constant-velocity scenes run backwards as another caption; {spec.motion!r} "
            f"is not one of {sorted(OPPOSITE)}"
        )
    end = spec.simulate(frames, size).positions[-1] / size
    return replace(
        spec,
        motion=OPPOSITE[spec.motion],
        positions=tuple((float(x), float(y)) for x, y in end),
    )


def other_colours(spec: SceneSpec, frames: int, size: int) -> SceneSpec:
    """The same scene with every ball painted the next colour of the palette (so colours within
    the scene stay distinct); ``frames`` and ``size`` are unused, for a common signature."""
    names = list(COLOURS)
    return replace(
        spec, colours=tuple(names[(names.index(c) + 1) % len(names)] for c in spec.colours)
    )


COUNTERFACTUALS: dict[str, Callable[[SceneSpec, int, int], SceneSpec]] = {
    "direction": opposite_direction,
    "colour": other_colours,
}


def one_step_x0_errors(system, data, captions, level: int, noise, given: int = 0) -> numpy.ndarray:
    """Per-clip mean squared error of the network's one-step x0 estimate at noise ``level``,
    for signed clips ``data`` noised with ``noise`` (eq-closed-form), under ``captions``; host
    float64, shape (clips,). With ``given`` > 0 the first ``given`` frames go in clean and
    marked known (a network trained with frame masks), and only the other frames count."""
    frames = data.shape[1]
    if not 0 <= given < frames:
        raise ValueError(f"given must be 0 to {frames - 1} frames of {frames}, got {given}")
    device = system.encoder.device
    data_d, noise_d = backend.to_device(data, device), backend.to_device(noise, device)
    xp = backend.xp_of(data_d)
    ids, mask = system.tokenize(captions)
    known = None
    if given:
        known = xp.zeros((len(data), frames), dtype=bool)
        known[:, :given] = True
    with no_grad():
        tokens, token_mask = system.encoder(ids, mask)
        t = xp.full(len(data), level, dtype=numpy.int64)
        x_t = process.q_sample(system.schedule, data_d, t, noise_d)
        if given:
            x_t[:, :given] = data_d[:, :given]
        prediction = system.model(Tensor(x_t), t, tokens, token_mask, known=known).data
        x0, _ = process.to_x0_and_eps(system.schedule, x_t, t, prediction, system.target)
    squared = ((x0 - data_d)[:, given:] ** 2).reshape(len(data), -1).mean(axis=1)
    return backend.to_numpy(squared).astype(numpy.float64)


def _level(true: numpy.ndarray, changed: numpy.ndarray) -> dict:
    """One level of a word effect from per-clip errors under the true and the changed caption:
    each with its interval, their difference (eq-word-effect), and that as a fraction."""
    effect = changed - true
    return {
        "true": summarize(true),
        "changed": summarize(changed),
        "effect": summarize(effect),
        "relative": float(effect.mean() / true.mean()) if true.mean() > 0 else None,
    }


def word_effect(system, specs, word: str, levels, seed: int = 0, given: int = 0) -> dict:
    """The word effect (eq-word-effect) of changing ``word`` (a key of ``COUNTERFACTUALS``) in
    the captions of ``specs``, at each noise level of ``levels``, and the data gap; with the
    first ``given`` frames given clean (:func:`one_step_x0_errors`), over the other frames.

    Returns ``{"clips", "data_gap", "levels": {t: {"true", "changed", "effect", "relative"}}}``:
    each a mean with its 95% bootstrap interval (eq-bootstrap) over clips, ``relative`` the
    effect as a fraction of the true caption's error."""
    if word not in COUNTERFACTUALS:
        raise ValueError(f"no counterfactual for {word!r}; choose one of {sorted(COUNTERFACTUALS)}")
    if not specs:
        raise ValueError("word_effect needs at least one scene")
    frames, size = system.config.frames, system.config.height
    changed_specs = [COUNTERFACTUALS[word](spec, frames, size) for spec in specs]
    clips = numpy.stack([spec.render(frames, size) for spec in specs])
    changed_clips = numpy.stack([spec.render(frames, size) for spec in changed_specs])
    data = to_signed(clips).astype(numpy.float32)
    gap = ((to_signed(changed_clips) - data)[:, given:] ** 2).reshape(len(data), -1).mean(axis=1)
    noise = numpy.random.default_rng(seed).standard_normal(data.shape).astype(numpy.float32)
    true_captions = [spec.caption for spec in specs]
    changed_captions = [spec.caption for spec in changed_specs]
    result = {"clips": len(specs), "data_gap": summarize(gap), "levels": {}}
    for level in levels:
        true = one_step_x0_errors(system, data, true_captions, int(level), noise, given)
        changed = one_step_x0_errors(system, data, changed_captions, int(level), noise, given)
        result["levels"][str(int(level))] = _level(true, changed)
    return result


def feature_similarity(system, captions, other_captions) -> dict:
    """How alike the text encoder makes two words: for each pair of captions of equal length,
    the cosine between the encoder's features at the positions where their tokens differ
    (averaged over those positions), summarized as a mean with its 95% bootstrap interval
    (eq-bootstrap) over pairs. 1 means the encoder cannot tell the words apart."""
    if len(captions) != len(other_captions) or not captions:
        raise ValueError(
            f"feature_similarity needs pairs of captions, got {len(captions)} and "
            f"{len(other_captions)}"
        )
    ids, mask = system.tokenize(captions)
    other_ids, other_mask = system.tokenize(other_captions)
    differ = (ids != other_ids) & mask & other_mask
    unpaired = numpy.flatnonzero(~differ.any(axis=1) | (mask != other_mask).any(axis=1))
    if len(unpaired):
        row = int(unpaired[0])
        raise ValueError(
            f"captions {captions[row]!r} and {other_captions[row]!r} must have the same number "
            "of words and differ in at least one"
        )
    with no_grad():
        features = backend.to_numpy(system.encoder(ids, mask)[0].data).astype(numpy.float64)
        other = backend.to_numpy(system.encoder(other_ids, other_mask)[0].data)
    other = other.astype(numpy.float64)
    cosine = (features * other).sum(-1) / (
        numpy.linalg.norm(features, axis=-1) * numpy.linalg.norm(other, axis=-1) + 1e-12
    )
    return summarize((cosine * differ).sum(axis=1) / differ.sum(axis=1))


def _coverage(spec: SceneSpec, frames: int, size: int) -> numpy.ndarray:
    """How much of each pixel a one-ball scene's ball covers, (frames, size, size) in [0, 1]:
    its clip is the background plus coverage times (colour - background)."""
    clip = spec.render(frames, size).astype(numpy.float64)
    colour, background = colour_of(spec.colours[0]), numpy.asarray(BACKGROUND)
    channel = int(numpy.argmax(numpy.abs(colour - background)))
    return (clip[:, channel] - background[channel]) / (colour[channel] - background[channel])


def _painted(coverage: numpy.ndarray, colour: str) -> numpy.ndarray:
    """Signed clips (..., frames, 3, H, W) of balls of ``coverage`` painted ``colour``."""
    background = numpy.asarray(BACKGROUND)[:, None, None]
    paint = colour_of(colour)[:, None, None] - background
    return to_signed(background + coverage[..., :, None, :, :] * paint)


def bayes_word_effect(
    specs, word: str, schedule, levels, frames: int, size: int, pool: int = 24000, seed: int = 0
) -> dict:
    """The word effect (eq-word-effect) of the Bayes-optimal denoiser E[x0 | x_t, c] on
    one-ball ``specs``: for each caption, the mixture oracle (eq-mixture-oracle, zero widths)
    over the clips of a ``pool`` of one-ball training scenes with the caption's motion and size,
    painted its colour. Same noise as :func:`word_effect` with the same ``seed``; same result
    layout, plus ``references``, the fewest pool clips any caption had."""
    if word not in COUNTERFACTUALS:
        raise ValueError(f"no counterfactual for {word!r}; choose one of {sorted(COUNTERFACTUALS)}")
    if not specs or any(spec.count != 1 for spec in specs):
        raise ValueError("bayes_word_effect needs one or more scenes, each of one ball")
    motions = sorted(
        {spec.motion for spec in specs}
        | {COUNTERFACTUALS[word](s, frames, size).motion for s in specs}
    )
    _, _, pool_specs = make_dataset(
        pool, "train", frames, size, seed=seed + 1, counts=[1], motions=motions
    )
    coverage = numpy.stack([_coverage(spec, frames, size) for spec in pool_specs])
    keys = [(spec.sizes[0], spec.motion) for spec in pool_specs]
    by_key = {key: coverage[[i for i, k in enumerate(keys) if k == key]] for key in set(keys)}

    def oracle(x_t, spec, a, s):
        references = _painted(by_key[(spec.sizes[0], spec.motion)], spec.colours[0])
        mixture = GaussianMixture(
            numpy.ones(len(references)),
            references.reshape(len(references), -1),
            numpy.zeros(len(references)),
        )
        flat = x_t.reshape(1, -1)
        return mixture.expected_data(flat, numpy.array([a]), numpy.array([s])).reshape(x_t.shape)

    data = numpy.stack([_painted(_coverage(spec, frames, size), spec.colours[0]) for spec in specs])
    noise = numpy.random.default_rng(seed).standard_normal(data.shape).astype(numpy.float32)
    changed_specs = [COUNTERFACTUALS[word](spec, frames, size) for spec in specs]
    result = {"clips": len(specs), "references": min(len(v) for v in by_key.values()), "levels": {}}
    for level in levels:
        a = float(schedule.sqrt_alpha_bars[int(level)])
        s = float(schedule.sqrt_one_minus_alpha_bars[int(level)])
        true, changed = [], []
        for x0, z, spec, other in zip(data, noise, specs, changed_specs):
            x_t = a * x0 + s * z
            true.append(float(((oracle(x_t, spec, a, s) - x0) ** 2).mean()))
            changed.append(float(((oracle(x_t, other, a, s) - x0) ** 2).mean()))
        result["levels"][str(int(level))] = _level(numpy.array(true), numpy.array(changed))
    return result


__all__ = [
    "COUNTERFACTUALS",
    "bayes_word_effect",
    "feature_similarity",
    "one_step_x0_errors",
    "opposite_direction",
    "other_colours",
    "word_effect",
]
