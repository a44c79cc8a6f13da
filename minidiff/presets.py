"""Named configurations of the text-to-video system: data, network, text encoder, training.

``tiny-cpu`` is the demo: 8 frames of 16 x 16 pixels, sized to train in about seven minutes on
two CPU cores. ``small-gpu`` doubles time and space resolution for a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Preset:
    """Everything that decides a run, by name. ``model`` holds UViTConfig fields other than the
    data shape and text sizes; ``text`` the TextEncoder's; ``train`` TrainConfig's; ``world``
    restricts the scenes (``make_dataset``'s ``motions`` and ``counts``; empty: all)."""

    name: str
    description: str
    frames: int
    size: int
    train_clips: int
    model: dict = field(default_factory=dict)
    text: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    world: dict = field(default_factory=dict)
    sample_steps: int = 25
    guidance: float = 2.0
    eval_clips: int = 64

    def with_overrides(self, **changes) -> Preset:
        """A copy with top-level fields replaced (e.g. fewer steps for a quick run)."""
        unknown = set(changes) - set(self.__dataclass_fields__)
        if unknown:
            raise ValueError(f"preset {self.name}: unknown field(s) {sorted(unknown)}")
        return replace(self, **changes)


PRESETS = {
    preset.name: preset
    for preset in [
        Preset(
            name="tiny-cpu",
            description="8 frames of 16x16, a 0.3M-parameter U-ViT; ~7 minutes on 2 cores",
            frames=8,
            size=16,
            train_clips=4000,
            model=dict(
                patch=4,
                tubelet=1,
                dim=64,
                depth=5,
                heads=2,
                pos_encoding="rope3d",
                pos_max_period=8.0,
                attention="joint",
            ),
            text=dict(dim=64, depth=1, heads=2, max_length=20),
            train=dict(
                steps=6000,
                batch_size=16,
                lr=2e-3,
                warmup_steps=200,
                weight_decay=0.01,
                ema_decay=0.995,
                grad_clip=1.0,
                cond_drop=0.1,
                target="v",
                min_snr_gamma=5.0,
                log_every=25,
                checkpoint_every=500,
                sample_every=500,
            ),
            sample_steps=25,
            guidance=2.0,
            eval_clips=64,
        ),
        Preset(
            name="small-gpu",
            description="16 frames of 32x32 with 2-frame tubelets; minutes on one GPU",
            frames=16,
            size=32,
            train_clips=20000,
            model=dict(
                patch=4,
                tubelet=2,
                dim=256,
                depth=9,
                heads=8,
                pos_encoding="rope3d",
                pos_max_period=16.0,
                attention="joint",
            ),
            text=dict(dim=128, depth=2, heads=4, max_length=20),
            train=dict(
                steps=20000,
                batch_size=64,
                lr=1e-3,
                warmup_steps=500,
                weight_decay=0.01,
                ema_decay=0.999,
                grad_clip=1.0,
                cond_drop=0.1,
                target="v",
                min_snr_gamma=5.0,
                log_every=100,
                checkpoint_every=2000,
                sample_every=2000,
            ),
            sample_steps=50,
            guidance=2.0,
            eval_clips=256,
        ),
    ]
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``, or an error listing the known ones."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; known presets: {', '.join(PRESETS)}")
    return PRESETS[name]
