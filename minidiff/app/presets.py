"""Named configurations of the text-to-video system: data, network, text encoder, training.

``tiny-cpu`` is the demo: 8 frames of 16 x 16 pixels, sized to train in about seven minutes on
two CPU cores, with what chapter 12's studies kept: frame masks (eq-masked-loss), adaLN-Zero
blocks (eq-adaln), the text encoder's word table drawn at standard deviation 1 and absolute sincos
positions added beside the rotary ones, on batches of 8 clips (twice the steps of 16 in the same
time, which chapter 12's demo studies found to learn motion sooner). ``tiny-cpu-plain`` is the
same network without them, the recipe before those studies: their reference, and the model the
benchmarks time against its PyTorch twin.
``small-gpu`` doubles time and space resolution for a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# The mix of frame masks (diffusion/masking.py) the studies train with: text-to-video for 40% of
# clips, the first k frames known for 40% (prediction, continuation), the last k or a random
# subset for the rest.
FRAME_MASKS = {"none": 0.4, "first": 0.4, "last": 0.1, "random": 0.1}
DEMO_STEPS = 3600  # what fits the demo in under ten minutes on two cores (batches of 8)


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

    def fields(self) -> dict:
        """Every field but the name: what rebuilds this preset whatever its name holds."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "name"}

    def overrides(self) -> dict:
        """The fields that differ from the preset of the same name (so that a checkpoint can
        rebuild exactly this one)."""
        base = get_preset(self.name)
        return {
            name: getattr(self, name)
            for name in self.__dataclass_fields__
            if getattr(self, name) != getattr(base, name)
        }


TINY_PLAIN = Preset(
    name="tiny-cpu-plain",
    description="8 frames of 16x16, a 0.3M-parameter U-ViT, text-to-video only",
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
)
TINY = replace(
    TINY_PLAIN,
    name="tiny-cpu",
    description="tiny-cpu-plain with frame masks, adaLN-Zero, the word table drawn at std 1 and "
    "absolute positions beside the rotary ones, batches of 8, 0.5M parameters; ~7 minutes of "
    "training on 2 cores",
    model={
        **TINY_PLAIN.model,
        "frame_conditioning": True,
        "adaln": True,
        "pos_encoding": "rope3d+sincos3d",
    },
    text={**TINY_PLAIN.text, "embedding_std": 1.0},
    train={**TINY_PLAIN.train, "steps": DEMO_STEPS, "batch_size": 8, "frame_masks": FRAME_MASKS},
)

PRESETS = {
    preset.name: preset
    for preset in [
        TINY,
        TINY_PLAIN,
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
