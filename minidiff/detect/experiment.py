"""The detection study: train the passive detectors and key the watermark on the shipped model,
attack both the same way, and write ``studies/detect/`` (``results.json`` and ``results.md``, each
with the command that made them; not ``result.json``, the name of a trained study's results that
``python -m minidiff study --table`` gathers).

``python -m minidiff.detect`` runs it; ``--help`` lists the sizes. Every rate comes with its 95%
bootstrap interval (eq-bootstrap). The protocol:

* **detectors** (logistic, MLP) are trained on features (:func:`~.features.clip_features`) of
  ``real_train`` real clips against ``generated`` / 2 generated ones, and scored on ``real_test``
  held-out real clips against the other half of the generated ones. The threshold is set at 1%
  false positives on the held-out real clips; an attack edits the generated test clips only, and
  the threshold stays where the clean real clips put it.
* the **watermark** keys ``watermarked`` clips' starting noise (eq-tree-ring-key) and flags a
  clip when its p-value (eq-key-null) is below 1%; its false-positive rate is measured on
  unwatermarked generated clips and real clips, inverted the same way.
* the watermark's **quality cost**: the ``watermarked`` prompts are also sampled from the same
  starting noise without the key, and chapter 13's headline rates (colour, count, direction,
  permanence) of the two sets are compared clip by clip (:func:`quality_cost`).
* the **cross-model** case scores clips the detectors never saw the like of: another checkpoint,
  and the shipped one with another step count and guidance.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy

from .. import parallel
from ..metrics import evaluate_clip
from ..metrics.intervals import summarize
from ..world import make_dataset
from . import roc, watermark
from .attacks import ATTACKS, apply_attack
from .classifier import DETECTORS, train_detector
from .features import clip_features

CHECKPOINT = "studies/recipe-curve/weights.npz"
OTHER_CHECKPOINT = "studies/masks-adaln-curve/weights.npz"
QUALITY = ("colour", "count", "direction", "permanence")  # chapter 13's headline rates


@dataclass(frozen=True)
class DetectConfig:
    checkpoint: str = CHECKPOINT
    other_checkpoint: str = OTHER_CHECKPOINT
    generated: int = 256  # generated clips for the detectors, half to train, half to test
    real_train: int = 256
    real_test: int = 256
    watermarked: int = 64
    null_clips: int = 64  # unwatermarked generated and real clips each, for the watermark's FPR
    cross: int = 64  # clips per cross-model case
    steps: int = 25  # DDIM steps of the generated clips
    invert_steps: int = 25  # DDIM steps of the watermark's inversion
    cross_steps: int = 10
    cross_guidance: float = 4.0
    detector_steps: int = 400
    seed: int = 0


def _captions(n: int, seed: int):
    return make_dataset(n, "id", seed=seed)[1] if n else []


def _sample(system, captions, steps, seed, guidance=None, batch: int = 32):
    parts = [
        system.sample(
            captions[i : i + batch], steps=steps, guidance=guidance, seed=seed + i, progress=False
        )
        for i in range(0, len(captions), batch)
    ]
    return numpy.concatenate(parts)


def quality_cost(plain_clips, keyed_clips, specs) -> dict:
    """What the watermark costs, per rate of :data:`QUALITY`: its mean over the clips made
    without the key (``plain``) and with it (``watermarked``), from the same prompts ``specs``
    and the same starting noise otherwise, and the mean of the paired difference, watermarked
    minus plain, over the clips where the rate applies to both; each with its 95% bootstrap
    interval (eq-bootstrap)."""
    if not len(plain_clips) == len(keyed_clips) == len(specs):
        raise ValueError(
            f"{len(plain_clips)} plain clips, {len(keyed_clips)} watermarked clips and "
            f"{len(specs)} specs: the comparison is clip by clip, so they must be as many"
        )
    plain = [evaluate_clip(clip, spec) for clip, spec in zip(plain_clips, specs)]
    keyed = [evaluate_clip(clip, spec) for clip, spec in zip(keyed_clips, specs)]
    cost = {}
    for name in QUALITY:
        pairs = [(a[name], b[name]) for a, b in zip(plain, keyed) if None not in (a[name], b[name])]
        cost[name] = {
            "plain": summarize(a[name] for a in plain),
            "watermarked": summarize(b[name] for b in keyed),
            "difference": summarize(float(b) - float(a) for a, b in pairs),
        }
    return cost


def _log(message: str, started: float) -> None:
    print(f"[{time.perf_counter() - started:7.1f} s] {message}", flush=True)


def run(config: DetectConfig, out="studies/detect", command: str | None = None) -> Path:
    """Run the study of ``config`` and write ``out``; returns that folder."""
    from ..app.text_to_video import TextToVideo

    started = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    system = TextToVideo.from_checkpoint(config.checkpoint)
    frames, size = system.config.frames, system.config.height

    # --- the passive detectors ---------------------------------------------------------------
    real_train = make_dataset(config.real_train, "train", frames, size, seed=config.seed + 13)[0]
    real_test = make_dataset(config.real_test, "id", frames, size, seed=config.seed + 11)[0]
    generated = _sample(system, _captions(config.generated, config.seed + 12), config.steps, 1000)
    _log(f"sampled {len(generated)} clips", started)
    half = len(generated) // 2
    gen_train, gen_test = generated[:half], generated[half:]
    features = {"real_train": clip_features(real_train), "real_test": clip_features(real_test)}
    detectors = {
        kind: train_detector(
            features["real_train"],
            clip_features(gen_train),
            kind,
            steps=config.detector_steps,
            seed=config.seed,
        )
        for kind in DETECTORS
    }
    negatives = {kind: d.score(features["real_test"]) for kind, d in detectors.items()}
    clean = {
        kind: roc.evaluate(negatives[kind], d.score(clip_features(gen_test)))
        for kind, d in detectors.items()
    }
    _log(
        "detectors trained: AUC "
        + ", ".join(f"{k} {v['auc']['mean']:.3f}" for k, v in clean.items()),
        started,
    )

    # --- the watermark -----------------------------------------------------------------------
    key = watermark.make_key((frames, 3, size, size), seed=config.seed + 99)
    rng = numpy.random.default_rng([config.seed, 5])
    plain = rng.standard_normal((config.watermarked, frames, 3, size, size)).astype(numpy.float32)
    keyed_noise = watermark.watermark_noise(key, plain)
    _, keyed_captions, keyed_specs = make_dataset(config.watermarked, "id", seed=config.seed + 14)
    keyed = watermark.sample_from_noise(system, keyed_captions, keyed_noise, config.steps)
    unkeyed = watermark.sample_from_noise(system, keyed_captions, plain, config.steps)
    cost = quality_cost(unkeyed, keyed, keyed_specs)
    _log(
        f"sampled {len(keyed)} watermarked clips and the same without the key: "
        + ", ".join(
            f"{n} {v['watermarked']['mean']:.2f} vs {v['plain']['mean']:.2f}"
            for n, v in cost.items()
        ),
        started,
    )

    def read(clips):
        noise = watermark.invert_clips(system, clips, steps=config.invert_steps)
        return watermark.read_noise(key, noise)

    null_generated = read(gen_test[: config.null_clips])
    null_real = read(real_test[: config.null_clips])
    keyed_clean = read(keyed)
    level = numpy.log10(roc.FPR)
    mark = {
        "key": {
            "degrees_of_freedom": key.degrees_of_freedom,
            "noncentrality": round(key.noncentrality, 2),
            "fraction_of_noise": key.degrees_of_freedom / int(numpy.prod(key.shape)),
        },
        "noise_distance_watermarked": float(numpy.median(watermark.key_distance(key, keyed_noise))),
        "noise_log10_p_plain": roc.rate_with_interval(
            watermark.log10_p_value(key, watermark.key_distance(key, plain)) < level
        ),
        "fpr_generated": roc.rate_with_interval(null_generated[1] < level),
        "fpr_real": roc.rate_with_interval(null_real[1] < level),
        "detection": roc.rate_with_interval(keyed_clean[1] < level),
        "median_log10_p": float(numpy.median(keyed_clean[1])),
        "median_log10_p_null_generated": float(numpy.median(null_generated[1])),
        "auc_against_generated": roc.two_sample_interval(
            roc.auc, -null_generated[0], -keyed_clean[0]
        ),
    }
    _log(f"watermark: detection {mark['detection']['mean']:.3f}", started)

    # --- the attacks ---------------------------------------------------------------------------
    table = {}
    for name in ["none", *ATTACKS]:
        row = {}
        attacked = apply_attack(name, gen_test, seed=config.seed, system=system)
        for kind, detector in detectors.items():
            tau = clean[kind]["threshold"]
            row[kind] = roc.rate_with_interval(detector.score(clip_features(attacked)) > tau)
        keyed_attacked = (
            keyed if name == "none" else apply_attack(name, keyed, seed=config.seed, system=system)
        )
        row["watermark"] = roc.rate_with_interval(
            (keyed_clean if name == "none" else read(keyed_attacked))[1] < level
        )
        table[name] = row
        _log(
            f"attack {name}: " + ", ".join(f"{k} {v['mean']:.2f}" for k, v in row.items()), started
        )

    # --- the cross-model case ----------------------------------------------------------------
    cross = {}
    other = TextToVideo.from_checkpoint(config.other_checkpoint)
    cases = {
        f"other checkpoint ({Path(config.other_checkpoint).parent.name})": _sample(
            other, _captions(config.cross, config.seed + 15), config.steps, 2000
        ),
        f"{config.cross_steps} steps, guidance {config.cross_guidance:g}": _sample(
            system,
            _captions(config.cross, config.seed + 16),
            config.cross_steps,
            3000,
            guidance=config.cross_guidance,
        ),
    }
    for case, clips in cases.items():
        cross[case] = {}
        for kind, detector in detectors.items():
            positives = detector.score(clip_features(clips))
            cross[case][kind] = {
                "auc": roc.two_sample_interval(roc.auc, negatives[kind], positives),
                "rate": roc.rate_with_interval(positives > clean[kind]["threshold"]),
            }
        _log(f"cross {case}", started)

    result = {
        "command": command or "python -m minidiff.detect",
        "config": asdict(config),
        "clean": clean,
        "watermark": mark,
        "quality_cost": cost,
        "attacks": table,
        "cross_model": cross,
        "detector_final_loss": {k: d.losses[-1] for k, d in detectors.items()},
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "threads": parallel.threads(),
            "processor": platform.processor() or platform.machine(),
        },
    }
    (out / "results.json").write_text(json.dumps(result, indent=1) + "\n")
    (out / "results.md").write_text(report(result))
    _log(f"wrote {out}", started)
    return out


def _cell(entry: dict) -> str:
    if entry.get("low") is None:
        return f"{entry['mean']:.2f}"
    return f"{entry['mean']:.2f} [{entry['low']:.2f}, {entry['high']:.2f}]"


def _smaller(config: dict) -> list[str]:
    """A line naming the sizes that are below the default configuration's, if any."""
    defaults = asdict(DetectConfig())
    sizes = ["generated", "real_train", "real_test", "watermarked", "null_clips", "cross"]
    sizes += ["steps", "invert_steps"]
    smaller = [f"{k} {config[k]} (default {defaults[k]})" for k in sizes if config[k] < defaults[k]]
    if not smaller:
        return []
    return [
        "- a smaller run than the default `python -m minidiff.detect`: "
        + ", ".join(smaller)
        + "; the intervals are correspondingly wider"
    ]


def report(result: dict) -> str:
    """The results as markdown tables."""
    config = result["config"]
    lines = [
        "# Detecting generated clips: passive detectors and a noise watermark",
        "",
        f"- command: `{result['command']}`",
        f"- model: `{config['checkpoint']}`, DDIM {config['steps']} steps; "
        f"{config['generated']} generated clips (half train, half test), "
        f"{config['real_train']} real train, {config['real_test']} real test, "
        f"{config['watermarked']} watermarked, inversion {config['invert_steps']} steps",
        f"- took {result['seconds']:.0f} s on {result['machine']['threads']} threads",
        "- every rate: mean [95% bootstrap interval]; detection rates at 1% false positives",
        *_smaller(config),
        "",
        "## Clean held-out clips",
        "",
        "| detector | AUC | detection rate at 1% FPR |",
        "|---|---|---|",
    ]
    for kind, entry in result["clean"].items():
        lines.append(f"| {kind} | {_cell(entry['auc'])} | {_cell(entry['tpr_at_fpr'])} |")
    mark = result["watermark"]
    lines += [
        "",
        "## Watermark",
        "",
        f"- key: {mark['key']['degrees_of_freedom']} Fourier coefficients "
        f"({100 * mark['key']['fraction_of_noise']:.1f}% of the noise), "
        f"noncentrality {mark['key']['noncentrality']}",
        f"- plain noise flagged (p < 0.01): {_cell(mark['noise_log10_p_plain'])}",
        f"- watermarked clips detected (p < 0.01): {_cell(mark['detection'])}; median log10 p "
        f"{mark['median_log10_p']:.1f} (unwatermarked generated: "
        f"{mark['median_log10_p_null_generated']:.2f})",
        f"- false positives on unwatermarked generated clips: {_cell(mark['fpr_generated'])}, "
        f"on real clips: {_cell(mark['fpr_real'])}",
        f"- AUC of the key distance, watermarked against unwatermarked generated: "
        f"{_cell(mark['auc_against_generated'])}",
        "",
        "## What the watermark costs: chapter 13's rates, the same prompts and noise with and "
        "without the key",
        "",
        "| rate | without the key | with the key | difference, paired |",
        "|---|---|---|---|",
    ]
    for name, entry in result["quality_cost"].items():
        lines.append(
            f"| {name} | {_cell(entry['plain'])} | {_cell(entry['watermarked'])} | "
            f"{_cell(entry['difference'])} |"
        )
    lines += [
        "",
        "## Attacks: detection rate at 1% FPR",
        "",
        "| attack | " + " | ".join(next(iter(result["attacks"].values()))) + " |",
        "|---|" + "---|" * len(next(iter(result["attacks"].values()))),
    ]
    for name, row in result["attacks"].items():
        lines.append(f"| {name} | " + " | ".join(_cell(v) for v in row.values()) + " |")
    lines += [
        "",
        "## Cross-model: clips from elsewhere, threshold from the clean real clips",
        "",
        "| clips | detector | AUC | detection rate at 1% FPR |",
        "|---|---|---|---|",
    ]
    for case, entry in result["cross_model"].items():
        for kind, value in entry.items():
            lines.append(f"| {case} | {kind} | {_cell(value['auc'])} | {_cell(value['rate'])} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    defaults = DetectConfig()
    parser = argparse.ArgumentParser(
        prog="python -m minidiff.detect", description="the detection study, into studies/detect"
    )
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--out", default="studies/detect")
    args = parser.parse_args(argv)
    argv = list(sys.argv[1:] if argv is None else argv)
    fields = {k: getattr(args, k) for k in asdict(defaults)}
    command = "python -m minidiff.detect " + " ".join(shlex.quote(a) for a in argv)
    run(DetectConfig(**fields), out=args.out, command=command.strip())
    return 0
