"""The study runner on a tiny budget: what it writes, resuming, and the table across studies."""

import json

import pytest

from minidiff import studies


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
        **{**study.__dict__, "train": {**study.train, "frame_masks": studies.MASKS}}
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
    assert (out / "samples.gif").exists() and "## Learning curve" in (out / "report.md").read_text()
    text = studies.table(tmp_path / "results").read_text()
    assert "[masked](masked/report.md)" in text


def test_unknown_studies_are_named():
    with pytest.raises(ValueError, match="known studies: baseline"):
        studies.get_study("nope")
    assert all(s.build().train["steps"] > 0 for s in studies.STUDIES.values())
