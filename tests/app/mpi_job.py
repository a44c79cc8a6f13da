"""Data-parallel jobs for tests/app/test_distributed.py, started as
``mpiexec -n 2 python -m tests.app.mpi_job MODE FOLDER [STEPS [UNTIL]]``.

Modes:

* ``train``: train :func:`make_trainer`'s float64 model of STEPS steps in FOLDER up to step
  UNTIL (a checkpoint every 2 steps, the drift check every step), resuming from FOLDER's
  checkpoint if there is one; rank 0 writes ``params.npz``.
* ``gradients``: each rank's own gradients of one step, gathered, and the collective's sum of
  them, written by rank 0 to ``gradients.npz``.
* ``drift``: rank 1 nudges one parameter after step 3; the check at step 4 must fire.
* ``fail``: rank 1 raises in step 5, after the checkpoint of step 4; ``kill``: rank 1 is
  killed (SIGKILL) there instead.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import numpy as np

import minidiff as md
from minidiff import distributed, nn
from minidiff.app.train import TrainConfig, Trainer
from minidiff.diffusion import schedules
from minidiff.models import UViT, UViTConfig

FAILURE = "injected failure on rank 1"


class Conditioner(nn.Module):
    """Caption ids to float64 tokens; dropped captions become a learned null sequence."""

    def __init__(self, vocab=5, length=3, dim=6):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim, dtype=np.float64)
        self.null = nn.Parameter(md.zeros(length, dim, dtype=np.float64))

    def forward(self, ids, mask, drop=None):
        tokens = self.embed(ids)
        keep = md.tensor((~np.asarray(drop))[:, None, None].astype(np.float64), dtype=np.float64)
        tokens = tokens * keep + self.null * (1.0 - keep)
        return tokens, np.where(np.asarray(drop)[:, None], True, mask)


def make_trainer(folder, steps: int, **settings) -> Trainer:
    """A float64 text-conditioned U-ViT on 24 random clips, global batch 16, trained with
    every random choice the trainer makes: frame masks, per-frame noise levels, dropped
    captions, and min-SNR weights."""
    md.manual_seed(0)
    config = UViTConfig(
        frames=4,
        channels=1,
        height=4,
        width=4,
        patch=2,
        dim=16,
        depth=3,
        heads=2,
        text_dim=6,
        text_length=3,
        frame_conditioning=True,
        frame_times=True,
    )
    model = UViT(config, dtype=np.float64)
    rng = np.random.default_rng(0)
    clips = rng.uniform(-1, 1, (24, 4, 1, 4, 4))
    ids = rng.integers(1, 5, (24, 3))
    train = dict(
        steps=steps,
        batch_size=16,
        lr=1e-2,
        warmup_steps=2,
        log_every=1,
        checkpoint_every=2,
        check_every=1,
        cond_drop=0.3,
        target="v",
        frame_masks={"none": 0.4, "first": 0.3, "random": 0.3},
        frame_noise=0.5,
    )
    return Trainer(
        model,
        schedules.cosine(50),
        clips,
        TrainConfig(**(train | settings)),
        folder,
        conditioner=Conditioner(),
        ids=ids,
        mask=np.ones((24, 3), dtype=bool),
    )


def parameters(trainer: Trainer) -> dict:
    """Every parameter's values by name, copied to the host."""
    return {name: np.array(p.data) for name, p in trainer._named_parameters().items()}


def main(mode: str, folder: str, steps: str = "6", until: str = "6") -> None:
    world = distributed.world()
    folder = Path(folder)
    trainer = make_trainer(folder, int(steps))
    if mode == "train":
        if trainer.checkpoint_path.exists():
            trainer.resume()
        trainer.run(until=int(until), progress=False)
        if world.is_root:
            np.savez(folder / "params.npz", **parameters(trainer))
    elif mode == "gradients":
        loss = trainer._loss(md.backend.generator("cpu"))
        loss.backward()
        own = {name: p.grad.copy() for name, p in trainer._named_parameters().items()}
        gathered = world.comm.gather(own, root=0)
        world.sum_gradients(trainer.parameters, loss.data)
        if world.is_root:
            summed = {f"sum/{k}": p.grad for k, p in trainer._named_parameters().items()}
            ranks = {
                f"rank{r}/{k}": v for r, grads in enumerate(gathered) for k, v in grads.items()
            }
            np.savez(folder / "gradients.npz", **summed, **ranks)
    elif mode == "drift":
        update = trainer._update

        def nudged_update():
            update()
            if world.rank == 1 and trainer.step == 3:
                trainer.model.parameters()[0].data[0] += 1e-6

        trainer._update = nudged_update
        trainer.run(progress=False)
    elif mode in ("fail", "kill"):
        gradients = trainer._gradients

        def failing_gradients():
            if world.rank == 1 and trainer.step == 4:
                if mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                raise RuntimeError(FAILURE)
            return gradients()

        trainer._gradients = failing_gradients
        trainer.run(progress=False)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(*sys.argv[1:])
