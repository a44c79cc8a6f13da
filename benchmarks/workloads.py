"""One benchmark workload in one framework, in this process: ``python -m benchmarks.workloads
minidiff attention_mlp_b8_n256_d384`` prints one JSON line (median milliseconds, peak memory).

Two kinds of workload, each the same in minidiff and in PyTorch:

* ``attention_mlp_*``: one forward and backward pass of a single-head attention + GELU MLP block
  written from raw ops (no layer library);
* ``train_step_*``: one full training step of a preset's text-to-video system. minidiff runs
  ``Trainer.train_step()`` of ``TextToVideo(get_preset(...))``, exactly as ``train_system``
  builds it; PyTorch runs the re-implementation in ``benchmarks/torch_uvit.py``. Both train on
  the same 64 clips of the ball world with the preset's batch size, optimizer, schedule, EMA,
  clipping and loss. The JSON line adds the parameter counts of both networks and the last loss.

``--repeats`` and ``--steps`` shorten a run for a quick check; ``--device cuda`` runs on a GPU
(minidiff on CuPy, PyTorch on CUDA; each timed repeat ends by reading the loss, which waits for
the queued GPU work). Only the PyTorch path imports torch.

Every workload that runs minidiff code runs with the host allocator tuned as minidiff's entry
points tune it (``backend.tune_host_allocator``): all of minidiff's, and PyTorch's training
step, whose clips and captions minidiff makes in the same process. PyTorch's block workloads
run with the system's allocator.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy

SHAPES = {
    "attention_mlp_b8_n256_d384": (8, 256, 384),
    "attention_mlp_b16_n128_d128": (16, 128, 128),
    "attention_mlp_b32_n64_d64": (32, 64, 64),
}
REPEATS = 7

# training-step workloads: name -> preset
STEPS = {"train_step_tiny_cpu": "tiny-cpu-plain"}
STEP_CLIPS = 64  # size of the random training set
STEP_WARMUP = 3  # untimed steps first (allocator, caches, the optimizer's state)
STEP_REPEATS = 5  # timed repeats; the median of their per-step times is reported
STEP_COUNT = 20  # steps per timed repeat


def _weights(d: int) -> dict:
    rng = numpy.random.default_rng(0)
    return {
        name: (rng.standard_normal(shape) / math.sqrt(shape[0])).astype(numpy.float32)
        for name, shape in [
            ("wq", (d, d)),
            ("wk", (d, d)),
            ("wv", (d, d)),
            ("wo", (d, d)),
            ("w1", (d, 4 * d)),
            ("w2", (4 * d, d)),
        ]
    }


def _block(x, w, softmax, gelu):
    d = x.shape[-1]
    q, k, v = x @ w["wq"], x @ w["wk"], x @ w["wv"]
    attention = softmax((q @ k.swapaxes(-1, -2)) * (1.0 / math.sqrt(d)))
    h = x + (attention @ v) @ w["wo"]
    return h + gelu(h @ w["w1"]) @ w["w2"]


def _step_minidiff(b, n, d):
    import minidiff as md

    w = {k: md.tensor(v, requires_grad=True) for k, v in _weights(d).items()}
    x = md.tensor(numpy.random.default_rng(1).standard_normal((b, n, d)).astype(numpy.float32))

    def step():
        out = _block(x, w, lambda s: md.softmax(s, -1), md.gelu)
        out.mean().backward()
        return float(w["w1"].grad[0, 0])

    return step


def _step_torch(b, n, d, device="cpu"):
    import torch

    w = {k: torch.tensor(v, device=device, requires_grad=True) for k, v in _weights(d).items()}
    x = torch.tensor(
        numpy.random.default_rng(1).standard_normal((b, n, d)).astype(numpy.float32),
        device=device,
    )

    def step():
        out = _block(
            x,
            w,
            lambda s: torch.softmax(s, -1),
            lambda s: torch.nn.functional.gelu(s, approximate="tanh"),
        )
        out.mean().backward()
        return float(w["w1"].grad[0, 0])

    return step


# --- a full training step -----------------------------------------------------------------------


def _training_data(preset):
    """The preset's clips in [-1, 1] (STEP_CLIPS of them) and their captions."""
    from minidiff.world import make_dataset, to_signed

    clips, captions, _ = make_dataset(STEP_CLIPS, "train", preset.frames, preset.size, seed=0)
    return to_signed(clips), captions


def _uvit_config(preset) -> dict:
    """The U-ViT configuration ``TextToVideo`` builds from ``preset``, as a dict."""
    from minidiff.app.text_to_video import CHANNELS
    from minidiff.models import UViTConfig

    return UViTConfig(
        frames=preset.frames,
        channels=CHANNELS,
        height=preset.size,
        width=preset.size,
        text_dim=preset.text["dim"],
        text_length=preset.text["max_length"],
        **preset.model,
    ).to_dict()


def _train_minidiff(preset_name: str):
    """``Trainer.train_step`` of the preset's system, built as ``pipeline.train_system`` does."""
    import minidiff as md
    from minidiff.app.presets import get_preset
    from minidiff.app.text_to_video import TextToVideo
    from minidiff.app.train import TrainConfig, Trainer

    preset = get_preset(preset_name)
    clips, captions = _training_data(preset)
    config = TrainConfig.from_dict(preset.train)
    md.manual_seed(config.seed)
    system = TextToVideo(preset)
    if system.config.to_dict() != _uvit_config(preset):
        raise RuntimeError("TextToVideo builds its U-ViT differently: update _uvit_config")
    ids, mask = system.tokenize(captions)
    folder = Path(tempfile.gettempdir()) / "minidiff-bench"  # only Trainer.run creates it
    trainer = Trainer(
        system.model,
        system.schedule,
        clips,
        config,
        folder,
        conditioner=system.encoder,
        ids=ids,
        mask=mask,
    )
    params = {
        "uvit": sum(p.data.size for p in system.model.parameters()),
        "text": sum(p.data.size for p in system.encoder.parameters()),
    }
    return trainer.train_step, params


def _train_torch(preset_name: str, device: str = "cpu"):
    """The same step in PyTorch (benchmarks/torch_uvit.py), on the same clips and captions."""
    import torch

    from minidiff.app.presets import get_preset
    from minidiff.models import Tokenizer
    from minidiff.world import VOCABULARY

    from . import torch_uvit

    preset = get_preset(preset_name)
    clips, captions = _training_data(preset)
    tokenizer = Tokenizer(VOCABULARY)
    ids, mask = tokenizer.encode(captions, max_length=preset.text["max_length"])
    torch.manual_seed(preset.train.get("seed", 0))
    encoder = torch_uvit.TextEncoder(len(tokenizer), **preset.text).to(device)
    model = torch_uvit.UViT(_uvit_config(preset)).to(device)
    step = torch_uvit.TrainStep(
        model,
        encoder,
        torch.from_numpy(numpy.ascontiguousarray(clips)).to(device),
        torch.from_numpy(ids).to(device),
        torch.from_numpy(mask).to(device),
        preset.train,
    )
    params = {
        "uvit": sum(p.numel() for p in model.parameters()),
        "text": sum(p.numel() for p in encoder.parameters()),
    }
    return step, params


def _time_training(framework: str, workload: str, repeats: int, steps: int, device: str) -> dict:
    if framework == "minidiff":
        step, params = _train_minidiff(STEPS[workload])
    else:
        step, params = _train_torch(STEPS[workload], device)
    for _ in range(STEP_WARMUP):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            loss = step()
        loss.item()  # waits for a GPU to finish the queued steps (a no-op wait on the CPU)
        times.append((time.perf_counter() - start) / steps)
    return {
        "ms": 1000 * float(numpy.median(times)),
        "params": params,
        "loss": float(loss.item()),
        "repeats": repeats,
        "steps": steps,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.workloads")
    parser.add_argument("framework", choices=["minidiff", "torch"])
    parser.add_argument("workload", choices=[*SHAPES, *STEPS])
    parser.add_argument("--repeats", type=int, help="timed repeats (median reported)")
    parser.add_argument("--steps", type=int, default=STEP_COUNT, help="steps per repeat")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args(argv)
    os.environ["MINIDIFF_DEVICE"] = args.device  # minidiff's default device
    if args.framework == "minidiff" or args.workload in STEPS:
        from minidiff import backend

        backend.tune_host_allocator()
    if args.workload in STEPS:
        result = _time_training(
            args.framework, args.workload, args.repeats or STEP_REPEATS, args.steps, args.device
        )
    else:
        b, n, d = SHAPES[args.workload]
        if args.framework == "minidiff":
            step = _step_minidiff(b, n, d)
        else:
            step = _step_torch(b, n, d, args.device)
        step()  # warm-up
        times = []
        for _ in range(args.repeats or REPEATS):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        result = {"ms": 1000 * float(numpy.median(times))}
    result["peak_mb"] = _peak_bytes(args.framework, args.device) / 2**20
    print(json.dumps(result))


def _peak_bytes(framework: str, device: str) -> float:
    """CPU: the process's peak resident set size. GPU: the most the framework's memory pool has
    held (CuPy's pool keeps its blocks, so what it holds now; PyTorch's caching allocator's
    peak reserved bytes)."""
    if device == "cpu":
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    if framework == "torch":
        import torch

        return torch.cuda.max_memory_reserved()
    from minidiff import memory

    return memory.peak_bytes("cuda")


if __name__ == "__main__":
    main()
