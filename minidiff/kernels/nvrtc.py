"""Compiling the CUDA kernels without a GPU.

NVRTC, CUDA's compiler as a library, turns CUDA C into PTX on any machine: it needs neither a
GPU nor a driver (launching a kernel needs both). :func:`check` compiles the translation unit of
each kernel of ``cuda.py`` for every dtype and every way its inputs are passed, with CuPy's
headers and CuPy's compiler options, so a typo, an undeclared name or a type error in a kernel's
CUDA C is found on the CPU, where ``make test`` runs. What only a GPU can tell is whether the
kernels compute the right numbers: ``make test-gpu`` compares them with the plain formulas.

It needs two packages, both installable without a GPU: ``cupy-cuda12x`` (its headers and its
binding of NVRTC) and ``nvidia-cuda-nvrtc-cu12`` (NVRTC itself); the ``cuda-check`` extra holds
them (``pip install -e ".[cuda-check]"``; ``make test`` installs it).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy

from . import cuda

ARCH = "compute_75"
"""The virtual GPU architecture compiled for: Turing, the oldest that NVRTC 12.9 does not call
deprecated. (On a GPU, CuPy compiles for the GPU's own architecture.)"""

INSTALL = 'pip install -e ".[cuda-check]"  (or: pip install cupy-cuda12x nvidia-cuda-nvrtc-cu12)'
"""How to install what the compile check needs."""


class MissingCompilerError(ImportError):
    """CuPy or NVRTC is not installed, so the CUDA kernels cannot be compiled; the message says
    what to install."""


class KernelCompileError(RuntimeError):
    """A CUDA kernel that NVRTC rejects; the message names the kernel, the dtype, the line of its
    translation unit and the compiler's log."""


def _nvrtc():
    """CuPy's binding of NVRTC, after checking that the NVRTC library loads."""
    try:
        from cupy_backends.cuda.libs import nvrtc
    except ImportError as error:
        raise MissingCompilerError(
            f"compiling the CUDA kernels needs CuPy ({error}); install it with: {INSTALL}"
        ) from error
    try:
        nvrtc.getVersion()
    except Exception as error:  # the library itself is missing: CuPy raises its own types
        raise MissingCompilerError(
            f"compiling the CUDA kernels needs NVRTC, which did not load ({str(error).strip()}); "
            f"install it with: {INSTALL}"
        ) from error
    return nvrtc


def include_dir() -> Path:
    """CuPy's header folder (``cupy/_core/include`` in the installed package)."""
    import cupy

    return Path(cupy.__file__).parent / "_core" / "include"


def options() -> list[str]:
    """NVRTC's options as CuPy sets them for its kernels: its bundled CCCL and its own headers,
    C++17, flushing denormals to zero, device code by default. (CuPy adds the CUDA toolkit's
    include folder where it finds one; the kernels here use none of its headers.)"""
    include = include_dir()
    cccl = include / "cupy" / "_cccl"
    return [
        f"-I{cccl / 'cub'}",
        f"-I{cccl / 'thrust'}",
        f"-I{cccl / 'libcudacxx'}",
        "--std=c++17",
        f"-I{include}",
        "-ftz=true",
        f"-arch={ARCH}",
        "--device-as-default-execution-space",
    ]


_DIAGNOSTIC = re.compile(r"^.*?\((\d+)\): (?:catastrophic )?error\b", re.M)


def compile_source(kernel, dtype, scalars: tuple[str, ...] = ()) -> bytes:
    """Compile ``kernel``'s translation unit for ``dtype`` with the inputs in ``scalars`` passed
    as numbers; return the PTX, or raise :class:`KernelCompileError` naming the kernel and the
    lines NVRTC rejects."""
    nvrtc = _nvrtc()
    source = kernel.translation_unit(dtype, scalars)
    dtype_name = numpy.dtype(dtype).name
    program = nvrtc.createProgram(source, f"{kernel.name}_{dtype_name}.cu", [], [])
    try:
        try:
            nvrtc.compileProgram(program, options())
        except nvrtc.NVRTCError as error:
            log = nvrtc.getProgramLog(program).strip()
            raise KernelCompileError(
                _rejected(kernel, dtype_name, scalars, source, error, log)
            ) from None
        return nvrtc.getPTX(program)
    finally:
        nvrtc.destroyProgram(program)


def _rejected(kernel, dtype_name, scalars, source, error, log) -> str:
    """The message of a :class:`KernelCompileError`: the kernel, the lines of its translation
    unit that the log names, the log, and where to fix it."""
    lines = source.splitlines()
    numbers = sorted({int(n) for n in _DIAGNOSTIC.findall(log)})
    quoted = "\n".join(f"  line {n}: {lines[n - 1].strip()}" for n in numbers)
    passed = f", with {', '.join(scalars)} passed as numbers" if scalars else ""
    call = f"numpy.{dtype_name}" + (f", {scalars!r}" if scalars else "")
    return (
        f"CUDA kernel {kernel.name} (minidiff/kernels/cuda.py) does not compile for "
        f"{dtype_name}{passed}:\n{quoted or '  (the log names no line)'}\n"
        f"NVRTC ({error}) says:\n{log}\n"
        f"Fix its CUDA C in minidiff/kernels/cuda.py; the numbered lines are those of its "
        f"translation_unit({call})."
    )


def check(kernels=cuda.SOURCES) -> int:
    """Compile every kernel in ``kernels`` for each dtype of ``cuda.DTYPES`` and each way its
    inputs are passed (``scalar_choices``); return how many translation units compiled, or raise
    :class:`KernelCompileError` at the first that does not."""
    count = 0
    for kernel in kernels:
        for dtype in cuda.DTYPES:
            for scalars in kernel.scalar_choices():
                compile_source(kernel, dtype, scalars)
                count += 1
    return count
