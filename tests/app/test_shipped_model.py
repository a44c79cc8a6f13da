"""The model shipped with the book (studies/recipe-curve): it loads, says how it was
made, and samples clips that the metrics read as the caption's colour."""

import json
from pathlib import Path

import numpy as np
import pytest

from minidiff.app.text_to_video import TextToVideo
from minidiff.metrics.video import evaluate_clips
from minidiff.world import make_dataset

FOLDER = Path(__file__).resolve().parents[2] / "studies" / "recipe-curve"


@pytest.fixture(scope="module")
def shipped():
    return TextToVideo.from_checkpoint(FOLDER / "weights.npz")


def test_the_shipped_weights_say_how_they_were_made(shipped):
    assert (FOLDER / "weights.npz").stat().st_size < 10 * 2**20
    log = json.loads((FOLDER / "training_log.json").read_text())
    result = json.loads((FOLDER / "result.json").read_text())
    assert log["command"] == result["command"].strip() and len(log["losses"]) == result["steps"]
    assert shipped.config.frame_conditioning and shipped.config.adaln
    assert shipped.config.pos_encoding == "rope3d+sincos3d"
    assert shipped.preset.text["embedding_std"] == 1.0


def test_the_shipped_model_samples_clips_of_the_captions_colours(shipped):
    """Eight in-distribution captions: the clips have the world's shape, repeat under a seed
    (a clip's noise does not depend on the batch it is drawn in; the products of a smaller batch
    round differently in float32, so equal to 1e-4), and most show the caption's colours (the
    study measured 0.76 on 256 scenes)."""
    _, captions, specs = make_dataset(8, "id", 8, 16, seed=1234)
    clips = shipped.sample(captions, steps=10, seed=0, progress=False)
    assert clips.shape == (8, 8, 3, 16, 16) and clips.min() >= 0 and clips.max() <= 1
    again = shipped.sample(captions[:2], steps=10, seed=0, progress=False)
    np.testing.assert_allclose(again, clips[:2], atol=1e-4)
    assert evaluate_clips(clips, specs)["fidelity"]["colour"]["mean"] >= 0.5
