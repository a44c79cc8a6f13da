"""The study runner on a tiny budget: what it writes, resuming, and the table across studies."""

import json

import pytest

from minidiff.app import studies
from minidiff.app.text_to_video import TextToVideo


def _tiny_study(name="tiny", **model):
    return studies.Study(
        name,
        "a few steps of a small network, to check the runner",
        model={"dim": 32, "depth": 1, "heads": 2, **model},
        train={"steps": 4, "batch_size": 4, "log_every": 2, "checkpoint_every": 0},
        preset_fields={
            "train_clips": 32,
            "sample_steps": 2,
            "text": {"dim": 16, "depth": 1, "heads": 2, "max_length": 20},
        },
    )


def test_a_study_writes_its_curve_rates_intervals_and_command(tmp_path):
    study = _tiny_study("masked", frame_conditioning=True)
    study = studies.Study(
        **{**study.__dict__, "train": {**study.train, "frame_masks": studies.MASKS}, "ship": True}
    )
    out = studies.run_study(
        study,
        tmp_path / "results",
        tmp_path / "runs",
        curve=[2],
        curve_clips=4,
        id_clips=4,
        ood_clips=2,
        videos=2,
        progress=False,
        command="python -m minidiff study masked",
    )
    result = json.loads((out / "result.json").read_text())
    assert [p["step"] for p in result["curve"]] == [2, 4]
    assert result["curve"][1]["clips_seen"] == 16
    colour = result["text_to_video"]["id"]["real"]["colour"]
    assert colour == {"mean": 1.0, "count": 4, "low": 1.0, "high": 1.0}
    assert set(result["text_to_video"]) == {"id", "pair", "speed", "gravity", "count"}
    predicted = result["prediction"]["splits"]["id"]
    assert (
        set(predicted) == {"real", "replacement", "mask"} and result["prediction"]["best"] == "mask"
    )
    assert predicted["real"]["velocity_error"]["mean"] < 0.05
    assert set(result["continuation"]["sources"]) == {"real", "replacement", "mask"}
    assert result["command"] == "python -m minidiff study masked"
    assert result["extrapolation"]["frames"] == 16
    assert result["extrapolation"]["real"]["permanence"]["mean"] == 1.0
    assert (out / "samples.gif").exists() and "## Learning curve" in (out / "report.md").read_text()
    shipped = TextToVideo.from_checkpoint(out / "weights.npz")
    assert shipped.config.frame_conditioning and shipped.preset.train["steps"] == 4
    log = json.loads((out / "training_log.json").read_text())
    assert len(log["losses"]) == 4 and log["command"] == result["command"]
    text = studies.table(tmp_path / "results").read_text()
    assert "[masked](masked/report.md)" in text
    effects = result["word_effect"]
    assert set(effects) == {*studies.WORDS, studies.GIVEN_FIRST}
    assert effects["direction"]["clips"] == 128
    assert list(effects["colour"]["levels"]) == [str(t) for t in studies.LEVELS]
    assert "## Word effect" in (out / "report.md").read_text()
    features = result["word_features"]
    assert set(features) == {"reversed", "turned", "recoloured"}
    assert all(-1.0 <= f["low"] <= f["mean"] <= f["high"] <= 1.0 + 1e-9 for f in features.values())
    assert "## The text encoder's features" in (out / "report.md").read_text()


def test_the_word_effect_measured_later_is_the_one_measured_at_the_end(tmp_path):
    """A study measured before the word effect existed gets it from its run's checkpoint: the
    same EMA weights, so the same numbers as the end of training measures."""
    out = studies.run_study(
        _tiny_study(),
        tmp_path / "results",
        tmp_path / "runs",
        id_clips=4,
        ood_clips=2,
        videos=2,
        progress=False,
    )
    path = out / "result.json"
    result = json.loads(path.read_text())
    measured, features = result.pop("word_effect"), result.pop("word_features")
    assert set(measured) == set(studies.WORDS)  # no frame masks: no effect with a frame given
    path.write_text(json.dumps(result))
    studies.add_word_effects("tiny", tmp_path / "results", tmp_path / "runs", command="again")
    later = json.loads(path.read_text())
    assert later["word_effect"] == measured and later["word_effect_command"] == "again"
    assert later["word_features"] == features
    with pytest.raises(FileNotFoundError, match="run `python -m minidiff study other` first"):
        studies.add_word_effects("other", tmp_path / "results", tmp_path / "runs")


def test_unknown_studies_are_named():
    with pytest.raises(ValueError, match="known studies: baseline"):
        studies.get_study("nope")
    assert all(s.build().train["steps"] > 0 for s in studies.STUDIES.values())


def test_a_study_does_not_resume_a_run_with_other_settings(tmp_path):
    study = _tiny_study()
    kwargs = dict(curve_clips=2, id_clips=2, ood_clips=1, videos=1, progress=False)
    studies.run_study(study, tmp_path / "r", tmp_path / "runs", **kwargs)
    with pytest.raises(ValueError, match="steps differ.*--fresh"):
        studies.run_study(study, tmp_path / "r", tmp_path / "runs", steps=6, **kwargs)
    out = studies.run_study(study, tmp_path / "r", tmp_path / "runs", steps=6, fresh=True, **kwargs)
    assert json.loads((out / "result.json").read_text())["steps"] == 6


def test_a_budget_study_resumes_with_the_steps_it_started_with(tmp_path, monkeypatch):
    speeds = iter([0.5, 0.4])  # a second timing would give 5 steps instead of 4
    monkeypatch.setattr(studies, "seconds_per_step", lambda preset: next(speeds))
    kwargs = dict(curve_clips=2, id_clips=2, ood_clips=1, videos=1, progress=False)
    study = _tiny_study()
    first = studies.run_study(study, tmp_path / "r", tmp_path / "runs", seconds=2.0, **kwargs)
    measured = json.loads((first / "result.json").read_text())
    assert measured["budget"]["steps"] == 4 and measured["train_seconds"] > 0
    (first / "result.json").unlink()  # as if the first run had been stopped after training
    again = studies.run_study(study, tmp_path / "r", tmp_path / "runs", seconds=2.0, **kwargs)
    result = json.loads((again / "result.json").read_text())
    assert result["steps"] == 4 and result["budget"]["measured_seconds_per_step"] == 0.5
    assert result["train_seconds"] == measured["train_seconds"]  # the time it took, kept
    assert [p["step"] for p in result["curve"]] == [4]
    fresh = studies.run_study(
        study, tmp_path / "r", tmp_path / "runs", seconds=2.0, fresh=True, **kwargs
    )
    assert json.loads((fresh / "result.json").read_text())["steps"] == 5
