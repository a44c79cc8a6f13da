"""Where arrays live: NumPy on the CPU, CuPy on a CUDA GPU.

Every op asks the array it is given which module to use (``xp = xp_of(x)``), so the same code
runs on both devices; nothing here keeps a global "current backend" that ops consult.

The default device for new tensors comes from the environment variable ``MINIDIFF_DEVICE``:

* ``cpu`` (the default): NumPy;
* ``cuda``: CuPy; a clear :class:`~minidiff.errors.DeviceError` if CuPy or a GPU is missing;
* ``auto``: CuPy when a GPU is usable, NumPy otherwise.

Floating-point data is float32 unless float64 is asked for (gradient checks ask for it).

>>> import numpy as np
>>> xp_of(np.zeros(3)) is np, device_of(np.zeros(3))
(True, 'cpu')
"""

from __future__ import annotations

import ctypes
import math
import os
import sys
from functools import lru_cache

import numpy

from .errors import DeviceError

DEVICES = ("cpu", "cuda")
DEFAULT_FLOAT = numpy.float32


@lru_cache(maxsize=1)
def _cupy():
    """The ``cupy`` module if it imports and sees at least one GPU, else ``None``."""
    try:
        import cupy
    except Exception:
        return None
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return None
    except Exception:
        return None
    return cupy


def gpu_available() -> bool:
    """True when CuPy is installed and a CUDA GPU answers."""
    return _cupy() is not None


def _require_cupy():
    cp = _cupy()
    if cp is None:
        raise DeviceError(
            "device 'cuda' was asked for, but CuPy is not installed or no CUDA GPU is visible; "
            "install the 'gpu' extra (pip install -e '.[gpu]') on a machine with a GPU, "
            "or use MINIDIFF_DEVICE=cpu"
        )
    return cp


def check_device(device: str) -> str:
    """Return ``device`` if it names a known device, else raise naming the choices."""
    if device not in DEVICES:
        raise DeviceError(f"unknown device {device!r}; expected one of {DEVICES}")
    if device == "cuda":
        _require_cupy()
    return device


def default_device() -> str:
    """The device new tensors go to: ``MINIDIFF_DEVICE`` = cpu | cuda | auto (default cpu)."""
    wanted = os.environ.get("MINIDIFF_DEVICE", "cpu").strip().lower() or "cpu"
    if wanted == "auto":
        return "cuda" if gpu_available() else "cpu"
    if wanted not in DEVICES:
        raise DeviceError(f"MINIDIFF_DEVICE={wanted!r} is not one of cpu, cuda, auto")
    return check_device(wanted)


def is_cupy_array(array) -> bool:
    """True for a CuPy array, without importing CuPy when it is not already loaded."""
    cls = type(array)
    return cls.__module__.startswith("cupy") and cls.__name__ == "ndarray"


def xp_of(*arrays):
    """The array module (``numpy`` or ``cupy``) for these arrays.

    Raises :class:`DeviceError` if some are on the CPU and others on the GPU.
    """
    devices = {device_of(a) for a in arrays if hasattr(a, "shape")}
    if len(devices) > 1:
        raise DeviceError(f"arrays are on different devices: {sorted(devices)}")
    return _cupy() if devices == {"cuda"} else numpy


def device_of(array) -> str:
    """``'cuda'`` for a CuPy array, ``'cpu'`` for anything else (NumPy arrays, scalars)."""
    return "cuda" if is_cupy_array(array) else "cpu"


def module_for(device: str):
    """The array module that holds data on ``device``."""
    return _require_cupy() if check_device(device) == "cuda" else numpy


def to_device(array, device: str):
    """Copy ``array`` to ``device`` (no copy if it is already there)."""
    check_device(device)
    if device_of(array) == device:
        return array
    if device == "cpu":
        return array.get()
    return _require_cupy().asarray(array)


def to_numpy(array) -> numpy.ndarray:
    """A NumPy array on the host, whatever device ``array`` is on."""
    return to_device(array, "cpu") if hasattr(array, "shape") else numpy.asarray(array)


def non_finite(arrays: dict) -> list[str]:
    """The names of the arrays in ``arrays`` (name -> array, all on one device) that hold a NaN
    or an infinity: one reduction per array and a single host sync for them all."""
    if not arrays:
        return []
    xp = xp_of(*arrays.values())
    finite = to_numpy(xp.stack([xp.isfinite(a).all() for a in arrays.values()]))
    return [name for name, ok in zip(arrays, finite) if not ok]


def scatter_add(target, index, values) -> None:
    """``target[index] += values`` with repeated indices accumulated (unbuffered), in place."""
    if is_cupy_array(target):
        import cupyx

        cupyx.scatter_add(target, index, values)
    else:
        numpy.add.at(target, index, values)


_erf_host = numpy.frompyfunc(math.erf, 1, 1)


def erf(x):
    """The error function elementwise, to double precision, in ``x``'s dtype and device."""
    if is_cupy_array(x):
        from cupyx.scipy.special import erf as cupy_erf

        return cupy_erf(x)
    return numpy.asarray(_erf_host(x)).astype(x.dtype)


# --- random numbers: one seeded generator per device -------------------------------------------

_generators: dict[str, object] = {}


def manual_seed(seed: int) -> None:
    """Reseed the generators of every device, so runs repeat exactly."""
    _generators.clear()
    _generators["cpu"] = numpy.random.default_rng(seed)
    if gpu_available():
        _generators["cuda"] = _cupy().random.default_rng(seed)


def generator(device: str | None = None):
    """The seeded random generator of ``device`` (default: the default device)."""
    device = check_device(device or default_device())
    if device not in _generators:
        xp = module_for(device)
        _generators[device] = xp.random.default_rng(0)
    return _generators[device]


def get_rng_state() -> dict:
    """The CPU generator's state (plain numbers), for checkpoints.

    CuPy's generators expose no state to save, so a resumed run on a GPU continues with fresh
    random streams; on the CPU it continues exactly where it stopped.
    """
    return {"cpu": generator("cpu").bit_generator.state}


def set_rng_state(state: dict) -> None:
    """Restore what :func:`get_rng_state` returned."""
    generator("cpu").bit_generator.state = state["cpu"]


# --- the host allocator -------------------------------------------------------------------------
# glibc's malloc hands out large blocks (from 128 KiB, rising as blocks are freed) with mmap and
# gives them back to the system on free, so every temporary array of a training step costs a
# system call and a page fault per 4 KiB page the first time it is written. A step of the demo
# model makes hundreds of such temporaries; keeping freed memory in the heap for reuse made it
# about a quarter faster at the same peak memory (book chapter 15). PyTorch gets the same effect
# from its own caching allocator.
_MMAP_THRESHOLD = 32 << 20  # blocks up to 32 MiB come from the heap (glibc's largest setting)
_TRIM_THRESHOLD = 1 << 30  # the heap keeps up to 1 GiB of freed memory for reuse
_TOP_PAD = 64 << 20  # and grows in steps of 64 MiB


HOST_ALLOCATOR_TUNED = False
"""True once :func:`tune_host_allocator` has changed glibc's malloc settings in this process."""


def tune_host_allocator() -> bool:
    """Make glibc's malloc keep freed blocks for reuse (see above); True if it is in effect.

    It changes the allocator of the whole process, not only of arrays, so importing minidiff
    does not do it: the entry points that train call it, that is the command line
    (``python -m minidiff``), :class:`minidiff.app.train.Trainer` when it is built, and the
    benchmarks. Call it yourself to train as fast in a loop of your own. Once it has taken
    effect, calling it again does nothing. It works on Linux with glibc;
    ``MINIDIFF_SYSTEM_MALLOC=1`` leaves the allocator as it is.
    """
    global HOST_ALLOCATOR_TUNED
    if HOST_ALLOCATOR_TUNED:
        return True
    if os.environ.get("MINIDIFF_SYSTEM_MALLOC") == "1" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (e.g. musl): leave it
        return False
    m_trim_threshold, m_top_pad, m_mmap_threshold = -1, -2, -3
    HOST_ALLOCATOR_TUNED = all(
        libc.mallopt(option, value) == 1
        for option, value in (
            (m_mmap_threshold, _MMAP_THRESHOLD),
            (m_trim_threshold, _TRIM_THRESHOLD),
            (m_top_pad, _TOP_PAD),
        )
    )
    return HOST_ALLOCATOR_TUNED
