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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy

from .. import backend
from ..autograd.tensor import Tensor, no_grad
from ..diffusion import process
from ..world import to_signed
from ..world.captions import COLOURS, SceneSpec
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


def one_step_x0_errors(system, data, captions, level: int, noise) -> numpy.ndarray:
    """Per-clip mean squared error of the network's one-step x0 estimate at noise ``level``,
    for signed clips ``data`` noised with ``noise`` (eq-closed-form), under ``captions``; host
    float64, shape (clips,)."""
    device = system.encoder.device
    data_d, noise_d = backend.to_device(data, device), backend.to_device(noise, device)
    ids, mask = system.tokenize(captions)
    with no_grad():
        tokens, token_mask = system.encoder(ids, mask)
        t = backend.xp_of(data_d).full(len(data), level, dtype=numpy.int64)
        x_t = process.q_sample(system.schedule, data_d, t, noise_d)
        prediction = system.model(Tensor(x_t), t, tokens, token_mask).data
        x0, _ = process.to_x0_and_eps(system.schedule, x_t, t, prediction, system.target)
    squared = ((x0 - data_d) ** 2).reshape(len(data), -1).mean(axis=1)
    return backend.to_numpy(squared).astype(numpy.float64)


def word_effect(system, specs, word: str, levels, seed: int = 0) -> dict:
    """The word effect (eq-word-effect) of changing ``word`` (a key of ``COUNTERFACTUALS``) in
    the captions of ``specs``, at each noise level of ``levels``, and the data gap.

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
    gap = ((to_signed(changed_clips) - data) ** 2).reshape(len(data), -1).mean(axis=1)
    noise = numpy.random.default_rng(seed).standard_normal(data.shape).astype(numpy.float32)
    true_captions = [spec.caption for spec in specs]
    changed_captions = [spec.caption for spec in changed_specs]
    result = {"clips": len(specs), "data_gap": summarize(gap), "levels": {}}
    for level in levels:
        true = one_step_x0_errors(system, data, true_captions, int(level), noise)
        changed = one_step_x0_errors(system, data, changed_captions, int(level), noise)
        effect = changed - true
        result["levels"][str(int(level))] = {
            "true": summarize(true),
            "changed": summarize(changed),
            "effect": summarize(effect),
            "relative": float(effect.mean() / true.mean()) if true.mean() > 0 else None,
        }
    return result


__all__ = [
    "COUNTERFACTUALS",
    "one_step_x0_errors",
    "opposite_direction",
    "other_colours",
    "word_effect",
]
