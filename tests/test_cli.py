"""The command line: every subcommand once, on tiny budgets, and its errors."""

import json

import pytest

import minidiff as md
from minidiff import cli, pipeline
from minidiff.video import TextToVideo


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


def test_evaluate_and_sample_check_their_outputs_before_the_work(tmp_path, monkeypatch):
    run = tmp_path / "run"
    cli.main(["train", "--steps", "1", "--out", str(run)])
    monkeypatch.setattr(pipeline, "evaluate_system", _must_not_run)
    monkeypatch.setattr(TextToVideo, "sample", _must_not_run)
    a_file = tmp_path / "a_file"
    a_file.write_text("")
    with pytest.raises(NotADirectoryError, match=f"--out {a_file} is a file; give a folder"):
        _evaluate(run / "checkpoint.npz", "--out", str(a_file))
    with pytest.raises(IsADirectoryError, match=f"--out {run} is a folder; give a file name"):
        _sample(run / "checkpoint.npz", run)


def _must_not_run(*args, **kwargs):
    raise AssertionError("the work started before the output was checked")


def test_world_preview_writes_a_gif(tmp_path):
    out = tmp_path / "world.gif"
    assert cli.main(["world", "--preview", "--out", str(out), "--n", "4"]) == 0
    assert out.stat().st_size > 1000


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
    with pytest.raises(KeyError, match="purple"):
        cli.main(
            [
                "sample",
                "--ckpt",
                str(run / "checkpoint.npz"),
                "--prompt",
                "a purple ball moves left",
                "--steps",
                "1",
                "--out",
                str(tmp_path / "x.gif"),
            ]
        )


def _sample(ckpt, out, *extra):
    return cli.main(
        ["sample", "--ckpt", str(ckpt), "--prompt", "a red ball moves right", "--steps", "1"]
        + ["--out", str(out), *extra]
    )


@pytest.mark.parametrize("guidance", ["nan", "inf", "-inf"])
def test_sampling_refuses_a_guidance_that_is_not_finite(tmp_path, guidance):
    run = tmp_path / "run"
    cli.main(["train", "--steps", "1", "--out", str(run)])
    with pytest.raises(ValueError, match=f"guidance must be a finite number.*got {guidance}"):
        _sample(run / "checkpoint.npz", tmp_path / "x.gif", f"--guidance={guidance}")
    assert not (tmp_path / "x.gif").exists()


def test_sampling_refuses_a_checkpoint_whose_weights_are_not_finite(tmp_path):
    """A diverged run's weights would give black clips and exit 0."""
    run = tmp_path / "run"
    cli.main(["train", "--steps", "1", "--out", str(run)])
    state = md.load(run / "checkpoint.npz")
    for name in ("model", "ema_model"):
        weights = state[name]["shadow"] if name.startswith("ema") else state[name]
        next(iter(weights.values()))[...] = float("nan")
    md.save(tmp_path / "diverged.npz", **state)
    with pytest.raises(md.CheckpointError, match="weight arrays hold NaN or inf.*lower lr"):
        _sample(tmp_path / "diverged.npz", tmp_path / "x.gif")
    assert not (tmp_path / "x.gif").exists()


def test_study_lists_its_variants_and_refuses_unknown_ones(capsys):
    assert cli.main(["study", "--list"]) == 0
    listed = capsys.readouterr().out
    assert "baseline" in listed and "masks-adaln" in listed
    with pytest.raises(ValueError, match="unknown study 'nope'"):
        cli.main(["study", "nope", "--steps", "1"])
