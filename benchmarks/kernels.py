"""The fused kernels against their plain formulas, at the sizes of the demo model's training step.

``python -m benchmarks.kernels`` prints one JSON line per kernel: the median time of the plain
formula (``kernels.plain_*``), of the fused kernel on one thread, and of the fused kernel on
``--threads`` threads, forward and backward together. Plain and fused alternate in one process,
so they see the same machine state. The shapes are those of the ``tiny-cpu-plain`` preset at its
batch size: tokens = batch x (patches + extra tokens). The process runs with the host allocator
tuned as minidiff's entry points tune it (``backend.tune_host_allocator``).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time

import numpy

REPEATS = 31
ROUNDS = 5


def _cases(preset_name: str = "tiny-cpu-plain") -> dict:
    """name -> (description, function running forward + backward of the fused or plain form)."""
    from minidiff import kernels
    from minidiff.app.presets import get_preset
    from minidiff.app.text_to_video import CHANNELS
    from minidiff.models import UViTConfig

    preset = get_preset(preset_name)
    config = UViTConfig(
        frames=preset.frames,
        channels=CHANNELS,
        height=preset.size,
        width=preset.size,
        text_dim=preset.text["dim"],
        text_length=preset.text["max_length"],
        **preset.model,
    )
    batch = preset.train["batch_size"]
    n = config.num_patches + config.num_extra_tokens
    d, hidden, heads = config.dim, int(config.dim * config.mlp_ratio), config.heads
    rng = numpy.random.default_rng(0)

    def draw(*shape):
        return rng.standard_normal(shape).astype(numpy.float32)

    x_mlp, g_mlp = draw(batch * n, hidden), draw(batch * n, hidden)
    scores, g_scores = draw(batch, heads, n, n), draw(batch, heads, n, n)
    keys = numpy.ones((batch, 1, 1, n), dtype=bool)
    keys[:, ..., -3:] = False  # padded caption tokens, as in the demo
    x_tok, g_tok = draw(batch * n, d), draw(batch * n, d)
    weight, bias = draw(d), draw(d)
    q, g_q = draw(batch, heads, n, d // heads), draw(batch, heads, n, d // heads)
    angles = rng.uniform(0, 6.3, (n, d // heads // 2))
    cos, sin = numpy.cos(angles).astype(numpy.float32), numpy.sin(angles).astype(numpy.float32)
    params = [draw(*shape) for shape in [(d, 3 * d), (d, hidden), (hidden, d)] * config.depth]
    grads = [draw(*p.shape) for p in params]
    moments = [(numpy.zeros_like(p), numpy.zeros_like(p)) for p in params]
    scale = 1.0 / math.sqrt(d // heads)

    def gelu():
        y, t = kernels.gelu_tanh(x_mlp)
        return kernels.gelu_tanh_grad(g_mlp, x_mlp, t)

    def softmax():
        y = kernels.softmax(scores, scale, keys)
        return kernels.softmax_grad(g_scores, y, scale)

    def layer_norm():
        y, x_hat, rstd = kernels.layer_norm(x_tok, weight, bias, 1e-5)
        return kernels.layer_norm_grad(g_tok, x_hat, rstd, weight)

    def rope():
        kernels.rotate_pairs(q, cos, sin)
        return kernels.rotate_pairs(g_q, cos, -sin)

    def adam():
        for p, g, (m, v) in zip(params, grads, moments):
            kernels.adam_step(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 1.0)

    return {
        "gelu": (f"GELU (tanh) on the MLP's hidden layer ({batch * n} x {hidden})", gelu),
        "softmax": (
            f"attention softmax with scale and key mask ({batch} x {heads} x {n} x {n})",
            softmax,
        ),
        "layer_norm": (f"layer norm with weight and bias ({batch * n} x {d})", layer_norm),
        "rope": (f"rotary encoding of queries ({batch} x {heads} x {n} x {d // heads})", rope),
        "adam": (
            f"Adam on the blocks' {len(params)} weight matrices "
            f"({sum(p.size for p in params):,} numbers)",
            adam,
        ),
    }


def _median_ms(fn) -> float:
    fn()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def measure(threads: int) -> list[dict]:
    """Plain, fused on one thread and fused on ``threads``, alternated over ROUNDS rounds."""
    import os

    from minidiff import parallel

    results = []
    for name, (description, fn) in _cases().items():
        times = {"plain": [], "fused_1": [], f"fused_{threads}": []}
        for _ in range(ROUNDS):
            for label in times:
                os.environ["MINIDIFF_PLAIN_KERNELS"] = "1" if label == "plain" else "0"
                previous = parallel.set_threads(threads if label == f"fused_{threads}" else 1)
                try:
                    times[label].append(_median_ms(fn))
                finally:
                    parallel.set_threads(previous)
        os.environ.pop("MINIDIFF_PLAIN_KERNELS")
        results.append(
            {"kernel": name, "what": description}
            | {label: statistics.median(values) for label, values in times.items()}
        )
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.kernels")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    from minidiff import backend

    backend.tune_host_allocator()
    for row in measure(args.threads):
        print(json.dumps(row))


if __name__ == "__main__":
    main()
