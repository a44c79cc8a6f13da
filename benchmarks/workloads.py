"""One benchmark workload in one framework, in this process: ``python -m benchmarks.workloads
minidiff attention_mlp_b8_n256_d384`` prints one JSON line (median milliseconds, peak memory).

The workload is one forward and backward pass of a single-head attention + GELU MLP block
written from raw ops (the layer library comes later), the same in minidiff and in PyTorch.
"""

from __future__ import annotations

import json
import math
import resource
import sys
import time

import numpy

SHAPES = {
    "attention_mlp_b8_n256_d384": (8, 256, 384),
    "attention_mlp_b16_n128_d128": (16, 128, 128),
    "attention_mlp_b32_n64_d64": (32, 64, 64),
}
REPEATS = 7


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


def _step_torch(b, n, d):
    import torch

    w = {k: torch.tensor(v, requires_grad=True) for k, v in _weights(d).items()}
    x = torch.tensor(numpy.random.default_rng(1).standard_normal((b, n, d)).astype(numpy.float32))

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


def main(framework: str, workload: str) -> None:
    b, n, d = SHAPES[workload]
    step = {"minidiff": _step_minidiff, "torch": _step_torch}[framework](b, n, d)
    step()  # warm-up
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"ms": 1000 * float(numpy.median(times)), "peak_mb": peak_mb}))


if __name__ == "__main__":
    main(*sys.argv[1:3])
