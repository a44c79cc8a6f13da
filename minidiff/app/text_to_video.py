"""The text-to-video system: tokenizer, text encoder, U-ViT and noise schedule together.

``TextToVideo.sample(prompts)`` runs DDIM with classifier-free guidance (eq-cfg) on clips of the
preset's shape and returns them in [0, 1]; ``continue_clips`` makes longer clips window by window,
each window's first frames fixed to the last frames generated so far (conditioning by
replacement, eq-replacement).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy

from .. import backend, io
from ..autograd.tensor import Tensor, no_grad
from ..diffusion import samplers, schedules
from ..models import TextEncoder, Tokenizer, UViT, UViTConfig
from ..world import VOCABULARY, from_signed
from .presets import Preset, get_preset

CHANNELS = 3


class TextToVideo:
    """A caption-conditioned video diffusion model built from a :class:`Preset`."""

    def __init__(self, preset: Preset, tokenizer: Tokenizer | None = None, device=None):
        self.preset = preset
        self.tokenizer = tokenizer or Tokenizer(VOCABULARY)
        text = dict(preset.text)
        self.encoder = TextEncoder(len(self.tokenizer), device=device, **text)
        self.config = UViTConfig(
            frames=preset.frames,
            channels=CHANNELS,
            height=preset.size,
            width=preset.size,
            text_dim=text["dim"],
            text_length=text["max_length"],
            **preset.model,
        )
        self.model = UViT(self.config, device=device)
        self.schedule = schedules.cosine(1000)
        self.target = preset.train.get("target", "eps")

    # --- captions -------------------------------------------------------------------------------
    def tokenize(self, prompts, allow_unknown: bool = False):
        """Ids and mask at the encoder's fixed length; unknown words are a clear error."""
        return self.tokenizer.encode(
            prompts, max_length=self.encoder.max_length, allow_unknown=allow_unknown
        )

    # --- sampling -------------------------------------------------------------------------------
    def guided_model(self, prompts, guidance: float, known_frames=None):
        """(x_t, t) -> guided prediction for ``prompts``; conditional and null captions go
        through the network as one batch of 2B. ``known_frames`` (B, F) bool tells a
        frame-conditioned network which frames of x_t are given clean."""
        ids, mask = self.tokenize(prompts)
        with no_grad():
            tokens, token_mask = self.encoder(ids, mask)
            null_tokens, null_mask = self.encoder.null_condition(len(ids), ids.shape[1])
        xp = backend.xp_of(token_mask)
        both_tokens = Tensor(xp.concatenate([tokens.data, null_tokens.data]))
        both_mask = xp.concatenate([token_mask, null_mask])

        both_known = None if known_frames is None else xp.concatenate([known_frames] * 2)

        def model(x, t):
            doubled = Tensor(xp.concatenate([x.data, x.data]))
            out = self.model(
                doubled,
                xp.concatenate([xp.asarray(t)] * 2),
                both_tokens,
                both_mask,
                known=both_known,
            ).data
            conditional, unconditional = out[: len(ids)], out[len(ids) :]
            return samplers.classifier_free_guidance(unconditional, conditional, guidance)

        return model

    def sample(
        self,
        prompts,
        steps: int | None = None,
        guidance: float | None = None,
        eta: float = 0.0,
        seed: int = 0,
        known=None,
        known_mask=None,
        conditioning: str | None = None,
        progress: bool = True,
    ) -> numpy.ndarray:
        """Clips for ``prompts``, float32 (n, F, 3, H, W) in [0, 1] on the host.

        ``known`` (n, F, 3, H, W) in [-1, 1] with ``known_mask`` (bool, same shape) fixes some
        frames. ``conditioning`` says how: ``"mask"`` gives them clean to a network trained with
        frame masks (eq-masked-loss; whole frames only), ``"replacement"`` noises them to each
        step's level (eq-replacement). The default is ``"mask"`` for a frame-conditioned
        network, else ``"replacement"``."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        steps = steps or self.preset.sample_steps
        guidance = self.preset.guidance if guidance is None else guidance
        if not math.isfinite(guidance):
            raise ValueError(
                f"guidance must be a finite number (0 is unguided, a few units is usual), "
                f"got {guidance}"
            )
        if not (math.isfinite(eta) and eta >= 0):
            raise ValueError(
                f"eta must be a finite number >= 0 (0 is deterministic DDIM, 1 DDPM-like), "
                f"got {eta}"
            )
        device = self.encoder.device
        backend.manual_seed(seed)
        shape = (len(prompts), self.config.frames, CHANNELS, self.config.height, self.config.width)
        conditioning = conditioning or ("mask" if self.config.frame_conditioning else "replacement")
        if conditioning not in ("mask", "replacement"):
            raise ValueError(f"conditioning must be 'mask' or 'replacement', got {conditioning!r}")
        known_frames = None
        if known is not None and conditioning == "mask":
            known_frames = self._known_frames(known_mask, shape)
        x = samplers.ddim_sample(
            self.guided_model(prompts, guidance, known_frames),
            self.schedule,
            shape,
            steps=steps,
            eta=eta,
            parameterization=self.target,
            clip_x0=1.0,
            known=known,
            known_mask=known_mask,
            known_clean=known_frames is not None,
            device=device,
            progress=progress,
        )
        return from_signed(backend.to_numpy(x))

    def _known_frames(self, known_mask, shape):
        """(n, F) bool from a whole-clip mask whose frames are each all known or all unknown."""
        if not self.config.frame_conditioning:
            raise ValueError(
                "conditioning='mask' needs a network trained with frame masks "
                "(frame_conditioning); use conditioning='replacement'"
            )
        xp = backend.xp_of(known_mask)
        if tuple(known_mask.shape) != shape:
            raise ValueError(f"known_mask of shape {known_mask.shape}, expected {shape}")
        flat = known_mask.reshape(shape[0], shape[1], -1)
        frames = flat.all(axis=2)
        if bool(xp.any(frames != flat.any(axis=2))):
            raise ValueError("conditioning='mask' fixes whole frames: known_mask is partial")
        return frames

    def continue_clips(self, prompts, clips, total_frames: int, context: int, **kwargs):
        """Extend each clip of ``clips`` ((n, F0, 3, H, W) in [0, 1]) to ``total_frames`` frames,
        prompted by ``prompts[i]``: each new window keeps the last ``context`` frames made so far
        as known frames (eq-replacement) and samples the other ``F - context``. All clips advance
        together, one batch per window. Returns (n, total_frames, 3, H, W)."""
        frames = self.config.frames
        if not 0 < context < frames:
            raise ValueError(f"context must be between 1 and {frames - 1} frames, got {context}")
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        video = numpy.asarray(clips, dtype=numpy.float32)
        if video.ndim != 5 or len(video) != len(prompts) or video.shape[1] < context:
            raise ValueError(
                f"clips of shape {video.shape} for {len(prompts)} prompts: expected "
                f"(n, F0 >= {context}, 3, H, W) with n = {len(prompts)}"
            )
        device = self.encoder.device
        while video.shape[1] < total_frames:
            known = numpy.zeros((len(video), frames, *video.shape[2:]), dtype=numpy.float32)
            known[:, :context] = video[:, -context:] * 2.0 - 1.0
            mask = numpy.zeros(known.shape, dtype=bool)
            mask[:, :context] = True
            window = self.sample(
                prompts,
                known=backend.to_device(known, device),
                known_mask=backend.to_device(mask, device),
                **kwargs,
            )
            video = numpy.concatenate([video, window[:, context:]], axis=1)
        return video[:, :total_frames]

    def stretched(self, frames: int) -> TextToVideo:
        """The same system making clips of ``frames`` frames: the trained weights in a U-ViT
        whose grid has more (or fewer) frames, with the same text encoder and schedule. Only
        position encodings that are functions of the position can stretch: rotary and sincos
        ones are recomputed for the longer grid, learned ones have no vector for the new frames
        (a ValueError). Frame positions beyond training are length extrapolation."""
        if self.config.pos_encoding == "learned":
            raise ValueError("learned positions have no vectors for frames beyond training")
        stretched = TextToVideo.__new__(TextToVideo)
        stretched.preset = self.preset.with_overrides(frames=frames)
        stretched.tokenizer, stretched.encoder = self.tokenizer, self.encoder
        stretched.schedule, stretched.target = self.schedule, self.target
        stretched.config = replace(self.config, frames=frames)
        stretched.model = UViT(stretched.config, device=self.encoder.device)
        weights = {k: v for k, v in self.model.state_dict().items() if k != "patch_pos"}
        stretched.model.load_state_dict(weights, strict=False)
        return stretched

    # --- checkpoints ------------------------------------------------------------------------------
    def metadata(self) -> dict:
        return {"preset": self.preset.name, "vocabulary": list(self.tokenizer.vocabulary[2:])}

    @classmethod
    def from_checkpoint(cls, path, ema: bool = True, device=None) -> TextToVideo:
        """The system saved by training, with the EMA weights (or the raw ones), or saved by
        :meth:`save_weights`."""
        state = io.load(path)
        if "meta" not in state or "preset" not in state["meta"]:
            raise io.CheckpointError(f"{path} is not a text-to-video checkpoint (no preset)")
        preset = get_preset(state["meta"]["preset"])
        if "preset_overrides" in state["meta"]:
            preset = preset.with_overrides(**state["meta"]["preset_overrides"])
        system = cls(preset, Tokenizer(state["meta"]["vocabulary"]), device=device)
        for module, name in ((system.model, "model"), (system.encoder, "conditioner")):
            module.load_state_dict(state[name])
            if ema and f"ema_{name}" in state:  # the averaged parameters over the trained ones
                module.load_state_dict(state[f"ema_{name}"]["shadow"], strict=False)
        system._check_finite_weights(path)
        return system

    def _check_finite_weights(self, path) -> None:
        """A :class:`~minidiff.io.CheckpointError` naming the weights loaded from ``path`` that
        hold a NaN or an inf: they would sample black clips."""
        arrays = {f"model.{k}": p.data for k, p in self.model.named_parameters()}
        arrays |= {f"conditioner.{k}": p.data for k, p in self.encoder.named_parameters()}
        bad = backend.non_finite(arrays)
        if bad:
            raise io.CheckpointError(
                f"{path}: {len(bad)} weight arrays hold NaN or inf (the first: {bad[0]}), the "
                "run diverged; sample from a checkpoint written before, or train again with a "
                "lower lr or a gradient clip"
            )

    def save_weights(self, path, **meta) -> None:
        """The network and the text encoder as they are now (after training, the EMA weights),
        with every field of the preset (so the file rebuilds even if the named preset changes
        later), and nothing for resuming: a file to ship and to load with
        :meth:`from_checkpoint`. ``meta`` (JSON-able) is stored beside, e.g. the command
        that trained it."""
        io.save(
            path,
            model=self.model,
            conditioner=self.encoder,
            meta={**self.metadata(), "preset_overrides": self.preset.fields(), **meta},
        )
