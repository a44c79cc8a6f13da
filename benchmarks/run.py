"""``make bench``: minidiff against PyTorch eager on the CPU, written to benchmarks/results/.

Each measurement is a separate process (same thread count for both), alternating minidiff and
PyTorch A B A B, five rounds; the table reports medians, the ratio minidiff / PyTorch and the
peak resident memory of each process. Single runs vary by about 25% on a shared 2-core machine,
which is why only medians of alternated runs are compared.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import date
from pathlib import Path

from .workloads import SHAPES

ROUNDS = 5
RESULTS = Path(__file__).parent / "results"


def _measure(framework: str, workload: str, threads: int) -> dict:
    env = dict(
        os.environ,
        OMP_NUM_THREADS=str(threads),
        OPENBLAS_NUM_THREADS=str(threads),
        MKL_NUM_THREADS=str(threads),
        MINIDIFF_DEVICE="cpu",
    )
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.workloads", framework, workload],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    try:
        import torch  # noqa: F401

        frameworks = ["minidiff", "torch"]
    except ImportError:
        frameworks = ["minidiff"]
        print("PyTorch is not installed: measuring minidiff alone (pip install -e '.[bench]')")
    threads = os.cpu_count() or 1
    rows = []
    for workload in SHAPES:
        runs = {f: [] for f in frameworks}
        for round_ in range(ROUNDS):
            for framework in frameworks:
                runs[framework].append(_measure(framework, workload, threads))
            print(f"{workload}: round {round_ + 1}/{ROUNDS}", flush=True)
        med = {f: statistics.median(r["ms"] for r in runs[f]) for f in frameworks}
        mem = {f: max(r["peak_mb"] for r in runs[f]) for f in frameworks}
        rows.append((workload, med, mem))

    lines = [
        "# CPU benchmark: one attention + MLP block, forward and backward (float32)",
        "",
        f"{date.today()}, {platform.processor() or platform.machine()}, {threads} threads, "
        f"median of {ROUNDS} alternated process runs (each the median of 7 steps).",
        "",
        "| workload | minidiff ms | PyTorch ms | ratio | minidiff peak MB | PyTorch peak MB |",
        "|---|---|---|---|---|---|",
    ]
    for workload, med, mem in rows:
        torch_ms = f"{med['torch']:.1f}" if "torch" in med else "-"
        ratio = f"{med['minidiff'] / med['torch']:.2f}x" if "torch" in med else "-"
        torch_mb = f"{mem['torch']:.0f}" if "torch" in mem else "-"
        lines.append(
            f"| {workload} | {med['minidiff']:.1f} | {torch_ms} | {ratio} | "
            f"{mem['minidiff']:.0f} | {torch_mb} |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cpu_block.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
