"""Training a (text-conditioned) diffusion model: the loop, its bookkeeping, and exact resume.

One step: draw a batch of examples and timesteps (one per clip, or with ``frame_noise`` one per
frame for that fraction of the clips), noise the clips with the closed form, predict
the target (eps or v) with the network, take the (min-SNR weighted) MSE, clip the gradient
norm, step AdamW under a warmup + cosine schedule, update the EMA of the weights.
For classifier-free guidance a fraction ``cond_drop`` of the examples see the learned null
condition instead of their caption.

Everything random (batches, timesteps, noise, condition dropout) comes from the seeded CPU
generator, whose state is saved in every checkpoint with the step, the model, the optimizer, the
EMA, the schedule and the loss history, so training stopped at step k and resumed continues
bit for bit as if it had never stopped. Ctrl-C during :meth:`Trainer.run` stops at the end of
the step under way (a second Ctrl-C stops at once) and saves that step boundary: a checkpoint
never holds half a step. A save interrupted or killed leaves the previous checkpoint as it was.
A run holds its folder (``run.lock``, :mod:`minidiff.runlock`): a second run writing there is
refused instead of silently replacing the first one's checkpoint and losses.

A run that diverges stops at the first log interval whose loss (or gradient norm) is not finite,
with a :class:`~minidiff.errors.NonFiniteError` naming the step; the losses are checked where
they come to the host anyway, so the guard costs no extra sync. Weights that are not finite are
never saved: the last good checkpoint stays as it was.

Under ``mpiexec -n W`` the trainer is data parallel (:mod:`minidiff.distributed`): ``batch_size``
is the global batch, each process computes the gradients of its B / W examples, one all-reduce
sums them, and every process takes the same step. Rank 0 alone shows progress, samples and
writes the checkpoint, the losses and the run's lock; the others write nothing. Every
``check_every`` steps the processes compare a checksum of their parameters. An exception on one
process aborts the job with a message naming the rank and the step; the last checkpoint stays
as it was, and resumes with any number of processes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy
from tqdm import tqdm

from .. import backend, config, distributed, io, optim, runlock
from ..autograd.tensor import Tensor
from ..diffusion import losses as diffusion_losses
from ..diffusion import masking
from ..diffusion.schedules import NoiseSchedule
from ..errors import NonFiniteError


@dataclass
class TrainConfig:
    """Optimization settings; unknown keys in ``from_dict`` are an error naming them.

    The learning rate follows a warmup + cosine schedule over ``steps``: lr(step) is the base
    rate (``lr``, or the checkpoint's when resumed) times ``warmup_cosine(step, warmup_steps,
    steps)``, whatever steps came before. A run resumed
    with another ``steps`` (``--steps``) continues from its step on the schedule of the new
    length, as if the run had been configured with it: a longer run decays more slowly from
    there on (so the learning rate can jump up at the resume), a shorter one faster.
    """

    steps: int = 2000
    batch_size: int = 32
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 0.01
    ema_decay: float = 0.999
    grad_clip: float = 1.0
    cond_drop: float = 0.1
    target: str = "eps"
    min_snr_gamma: float | None = 5.0
    log_every: int = 25
    checkpoint_every: int = 500
    sample_every: int = 0
    seed: int = 0
    frame_masks: dict | None = None
    frame_difference_weight: float = 0.0
    frame_noise: float = 0.0
    check_every: int = 100
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        """Every setting checked where it enters; all the problems are reported at once."""
        config.refuse("TrainConfig", self._problems())

    def _problems(self) -> list:
        """What is wrong with the settings, as sentences (None for each setting that is fine)."""
        problems = [
            config.integer("steps", self.steps),
            config.integer("batch_size", self.batch_size),
            config.number("lr", self.lr, 0, open_low=True),
            config.integer("warmup_steps", self.warmup_steps, 0),
            config.number("weight_decay", self.weight_decay, 0),
            config.number("ema_decay", self.ema_decay, 0, 1),
            config.number("grad_clip", self.grad_clip, 0, note=" (0 turns clipping off)"),
            config.number("cond_drop", self.cond_drop, 0, 1),
            config.integer("log_every", self.log_every),
            config.integer(
                "checkpoint_every", self.checkpoint_every, 0, note=" (0: only at the end)"
            ),
            config.integer("sample_every", self.sample_every, 0, note=" (0: never)"),
            config.integer("check_every", self.check_every, 0, note=" (0: never)"),
            config.number("frame_noise", self.frame_noise, 0, 1, open_high=False),
            config.number("frame_difference_weight", self.frame_difference_weight, 0),
        ]
        if self.target not in ("eps", "v", "x0"):
            problems.append(f"target must be eps, v or x0, got {self.target!r}")
        if self.min_snr_gamma is not None:
            problems.append(config.number("min_snr_gamma", self.min_snr_gamma, 0, open_low=True))
        if self.frame_masks is not None:
            try:
                masking.check_mix(self.frame_masks)
            except ValueError as error:
                problems.append(str(error))
        return problems

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        return config.from_dict(cls, values)


class Trainer:
    """Trains ``model(x_t, t, tokens, token_mask)`` on ``clips`` (N, F, C, H, W) in [-1, 1].

    ``conditioner(ids, mask, drop)`` (e.g. a text encoder) turns caption ids (N, L) and their
    mask into tokens for the model; without it the model is unconditional and called as
    ``model(x_t, t)``. ``on_sample(trainer, step)`` is called every ``sample_every`` steps.
    ``metadata`` (JSON-able) is saved with every checkpoint, e.g. what rebuilds the model.

    Building a Trainer tunes the host allocator for training
    (:func:`minidiff.backend.tune_host_allocator`, about a quarter faster per step). It is done
    here rather than in :meth:`run` so that a loop of one's own over :meth:`train_step` (a timed
    budget, a benchmark, a profile) runs as fast as :meth:`run`.
    """

    def __init__(
        self,
        model,
        schedule: NoiseSchedule,
        clips,
        config: TrainConfig,
        out_dir,
        conditioner=None,
        ids=None,
        mask=None,
        on_sample=None,
        metadata=None,
    ):
        backend.tune_host_allocator()
        self.model, self.schedule, self.config = model, schedule, config
        self.metadata = dict(metadata or {})
        self.conditioner, self.on_sample = conditioner, on_sample
        self.out_dir = Path(out_dir)
        self.device = next(iter(model.parameters())).device
        self.clips = backend.to_device(clips, self.device)
        # captions stay on the host: the conditioner checks them there without a device sync
        self.ids = None if ids is None else backend.to_numpy(ids)
        self.mask = None if mask is None else backend.to_numpy(mask)
        params = model.parameters() + (conditioner.parameters() if conditioner else [])
        self.parameters = params
        self.world = distributed.world()
        self.rows = self.world.shard(config.batch_size)  # this process's rows of each batch
        self.world.broadcast_parameters(params)
        self.optimizer = optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
        self.schedule_lr = optim.LRSchedule.warmup_cosine(
            self.optimizer, config.warmup_steps, config.steps
        )
        self.modules = {"model": model} | ({"conditioner": conditioner} if conditioner else {})
        self.emas = {name: optim.EMA(m, config.ema_decay) for name, m in self.modules.items()}
        self.step = 0
        self._updating = False  # True while a step's update is under way (half done if it raised)
        self.losses: list[float] = []
        self.grad_norm = None  # the last step's norm before clipping (a device scalar), if clipped
        backend.manual_seed(config.seed)

    # --- one step ---------------------------------------------------------------------------------
    def _loss(self, rng):
        """This process's part of the step's loss. Every random choice is drawn for the whole
        batch, in the same order whatever the number of processes, and this process keeps its
        rows (:attr:`rows`): W processes see the examples and noise one would."""
        batch, shape = self.config.batch_size, (self.config.batch_size, *self.clips.shape[1:])
        index = rng.integers(0, self.clips.shape[0], size=batch)
        whole_known = None
        if self.config.frame_masks is not None:
            whole_known = masking.draw_frame_masks(rng, batch, shape[1], self.config.frame_masks)
        drop = None if self.conditioner is None else rng.random(batch) < self.config.cond_drop
        t = rng.integers(0, len(self.schedule), size=batch)
        if self.config.frame_noise:  # a fraction of clips get one level per frame, known at 0
            per_frame = rng.integers(0, len(self.schedule), size=shape[:2])
            independent = rng.random(batch) < self.config.frame_noise
            t = numpy.where(independent[:, None], per_frame, t[:, None])
            if whole_known is not None:
                t = numpy.where(whole_known, 0, t)
        noise = rng.standard_normal(shape).astype(self.clips.dtype)

        rows = self.rows
        xp = backend.xp_of(self.clips)
        clips = self.clips[xp.asarray(index[rows])]
        known = None if whole_known is None else whole_known[rows]
        if self.conditioner is None:

            def network(x, t, known=None):
                return self.model(x, t) if known is None else self.model(x, t, known=known)

        else:
            ids, mask = self.ids[index[rows]], self.mask[index[rows]]
            tokens, token_mask = self.conditioner(ids, mask, drop=drop[rows])

            def network(x, t, known=None):
                return self.model(x, t, tokens, token_mask, known=known)

        sharded = self.world.size > 1
        return diffusion_losses.diffusion_loss(
            network,
            self.schedule,
            clips,
            target=self.config.target,
            t=xp.asarray(t[rows]),
            noise=xp.asarray(noise[rows]),
            min_snr_gamma=self.config.min_snr_gamma,
            known=None if known is None else xp.asarray(known),
            frame_difference_weight=self.config.frame_difference_weight,
            whole_batch=batch if sharded else None,
            whole_known=whole_known if sharded else None,
        )

    def train_step(self) -> Tensor:
        """One optimization step; returns the loss (a device scalar: no host sync here).

        What a checkpoint holds changes all at once or not at all: an exception (a
        KeyboardInterrupt, say) while the loss and gradients are computed leaves the trainer as
        it was before the step; one during the update (optimizer, schedule, EMA) leaves it half
        updated, which :meth:`save` refuses to write.
        """
        loss = self._gradients()
        self._update()
        return loss

    def _gradients(self) -> Tensor:
        """The step's loss, with the (clipped) gradients in the parameters. Only the random
        streams change state here, and an exception puts them back as they were. Over several
        processes the gradients and the loss are the sums of theirs (one all-reduce), the whole
        batch's (:mod:`minidiff.distributed`)."""
        state = backend.get_rng_state()
        try:
            loss = self._loss(backend.generator("cpu"))
            self.optimizer.zero_grad()
            loss.backward()
            if self.world.size > 1:
                summed = self.world.sum_gradients(self.parameters, loss.data)
                loss = Tensor(summed, dtype=summed.dtype)
            if self.config.grad_clip:
                self.grad_norm = optim.clip_grad_norm(self.parameters, self.config.grad_clip)
        except BaseException:
            backend.set_rng_state(state)
            raise
        return loss

    def _update(self) -> None:
        """Apply the gradients: parameters, schedule, EMA, step count; marked half done until
        the end (an exception in between leaves ``_updating`` set)."""
        self._updating = True
        self.optimizer.step()
        self.schedule_lr.step()
        for name, module in self.modules.items():
            self.emas[name].update(module)
        self.step += 1
        self._updating = False

    # --- the loop -------------------------------------------------------------------------------
    def run(self, until: int | None = None, progress: bool = True) -> list[float]:
        """Train up to step ``until`` (default: the configured number of steps), holding the
        output folder (:mod:`minidiff.runlock`) so that no other run writes there meanwhile."""
        until = self.config.steps if until is None else min(until, self.config.steps)
        with self.world.aborting_on_error(self._where), runlock.hold(self.out_dir):
            return self._train_until(until, progress)

    def _where(self) -> str:
        """Where a failed run stopped and what stays, for the message of an aborted job."""
        path = self.checkpoint_path
        kept = f"{path} keeps the last checkpoint" if path.exists() else "no checkpoint was saved"
        return f" in step {self.step + 1}; {kept}"

    def _train_until(self, until: int, progress: bool) -> list[float]:
        """The loop of :meth:`run`: log, checkpoint and sample on their intervals, save at the
        end, on Ctrl-C (at a step boundary) and never over good weights with bad ones. Ctrl-C
        is deferred to the end of the step under way while it runs (:func:`_ctrl_c_deferred`).
        """
        with _ctrl_c_deferred() as ctrl_c:
            losses = self._loop(until, progress, ctrl_c)
        if ctrl_c.pressed:  # during the last save: the run is complete and saved
            raise KeyboardInterrupt
        return losses

    def _loop(self, until: int, progress: bool, ctrl_c: _CtrlC) -> list[float]:
        """:meth:`_train_until`'s loop, stopping at the first step boundary after ``ctrl_c``."""
        world = self.world
        bar = tqdm(
            total=until,
            initial=self.step,
            desc="training",
            unit="step",
            disable=not (progress and world.is_root),
        )
        started, first = time.perf_counter(), self.step
        pending = []
        try:
            while self.step < until:
                pending.append((self.train_step(), self.grad_norm))
                bar.update(1)
                if self.step % self.config.log_every == 0 or self.step == until:
                    # one host sync per log interval, not per step
                    self._record(pending)
                    rate = (self.step - first) / max(time.perf_counter() - started, 1e-9)
                    bar.set_postfix(loss=f"{self.losses[-1]:.4f}", steps_per_s=f"{rate:.1f}")
                if self.config.check_every and self.step % self.config.check_every == 0:
                    world.check_agreement(self._named_parameters(), self.step)
                if self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                    self.save()
                if (
                    self.on_sample
                    and world.is_root
                    and self.config.sample_every
                    and self.step % self.config.sample_every == 0
                ):
                    self.on_sample(self, self.step)
                if world.any(ctrl_c.pressed):  # the step is complete: all stop at its boundary
                    interrupt = KeyboardInterrupt()
                    interrupt.stopping_together = True
                    raise interrupt
        except KeyboardInterrupt as interrupt:
            if world.size > 1 and not getattr(interrupt, "stopping_together", False):
                raise  # inside a step on some process only: the job is aborted, nothing saved
            message = self._save_interrupted(pending)
            bar.close()
            if world.is_root:
                print(f"\n{message}; resume with the same command")
            raise interrupt
        except NonFiniteError:
            bar.close()
            self.plot_losses()  # the curve up to the divergence, to look at
            raise
        bar.close()
        self.save()
        self.plot_losses()
        return self.losses

    def _save_interrupted(self, pending) -> str:
        """Save the step boundary an interrupt left, recording the pending losses first; what
        happened, to print. Interrupted half way through an update, nothing is saved (the
        weights are neither the step's before nor after): the last checkpoint stays."""
        path = self.checkpoint_path
        if self._updating:
            kept = f"{path} keeps the last checkpoint" if path.exists() else "nothing is saved"
            return f"interrupted inside the update of step {self.step + 1}: {kept}"
        self._record(pending)
        return f"interrupted at step {self.step}: saved {self.save()}"

    def _record(self, pending: list) -> None:
        """Bring the pending (loss, gradient norm) pairs of the last steps to the host, move the
        losses from ``pending`` to :attr:`losses`, and raise :class:`NonFiniteError` at the first
        step where either is not finite. Interrupted while the numbers come to the host, it
        changes nothing."""
        first = self.step - len(pending) + 1
        values = [(float(loss.item()), None if n is None else float(n)) for loss, n in pending]
        pending.clear()
        for step, (loss, norm) in enumerate(values, first):
            self.losses.append(loss)
            for quantity, value in (("loss", loss), ("gradient norm", norm)):
                if value is not None and not math.isfinite(value):
                    raise self._diverged(f"the {quantity} at step {step} is {value}")

    def _diverged(self, what: str, path: Path | None = None) -> NonFiniteError:
        """The error for a run whose numbers stopped being finite: ``what`` went bad, the
        checkpoint at ``path`` is left as it was, and what to change."""
        path = path or self.checkpoint_path
        kept = (
            f"{path} keeps the last checkpoint" if path.exists() else f"nothing is saved to {path}"
        )
        return NonFiniteError(
            f"training diverged: {what}; {kept}. Try a lower lr (now {self.config.lr}) or clip "
            f"the gradient norm (grad_clip, now {self.config.grad_clip or 'off'}; 1.0 is usual), "
            "then train again from that checkpoint or afresh."
        )

    # --- checkpoints ------------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.out_dir / "checkpoint.npz"

    def save(self, path=None) -> Path:
        """Everything needed to continue exactly, written atomically; weights that are not finite
        are a :class:`NonFiniteError` and leave the file at ``path`` as it was. Over several
        processes every one checks its weights, rank 0 alone writes (they are the same on
        all), and all return once it has written."""
        path = Path(path or self.checkpoint_path)
        if self._updating:
            raise RuntimeError(
                f"cannot save: the update of step {self.step + 1} was interrupted half way, so "
                "the weights are neither that step's nor the one's before; resume from the last "
                f"checkpoint ({self.checkpoint_path}) instead"
            )
        self._check_finite_weights(path)
        objects = {name: module for name, module in self.modules.items()}
        objects |= {f"ema_{name}": ema for name, ema in self.emas.items()}
        if not self.world.is_root:
            self.world.barrier()
            return path
        path = io.save(
            path,
            **objects,
            optimizer=self.optimizer,
            lr_schedule=self.schedule_lr,
            step=self.step,
            losses=list(self.losses),
            train_config=asdict(self.config),
            meta=self.metadata,
            rng=True,
        )
        self.world.barrier()
        return path

    def _named_parameters(self) -> dict:
        """Every trained parameter by its name in the checkpoint (``model.blocks.0...``)."""
        return {
            f"{name}.{key}": p
            for name, module in self.modules.items()
            for key, p in module.named_parameters()
        }

    def _check_finite_weights(self, path: Path) -> None:
        """Raise :class:`NonFiniteError` if a parameter or an EMA average holds a NaN or an inf."""
        arrays = {
            f"{name}.{key}": p.data
            for name, module in self.modules.items()
            for key, p in module.named_parameters()
        }
        arrays |= {
            f"ema_{name}.{key}": value
            for name, ema in self.emas.items()
            for key, value in ema.shadow.items()
        }
        bad = backend.non_finite(arrays)
        if bad:
            raise self._diverged(
                f"at step {self.step} {len(bad)} weight arrays hold NaN or inf (the first: "
                f"{bad[0]})",
                path,
            )

    def resume(self, path=None) -> int:
        """Load a checkpoint written by :meth:`save`; returns the step it continues from. With
        another ``steps`` than the checkpoint's the learning rate follows the schedule of the new
        length from here on (:class:`TrainConfig`), which is said. Over several processes
        rank 0 reads the file and sends it to the others."""
        world = self.world
        state = world.broadcast_object(
            io.load(path or self.checkpoint_path) if world.is_root else None
        )
        for name, module in self.modules.items():
            module.load_state_dict(state[name])
            self.emas[name].load_state_dict(state[f"ema_{name}"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.schedule_lr.load_state_dict(state["lr_schedule"])
        backend.set_rng_state(state["rng"])
        self.step, self.losses = int(state["step"]), [float(x) for x in state["losses"]]
        self._updating = False
        self._say_schedule_change(state["train_config"]["steps"])
        return self.step

    def _say_schedule_change(self, saved_steps: int) -> None:
        """Print how the learning rate changes when this run's length differs from the saved."""
        if saved_steps == self.config.steps or not self.world.is_root:
            return
        lr = self.optimizer.param_groups[0]["lr"]
        print(
            f"the checkpoint was trained for {saved_steps} steps, this run for "
            f"{self.config.steps}: the learning rate continues on the schedule of "
            f"{self.config.steps} steps, {lr:.3g} at step {self.step}"
        )

    def plot_losses(self) -> Path:
        """loss.png (log scale, with a running mean) and losses.json in the output folder
        (strict JSON: a loss that is not finite is null).

        The figure is drawn without pyplot, so matplotlib's backend (a notebook's, say) stays.
        Over several processes only rank 0 writes them.
        """
        from matplotlib.figure import Figure

        path = self.out_dir / "loss.png"
        if not self.world.is_root:
            return path
        losses = numpy.asarray(self.losses)
        fig = Figure(figsize=(6, 3.5), dpi=100)
        ax = fig.subplots()
        ax.semilogy(losses, alpha=0.35, label="per step")
        window = max(1, len(losses) // 50)
        if len(losses) >= window:
            smooth = numpy.convolve(losses, numpy.ones(window) / window, mode="valid")
            ax.semilogy(numpy.arange(window - 1, len(losses)), smooth, label=f"mean of {window}")
        ax.set(xlabel="step", ylabel="loss", title="training loss")
        ax.legend()
        fig.tight_layout()
        fig.savefig(path)
        # JSON has no NaN or infinity: a loss that is not finite is written as null
        finite = [loss if math.isfinite(loss) else None for loss in self.losses]
        (self.out_dir / "losses.json").write_text(json.dumps(finite))
        return path


class _CtrlC:
    """A SIGINT handler that only records the first Ctrl-C (``pressed``) and raises
    KeyboardInterrupt on the second, for one who does not want to wait for the step's end."""

    def __init__(self):
        self.pressed = False

    def __call__(self, signum, frame) -> None:
        if self.pressed:
            raise KeyboardInterrupt
        self.pressed = True
        with contextlib.suppress(OSError):  # no print here: it may interrupt a print
            os.write(2, b"\nCtrl-C: stopping after this step (Ctrl-C again stops at once)\n")


@contextlib.contextmanager
def _ctrl_c_deferred():
    """Within the block SIGINT is handled by a :class:`_CtrlC` (yielded), and the handler
    before is put back after. Where Python cannot install one (not the main thread), the
    yielded one is never called and Ctrl-C raises wherever it lands, as usual."""
    ctrl_c = _CtrlC()
    try:
        previous = signal.signal(signal.SIGINT, ctrl_c)
    except ValueError:  # signals are handled in the main thread only
        yield ctrl_c
        return
    try:
        yield ctrl_c
    finally:
        signal.signal(signal.SIGINT, signal.SIG_DFL if previous is None else previous)
