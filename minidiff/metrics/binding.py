r"""Which words a trained network's patches attend to: does a colour word land on its ball?

In the U-ViT the caption's words are tokens beside the patches, so in every block l and head h
each patch token p gives the word token w an attention weight :math:`P^{(l,h)}_{p w}`
(eq-attention). Take a scene of two balls, coloured A and B, and let :math:`S_A` be the patch
tokens that cover ball A and not ball B (in any frame). Ball A is **bound** to its colour word in
block l when its patches weigh that word above the other ball's colour word, averaged over the
heads and over its patches (eq-colour-binding):

.. math:: b_l(A) = \mathbb 1\Big[\operatorname{mean}_{p \in S_A} \operatorname{mean}_h
          P^{(l,h)}_{p\, w_A} > \operatorname{mean}_{p \in S_A} \operatorname{mean}_h
          P^{(l,h)}_{p\, w_B}\Big].

A network whose patches do not tell the two colour words apart binds half the balls, by
chance; the **binding rate** of a block is the mean of :math:`b_l` over both balls of many
scenes, with its bootstrap interval (eq-bootstrap). The clip goes in noised to one level t
(eq-closed-form), as during training, so the patches see a ball only as well as the noise lets
them.
"""

from __future__ import annotations

import numpy

from .. import backend
from ..autograd.tensor import Tensor, no_grad
from ..diffusion import process
from ..models.text import split_words
from ..nn.attention import recording_attention
from ..world import make_dataset, to_signed
from ..world.captions import SceneSpec
from .intervals import summarize


def ball_patches(spec: SceneSpec, frames: int, size: int, patch: int) -> numpy.ndarray:
    """(balls, frames, size / patch, size / patch) bool: the patches of each frame that hold a
    pixel centre within each ball's radius, in the order of the U-ViT's tokens (t, i, j)."""
    if size % patch:
        raise ValueError(f"patches of {patch} pixels do not tile frames of {size}")
    track = spec.simulate(frames, size)
    centres = numpy.arange(size) + 0.5
    cells = size // patch
    covered = numpy.zeros((len(spec.colours), frames, cells, cells), dtype=bool)
    for ball, radius in enumerate(track.radii):
        for frame in range(frames):
            x, y = track.positions[frame, ball]
            inside = (centres[None, :] - x) ** 2 + (centres[:, None] - y) ** 2 <= radius**2
            covered[ball, frame] = inside.reshape(cells, patch, cells, patch).any(axis=(1, 3))
    return covered


def word_attention(system, clips, captions, level: int, noise) -> numpy.ndarray:
    """(clips, blocks, patches, words): the attention every patch token gives every word token
    in each block, averaged over the heads, for ``clips`` (n, F, 3, H, W) in [0, 1] noised to
    ``level`` with ``noise`` (eq-closed-form) under their ``captions``; blocks in forward order.
    Host float64."""
    network = system.model
    config = network.config
    if config.tubelet != 1:
        raise ValueError("word_attention maps patches to frames one to one: it needs tubelet 1")
    device = system.encoder.device
    data = backend.to_device(to_signed(numpy.asarray(clips, dtype=numpy.float32)), device)
    noise = backend.to_device(numpy.asarray(noise, dtype=numpy.float32), device)
    xp = backend.xp_of(data)
    ids, mask = system.tokenize(list(captions))
    with no_grad(), recording_attention(network) as records:
        tokens, token_mask = system.encoder(ids, mask)
        t = xp.full(len(data), level, dtype=numpy.int64)
        network(Tensor(process.q_sample(system.schedule, data, t, noise)), t, tokens, token_mask)
    words = slice(1, 1 + config.text_length)  # after the time token
    patches = slice(config.num_extra_tokens, None)
    return numpy.stack([w[:, :, patches, words].mean(axis=1) for w in records], axis=1).astype(
        numpy.float64
    )


def bound_balls(weights, captions, specs, frames: int, size: int, patch: int) -> dict:
    """Per ball of two-ball scenes, from head-averaged ``weights`` (clips, blocks, patches,
    words) as :func:`word_attention` returns them: ``bound`` (balls, blocks) bool, b_l of
    eq-colour-binding; ``own`` and ``other`` (balls, blocks), the mean weight its patches S_A
    give its colour word and the other ball's; ``text`` (balls, blocks), the whole weight they
    give the caption. Balls whose every patch is shared with the other ball are left out."""
    weights = numpy.asarray(weights)
    found: dict = {"bound": [], "own": [], "other": [], "text": []}
    for n, (caption, spec) in enumerate(zip(captions, specs)):
        if len(spec.colours) != 2:
            raise ValueError(f"colour binding compares two balls; {caption!r} has another count")
        words = split_words(caption)
        covered = ball_patches(spec, frames, size, patch).reshape(2, -1)
        for ball in range(2):
            alone = covered[ball] & ~covered[1 - ball]
            if not alone.any():
                continue
            seen = weights[n][:, alone]  # (blocks, |S_A|, words)
            mine = seen[:, :, words.index(spec.colours[ball])].mean(axis=1)
            theirs = seen[:, :, words.index(spec.colours[1 - ball])].mean(axis=1)
            found["bound"].append(mine > theirs)
            found["own"].append(mine)
            found["other"].append(theirs)
            found["text"].append(seen.sum(axis=2).mean(axis=1))
    return {name: numpy.array(values) for name, values in found.items()}


def colour_binding(system, scenes: int = 64, level: int = 500, seed: int = 0) -> dict:
    """The binding rate (eq-colour-binding) of every block of ``system``'s network on
    ``scenes`` two-ball in-distribution scenes noised to ``level``, in forward order (chance:
    0.5), with the weight a ball's patches give its own colour word, the other's, and the whole
    caption: ``{"clips", "balls", "level", "blocks": [{"binding", "own", "other", "text"}]}``,
    each a mean with its 95% bootstrap interval over the balls (eq-bootstrap)."""
    frames, size, patch = system.config.frames, system.config.height, system.model.config.patch
    clips, captions, specs = make_dataset(scenes, "id", frames, size, seed=seed, counts=(2,))
    noise = numpy.random.default_rng([seed, level]).standard_normal(clips.shape)
    weights = word_attention(system, clips, captions, level, noise)
    balls = bound_balls(weights, captions, specs, frames, size, patch)
    blocks = [
        {
            "binding": summarize(balls["bound"][:, block]),
            "own": summarize(balls["own"][:, block]),
            "other": summarize(balls["other"][:, block]),
            "text": summarize(balls["text"][:, block]),
        }
        for block in range(weights.shape[1])
    ]
    return {"clips": len(clips), "balls": len(balls["bound"]), "level": level, "blocks": blocks}
