"""The text-to-video job end to end on a tiny budget: train, reload, sample, evaluate, report."""

import json

import numpy as np
import pytest

import minidiff as md
from minidiff.app import pipeline
from minidiff.app.presets import PRESETS, get_preset
from minidiff.app.text_to_video import TextToVideo
from minidiff.world import make_dataset


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
    assert "| colour fidelity (higher is better) | 1.000 [1.000, 1.000] (4)" in text
    assert json.loads((tmp_path / "metrics.json").read_text())["info"]["steps"] == 4
    assert pipeline.sample_demo_prompts(system, tmp_path / "prompts.gif").stat().st_size > 1000


def test_unknown_prompt_words_and_presets_are_clear_errors():
    system = TextToVideo(_quick())
    with pytest.raises(KeyError, match="purple"):
        system.sample(["a purple ball moves left"], progress=False)
    with pytest.raises(ValueError, match="known presets: tiny-cpu, tiny-cpu-plain, small-gpu"):
        get_preset("huge")
    assert set(PRESETS) == {"tiny-cpu", "tiny-cpu-plain", "small-gpu"}


def test_snapshots_are_written_and_do_not_change_training(tmp_path):
    plain = pipeline.train_system(
        _quick(checkpoint_every=0, sample_every=0), tmp_path / "plain", progress=False
    )[1]
    watched = pipeline.train_system(_quick(sample_every=2), tmp_path / "watched", progress=False)[1]
    assert watched.losses == plain.losses
    snapshots = pipeline.load_snapshots(tmp_path / "watched" / "samples")
    assert sorted(snapshots) == [2, 4]
    assert snapshots[4].shape == (len(pipeline.DEMO_PROMPTS), 8, 3, 16, 16)
    assert (tmp_path / "watched" / "samples" / "step_00002.gif").stat().st_size > 1000
    assert not (tmp_path / "plain" / "samples").exists()


def test_continuation_keeps_the_given_frames_and_the_known_context():
    """Longer clips by replacement (eq-replacement): the given frames come back unchanged, each
    window is sampled with the previous frames as known, and the sampler returns them exactly."""
    system = TextToVideo(_quick(sample_steps=3))
    first, _, _ = make_dataset(2, "id", 8, 16, seed=0)
    prompts = ["a red ball moves right", "a blue ball falls and bounces"]
    video = system.continue_clips(prompts, first, total_frames=14, context=4, progress=False)
    assert video.shape == (2, 14, 3, 16, 16)
    np.testing.assert_array_equal(video[:, :8], first)
    known = np.zeros((2, 8, 3, 16, 16), dtype=np.float32)
    known[:, :4] = first[:, 4:] * 2 - 1
    mask = np.zeros(known.shape, dtype=bool)
    mask[:, :4] = True
    window = system.sample(prompts, known=known, known_mask=mask, progress=False)
    np.testing.assert_allclose(window[:, :4], first[:, 4:], atol=1e-6)
    with pytest.raises(ValueError, match="context must be between 1 and 7"):
        system.continue_clips(prompts, first, 14, context=8)
    with pytest.raises(ValueError, match="for 1 prompts"):
        system.continue_clips(prompts[:1], first, 14, context=4)


def test_continuation_report_has_the_real_ceiling(tmp_path):
    system = TextToVideo(_quick(sample_steps=2))
    continuation = pipeline.evaluate_continuation(system, clips=3, total_frames=12, context=4)
    real = continuation["sources"]["real"]
    assert real["first"]["colour"]["mean"] == 1.0 and real["videos"] == 3
    assert set(continuation["sources"]) == {
        "real",
        "model, from the real first clip",
        "model, from its own first clip",
    }
    text = pipeline.write_report(tmp_path, {}, {"preset": "tiny-cpu"}, continuation).read_text()
    assert "## Longer videos (12 frames" in text and "| real | " in text
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["continuation"]["context"] == 4


def test_a_frame_conditioned_system_takes_whole_known_frames():
    """conditioning="mask": the known frames go in clean with their flags and come back exactly;
    a network without frame conditioning, or a mask over part of a frame, is refused by name."""
    base = _quick(sample_steps=3)
    # (adaLN-Zero off: an untrained adaLN-Zero network ignores its input, as it is made to)
    system = TextToVideo(
        base.with_overrides(model={**base.model, "frame_conditioning": True, "adaln": False})
    )
    first, captions, _ = make_dataset(2, "id", 8, 16, seed=0)
    known = np.zeros(first.shape, dtype=np.float32)
    known[:, :3] = first[:, :3] * 2 - 1
    mask = np.zeros(first.shape, dtype=bool)
    mask[:, :3] = True
    clips = system.sample(captions, known=known, known_mask=mask, progress=False)
    np.testing.assert_allclose(clips[:, :3], first[:, :3], atol=1e-6)
    replaced = system.sample(
        captions, known=known, known_mask=mask, conditioning="replacement", progress=False
    )
    assert not np.allclose(replaced[:, 3:], clips[:, 3:])
    partial = mask.copy()
    partial[:, 3, 0] = True
    with pytest.raises(ValueError, match="whole frames"):
        system.sample(captions, known=known, known_mask=partial, progress=False)
    plain = TextToVideo(
        base.with_overrides(model={**base.model, "frame_conditioning": False, "adaln": False})
    )
    with pytest.raises(ValueError, match="frame_conditioning"):
        plain.sample(captions, known=known, known_mask=mask, conditioning="mask", progress=False)


def test_a_stretched_system_makes_longer_clips_with_the_same_weights():
    """Length extrapolation: stretched to its own length the network is unchanged; stretched
    to 16 frames it makes 16-frame clips; learned positions cannot stretch."""
    system = TextToVideo(_quick(sample_steps=2))
    same = system.stretched(8)
    x = np.random.default_rng(0).standard_normal((1, 8, 3, 16, 16)).astype(np.float32)
    tokens, mask = system.encoder(*system.tokenize(["a red ball moves right"]))
    np.testing.assert_array_equal(
        same.model(x, np.array([500]), tokens, mask).numpy(),
        system.model(x, np.array([500]), tokens, mask).numpy(),
    )
    longer = system.stretched(16).sample(["a red ball moves right"], progress=False)
    assert longer.shape == (1, 16, 3, 16, 16)
    base = _quick()
    learned = TextToVideo(base.with_overrides(model={**base.model, "pos_encoding": "learned"}))
    with pytest.raises(ValueError, match="learned positions"):
        learned.stretched(16)


def test_shipped_weights_rebuild_the_same_system(tmp_path):
    """save_weights keeps the network and encoder (no optimizer, no EMA) with what rebuilds the
    preset; from_checkpoint gives a system that samples exactly the same clips."""
    base = _quick(sample_steps=2)
    system = TextToVideo(base.with_overrides(model={**base.model, "adaln": True}))
    path = tmp_path / "weights.npz"
    system.save_weights(path, command="python -m minidiff study x")
    loaded = TextToVideo.from_checkpoint(path)
    assert loaded.config == system.config
    prompts = ["a red ball moves right"]
    np.testing.assert_array_equal(
        loaded.sample(prompts, progress=False), system.sample(prompts, progress=False)
    )


def test_a_fresh_run_clears_the_previous_runs_snapshots(tmp_path, capsys):
    preset = _quick(steps=2, sample_every=2)
    pipeline.train_system(preset, tmp_path, progress=False)
    assert sorted(pipeline.load_snapshots(tmp_path / "samples")) == [2]
    pipeline.build_trainer(preset, tmp_path, resume=True)  # resuming keeps them
    assert (tmp_path / "samples" / "snapshots.npz").exists()
    pipeline.build_trainer(preset, tmp_path, resume=False)
    assert "removed the previous run's 2 snapshot files" in capsys.readouterr().out
    assert not list((tmp_path / "samples").iterdir())


def test_resuming_a_checkpoint_of_another_model_says_to_start_afresh(tmp_path):
    pipeline.train_system(_quick(steps=1), tmp_path, progress=False)
    bigger = _quick(steps=1).with_overrides(model={**_quick().model, "dim": 48})
    with pytest.raises(md.CheckpointError, match="another model.*--fresh.*another run folder"):
        pipeline.build_trainer(bigger, tmp_path)
