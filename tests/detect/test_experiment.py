"""The detection study's report: tables from its results, and the committed files agree."""

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from minidiff.detect.experiment import QUALITY, DetectConfig, quality_cost, report
from minidiff.world import make_dataset

STUDY = Path(__file__).resolve().parents[2] / "studies" / "detect"


def _entry(mean=0.5):
    return {"mean": mean, "low": mean - 0.1, "high": mean + 0.1, "count": 4}


def _result(**config):
    rates = {"logistic": _entry(), "mlp": _entry(), "watermark": _entry()}
    return {
        "command": "python -m minidiff.detect",
        "config": asdict(DetectConfig(**config)),
        "seconds": 1.0,
        "machine": {"threads": 1},
        "clean": {"logistic": {"auc": _entry(0.9), "tpr_at_fpr": _entry(0.7)}},
        "watermark": {
            "key": {"degrees_of_freedom": 258, "noncentrality": 250.0, "fraction_of_noise": 0.04},
            "noise_log10_p_plain": _entry(0.01),
            "detection": _entry(0.8),
            "median_log10_p": -5.0,
            "median_log10_p_null_generated": -0.3,
            "fpr_generated": _entry(0.0),
            "fpr_real": _entry(0.0),
            "auc_against_generated": _entry(0.9),
        },
        "quality_cost": {
            name: {"plain": _entry(0.7), "watermarked": _entry(0.6), "difference": _entry(-0.1)}
            for name in QUALITY
        },
        "attacks": {"none": rates, "blur": rates},
        "cross_model": {"other": {"logistic": {"auc": _entry(0.6), "rate": _entry(0.2)}}},
    }


def test_report_has_every_table_and_says_when_it_ran_smaller():
    text = report(_result())
    for heading in ["Clean held-out clips", "Watermark", "What the watermark costs", "Attacks"]:
        assert f"## {heading}" in text
    assert "## Cross-model" in text
    assert "| direction | 0.70 [0.60, 0.80] | 0.60 [0.50, 0.70] | -0.10 [-0.20, 0.00] |" in text
    assert "| blur | 0.50 [0.40, 0.60] |" in text
    assert "smaller run" not in text
    assert "generated 64 (default 256)" in report(_result(generated=64))


@pytest.mark.skipif(not (STUDY / "results.json").exists(), reason="the study has not been run")
def test_committed_report_is_the_report_of_the_committed_results():
    result = json.loads((STUDY / "results.json").read_text())
    assert (STUDY / "results.md").read_text() == report(result)
    assert result["command"].startswith("python -m minidiff.detect")


def test_quality_cost_pairs_the_clips_and_sees_what_the_key_breaks():
    clips, _, specs = make_dataset(6, "id", seed=3)
    same = quality_cost(clips, clips.copy(), specs)
    for name in QUALITY:
        assert same[name]["plain"] == same[name]["watermarked"]
        assert same[name]["difference"]["mean"] == 0.0
    assert same["colour"]["plain"]["mean"] == 1.0  # real clips show their caption's colours
    # a clip left blank by the key loses its balls: every colour, paired, is one lost
    blank = quality_cost(clips, 0.0 * clips, specs)
    assert blank["colour"]["watermarked"]["mean"] == 0.0
    assert blank["colour"]["difference"]["mean"] == -1.0
    assert blank["colour"]["difference"]["count"] == 6


def test_quality_cost_refuses_sets_of_different_sizes():
    clips, _, specs = make_dataset(3, "id", seed=3)
    with pytest.raises(ValueError, match="clip by clip"):
        quality_cost(clips, clips[:2], specs)
