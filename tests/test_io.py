"""Checkpoints: atomic, pickle-free, complete enough to resume bit for bit."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import minidiff as md
from minidiff import nn, optim

ROOT = Path(__file__).resolve().parents[1]


def _setup(seed=0):
    md.manual_seed(seed)
    model = nn.Sequential(nn.Linear(2, 16), nn.MLP(16, 32, 2, dropout=0.2))
    opt = optim.AdamW(model.parameters(), lr=1e-2)
    ema = optim.EMA(model, 0.9)
    schedule = optim.LRSchedule.warmup_cosine(opt, 3, 20)
    return model, opt, ema, schedule


def _train(model, opt, ema, schedule, steps):
    for _ in range(steps):
        x = md.randn(8, 2)  # data and dropout both draw from the seeded generator
        loss = ((model(x) - x) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        optim.clip_grad_norm(model.parameters(), 1.0)
        opt.step()
        ema.update(model)
        schedule.step()


def test_resume_is_bitwise_identical(tmp_path):
    """Train k, save, train k more  ==  load the checkpoint into fresh objects, train k more."""
    model, opt, ema, schedule = _setup()
    _train(model, opt, ema, schedule, 5)
    md.save(
        tmp_path / "ckpt.npz",
        model=model,
        optimizer=opt,
        ema=ema,
        schedule=schedule,
        step=5,
        rng=True,
        config={"width": 16},
    )
    _train(model, opt, ema, schedule, 5)

    state = md.load(tmp_path / "ckpt.npz")
    model2, opt2, ema2, schedule2 = _setup(seed=123)  # different init and random stream
    model2.load_state_dict(state["model"])
    opt2.load_state_dict(state["optimizer"])
    ema2.load_state_dict(state["ema"])
    schedule2.load_state_dict(state["schedule"])
    md.backend.set_rng_state(state["rng"])
    assert state["step"] == 5 and state["config"] == {"width": 16}
    _train(model2, opt2, ema2, schedule2, 5)

    for (name, p), (_, q) in zip(model.named_parameters(), model2.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
    for name in ema.shadow:
        np.testing.assert_array_equal(ema.shadow[name], ema2.shadow[name])


def test_save_is_atomic_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    md.save(path, step=1)

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        md.save(path, step=2)
    monkeypatch.undo()
    assert md.load(path)["step"] == 1  # the old checkpoint survived the failed save
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]


def _dead_pid() -> int:
    """The id of a process of this machine that has finished."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_temporaries_of_killed_saves_are_removed_at_the_next_save_or_load(tmp_path):
    """A save killed between writing and renaming (kill -9) leaves its temporary file; the next
    save or load of the same path removes it, and only it: not a save under way in a live
    process, not another checkpoint's, not a name of another form."""
    path = tmp_path / "ckpt.npz"
    md.save(path, step=1)
    dead, alive = _dead_pid(), os.getpid()
    kept = [
        f"ckpt.npz.{alive}.inflight.tmp",
        f"other.npz.{dead}.abcdefgh.tmp",
        "ckpt.npz.abcdefgh.tmp",
        f"ckpt.npz.{dead}.abcdefgh.npz",
    ]
    for name in [f"ckpt.npz.{dead}.abcdefgh.tmp", *kept]:
        (tmp_path / name).write_bytes(b"half a checkpoint")
    md.save(path, step=2)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ckpt.npz", *kept])
    (tmp_path / f"ckpt.npz.{dead}.x1y2z3.tmp").write_bytes(b"half a checkpoint")
    assert md.load(path)["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["ckpt.npz", *kept])


def test_a_save_killed_midway_leaves_the_old_checkpoint_and_its_leftover_goes_next_time(tmp_path):
    """kill -9 in the middle of a save: the previous checkpoint loads as it was, and the
    temporary file the killed process left is removed by the next load."""
    path = tmp_path / "ckpt.npz"
    md.save(path, step=1)
    script = (
        "import os, signal, sys, numpy, minidiff as md\n"
        "def stuck(*args):\n"
        "    print('written', flush=True)\n"
        "    signal.pause()\n"
        "os.replace = stuck\n"
        "md.save(sys.argv[1], step=2, weights=numpy.zeros(1000))\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    assert child.stdout.readline() == "written\n"
    (leftover,) = tmp_path.glob(f"ckpt.npz.{child.pid}.*.tmp")
    child.kill()
    child.wait()
    child.stdout.close()
    assert leftover.exists()
    assert md.load(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.npz"]


def test_no_pickle_inside(tmp_path):
    model, opt, ema, schedule = _setup()
    path = md.save(tmp_path / "c.npz", model=model, optimizer=opt)
    with np.load(path, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)


def test_truncated_and_foreign_files_are_clear_errors(tmp_path):
    path = md.save(tmp_path / "c.npz", model=nn.Linear(4, 4))
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(md.CheckpointError, match="truncated"):
        md.load(truncated)
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, weights=np.zeros(3))
    with pytest.raises(md.CheckpointError, match="not a minidiff checkpoint"):
        md.load(foreign)
    text = tmp_path / "notes.npz"
    text.write_text("hello")
    with pytest.raises(md.CheckpointError):
        md.load(text)
    with pytest.raises(FileNotFoundError):
        md.load(tmp_path / "missing.npz")
    assert zipfile.is_zipfile(path)


def test_unsupported_objects_are_refused(tmp_path):
    with pytest.raises(TypeError, match="cannot store when"):
        md.save(tmp_path / "c.npz", when=object())


def test_checkpoint_arrays_live_on_the_host(tmp_path, device):
    model = nn.Linear(3, 3).to(device)
    state = md.load(md.save(tmp_path / "c.npz", model=model))
    assert all(isinstance(v, np.ndarray) for v in state["model"].values())
    cpu_model = nn.Linear(3, 3).to("cpu")
    cpu_model.load_state_dict(state["model"])
    np.testing.assert_array_equal(cpu_model.weight.numpy(), model.weight.numpy())


def test_object_arrays_are_refused_at_save_not_at_load(tmp_path):
    path = tmp_path / "c.npz"
    with pytest.raises(TypeError, match="save: meta/names is an array of Python objects"):
        md.save(path, meta={"names": np.array(["a", 1], dtype=object)})
    assert not path.exists() and not list(tmp_path.iterdir())
    md.save(path, meta={"names": np.array(["a", "b"])})  # a string array needs no pickle
    assert md.load(path)["meta"]["names"].tolist() == ["a", "b"]


def test_keys_that_would_collide_are_refused(tmp_path):
    """{"a/b": x} and {"a": {"b": y}} would both be stored as the array "state/a/b"."""
    with pytest.raises(ValueError, match=r"save: state has keys containing '/' \('a/b'\)"):
        md.save(tmp_path / "c.npz", state={"a/b": np.zeros(2), "a": {"b": np.ones(2)}})
    with pytest.raises(ValueError, match="keys containing '/'"):
        md.save(tmp_path / "c.npz", **{"x/y": 1})
    with pytest.raises(ValueError, match="reserved"):
        md.save(tmp_path / "c.npz", **{"__minidiff__": 1})
    assert not list(tmp_path.iterdir())
