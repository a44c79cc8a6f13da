"""Data-parallel training (minidiff/distributed.py): the shards' losses add up to the whole
batch's, one process is untouched, and under ``mpiexec -n 2`` two processes train the
parameters one process trains, their collective sums their gradients, drifting parameters are
caught, and a failing process aborts the job with its last checkpoint intact."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import minidiff as md
from minidiff import distributed, io, runlock
from minidiff.diffusion import losses as diffusion_losses
from minidiff.diffusion import schedules

from .mpi_job import FAILURE, make_trainer, parameters

ROOT = Path(__file__).resolve().parents[2]
JOB_SECONDS = 60  # one job takes about 4 s on an idle 2-core machine


def _mpiexec() -> str | None:
    """The mpiexec of this environment (the 'dist' extra puts it beside python), or on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


requires_mpi = pytest.mark.skipif(
    _mpiexec() is None or importlib.util.find_spec("mpi4py") is None,
    reason="needs mpiexec and mpi4py: install the 'dist' extra (pip install -e '.[dist]'; "
    "make venv does)",
)


def _job(mode: str, folder: Path, *args) -> subprocess.CompletedProcess:
    """``mpiexec -n 2 python -m tests.app.mpi_job MODE FOLDER ARGS`` at one thread a process."""
    env = {k: v for k, v in os.environ.items() if k not in distributed.LAUNCHER_SIZE_VARIABLES}
    env |= {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MINIDIFF_NUM_THREADS": "1",
        "MINIDIFF_DEVICE": "cpu",
    }
    command = [_mpiexec(), "-n", "2", sys.executable, "-m", "tests.app.mpi_job", mode, str(folder)]
    return subprocess.run(
        [*command, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=JOB_SECONDS,
    )


def _wait_for_the_end_of(pid: int, seconds: float = 10.0) -> None:
    """Wait for a rank that the launcher killed to be gone (mpiexec may return a moment
    before): its run lock is then stale and the next run takes it over."""
    deadline = time.monotonic() + seconds
    while runlock.process_running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _assert_close(actual: dict, expected: dict, tolerance: float) -> float:
    """Every array of ``actual`` equals ``expected``'s to ``tolerance`` times the array's
    largest entry; returns the largest such relative difference."""
    worst = 0.0
    for name, value in expected.items():
        scale = float(np.abs(value).max()) or 1.0
        difference = float(np.abs(actual[name] - value).max()) / scale
        assert difference <= tolerance, (name, difference)
        worst = max(worst, difference)
    return worst


def test_the_shards_losses_and_gradients_add_up_to_the_whole_batchs():
    """(eq-data-parallel) With the whole batch's counts as denominators, the losses of two
    shards (masked, min-SNR weighted, with the frame-difference term) sum to the whole batch's
    loss, and so do their gradients, in float64 to rounding."""
    rng = np.random.default_rng(0)
    schedule = schedules.cosine(50)
    x0 = rng.standard_normal((6, 4, 1, 2, 2))
    noise, t = rng.standard_normal(x0.shape), rng.integers(0, 50, 6)
    known = rng.random((6, 4)) < 0.4
    known[:, -1] = False
    weight = md.tensor(rng.standard_normal((1, 2, 2)), requires_grad=True, dtype=np.float64)

    def loss(rows, whole_batch=None):
        def network(x, t, known):
            return x * weight

        value = diffusion_losses.diffusion_loss(
            network,
            schedule,
            x0[rows],
            target="v",
            t=t[rows],
            noise=noise[rows],
            min_snr_gamma=5.0,
            known=known[rows],
            frame_difference_weight=0.5,
            whole_batch=whole_batch,
            whole_known=None if whole_batch is None else known,
        )
        weight.grad = None
        value.backward()
        return float(value.item()), weight.grad.copy()

    whole, whole_grad = loss(slice(0, 6))
    first, first_grad = loss(slice(0, 3), whole_batch=6)
    second, second_grad = loss(slice(3, 6), whole_batch=6)
    assert first + second == pytest.approx(whole, rel=1e-13)
    np.testing.assert_allclose(first_grad + second_grad, whole_grad, rtol=1e-12)
    with pytest.raises(ValueError, match="whole_known"):
        diffusion_losses.diffusion_loss(
            lambda x, t, known: x * weight,
            schedule,
            x0,
            t=t,
            noise=noise,
            known=known,
            whole_batch=12,
        )


class _Comm:
    """Stands in for an mpi4py communicator where only the rank and size are asked."""

    def __init__(self, rank, size):
        self.rank, self.size = rank, size

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return self.size


def test_without_mpiexec_the_world_is_rank_0_of_1_and_imports_no_mpi(monkeypatch):
    for name in distributed.LAUNCHER_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert distributed.launched_size() == 1
    single = distributed.World()
    assert (single.rank, single.size, single.is_root, single.shard(16)) == (
        0,
        1,
        True,
        slice(0, 16),
    )
    loss = np.float64(1.5)
    assert single.sum_gradients([], loss) is loss and single.any(True) and not single.any(False)
    monkeypatch.setenv("PMI_SIZE", "3")
    assert distributed.launched_size() == 3
    assert distributed.World(_Comm(1, 2)).shard(16) == slice(8, 16)
    with pytest.raises(distributed.DistributedError, match="does not split evenly over 3"):
        distributed.World(_Comm(0, 3)).shard(16)


@requires_mpi
def test_two_processes_train_the_parameters_one_process_trains(tmp_path):
    """2 processes x 8 examples = 1 process x 16 on the same examples and noise, in float64 to
    rounding: a one-process run saved at step 2 is resumed by two processes to step 4, whose
    checkpoint one process resumes to step 6; the parameters at 4 and 6 and the losses equal
    those of one process trained straight through."""
    straight = make_trainer(tmp_path / "straight", 6)
    straight.run(until=4, progress=False)
    at_four = parameters(straight)
    straight.run(progress=False)
    at_six = parameters(straight)

    shared = tmp_path / "shared"
    make_trainer(shared, 6).run(until=2, progress=False)
    job = _job("train", shared, 6, 4)
    assert job.returncode == 0, job.stderr
    two = dict(np.load(shared / "params.npz"))
    worst_four = _assert_close(two, at_four, 1e-10)
    saved = io.load(shared / "checkpoint.npz")
    assert saved["step"] == 4
    np.testing.assert_allclose(saved["losses"], straight.losses[:4], rtol=1e-12)

    resumed = make_trainer(shared, 6)
    assert resumed.resume() == 4
    resumed.run(progress=False)
    worst_six = _assert_close(parameters(resumed), at_six, 1e-10)
    np.testing.assert_allclose(resumed.losses, straight.losses, rtol=1e-12)
    print(f"largest relative difference: {worst_four:.1e} at step 4, {worst_six:.1e} at step 6")


@requires_mpi
def test_the_collective_sums_the_ranks_gradients(tmp_path):
    """After the all-reduce each parameter's gradient is exactly rank 0's plus rank 1's, and
    that sum is the whole batch's gradient in one process, to float64 rounding."""
    job = _job("gradients", tmp_path)
    assert job.returncode == 0, job.stderr
    saved = np.load(tmp_path / "gradients.npz")
    trainer = make_trainer(tmp_path / "one", 6)
    loss = trainer._loss(md.backend.generator("cpu"))
    loss.backward()
    for name, p in trainer._named_parameters().items():
        summed = saved[f"sum/{name}"]
        np.testing.assert_array_equal(summed, saved[f"rank0/{name}"] + saved[f"rank1/{name}"])
        scale = float(np.abs(p.grad).max()) or 1.0
        np.testing.assert_allclose(summed, p.grad, rtol=1e-10, atol=1e-12 * scale, err_msg=name)


@requires_mpi
def test_parameters_that_drift_apart_stop_the_job_naming_the_step_and_rank(tmp_path):
    job = _job("drift", tmp_path)
    assert job.returncode != 0
    assert "the parameters drifted apart at step 3: rank 1's model." in job.stderr, job.stderr
    assert "aborting all 2 processes" in job.stderr


@requires_mpi
@pytest.mark.parametrize("how", ["fail", "kill"])
def test_a_process_that_raises_or_dies_ends_the_job_and_the_last_checkpoint_resumes(tmp_path, how):
    """Rank 1 raises (or is killed) in step 5: the job ends, rather than rank 0 waiting forever
    in the next all-reduce; a raise is reported naming the rank, the error and the step. The
    checkpoint of step 4 loads and resumes in one process."""
    job = _job(how, tmp_path)
    assert job.returncode != 0
    checkpoint = tmp_path / "checkpoint.npz"
    if how == "fail":
        expected = (
            f"rank 1 of 2 raised RuntimeError: {FAILURE} in step 5; {checkpoint} keeps the last "
            "checkpoint; aborting all 2 processes"
        )
        assert expected in job.stderr, job.stderr
    assert not list(tmp_path.glob("*.tmp"))
    lock = tmp_path / runlock.LOCK_NAME  # left by rank 0, which the launcher killed
    if lock.exists():
        _wait_for_the_end_of(json.loads(lock.read_text())["pid"])
    resumed = make_trainer(tmp_path, 6)
    assert resumed.resume() == 4
    resumed.run(progress=False)
    assert resumed.step == 6 and io.load(checkpoint)["step"] == 6
