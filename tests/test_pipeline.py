"""The text-to-video job end to end on a tiny budget: train, reload, sample, evaluate, report."""

import json

import numpy as np
import pytest

from minidiff import pipeline
from minidiff.presets import PRESETS, get_preset
from minidiff.video import TextToVideo


def _quick(**train):
    base = get_preset("tiny-cpu")
    return base.with_overrides(
        train_clips=64,
        eval_clips=4,
        sample_steps=3,
        model={**base.model, "dim": 32, "depth": 1, "heads": 2},
        text={**base.text, "dim": 16, "heads": 2},
        train={
            **base.train,
            "steps": 4,
            "batch_size": 4,
            "log_every": 2,
            "checkpoint_every": 0,
            **train,
        },
    )


def test_train_reload_sample_evaluate_report(tmp_path):
    preset = _quick()
    system, trainer, seconds = pipeline.train_system(preset, tmp_path, progress=False)
    assert trainer.step == 4 and seconds > 0
    reloaded = TextToVideo.from_checkpoint(tmp_path / "checkpoint.npz")
    assert reloaded.preset == preset
    a = system.sample(["a red ball moves right"], seed=3, progress=False)
    b = reloaded.sample(["a red ball moves right"], seed=3, progress=False)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert a.shape == (1, 8, 3, 16, 16) and 0 <= a.min() and a.max() <= 1

    results = pipeline.evaluate_system(system, untrained=TextToVideo(preset), progress=False)
    assert set(results) == {"id", "ood"}
    assert results["id"]["real"]["fidelity"]["colour"]["mean"] == 1.0
    path = pipeline.write_report(tmp_path, results, {"preset": preset.name, "steps": 4})
    text = path.read_text()
    assert "| colour fidelity (higher is better) | 1.000 (4)" in text
    assert json.loads((tmp_path / "metrics.json").read_text())["info"]["steps"] == 4
    assert pipeline.sample_demo_prompts(system, tmp_path / "prompts.gif").stat().st_size > 1000


def test_unknown_prompt_words_and_presets_are_clear_errors():
    system = TextToVideo(_quick())
    with pytest.raises(KeyError, match="purple"):
        system.sample(["a purple ball moves left"], progress=False)
    with pytest.raises(ValueError, match="known presets: tiny-cpu, small-gpu"):
        get_preset("huge")
    assert set(PRESETS) == {"tiny-cpu", "small-gpu"}
