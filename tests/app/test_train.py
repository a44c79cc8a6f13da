"""The training loop: it learns, it logs, an interrupted run resumes bit for bit, and a diverging
run stops without saving over its last good checkpoint."""

import functools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import minidiff as md
from minidiff import backend, kernels, nn, optim, parallel, runlock
from minidiff.app.train import TrainConfig, Trainer
from minidiff.autograd.tensor import Tensor
from minidiff.diffusion import losses as diffusion_losses
from minidiff.diffusion import schedules
from minidiff.errors import RunLockError
from minidiff.models import UViT, UViTConfig

from ..conftest import requires_gpu

ROOT = Path(__file__).resolve().parents[2]


class TinyConditioner(nn.Module):
    """Embeds caption ids; dropped examples get a learned null token sequence."""

    def __init__(self, vocab=5, length=3, dim=6):
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.null = nn.Parameter(md.zeros(length, dim))

    def forward(self, ids, mask, drop=None):
        tokens = self.embed(ids)
        if drop is not None:
            keep = md.tensor((~np.asarray(drop))[:, None, None].astype(np.float32))
            tokens = tokens * keep + self.null * (1.0 - keep)
            mask = np.where(np.asarray(drop)[:, None], True, mask)
        return tokens, mask


def _setup(tmp_path, seed=0, steps=6, conditioned=True, **settings):
    md.manual_seed(seed)
    config = UViTConfig(
        frames=2,
        channels=1,
        height=4,
        width=4,
        patch=2,
        dim=16,
        depth=3,
        heads=2,
        text_dim=6 if conditioned else 0,
        text_length=3 if conditioned else 0,
    )
    model = UViT(config)
    conditioner = TinyConditioner() if conditioned else None
    rng = np.random.default_rng(0)  # the same data whatever the seed
    clips = rng.uniform(-1, 1, (10, 2, 1, 4, 4)).astype(np.float32)
    ids = rng.integers(0, 5, (10, 3))
    mask = np.ones((10, 3), dtype=bool)
    train_config = TrainConfig(
        steps=steps,
        batch_size=4,
        lr=1e-3,
        warmup_steps=2,
        log_every=2,
        checkpoint_every=0,
        cond_drop=0.3,
        seed=seed,
    )
    train_config = TrainConfig(**{**vars(train_config), **settings})
    return Trainer(
        model,
        schedules.cosine(50),
        clips,
        train_config,
        tmp_path,
        conditioner=conditioner,
        ids=ids if conditioned else None,
        mask=mask if conditioned else None,
    )


def _params(trainer):
    return {
        f"{module_name}.{name}": p.numpy().copy()
        for module_name, module in trainer.modules.items()
        for name, p in module.named_parameters()
    }


def test_interrupted_training_resumes_bit_for_bit(tmp_path):
    straight = _setup(tmp_path / "a")
    straight.run(progress=False)

    interrupted = _setup(tmp_path / "b")

    def stop(trainer, step):
        raise KeyboardInterrupt

    interrupted.on_sample = stop
    interrupted.config.sample_every = 3
    with pytest.raises(KeyboardInterrupt):
        interrupted.run(progress=False)
    assert interrupted.step == 3 and interrupted.checkpoint_path.exists()

    resumed = _setup(tmp_path / "b", seed=99)  # fresh objects, other init and random stream
    assert resumed.resume() == 3
    resumed.run(progress=False)
    for name, value in _params(straight).items():
        np.testing.assert_array_equal(value, _params(resumed)[name], err_msg=name)
    assert resumed.losses == straight.losses


class _Interrupter:
    """Wraps ``owner.name`` to count its calls; at the calls numbered in ``at`` (from 1) it
    first interrupts, raising KeyboardInterrupt (``how="raise"``) or sending this process a
    real SIGINT (``"signal"``) or two (``"signal twice"``), then calls the original."""

    def __init__(self, monkeypatch, owner, name, at=(), how="raise"):
        self.original, self.at, self.how, self.calls = getattr(owner, name), set(at), how, 0
        monkeypatch.setattr(owner, name, self)

    def __get__(self, instance, owner):  # wrapping a method: bind like a function
        return self if instance is None else functools.partial(self, instance)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls in self.at:
            if self.how == "raise":
                raise KeyboardInterrupt
            for _ in range(2 if self.how == "signal twice" else 1):
                signal.raise_signal(signal.SIGINT)
        return self.original(*args, **kwargs)


# where in a step an interrupt lands: the function, which call of step 4 (as a fraction of
# that step's calls: 0 is the first, 0.5 the middle one, with half the parameters updated)
STEP_PARTS = {
    "loss": (diffusion_losses, "diffusion_loss", 0),
    "backward": (Tensor, "backward", 0),
    "clip": (optim, "clip_grad_norm", 0),
    "optimizer": (kernels, "adam_step", 0.5),
    "ema": (optim.EMA, "update", 0.5),
}
STEPS, CHECKPOINT_EVERY = 6, 2


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory):
    """The uninterrupted run's parameters and losses, and how often each part of a step runs."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        counters = {
            part: _Interrupter(monkeypatch, owner, name)
            for part, (owner, name, _) in STEP_PARTS.items()
        }
        trainer = _setup(tmp_path_factory.mktemp("straight"), checkpoint_every=CHECKPOINT_EVERY)
        trainer.run(progress=False)
    per_step = {part: counter.calls // STEPS for part, counter in counters.items()}
    return _params(trainer), trainer.losses, per_step


INTERRUPTS = [
    # (part, how, the step the checkpoint then holds)
    *((part, "raise", 3) for part in ("loss", "backward", "clip")),  # rolled back to step 3
    *((part, "raise", 2) for part in ("optimizer", "ema")),  # half updated: not saved
    *((part, "signal", 4) for part in STEP_PARTS),  # Ctrl-C: step 4 is finished, saved
    ("loss", "signal twice", 3),  # Ctrl-C twice: stopped at once, rolled back
    ("optimizer", "signal twice", 2),  # stopped at once, half updated
    ("save", "raise", 4),  # the save of step 4 fails, the interrupt's save succeeds
    ("save twice", "raise", 2),  # both fail: step 2's checkpoint stays
    ("save", "signal", 4),  # Ctrl-C while saving: the save completes
]


@pytest.mark.parametrize(("part", "how", "saved_step"), INTERRUPTS)
def test_an_interrupt_anywhere_in_a_step_resumes_bit_for_bit(
    tmp_path, monkeypatch, straight_run, part, how, saved_step
):
    """Interrupted inside step 4 (or inside the save after it), the run leaves a checkpoint at
    a step boundary, never half a step, and no temporary file; resumed from it, it ends with
    the uninterrupted run's parameters and losses, bit for bit."""
    params, losses, per_step = straight_run
    if part.startswith("save"):  # saves after steps 2, 4 and 6: the second is step 4's
        owner, name, calls = np, "savez", {2, 3} if part == "save twice" else {2}
    else:
        owner, name, fraction = STEP_PARTS[part]
        calls = {3 * per_step[part] + int(fraction * per_step[part]) + 1}
    handler = signal.getsignal(signal.SIGINT)
    interrupted = _setup(tmp_path, checkpoint_every=CHECKPOINT_EVERY)
    _Interrupter(monkeypatch, owner, name, at=calls, how=how)
    with pytest.raises(KeyboardInterrupt):
        interrupted.run(progress=False)
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is handler
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.npz"]
    if part in ("optimizer", "ema") and how != "signal":  # half updated: refused by hand too
        with pytest.raises(RuntimeError, match="interrupted half way.*resume from the last"):
            interrupted.save()

    resumed = _setup(tmp_path, seed=99, checkpoint_every=CHECKPOINT_EVERY)
    assert resumed.resume() == saved_step
    resumed.run(progress=False)
    for key, value in params.items():
        np.testing.assert_array_equal(_params(resumed)[key], value, err_msg=key)
    assert resumed.losses == losses


def test_a_run_off_the_main_thread_leaves_sigint_alone_and_saves_a_step_boundary(
    tmp_path, monkeypatch, straight_run
):
    """Python handles signals in the main thread only: a run in another thread installs no
    handler, and an interrupt inside its loss still leaves the step before, which resumes."""
    params, losses, per_step = straight_run
    interrupted = _setup(tmp_path, checkpoint_every=CHECKPOINT_EVERY)
    _Interrupter(monkeypatch, diffusion_losses, "diffusion_loss", at={3 * per_step["loss"] + 1})
    handler, raised = signal.getsignal(signal.SIGINT), []

    def run():
        try:
            interrupted.run(progress=False)
        except KeyboardInterrupt as error:
            raised.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    monkeypatch.undo()
    assert raised and signal.getsignal(signal.SIGINT) is handler
    resumed = _setup(tmp_path, seed=99, checkpoint_every=CHECKPOINT_EVERY)
    assert resumed.resume() == 3
    assert resumed.run(progress=False) == losses


@pytest.mark.slow
def test_ctrl_c_to_the_train_command_resumes_bit_for_bit(tmp_path):
    """A real SIGINT to ``python -m minidiff train`` a few steps in: the run saves and exits,
    and the same command finishes with the checkpoint and losses of a run never stopped."""
    env = {**os.environ, "MINIDIFF_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}

    def train(out, **popen):
        command = [sys.executable, "-m", "minidiff", "train", "--steps", "30", "--out", str(out)]
        return subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, **popen)

    straight = train(tmp_path / "straight")
    interrupted = train(tmp_path / "stopped", stdout=subprocess.PIPE, text=True)
    seen = ""
    while "training:  1" not in seen:  # tqdm at 10 % or more: a few steps in
        seen += interrupted.stderr.read(1)
    interrupted.send_signal(signal.SIGINT)
    out, err = interrupted.communicate(timeout=120)
    assert interrupted.returncode != 0 and "Ctrl-C: stopping after this step" in err, err
    assert "interrupted at step" in out and "saved" in out, out
    assert 0 < md.load(tmp_path / "stopped" / "checkpoint.npz")["step"] < 30
    resumed = train(tmp_path / "stopped")
    for process in (straight, resumed):
        process.communicate(timeout=300)
        assert process.returncode == 0
    expected, got = (md.load(tmp_path / run / "checkpoint.npz") for run in ("straight", "stopped"))
    for module in ("model", "ema_model", "conditioner", "ema_conditioner"):
        for key, value in _flat(expected[module]).items():
            np.testing.assert_array_equal(_flat(got[module])[key], value, err_msg=key)
    assert expected["losses"] == got["losses"] and len(got["losses"]) == 30


def _flat(state, prefix=""):
    """The arrays of a nested state dict by dotted key."""
    if not isinstance(state, dict):
        return {prefix: state}
    return {
        k: v for key, value in state.items() for k, v in _flat(value, f"{prefix}.{key}").items()
    }


def test_a_run_resumed_with_another_length_follows_that_lengths_schedule(tmp_path, capsys):
    """Stopped past the warm-up at step 4 of 6 and resumed for 12 steps, the learning rate of
    every later step is the one of a run configured for 12 steps from the start; it is said."""

    def learning_rates(trainer):
        seen = []
        trainer.on_sample = lambda trainer, step: seen.append(
            trainer.optimizer.param_groups[0]["lr"]
        )
        trainer.config.sample_every = 1
        trainer.run(progress=False)
        return seen

    long = learning_rates(_setup(tmp_path / "long", steps=12))
    short = _setup(tmp_path / "short", steps=6)
    short.run(until=4, progress=False)
    capsys.readouterr()
    resumed = _setup(tmp_path / "short", steps=12)
    assert resumed.resume() == 4
    assert (
        "trained for 6 steps, this run for 12: the learning rate continues on the schedule "
        "of 12 steps" in capsys.readouterr().out
    )
    assert (
        resumed.optimizer.param_groups[0]["lr"] == long[3] == 1e-3 * optim.warmup_cosine(4, 2, 12)
    )
    assert long[3] != 1e-3 * optim.warmup_cosine(4, 2, 6)
    assert learning_rates(resumed) == long[4:]
    assert md.load(resumed.checkpoint_path)["step"] == 12


def test_training_lowers_the_loss_and_writes_its_outputs(tmp_path):
    trainer = _setup(tmp_path, steps=120, conditioned=False)
    trainer.config.lr = 3e-3
    losses = trainer.run(progress=False)
    assert len(losses) == 120
    assert np.mean(losses[-20:]) < 0.8 * np.mean(losses[:20])
    assert (tmp_path / "loss.png").exists() and (tmp_path / "checkpoint.npz").exists()
    assert md.load(tmp_path / "checkpoint.npz")["step"] == 120


def _strict_json(text: str):
    """``json.loads`` that refuses NaN and Infinity, which are not JSON."""

    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the run overflows on purpose
def test_a_diverging_run_stops_at_the_step_and_keeps_the_good_checkpoint(tmp_path):
    """lr 1e6: the weights blow up but stay finite for two steps, step 3's loss is NaN and its
    update makes the weights NaN. The run stops there naming the step and the fix, the checkpoint
    of step 1 stays byte for byte and loads, and losses.json is strict JSON with null for NaN."""
    trainer = _setup(tmp_path, steps=20, conditioned=False, lr=1e6, log_every=1)
    trainer.run(until=1, progress=False)
    good = trainer.checkpoint_path.read_bytes()
    with pytest.raises(md.NonFiniteError, match=r"the loss at step 3 is nan.*lower lr.*grad_clip"):
        trainer.run(progress=False)
    assert trainer.checkpoint_path.read_bytes() == good
    with pytest.raises(md.NonFiniteError, match=r"at step 3 \d+ weight arrays hold NaN"):
        trainer.save()  # saving by hand is refused too
    assert trainer.checkpoint_path.read_bytes() == good
    losses = _strict_json((tmp_path / "losses.json").read_text())
    assert len(losses) == 3 and losses[2] is None and all(math.isfinite(x) for x in losses[:2])
    resumed = _setup(tmp_path, steps=20, conditioned=False)
    assert resumed.resume() == 1 and all(np.isfinite(v).all() for v in _params(resumed).values())


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the run overflows on purpose
def test_the_weights_are_checked_when_a_checkpoint_falls_between_log_intervals(tmp_path):
    """Saved every step but logged every 4: the save of step 3 finds the NaN weights first."""
    trainer = _setup(tmp_path, steps=20, conditioned=False, lr=1e6, log_every=4, checkpoint_every=1)
    with pytest.raises(md.NonFiniteError, match=r"at step 3 \d+ weight arrays hold NaN.*keeps"):
        trainer.run(progress=False)
    assert md.load(trainer.checkpoint_path)["step"] == 2


def test_a_non_finite_gradient_norm_stops_the_run(tmp_path, monkeypatch):
    """The clipped norm is checked with the loss, at the log interval's sync."""

    monkeypatch.setattr(optim, "clip_grad_norm", lambda params, max_norm: np.float32(np.inf))
    trainer = _setup(tmp_path, steps=4, conditioned=False)
    with pytest.raises(md.NonFiniteError, match="the gradient norm at step 1 is inf"):
        trainer.run(progress=False)


def test_losses_json_writes_non_finite_losses_as_null(tmp_path):
    trainer = _setup(tmp_path, steps=1)
    trainer.losses = [1.0, float("nan"), float("inf"), 0.5]
    trainer.plot_losses()
    assert _strict_json((tmp_path / "losses.json").read_text()) == [1.0, None, None, 0.5]


def test_building_a_trainer_tunes_the_host_allocator(tmp_path, monkeypatch):
    """A loop of one's own over train_step runs with the allocator run() would have."""
    calls = []
    monkeypatch.setattr(backend, "tune_host_allocator", lambda: calls.append("tuned"))
    _setup(tmp_path, steps=1)
    assert calls == ["tuned"]


def test_plotting_the_losses_leaves_matplotlibs_backend_alone(tmp_path):
    """A notebook's backend stays: the figure is drawn without pyplot."""
    import matplotlib

    trainer = _setup(tmp_path, steps=1)
    trainer.losses = [1.0, 0.5, 0.25, 0.2]
    previous = matplotlib.get_backend()
    matplotlib.use("svg")  # not the Agg that draws loss.png
    try:
        path = trainer.plot_losses()
        assert matplotlib.get_backend() == "svg"
    finally:
        matplotlib.use(previous)
    assert path.read_bytes().startswith(b"\x89PNG") and path.stat().st_size > 5000


def test_train_config_errors():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['learning_rate'\]"):
        TrainConfig.from_dict({"learning_rate": 1.0})
    with pytest.raises(ValueError, match="target"):
        TrainConfig(target="score")


BAD_TRAIN_SETTINGS = [
    ("steps", 2.5, "a positive integer"),
    ("steps", 0, "a positive integer"),
    ("batch_size", True, "a positive integer"),
    ("lr", -1e-3, r"in \(0, inf\)"),
    ("lr", float("nan"), r"in \(0, inf\)"),
    ("lr", float("inf"), r"in \(0, inf\)"),
    ("grad_clip", -1.0, r"in \[0, inf\) \(0 turns clipping off\)"),
    ("log_every", 0, "a positive integer"),
    ("checkpoint_every", -1, "an integer >= 0"),
    ("sample_every", -500, "an integer >= 0"),
    ("ema_decay", 1.0, r"in \[0, 1\)"),
    ("ema_decay", -0.1, r"in \[0, 1\)"),
    ("warmup_steps", -1, "an integer >= 0"),
    ("weight_decay", -0.01, r"in \[0, inf\)"),
    ("min_snr_gamma", 0.0, r"in \(0, inf\)"),
    ("cond_drop", 1.0, r"in \[0, 1\)"),
    ("frame_noise", 1.5, r"in \[0, 1\]"),
]


@pytest.mark.parametrize(("name", "value", "allowed"), BAD_TRAIN_SETTINGS)
def test_train_config_refuses_a_bad_setting_by_name(name, value, allowed):
    """Each error names the setting, the value and what is allowed."""
    with pytest.raises(ValueError, match=rf"TrainConfig: {name} must be {allowed}.*got {value!r}"):
        TrainConfig(**{name: value})


def test_train_config_reports_every_problem_at_once():
    with pytest.raises(ValueError, match=r"lr must be .*; log_every must be .*; target must be"):
        TrainConfig(lr=-1.0, log_every=0, target="score")


def test_a_float32_training_step_makes_no_float64_array(monkeypatch, tmp_path):
    """Every array a training step of the demo system records, forward and backward, is float32:
    one float64 constant anywhere would silently double the cost of everything after it."""
    from minidiff.app import pipeline
    from minidiff.app.presets import get_preset

    seen = []
    original = Tensor.from_op.__func__

    def spy(cls, data, parents, backward, op):
        seen.append((op, data.dtype))
        if backward is not None:

            def checked(g, backward=backward, op=op):
                grads = backward(g)
                seen.extend((f"{op} backward", x.dtype) for x in grads if x is not None)
                return grads

            backward = checked
        return original(cls, data, parents, backward, op)

    base = get_preset("tiny-cpu")
    preset = base.with_overrides(
        train_clips=16,
        model={**base.model, "dim": 32, "depth": 3},
        train={**base.train, "steps": 1, "batch_size": 4, "checkpoint_every": 0, "sample_every": 0},
    )
    monkeypatch.setattr(Tensor, "from_op", classmethod(spy))
    pipeline.train_system(preset, tmp_path, progress=False)
    floats = {dtype for _, dtype in seen if dtype.kind == "f"}
    assert len(seen) > 100
    assert floats == {np.dtype(np.float32)}, [e for e in seen if e[1] != np.float32][:5]


def test_training_over_threads_follows_the_one_thread_run(tmp_path):
    """Threads split the products and kernels of a step (``parallel``), not its arithmetic:
    over three threads, with pieces as small as one row, the gradients of the first step equal
    one thread's up to float32 rounding (only partial sums, such as layer norm's dweight, are
    added in another order), and so do the losses of six steps. (The weights are not compared
    after several steps: Adam moves a weight by up to lr however small its gradient, so a
    gradient near zero that rounding changes can move it by a visible fraction of lr.)"""

    def first_gradients_and_losses(folder):
        trainer = _setup(folder)
        loss = trainer._loss(md.backend.generator("cpu"))
        loss.backward()
        grads = {
            f"{name}.{p_name}": p.grad.copy()
            for name, module in trainer.modules.items()
            for p_name, p in module.named_parameters()
        }
        trainer = _setup(folder)
        return grads, trainer.run(progress=False)

    one_grads, one_losses = first_gradients_and_losses(tmp_path / "one")
    saved = parallel.MIN_WORK, parallel.set_threads(3)
    parallel.MIN_WORK = 1
    try:
        three_grads, three_losses = first_gradients_and_losses(tmp_path / "three")
    finally:
        parallel.MIN_WORK = saved[0]
        parallel.set_threads(saved[1])
    for name, grad in one_grads.items():
        scale = float(np.abs(grad).max()) + 1e-12
        np.testing.assert_allclose(
            three_grads[name], grad, rtol=1e-4, atol=1e-5 * scale, err_msg=name
        )
    np.testing.assert_allclose(three_losses, one_losses, rtol=1e-4)


@requires_gpu
def test_a_training_step_on_the_gpu_waits_for_nothing(tmp_path):
    """No host sync inside a step: the host queues the whole step and only the logging every
    ``log_every`` steps reads a loss back (CuPy raises DeviceSynchronized on a sync)."""
    import cupyx

    if not hasattr(cupyx, "allow_synchronize"):
        pytest.skip("this CuPy has no cupyx.allow_synchronize")
    trainer = _setup(tmp_path)
    trainer.train_step()  # first step: kernels compile, the pool grows
    with cupyx.allow_synchronize(False):
        loss = trainer.train_step()
    assert np.isfinite(float(loss.item()))


def test_masked_per_frame_training_gives_known_frames_level_zero(tmp_path):
    """With frame masks and frame_noise = 1 every clip gets one level per frame, its known
    frames enter clean at level 0 with their flags."""
    md.manual_seed(0)
    config = UViTConfig(
        frames=4,
        channels=1,
        height=4,
        width=4,
        patch=2,
        dim=16,
        depth=1,
        heads=2,
        frame_conditioning=True,
        frame_times=True,
    )
    model = UViT(config)
    clips = np.random.default_rng(0).uniform(-1, 1, (10, 4, 1, 4, 4)).astype(np.float32)
    train_config = TrainConfig(
        steps=4,
        batch_size=6,
        log_every=2,
        checkpoint_every=0,
        target="v",
        frame_masks={"first": 0.5, "random": 0.5},
        frame_noise=1.0,
    )
    seen = []
    forward = model.forward

    def spy(x, t, *rest, known=None):
        seen.append((np.asarray(t).copy(), None if known is None else np.asarray(known).copy()))
        return forward(x, t, *rest, known=known)

    model.forward = spy
    trainer = Trainer(model, schedules.cosine(100), clips, train_config, tmp_path)
    trainer.train_step()
    t, known = seen[0]
    assert t.shape == (6, 4) and known.shape == (6, 4) and known.any()
    assert (t[known] == 0).all() and (t[~known] > 0).any()
    with pytest.raises(ValueError, match="frame_noise must be in"):
        TrainConfig(frame_noise=1.5)


def test_a_run_holds_its_folder_and_lets_go_however_it_stops(tmp_path, monkeypatch):
    lock = tmp_path / runlock.LOCK_NAME
    trainer = _setup(tmp_path, steps=2, sample_every=1)
    seen = []
    trainer.on_sample = lambda trainer, step: seen.append(lock.exists())
    trainer.run(progress=False)
    assert seen == [True, True] and not lock.exists()
    for error in (RuntimeError("a bug in a step"), KeyboardInterrupt()):
        broken = _setup(tmp_path / type(error).__name__)

        def step(error=error):
            raise error

        monkeypatch.setattr(broken, "train_step", step)
        with pytest.raises(type(error)):
            broken.run(progress=False)
        assert not (broken.out_dir / runlock.LOCK_NAME).exists()


def test_a_second_run_in_a_held_folder_is_refused_and_writes_nothing(tmp_path):
    (tmp_path / runlock.LOCK_NAME).write_text(
        json.dumps({"pid": os.getppid(), "host": socket.gethostname(), "started": "then"})
    )
    with pytest.raises(RunLockError, match=f"in use by another run \\(pid {os.getppid()}"):
        _setup(tmp_path, steps=2).run(progress=False)
    assert not (tmp_path / "checkpoint.npz").exists() and not (tmp_path / "losses.json").exists()
