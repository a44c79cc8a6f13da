"""``make bench``: minidiff against PyTorch eager on the CPU, written to benchmarks/results/.

Three tables: ``cpu_block.md`` (one attention + MLP block, forward and backward, at three
sizes), ``cpu_step.md`` (one full training step of the demo's text-to-video model) and
``cpu_kernels.md`` (minidiff's fused kernels against their plain formulas).
``python -m benchmarks.run block`` (or ``step``, ``kernels``) measures and writes one of them;
``python -m benchmarks.run gpu`` (``make bench-gpu``) writes ``gpu.md``, the block and step
workloads on a CUDA GPU; ``python -m benchmarks.run dist`` (``make bench-dist``) writes
``cpu_distributed.md``, data-parallel training over MPI processes and the all-reduce's cost
model (``benchmarks/distributed.py``).

Each measurement of the first two is a separate process (same thread count for both: PyTorch's
own threads, minidiff's ``MINIDIFF_NUM_THREADS`` over a one-thread BLAS), alternating minidiff
and PyTorch A B A B, five rounds; the tables report medians, the ratio minidiff / PyTorch and
the peak resident memory of each process. Single runs vary by about 25% on a shared 2-core machine,
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

from .kernels import REPEATS as KERNEL_REPEATS
from .kernels import ROUNDS as KERNEL_ROUNDS
from .workloads import REPEATS, SHAPES, STEP_CLIPS, STEP_COUNT, STEP_REPEATS, STEP_WARMUP, STEPS

ROUNDS = 5
RESULTS = Path(__file__).parent / "results"
TABLES = ("block", "step", "kernels")  # on the CPU; "gpu" runs only when asked for
CHOICES = (*TABLES, "gpu", "dist")


def _environment(framework: str, threads: int) -> dict:
    """``threads`` threads for the framework: PyTorch's own (OpenMP and MKL); for minidiff its
    own threads (``MINIDIFF_NUM_THREADS``) over a one-thread BLAS, which was as fast as or faster
    than a multi-threaded BLAS on the demo's small matrices (book chapter 15)."""
    own = framework == "minidiff"
    blas = "1" if own else str(threads)
    return dict(
        os.environ,
        OMP_NUM_THREADS=blas,
        OPENBLAS_NUM_THREADS=blas,
        MKL_NUM_THREADS=blas,
        MINIDIFF_NUM_THREADS=str(threads),
        MINIDIFF_DEVICE="cpu",
    )


def _measure(framework: str, workload: str, threads: int, device: str = "cpu") -> dict:
    env = _environment(framework, threads)
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.workloads", framework, workload, "--device", device],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _rounds(
    workload: str, frameworks: list[str], threads: int, device: str = "cpu"
) -> dict[str, list[dict]]:
    """ROUNDS alternated runs of ``workload`` in each framework, by framework."""
    runs = {f: [] for f in frameworks}
    for round_ in range(ROUNDS):
        for framework in frameworks:
            runs[framework].append(_measure(framework, workload, threads, device))
        print(f"{workload}: round {round_ + 1}/{ROUNDS}", flush=True)
    return runs


def _summary(runs: dict[str, list[dict]]) -> tuple[dict, dict]:
    """Median time and largest peak memory over the rounds, by framework."""
    med = {f: statistics.median(r["ms"] for r in rs) for f, rs in runs.items()}
    mem = {f: max(r["peak_mb"] for r in rs) for f, rs in runs.items()}
    return med, mem


def _columns(med: dict, mem: dict) -> str:
    """minidiff ms | PyTorch ms | ratio | minidiff MB | PyTorch MB, "-" where PyTorch is missing."""
    torch_ms = f"{med['torch']:.1f}" if "torch" in med else "-"
    ratio = f"{med['minidiff'] / med['torch']:.2f}x" if "torch" in med else "-"
    torch_mb = f"{mem['torch']:.0f}" if "torch" in mem else "-"
    return f"{med['minidiff']:.1f} | {torch_ms} | {ratio} | {mem['minidiff']:.0f} | {torch_mb}"


def _machine(threads: int) -> str:
    return f"{date.today()}, {platform.processor() or platform.machine()}, {threads} threads"


def _write(name: str, lines: list[str]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / name).write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def block_table(frameworks: list[str], threads: int) -> None:
    """cpu_block.md: one attention + MLP block, forward and backward, per shape."""
    lines = [
        "# CPU benchmark: one attention + MLP block, forward and backward (float32)",
        "",
        f"{_machine(threads)}, median of {ROUNDS} alternated process runs "
        f"(each the median of {REPEATS} steps).",
        "",
        "| workload | minidiff ms | PyTorch ms | ratio | minidiff peak MB | PyTorch peak MB |",
        "|---|---|---|---|---|---|",
    ]
    for workload in SHAPES:
        med, mem = _summary(_rounds(workload, frameworks, threads))
        lines.append(f"| {workload} | {_columns(med, mem)} |")
    _write("cpu_block.md", lines)


def _params(run: dict) -> str:
    p = run["params"]
    return f"{p['uvit'] + p['text']:,} ({p['uvit']:,} + {p['text']:,})"


def step_table(frameworks: list[str], threads: int) -> None:
    """cpu_step.md: one training step of each preset in STEPS, with the parameter counts, at
    one thread and at ``threads`` (what `make demo` uses)."""
    from minidiff.app.presets import get_preset

    rows, mismatched, repeats, steps = [], [], STEP_REPEATS, STEP_COUNT
    for workload in STEPS:
        for count in sorted({1, threads}):
            runs = _rounds(workload, frameworks, count)
            med, mem = _summary(runs)
            counts = {f: _params(rs[0]) for f, rs in runs.items()}
            if len(set(counts.values())) > 1:
                mismatched.append(workload)
            repeats, steps = runs["minidiff"][0]["repeats"], runs["minidiff"][0]["steps"]
            rows.append(
                f"| {workload} | {count} | {_columns(med, mem)} | {counts['minidiff']} | "
                f"{counts.get('torch', '-')} |"
            )
    lines = [
        "# CPU benchmark: one training step of the demo text-to-video model (float32)",
        "",
        f"{date.today()}, {platform.processor() or platform.machine()}, median of {ROUNDS} "
        f"alternated process runs (each the median of {repeats} repeats of {steps} steps, after "
        f"{STEP_WARMUP} warm-up steps), at one thread and at {threads} (`make demo` uses every "
        "core). minidiff's threads: `MINIDIFF_NUM_THREADS` over a one-thread BLAS; PyTorch's: "
        "its own intra-op threads.",
        "",
        "| workload | threads | minidiff ms/step | PyTorch ms/step | ratio | minidiff peak MB "
        "| PyTorch peak MB | minidiff parameters | PyTorch parameters |",
        "|---|---|---|---|---|---|---|---|---|",
        *rows,
        "",
        "Parameters: total (U-ViT + text encoder).",
    ]
    if mismatched:
        lines.append(f"**The parameter counts differ for {', '.join(mismatched)}.**")
    for workload, name in STEPS.items():
        train = get_preset(name).train
        lines += [
            "",
            f"`{workload}`: preset `{name}`, batch {train['batch_size']}. What a step is, on both "
            f"sides: draw the batch from {STEP_CLIPS} ball-world clips and their captions, replace "
            f"{train['cond_drop']:.0%} of the captions by the learned null condition, encode the "
            "captions, noise the clips at uniform timesteps of the cosine schedule, predict "
            f"{train['target']}, take the min-SNR (gamma {train['min_snr_gamma']:g}) weighted MSE, "
            f"backward, clip the gradient norm to {train['grad_clip']:g}, AdamW (lr "
            f"{train['lr']:g}, weight decay {train['weight_decay']:g}) under warmup + cosine "
            f"decay, update the EMA (decay {train['ema_decay']:g}) of every parameter.",
        ]
    lines += [
        "",
        "- minidiff: `Trainer.train_step()` of `TextToVideo(get_preset(...))`, built as "
        "`pipeline.train_system` builds it.",
        "- PyTorch: `benchmarks/torch_uvit.py`, the same U-ViT (3-D rotary positions, "
        f"{', '.join(sorted({get_preset(n).model['attention'] for n in STEPS.values()}))} "
        "attention, long skips) and text encoder in plain eager mode: attention written as "
        "matmul + mask + softmax + matmul (no `F.scaled_dot_product_attention`, no "
        "`torch.compile`), `torch.optim.AdamW` with its default implementation, "
        "`clip_grad_norm_`, the EMA as `mul_` + `add_` per parameter.",
        "- Peak MB is the largest resident set size of the process over the rounds. The PyTorch "
        "process also imports minidiff (about 7 MB) to generate the same clips and captions.",
    ]
    _write("cpu_step.md", lines)


def kernel_table(threads: int) -> None:
    """cpu_kernels.md: each fused kernel against its plain formula (``benchmarks/kernels.py``)."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.kernels", "--threads", str(threads)],
        capture_output=True,
        text=True,
        env=_environment("minidiff", 1),
        check=True,
    )
    rows = [json.loads(line) for line in out.stdout.strip().splitlines()]
    fused = f"fused_{threads}"
    lines = [
        "# CPU benchmark: fused kernels against their plain formulas (float32)",
        "",
        f"{date.today()}, {platform.processor() or platform.machine()}; forward and backward "
        f"together, at the sizes of one training step of the demo model (preset `tiny-cpu-plain`); "
        f"median of {KERNEL_ROUNDS} alternated rounds, each the median of {KERNEL_REPEATS} calls.",
        "",
        f"| kernel | what | plain ms | fused ms, 1 thread | speed-up | fused ms, {threads} "
        "threads | speed-up |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['kernel']} | {row['what']} | {row['plain']:.3f} | {row['fused_1']:.3f} | "
            f"{row['plain'] / row['fused_1']:.2f}x | {row[fused]:.3f} | "
            f"{row['plain'] / row[fused]:.2f}x |"
        )
    lines += [
        "",
        "plain: the formula as NumPy expressions, one temporary array per operation "
        "(`kernels.plain_*`); fused: in-place ufuncs over cache-sized blocks, the blocks shared "
        "among the threads (`minidiff/kernels/cpu.py`). Speed-up: plain ms / fused ms.",
    ]
    _write("cpu_kernels.md", lines)


def gpu_table(frameworks: list[str]) -> None:
    """gpu.md: the block and step workloads on a CUDA GPU, minidiff on CuPy against PyTorch."""
    from minidiff import backend

    if not backend.gpu_available():
        raise SystemExit("gpu: CuPy sees no CUDA GPU here (install the 'gpu' extra on a GPU)")
    lines = [
        "# GPU benchmark: minidiff on CuPy against PyTorch eager on CUDA (float32)",
        "",
        f"{date.today()}, {_gpu_name()}, median of {ROUNDS} alternated process runs. Peak MB: "
        "the most each framework's GPU memory pool held (CuPy's pool, PyTorch's reserved "
        "bytes).",
        "",
        "| workload | minidiff ms | PyTorch ms | ratio | minidiff peak MB | PyTorch peak MB |",
        "|---|---|---|---|---|---|",
    ]
    for workload in [*SHAPES, *STEPS]:
        med, mem = _summary(_rounds(workload, frameworks, 1, device="cuda"))
        lines.append(f"| {workload} | {_columns(med, mem)} |")
    _write("gpu.md", lines)


def _gpu_name() -> str:
    from minidiff import backend

    cp = backend.module_for("cuda")
    name = cp.cuda.runtime.getDeviceProperties(0)["name"]
    return name.decode() if isinstance(name, bytes) else str(name)


def main(argv=None) -> None:
    tables = list(argv if argv is not None else sys.argv[1:]) or list(TABLES)
    unknown = set(tables) - set(CHOICES)
    if unknown:
        raise SystemExit(f"unknown table(s) {sorted(unknown)}; choose from {CHOICES}")
    try:
        import torch  # noqa: F401

        frameworks = ["minidiff", "torch"]
    except ImportError:
        frameworks = ["minidiff"]
        print("PyTorch is not installed: measuring minidiff alone (pip install -e '.[bench]')")
    threads = os.cpu_count() or 1
    if "block" in tables:
        block_table(frameworks, threads)
    if "step" in tables:
        step_table(frameworks, threads)
    if "kernels" in tables:
        kernel_table(threads)
    if "gpu" in tables:
        gpu_table(frameworks)
    if "dist" in tables:
        from . import distributed

        distributed.main()


if __name__ == "__main__":
    main()
