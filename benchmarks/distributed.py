"""``python -m benchmarks.run dist`` (``make bench-dist``): data-parallel training on this machine,
and a cost model of the all-reduce for more machines; writes ``results/cpu_distributed.md`` and
the same numbers as ``results/cpu_distributed.json`` (read by chapter 17).

1. The demo's training step (``Trainer.train_step`` of preset ``tiny-cpu``, global batch 16)
   as one process over 2 threads (``MINIDIFF_NUM_THREADS=2``) and as two processes of one
   thread each (``mpiexec -n 2``, 8 examples each), alternated A B A B: steps per second, the
   time per step inside the gradient all-reduce, and the bytes it reduces per step.
2. ``MPI_Allreduce`` alone over two processes for buffers of 8 B to 16 MiB, and the alpha-beta
   model of a ring all-reduce fitted to it. A ring over N ranks reduce-scatters, then
   all-gathers, in N - 1 rounds each, every round sending n / N bytes, so

       T(N, n) = 2 (N - 1) alpha + 2 (N - 1) / N * n * beta,

   alpha the latency of one message and beta the seconds per byte (the reduction's arithmetic
   folded in). With N = 2 it is T = 2 alpha + n beta: a line through the measured (n, T),
   fitted by least squares on the relative error (sum_k ((2 alpha + n_k beta - T_k) / T_k)^2,
   so that the small sizes, which set alpha, weigh as much as the large ones), gives both.
3. The predicted step on N machines, for a fixed global batch split N ways:
   t(N) = t_compute * 2 / N + T(N, n), with t_compute the measured compute of one rank of the
   two-process run (its step less its all-reduce) and n the bytes of all the gradients.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy

from minidiff.ring import fit_alpha_beta, ring_seconds

RESULTS = Path(__file__).parent / "results"
COMMAND = "python -m benchmarks.run dist"
ROUNDS = 3  # alternated rounds per layout; more on an idle machine (ROUNDS=5 in PERFORMANCE.md)
STEPS, WARMUP = 12, 3
SIZES = [8 << (2 * k) for k in range(12)]  # 8 B ... 32 MiB
MACHINES = (1, 2, 4, 8, 16, 32)
# an ordinary 10 Gb/s Ethernet between machines, for comparison with the measured shared memory
ETHERNET_ALPHA, ETHERNET_BETA = 25e-6, 1 / 1.25e9


def _environment(threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")}
    return env | {
        "MINIDIFF_NUM_THREADS": str(threads),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MINIDIFF_DEVICE": "cpu",
    }


def _mpiexec() -> str:
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        raise SystemExit(
            "dist: no mpiexec here; install the 'dist' extra (pip install -e '.[dist]')"
        )
    return found


def _run(processes: int, threads: int, *worker_args) -> dict:
    """Run a worker (under mpiexec when ``processes`` > 1); rank 0's JSON line."""
    command = [sys.executable, "-m", "benchmarks.distributed", *worker_args]
    if processes > 1:
        command = [_mpiexec(), "-n", str(processes), *command]
    out = subprocess.run(
        command, capture_output=True, text=True, env=_environment(threads), check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- the workers --------------------------------------------------------------------------------


def _step_worker() -> None:
    """Time STEPS training steps after WARMUP; rank 0 prints the numbers as JSON."""
    from minidiff import distributed, parallel

    from .workloads import _train_minidiff

    step, params = _train_minidiff("tiny-cpu")
    world = distributed.world()
    for _ in range(WARMUP):
        step().item()
    world.barrier()
    reduced, bytes_before, started = world.reduce_seconds, world.reduced_bytes, time.perf_counter()
    for _ in range(STEPS):
        loss = step()
    loss.item()
    seconds = time.perf_counter() - started
    if world.is_root:
        result = {
            "processes": world.size,
            "threads": parallel.threads(),
            "steps_per_s": STEPS / seconds,
            "ms_per_step": 1e3 * seconds / STEPS,
            "reduce_ms_per_step": 1e3 * (world.reduce_seconds - reduced) / STEPS,
            "bytes_per_step": (world.reduced_bytes - bytes_before) / STEPS,
            "parameters": params["uvit"] + params["text"],
        }
        print(json.dumps(result))


def _allreduce_worker() -> None:
    """Median time of MPI_Allreduce (sum, in place) of float32 buffers of each size in SIZES."""
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    times = []
    for size in SIZES:
        buffer = numpy.ones(size // 4, dtype=numpy.float32)
        repeats = max(5, min(200, (1 << 24) // size))
        samples = []
        for _ in range(repeats):
            comm.Barrier()
            started = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buffer, op=MPI.SUM)
            samples.append(time.perf_counter() - started)
        times.append(statistics.median(samples))
    if comm.Get_rank() == 0:
        print(json.dumps({"bytes": SIZES, "seconds": times}))


# --- the model and the table --------------------------------------------------------------------


def _model_parameters(name: str) -> int:
    from minidiff.app.presets import get_preset
    from minidiff.app.text_to_video import TextToVideo

    system = TextToVideo(get_preset(name))
    return system.model.num_parameters() + system.encoder.num_parameters()


def _loaded() -> str:
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    if load > 0.5 * cores:
        return (
            f"**Measured under load**: another job was using the CPU (load average {load:.1f} "
            f"on {cores} cores before the run), so the times are slower and noisier than on an "
            "idle machine; the ratios between layouts are the more trustworthy numbers."
        )
    return f"Load average {load:.1f} on {cores} cores before the run."


def main() -> None:
    """Measure (about a minute and a half), fit and write results/cpu_distributed.md."""
    load_note = _loaded()
    runs = {"1 x 2 threads": [], "2 x 1 thread": []}
    for round_ in range(ROUNDS):
        runs["1 x 2 threads"].append(_run(1, 2, "step"))
        runs["2 x 1 thread"].append(_run(2, 1, "step"))
        print(f"dist: round {round_ + 1}/{ROUNDS}", flush=True)
    sweep = _run(2, 1, "allreduce")
    alpha, beta = fit_alpha_beta(sweep["bytes"], sweep["seconds"])
    median = {
        layout: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
        for layout, rs in runs.items()
    }
    two = median["2 x 1 thread"]
    nbytes = two["bytes_per_step"]
    compute_ms = two["ms_per_step"] - two["reduce_ms_per_step"]
    small_bytes = 4 * (_model_parameters("small-gpu") + 1)  # float32 gradients and the loss
    lines = [
        "# Data-parallel training over MPI on this machine, and the all-reduce's cost model",
        "",
        f"`{COMMAND}` (`make bench-dist`), {date.today()}, "
        f"{platform.processor() or platform.machine()}, MPICH; median of {ROUNDS} alternated "
        f"process runs, each {STEPS} steps after {WARMUP} warm-up steps.",
        "",
        load_note,
        "",
        "## The demo's training step (preset `tiny-cpu`, global batch 16)",
        "",
        "| processes x threads | steps/s | ms/step | all-reduce ms/step | bytes reduced/step |",
        "|---|---|---|---|---|",
    ]
    for layout, m in median.items():
        lines.append(
            f"| {layout} | {m['steps_per_s']:.2f} | {m['ms_per_step']:.0f} | "
            f"{m['reduce_ms_per_step']:.2f} | {m['bytes_per_step']:,.0f} |"
        )
    lines += [
        "",
        f"{int(two['parameters']):,} parameters: one float32 buffer of every gradient, a flag "
        "per parameter array and the loss, all-reduced once per step. The time inside the "
        "all-reduce includes waiting for the slower rank to finish its half of the step, so "
        "it is more than the transfer alone (the sweep below) wherever the two ranks do not "
        "keep pace, as on a loaded machine. 2 x 1 thread / "
        f"1 x 2 threads: {two['steps_per_s'] / median['1 x 2 threads']['steps_per_s']:.2f}x "
        "the steps per second.",
        "",
        "## MPI_Allreduce alone, 2 processes, and the fitted ring model",
        "",
        "| bytes | measured us | model us |",
        "|---|---|---|",
    ]
    for size, seconds in zip(sweep["bytes"], sweep["seconds"]):
        model = ring_seconds(2, size, alpha, beta)
        lines.append(f"| {size:,} | {1e6 * seconds:.1f} | {1e6 * model:.1f} |")
    lines += [
        "",
        f"T(N, n) = 2 (N - 1) alpha + 2 (N - 1) / N n beta fitted at N = 2: alpha = "
        f"{1e6 * alpha:.2f} us, beta = {1e9 * beta:.3f} ns/B ({1 / beta / 1e9:.2f} GB/s). These "
        "are shared-memory constants of two processes on one machine; between machines the "
        f"network's apply, e.g. 10 Gb/s Ethernet, alpha = {1e6 * ETHERNET_ALPHA:.0f} us, beta "
        f"= {1e9 * ETHERNET_BETA:.1f} ns/B (assumed, not measured here).",
        "",
        "## Predicted time per step on N machines (the global batch split N ways)",
        "",
        f"tiny-cpu: t(N) = {compute_ms:.0f} ms x 2 / N + T(N, {nbytes:,.0f} B), the compute "
        "of a rank of the two-process run scaled to its share of the batch (ideal: smaller "
        "shards use the cores less well). small-gpu: T(N, "
        f"{small_bytes:,} B) only, the all-reduce's time per step; add the GPU's compute "
        "(`make bench-gpu`) divided by N. Host copies of the buffer on a GPU are not counted.",
        "",
        "| N | tiny-cpu ms/step (shared memory) | tiny-cpu ms/step (10 GbE) | small-gpu "
        "all-reduce ms (shared memory) | small-gpu all-reduce ms (10 GbE) |",
        "|---|---|---|---|---|",
    ]
    for machines in MACHINES:
        tiny = [
            compute_ms * 2 / machines + 1e3 * ring_seconds(machines, nbytes, a, b)
            for a, b in ((alpha, beta), (ETHERNET_ALPHA, ETHERNET_BETA))
        ]
        small = [
            1e3 * ring_seconds(machines, small_bytes, a, b)
            for a, b in ((alpha, beta), (ETHERNET_ALPHA, ETHERNET_BETA))
        ]
        lines.append(
            f"| {machines} | {tiny[0]:.1f} | {tiny[1]:.1f} | {small[0]:.2f} | {small[1]:.2f} |"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "cpu_distributed.md").write_text("\n".join(lines) + "\n")
    record = {
        "command": COMMAND,
        "date": str(date.today()),
        "load_note": load_note,
        "layouts": median,
        "allreduce": {"bytes": list(sweep["bytes"]), "seconds": list(sweep["seconds"])},
        "alpha": alpha,
        "beta": beta,
        "ethernet": {"alpha": ETHERNET_ALPHA, "beta": ETHERNET_BETA},
        "gradient_bytes": {"tiny-cpu": nbytes, "small-gpu": small_bytes},
        "compute_ms": compute_ms,
    }
    (RESULTS / "cpu_distributed.json").write_text(json.dumps(record, indent=1) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("worker", nargs="?", choices=["step", "allreduce"])
    args = parser.parse_args()
    {"step": _step_worker, "allreduce": _allreduce_worker, None: main}[args.worker]()
