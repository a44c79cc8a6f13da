"""Data-parallel training over MPI processes: ``mpiexec -n W python -m minidiff train ...``.

Every process (rank r of W) holds the whole model. A step's global batch of B examples is split
into W shards of B / W consecutive rows; rank r computes the loss and gradients of rows
[r B/W, (r+1) B/W) only. The loss is a mean over the global batch, a sum S over the counted
entries divided by their number C (all entries, or those a frame mask leaves unknown), so with
every rank dividing its own sum S_r by the *global* count (eq-data-parallel),

    L = S / C = sum_r S_r / C = sum_r L_r,      grad L = sum_r grad L_r,

the whole batch's gradient is the sum of the ranks' gradients: one all-reduce (sum) of all the
gradients, flattened into one buffer, per step. Without frame masks C_r = C / W and L_r is the
rank's own mean divided by W, so the sum is the average of the ranks' mean-loss gradients.
After it every rank holds the same gradient and applies the same clipping, AdamW step,
learning-rate schedule and EMA update, so the parameters stay the same on every rank (bit for
bit on one machine); :meth:`World.check_agreement` compares a checksum of them every few steps
and raises :class:`ParameterDriftError` naming the step and the rank if they drift apart.

The random numbers of a step (which examples, timesteps, frame masks, dropped captions, noise)
are drawn for the whole global batch from the one seeded stream every rank holds in the same
state, and each rank keeps its rows. That makes W ranks see exactly the examples and noise one
process would, whatever W, keeps the single process's stream exactly as it was, and leaves one
generator state in a checkpoint that every layout can resume from: a run saved by 2 processes
resumes in 1 or 4 and continues the same trajectory (up to the rounding of sums taken in another
order). The price is that each rank draws the whole batch's noise, O(B) numbers a step (about 1%
of a tiny-cpu step).

Without mpiexec (no ``PMI_SIZE`` or ``OMPI_COMM_WORLD_SIZE`` in the environment), or with one
process, the world is rank 0 of 1: mpi4py is not imported and every collective is a no-op, so
training behaves exactly as it does without this module.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
import time

import numpy

from . import backend

LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")
"""Environment variables in which mpiexec (MPICH, Intel MPI, Slurm's PMI; Open MPI) tells a
process how many were started."""


class DistributedError(RuntimeError):
    """A data-parallel job that cannot run as asked (mpi4py missing, a batch that does not
    split over the processes)."""


class ParameterDriftError(DistributedError):
    """The ranks' parameters are no longer the same; the message names the step, the rank and
    the first parameter that differs."""


def launched_size() -> int:
    """How many processes mpiexec started with this one (1 when it was not started by it)."""
    for name in LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return int(value)
    return 1


@functools.lru_cache(maxsize=1)
def world() -> World:
    """This process's :class:`World`: MPI's COMM_WORLD under mpiexec with more than one
    process, else rank 0 of 1 (without importing mpi4py)."""
    size = launched_size()
    if size == 1:
        return World()
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise DistributedError(
            f"this process is one of {size} that mpiexec started, but mpi4py does not import "
            f"({error}); install the 'dist' extra (pip install -e '.[dist]') or run without mpiexec"
        ) from None
    return World(MPI.COMM_WORLD)


def rank() -> int:
    """This process's rank (0 without mpiexec)."""
    return world().rank


class World:
    """The processes of a job and the few collectives data-parallel training needs.

    ``World()`` is the single process (rank 0 of 1), where every collective returns at once.
    ``World(comm)`` wraps an mpi4py communicator. The time spent inside the gradient all-reduce
    and the bytes it reduced are added up in :attr:`reduce_seconds` and :attr:`reduced_bytes`
    (for the benchmarks).
    """

    def __init__(self, comm=None):
        self.comm = comm
        self.rank = 0 if comm is None else comm.Get_rank()
        self.size = 1 if comm is None else comm.Get_size()
        self.reduce_seconds, self.reduced_bytes, self.reductions = 0.0, 0, 0
        self._buffer = None

    @property
    def is_root(self) -> bool:
        """True on rank 0, the one that logs, samples and writes files."""
        return self.rank == 0

    def shard(self, batch_size: int) -> slice:
        """This rank's rows of a global batch of ``batch_size``: [r B/W, (r+1) B/W)."""
        if batch_size % self.size:
            raise DistributedError(
                f"the batch of {batch_size} examples does not split evenly over {self.size} "
                f"processes; choose a batch_size divisible by {self.size} or another -n"
            )
        per_rank = batch_size // self.size
        return slice(self.rank * per_rank, (self.rank + 1) * per_rank)

    # --- collectives ------------------------------------------------------------------------
    def broadcast_parameters(self, params) -> None:
        """Overwrite every parameter with rank 0's values (in place, on its device)."""
        if self.size == 1:
            return
        for p in params:
            host = numpy.ascontiguousarray(backend.to_numpy(p.data))
            self.comm.Bcast(host, root=0)
            p.data[...] = backend.to_device(host, p.device)

    def broadcast_object(self, value):
        """Rank 0's ``value`` (any picklable object) on every rank."""
        return value if self.size == 1 else self.comm.bcast(value, root=0)

    def barrier(self) -> None:
        """Return once every rank has got here."""
        if self.size > 1:
            self.comm.Barrier()

    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is true on any of them."""
        if self.size == 1:
            return bool(flag)
        from mpi4py import MPI

        return bool(self.comm.allreduce(bool(flag), op=MPI.LOR))

    def sum_gradients(self, params, loss):
        """Replace each parameter's gradient by the sum of the ranks' gradients and return the
        sum of the ranks' ``loss`` (a 0-d array on the device), with one all-reduce of one
        flat buffer.

        The buffer holds every gradient, one flag per parameter (1 where this rank has a
        gradient) and the loss: a parameter without a gradient on any rank keeps ``grad``
        None, as in a single process, and one without a gradient on some ranks counts as zero
        there. With one process nothing changes and ``loss`` is returned as it is.
        """
        if self.size == 1:
            return loss
        params = list(params)
        xp = backend.xp_of(loss)
        dtype = params[0].data.dtype
        sizes = [p.data.size for p in params]
        total = sum(sizes)
        buffer = self._flat_buffer(total + len(params) + 1, dtype, xp)
        offset = 0
        for p, size in zip(params, sizes):
            if p.grad is None:
                buffer[offset : offset + size] = 0
            else:
                buffer[offset : offset + size] = p.grad.reshape(-1)
            offset += size
        buffer[total : total + len(params)] = xp.asarray([p.grad is not None for p in params])
        buffer[-1] = loss.reshape(())
        host = backend.to_numpy(buffer)
        self._allreduce_sum(host)
        buffer = backend.to_device(host, backend.device_of(buffer))
        has_grad = backend.to_numpy(buffer[total : total + len(params)]) > 0
        offset = 0
        for p, size, present in zip(params, sizes, has_grad):
            p.grad = (
                buffer[offset : offset + size].reshape(p.data.shape).copy() if present else None
            )
            offset += size
        return buffer[-1].copy()

    def _flat_buffer(self, size: int, dtype, xp):
        """One reused buffer for :meth:`sum_gradients` (allocated again if the size changes)."""
        buffer = self._buffer
        reusable = buffer is not None and backend.xp_of(buffer) is xp
        if not (reusable and buffer.size == size and buffer.dtype == dtype):
            buffer = self._buffer = xp.empty(size, dtype=dtype)
        return buffer

    def _allreduce_sum(self, host: numpy.ndarray) -> None:
        """Sum ``host`` over the ranks in place, timing it."""
        from mpi4py import MPI

        started = time.perf_counter()
        self.comm.Allreduce(MPI.IN_PLACE, host, op=MPI.SUM)
        self.reduce_seconds += time.perf_counter() - started
        self.reduced_bytes += host.nbytes
        self.reductions += 1

    def check_agreement(self, named_params: dict, step: int) -> None:
        """Raise :class:`ParameterDriftError` (on every rank) unless every rank holds the same
        parameters as rank 0, judged by a checksum: per parameter p the float64 sums
        sum_i p_i and sum_i p_i^2, compared exactly (ranks that apply the same update to the
        same numbers agree bit for bit). One small all-gather; nothing with one process."""
        if self.size == 1:
            return
        names = list(named_params)
        sums = checksum(list(named_params.values()))
        gathered = numpy.stack(self.comm.allgather(sums))
        for other in range(1, self.size):
            differs = numpy.flatnonzero(numpy.any(gathered[other] != gathered[0], axis=1))
            if differs.size:
                first = differs[0]
                raise ParameterDriftError(
                    f"the parameters drifted apart at step {step}: rank {other}'s "
                    f"{names[first]} (sum, sum of squares {tuple(gathered[other][first])}) "
                    f"differs from rank 0's ({tuple(gathered[0][first])}), and so do "
                    f"{differs.size - 1} more arrays; the ranks no longer train one model. "
                    "Resume from the last checkpoint (it is rank 0's)"
                )

    # --- failures ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def aborting_on_error(self, where=lambda: ""):
        """An exception leaving the block on one rank of several aborts the whole job (MPI
        Abort), after printing which rank raised what and ``where()`` (e.g. the step and the
        checkpoint that stays): the other ranks would otherwise wait for it forever inside
        the next collective. One process: exceptions pass as usual. A KeyboardInterrupt that
        every rank raised together (:attr:`stopping_together` set) passes too."""
        try:
            yield self
        except BaseException as error:
            if self.size == 1 or getattr(error, "stopping_together", False):
                raise
            self.abort(
                f"rank {self.rank} of {self.size} raised {type(error).__name__}: {error}"
                f"{where()}; aborting all {self.size} processes"
            )

    def abort(self, message: str) -> None:
        """Print ``message`` and end every process of the job with exit status 1."""
        sys.stderr.write(f"minidiff: {message}\n")  # one write: ranks' lines stay whole
        sys.stderr.flush()
        self.comm.Abort(1)


def checksum(params) -> numpy.ndarray:
    """(P, 2) float64 host array: sum_i p_i and sum_i p_i^2 of each of the P arrays (their
    ``.data`` if they are parameters), computed on their device, one host sync in all."""
    arrays = [getattr(p, "data", p) for p in params]
    xp = backend.xp_of(*arrays)
    rows = [xp.stack([a.sum(dtype=xp.float64), (a.astype(xp.float64) ** 2).sum()]) for a in arrays]
    return backend.to_numpy(xp.stack(rows))
