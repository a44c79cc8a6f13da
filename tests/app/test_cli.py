"""The command line: every subcommand once, on tiny budgets, and its errors."""

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import minidiff as md
from minidiff.app import cli, pipeline
from minidiff.app.text_to_video import TextToVideo

ROOT = Path(__file__).resolve().parents[2]


def test_spirals_trains_and_writes_its_outputs(tmp_path, capsys):
    assert cli.main(["spirals", "--out", str(tmp_path), "--steps", "300"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (tmp_path / "spirals.png").stat().st_size > 10_000
    assert metrics["steps"] == 300
    assert metrics["final_loss"] < 0.6  # chance level is log 2 = 0.69
    state = md.load(tmp_path / "spirals.npz")
    assert state["step"] == 300 and set(state) >= {"model", "optimizer", "ema", "rng"}


def test_train_sample_evaluate_round_trip(tmp_path, capsys):
    run = tmp_path / "run"
    assert cli.main(["train", "--steps", "2", "--out", str(run)]) == 0
    ckpt = run / "checkpoint.npz"
    assert ckpt.exists() and (run / "loss.png").exists()
    gif = tmp_path / "clip.gif"
    assert (
        cli.main(
            [
                "sample",
                "--ckpt",
                str(ckpt),
                "--prompt",
                "a red ball moves right",
                "--steps",
                "2",
                "--frames",
                "12",
                "--out",
                str(gif),
            ]
        )
        == 0
    )
    assert gif.stat().st_size > 1000
    out = tmp_path / "new" / "evaluation"  # a missing folder is created
    assert _evaluate(ckpt, "--out", str(out)) == 0
    report = (out / "evaluation.md").read_text()
    assert "## ID (2 scenes)" in report and "object permanence" in report
    assert json.loads((out / "evaluation.json").read_text())["info"]["checkpoint"] == str(ckpt)
    capsys.readouterr()
    short = ["sample", "--ckpt", str(ckpt), "--prompt", "a red ball moves right", "--frames", "4"]
    assert cli.main([*short, "--out", str(tmp_path / "short.gif")]) == 2
    assert "--frames 4 is shorter than the model's clips of 8 frames" in capsys.readouterr().err
    assert not (tmp_path / "short.gif").exists()


def _evaluate(ckpt, *extra):
    return cli.main(["evaluate", "--ckpt", str(ckpt), "--split", "id", "--clips", "2", *extra])


def test_evaluate_leaves_the_runs_report_alone(tmp_path, capsys):
    run = tmp_path / "run"
    cli.main(["train", "--steps", "1", "--out", str(run)])
    (run / "report.md").write_text("the demo's report")
    (run / "metrics.json").write_text("{}")
    assert _evaluate(run / "checkpoint.npz") == 0
    assert (run / "report.md").read_text() == "the demo's report"
    assert (run / "metrics.json").read_text() == "{}"
    assert "## ID (2 scenes)" in (run / "evaluation.md").read_text()
    assert f"wrote {run / 'evaluation.md'} and {run / 'evaluation.json'}" in capsys.readouterr().out


def test_evaluate_samples_with_the_settings_it_is_given(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    cli.main(["train", "--steps", "1", "--out", str(run)])
    asked = []
    sample = TextToVideo.sample

    def recording(self, prompts, **kwargs):
        asked.append({name: kwargs[name] for name in ("steps", "guidance", "eta")})
        return sample(self, prompts, **kwargs)

    monkeypatch.setattr(TextToVideo, "sample", recording)
    settings = ["--guidance", "4.5", "--steps", "3", "--eta", "1"]
    assert _evaluate(run / "checkpoint.npz", *settings) == 0
    assert asked == [{"steps": 3, "guidance": 4.5, "eta": 1.0}] * 2  # untrained and trained
    info = json.loads((run / "evaluation.json").read_text())["info"]
    assert (info["steps"], info["guidance"], info["eta"]) == (3, 4.5, 1.0)
    assert "- guidance: 4.5" in (run / "evaluation.md").read_text()
    asked.clear()
    assert _evaluate(run / "checkpoint.npz") == 0  # the preset's settings when none are given
    preset = TextToVideo.from_checkpoint(run / "checkpoint.npz").preset
    assert asked[0] == {"steps": preset.sample_steps, "guidance": preset.guidance, "eta": 0.0}
    capsys.readouterr()
    assert _evaluate(run / "checkpoint.npz", "--eta", "-0.5") == 2
    assert "eta must be a finite number >= 0" in capsys.readouterr().err


def test_evaluate_and_sample_check_their_outputs_before_the_work(tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    cli.main(["train", "--steps", "1", "--out", str(run)])
    monkeypatch.setattr(pipeline, "evaluate_system", _must_not_run)
    monkeypatch.setattr(TextToVideo, "sample", _must_not_run)
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    capsys.readouterr()
    message = _refused(
        capsys, ["evaluate", "--ckpt", str(run / "checkpoint.npz"), "--out", str(a_file)]
    )
    assert (
        message
        == f"minidiff evaluate: error: --out {a_file} is a file; give a folder (created if missing)"
    )
    assert _sample(run / "checkpoint.npz", run) == 2
    assert f"--out {run} is a folder; give a file name" in capsys.readouterr().err


def _must_not_run(*args, **kwargs):
    raise AssertionError("the work started before the output was checked")


def test_world_preview_writes_a_gif(tmp_path, capsys):
    out = tmp_path / "world.gif"
    assert cli.main(["world", "--preview", "--out", str(out), "--n", "4"]) == 0
    assert out.stat().st_size > 1000
    with pytest.raises(SystemExit) as stopped:
        cli.main(["world", "--help"])
    assert stopped.value.code == 0 and "--fps" in capsys.readouterr().out
    assert cli.main(["world", "--n", "4"]) == 2
    assert "say --preview" in capsys.readouterr().err


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["fly"])
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--preset", "huge"])
    assert "invalid choice: 'huge'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["train", "--steps", "0"])
    assert "positive integer" in capsys.readouterr().err
    run = tmp_path / "run"
    cli.main(["train", "--steps", "1", "--out", str(run)])
    capsys.readouterr()
    argv = ["sample", "--ckpt", str(run / "checkpoint.npz"), "--prompt", "a purple ball moves left"]
    message = _refused(capsys, argv + ["--steps", "1", "--out", str(tmp_path / "x.gif")])
    assert message.startswith("minidiff sample: error: unknown word 'purple' in caption")
    assert "Use words the vocabulary has (in Python" in message  # no flag the CLI lacks
    long = " and ".join(["a red ball moves right"] * 10)
    message = _refused(capsys, ["sample", "--ckpt", str(run / "checkpoint.npz"), "--prompt", long])
    assert "shorten it to at most" in message and "(in Python" in message


def _refused(capsys, argv) -> str:
    """The one line that ``argv`` prints on stderr when it exits with status 2."""
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err.strip()


def test_user_errors_are_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    missing = ["sample", "--ckpt", str(tmp_path / "none.npz"), "--prompt", "a red ball"]
    assert (
        _refused(capsys, missing) == f"minidiff sample: error: no checkpoint at {tmp_path}/none.npz"
    )
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        cli.main(["--debug", *missing])
    monkeypatch.setenv("MINIDIFF_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        cli.main(missing)


def test_a_process_prints_one_line_and_exits_2(tmp_path):
    argv = ["sample", "--ckpt", str(tmp_path / "none.npz"), "--prompt", "a red ball"]
    command = [sys.executable, "-m", "minidiff"]
    plain = subprocess.run(command + argv, cwd=ROOT, capture_output=True, text=True)
    assert plain.returncode == 2 and plain.stdout == ""
    assert plain.stderr == f"minidiff sample: error: no checkpoint at {tmp_path}/none.npz\n"
    debug = subprocess.run(command + ["--debug", *argv], cwd=ROOT, capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_a_busy_run_folder_and_another_models_checkpoint_say_what_to_do(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    lock = run / "run.lock"
    lock.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))
    message = _refused(capsys, ["train", "--steps", "1", "--out", str(run)])
    assert message.startswith(f"minidiff train: error: {run} is in use by another run (pid ")
    assert "choose another run folder (--out)" in message
    demo = _refused(capsys, ["demo", "--out", str(run)])  # refused before any work
    assert demo.startswith(f"minidiff demo: error: {run} is in use by another run (pid ")
    assert sorted(p.name for p in run.iterdir()) == ["run.lock"]
    lock.unlink()
    assert cli.main(["train", "--steps", "1", "--out", str(run)]) == 0
    capsys.readouterr()
    plain = ["train", "--preset", "tiny-cpu-plain", "--steps", "1", "--out", str(run)]
    message = _refused(capsys, plain)
    assert "is a checkpoint of another model" in message and "(--fresh" in message
    assert "another run folder (--out)" in message
    assert not lock.exists()


def _sample(ckpt, out, *extra):
    return cli.main(
        ["sample", "--ckpt", str(ckpt), "--prompt", "a red ball moves right", "--steps", "1"]
        + ["--out", str(out), *extra]
    )


@pytest.mark.parametrize("guidance", ["nan", "inf", "-inf"])
def test_sampling_refuses_a_guidance_that_is_not_finite(tmp_path, capsys, guidance):
    run = tmp_path / "run"
    cli.main(["train", "--steps", "1", "--out", str(run)])
    assert _sample(run / "checkpoint.npz", tmp_path / "x.gif", f"--guidance={guidance}") == 2
    assert re.search(f"guidance must be a finite number.*got {guidance}", capsys.readouterr().err)
    assert not (tmp_path / "x.gif").exists()


def test_sampling_refuses_a_checkpoint_whose_weights_are_not_finite(tmp_path, capsys):
    """A diverged run's weights would give black clips and exit 0."""
    run = tmp_path / "run"
    cli.main(["train", "--steps", "1", "--out", str(run)])
    state = md.load(run / "checkpoint.npz")
    for name in ("model", "ema_model"):
        weights = state[name]["shadow"] if name.startswith("ema") else state[name]
        next(iter(weights.values()))[...] = float("nan")
    md.save(tmp_path / "diverged.npz", **state)
    assert _sample(tmp_path / "diverged.npz", tmp_path / "x.gif") == 2
    assert re.search("weight arrays hold NaN or inf.*lower lr", capsys.readouterr().err)
    assert not (tmp_path / "x.gif").exists()


def test_study_lists_its_variants_and_refuses_unknown_ones(capsys):
    assert cli.main(["study", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "baseline" in listed and "masks-adaln" in listed
    assert "unknown study 'nope'" in _refused(capsys, ["study", "nope", "--steps", "1"])
