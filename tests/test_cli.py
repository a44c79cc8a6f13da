"""The command line and the demo it runs."""

import json

import pytest

import minidiff as md
from minidiff import cli


def test_demo_trains_and_writes_its_outputs(tmp_path, capsys):
    assert cli.main(["demo", "--out", str(tmp_path), "--steps", "300"]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert (tmp_path / "spirals.png").stat().st_size > 10_000
    assert metrics["steps"] == 300
    assert metrics["final_loss"] < 0.6  # chance level is log 2 = 0.69
    assert "not part of the library yet" in capsys.readouterr().out
    state = md.load(tmp_path / "spirals.npz")
    assert state["step"] == 300 and set(state) >= {"model", "optimizer", "ema", "rng"}


def test_unknown_command_is_an_error(capsys):
    with pytest.raises(SystemExit):
        cli.main(["fly"])
    assert "invalid choice" in capsys.readouterr().err
