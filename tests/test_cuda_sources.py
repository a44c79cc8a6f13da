"""The CUDA kernels (``minidiff/kernels/cuda.py``), checked without a GPU.

* Each kernel's translation unit compiles with NVRTC for float32 and float64 and for each way its
  inputs are passed, and it is, token for token, the code CuPy generates from the same kernel;
  a broken kernel fails the check with its name, the line and the compiler's message.
* The launching functions run on NumPy arrays, each kernel replaced by a stand-in that checks
  the arguments it is given against the kernel's typed parameters; they must return what the
  plain formulas return (as many arrays, of the same shapes and dtypes).
* The ``KERNELS`` table names a CUDA launcher for every op, with the plain formula's signature,
  and every CUDA kernel is launched by one of them and checked here.

Compiling needs ``cupy-cuda12x`` and ``nvidia-cuda-nvrtc-cu12`` (the ``cuda-check`` extra, which
``make test`` installs). Without them the compiling tests are skipped, naming what to install,
unless ``MINIDIFF_CUDA_CHECK=1`` (set by ``make test``), which makes their absence a failure.
Whether the kernels compute the right numbers only a GPU can tell: ``make test-gpu``.
"""

import dataclasses
import inspect
import os
import re
import sys

import numpy as np
import pytest

from minidiff import backend, kernels
from minidiff.kernels import cuda, nvrtc, plain


@pytest.fixture(scope="module")
def compiler():
    """Skips (or fails, under MINIDIFF_CUDA_CHECK=1) when CuPy or NVRTC is missing."""
    try:
        nvrtc._nvrtc()
    except nvrtc.MissingCompilerError as error:
        if os.environ.get("MINIDIFF_CUDA_CHECK") == "1":
            pytest.fail(f"{error}\n(MINIDIFF_CUDA_CHECK=1: this check must run, not be skipped)")
        pytest.skip(f"{error}; `make test` installs it and runs this check")


@pytest.mark.parametrize("kernel", cuda.SOURCES, ids=lambda kernel: kernel.name)
def test_cuda_kernel_compiles(compiler, kernel):
    """For float32 and float64, and each way the launching function passes its inputs."""
    assert nvrtc.check([kernel]) == len(kernel.scalar_choices()) * len(cuda.DTYPES)
    assert b".entry " + kernel.name.encode() in nvrtc.compile_source(kernel, np.float32)


def test_without_cupy_the_check_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "cupy_backends.cuda.libs", None)
    with pytest.raises(nvrtc.MissingCompilerError, match=r'pip install -e "\.\[cuda-check\]"'):
        nvrtc.check()


BROKEN = [
    pytest.param("tanh(", "tanhh(", 'identifier "tanhh" is undefined', id="misspelt function"),
    pytest.param("y = (T)0.5", "x = (T)0.5", "modifiable lvalue", id="writes to an input"),
]


@pytest.mark.parametrize("old, new, complaint", BROKEN)
def test_a_broken_kernel_fails_naming_the_kernel_and_the_line(compiler, old, new, complaint):
    broken = dataclasses.replace(cuda.GELU_TANH, body=cuda.GELU_TANH.body.replace(old, new))
    source = broken.translation_unit(np.float32).splitlines()
    line = next(n for n, text in enumerate(source, 1) if new in text)
    with pytest.raises(nvrtc.KernelCompileError) as raised:
        nvrtc.check([cuda.GELU_TANH, broken])
    message = str(raised.value)
    assert "CUDA kernel minidiff_gelu_tanh" in message and "for float32" in message
    assert f"line {line}: {source[line - 1].strip()}" in message
    assert f"minidiff_gelu_tanh_float32.cu({line}): error" in message
    assert complaint in message and "minidiff/kernels/cuda.py" in message


def _tokens(code: str) -> list[str]:
    """C tokens, near enough: words and single other characters, without comments."""
    return re.findall(r"\w+|\S", re.sub(r"//[^\n]*", "", code))


def _cupy_generated(kernel, dtype, scalars) -> str:
    """The code CuPy's own generator writes for ``kernel`` (CuPy's private functions, which need
    no GPU), for 1-D contiguous arrays as the translation units assume."""
    import cupy
    from cupy._core import _kernel, _reduction, _scalar
    from cupy._core._carray import Indexer

    ndarray, indexer, scalar = 1, 2, 3  # CuPy's _ArgKind

    def info(kind, arg_dtype=None):
        types = {ndarray: cupy.ndarray, indexer: Indexer, scalar: _scalar.CScalar}
        arg_dtype = None if arg_dtype is None else np.dtype(arg_dtype)
        return _kernel._ArgInfo(kind, types[kind], arg_dtype, int(kind != scalar), True, True)

    built = kernel.build(cupy)
    if isinstance(kernel, cuda.Elementwise):
        infos = [
            info(scalar if p.name in scalars else ndarray, dtype if p.dtype is None else p.dtype)
            for p in built.params[:-1]
        ]
        types = _kernel._TypeMap((("T", np.dtype(dtype)),))
        return _kernel._get_elementwise_kernel_code(
            (*infos, info(indexer)), types, built.params, built.operation, built.name, ""
        )
    infos = [info(ndarray, dtype)] * (built.nin + built.nout)
    infos += [info(indexer), info(indexer), info(scalar, np.int32)]
    types = _kernel._TypeMap((("IndexT", np.dtype(np.int32)), ("T", np.dtype(dtype))))
    return _reduction._ReductionKernel_get_cached_function_code(
        built.nin, built.nout, built._params, tuple(infos), types, built.name,
        cuda.REDUCTION_BLOCK, built.reduce_type, built.identity, built.map_expr,
        built.reduce_expr, built.post_map_expr, built.preamble, built.options,
    )  # fmt: skip


def test_translation_units_are_what_cupy_generates(compiler):
    """The translation units are CuPy's code for the same kernels (compared token by token, so
    only the layout differs), with CuPy's headers and include folders."""
    from cupy._core import core

    assert list(cuda.CUPY_HEADERS) == core._cupy_header_list
    assert core._get_header_dir_path() == str(nvrtc.include_dir())
    assert set(core._get_cccl_include_options()) <= set(nvrtc.options())
    headers = "".join(f"#include <{h}>\n" for h in cuda.CUPY_HEADERS)
    for kernel in cuda.SOURCES:
        for dtype in cuda.DTYPES:
            for scalars in kernel.scalar_choices():
                ours = kernel.translation_unit(dtype, scalars)
                assert ours.startswith(headers)
                theirs = _cupy_generated(kernel, dtype, scalars)
                assert _tokens(ours[len(headers) :]) == _tokens(theirs), (
                    f"{kernel.name} ({np.dtype(dtype).name}, scalars {scalars}): the translation "
                    f"unit of minidiff/kernels/cuda.py is not the code CuPy generates; "
                    f"CuPy's is:\n{theirs}"
                )


# --- the launching functions, on NumPy, with stand-ins for the kernels ---------------------------


class StandIn:
    """A kernel that checks its arguments against the kernel's typed parameters, as CuPy would
    on a GPU, and returns ones of the outputs' shapes (or the outputs it was given)."""

    def __init__(self, kernel, launches):
        self.kernel, self.launches = kernel, launches

    def __call__(self, *args, axis=None, keepdims=False):
        inputs = cuda.parameters(self.kernel.inputs)
        outputs = cuda.parameters(self.kernel.outputs)
        name = self.kernel.name
        assert len(args) in (len(inputs), len(inputs) + len(outputs)), f"{name}: {len(args)} args"
        typed = [a for a, (t, _) in zip(args, inputs + outputs) if t == "T"]
        dtypes = {a.dtype for a in typed}
        assert len(dtypes) == 1, f"{name}: the parameters typed T get {dtypes}"
        for arg, (type_name, param) in zip(args, inputs + outputs):
            if type_name != "T":
                assert arg.dtype == np.dtype(type_name), f"{name}: {param} is {arg.dtype}"
        scalars = tuple(p for a, (_, p) in zip(args, inputs) if isinstance(a, np.generic))
        assert scalars in self.kernel.scalar_choices(), f"{name}: {scalars} passed as numbers"
        self.launches.append((self.kernel, dtypes.pop(), scalars))
        shape = np.broadcast_shapes(*(np.shape(a) for a in args[: len(inputs)]))
        if isinstance(self.kernel, cuda.Reduction):
            return np.ones(shape, typed[0].dtype).sum(axis=axis, keepdims=keepdims)
        given = args[len(inputs) :]
        for arg in given:
            assert isinstance(arg, np.ndarray) and arg.shape == shape, f"{name}: an output"
        results = given or [np.ones(shape, typed[0].dtype) for _ in outputs]
        return results[0] if len(results) == 1 else tuple(results)


@pytest.fixture
def launches(monkeypatch):
    """The kernels each launcher starts: (kernel, dtype, inputs passed as numbers)."""
    started = []
    monkeypatch.setattr(cuda, "compiled", lambda kernel: StandIn(kernel, started))
    monkeypatch.setattr(backend, "module_for", lambda device: np)
    return started


def _calls(dtype):
    """Arguments for each op, as the library passes them (every mask, weight and bias case)."""
    rng = np.random.default_rng(0)

    def a(*shape):
        return rng.standard_normal(shape).astype(dtype)

    x, g = a(2, 3, 4), a(2, 3, 4)
    cos, sin = a(3, 2), a(3, 2)
    y = plain.softmax(x)
    _, x_hat, rstd = plain.layer_norm(x, None, None, 1e-5)
    yield "gelu_tanh", (x,)
    yield "gelu_tanh_grad", (g, x, np.tanh(x))
    yield "silu", (x,)
    yield "silu_grad", (g, x, 1 / (1 + np.exp(-x)))
    for mask in (None, rng.random((2, 1, 4)) > 0.3, a(1, 3, 4)):
        yield "softmax", (x, 0.5, mask)
    yield "softmax_grad", (g, y, 0.5)
    for weight in (None, a(4)):
        for bias in (None, a(4)):
            yield "layer_norm", (x, weight, bias, 1e-5)
        for needs in ((True, True, True), (True, False, False), (False, True, True)):
            yield "layer_norm_grad", (g, x_hat, rstd, weight, needs)
    yield "rotate_pairs", (x, cos, sin)
    yield "adam_step", (a(5), a(5), a(5), np.abs(a(5)), 1e-2, 0.9, 0.999, 1e-8, 1.2)


def _structure(result):
    """What a formula returned, as (shape, dtype) of each array (None where it returned None)."""
    if isinstance(result, tuple):
        return tuple(_structure(r) for r in result)
    return None if result is None else (result.shape, result.dtype)


@pytest.mark.parametrize("dtype", cuda.DTYPES, ids=lambda d: np.dtype(d).name)
def test_launchers_pass_what_the_kernels_declare_and_return_what_plain_returns(launches, dtype):
    for name, args in _calls(dtype):
        copies = [a.copy() if isinstance(a, np.ndarray) else a for a in args]
        want = _structure(kernels.KERNELS[name].plain(*copies))
        launches.clear()
        got = _structure(kernels.KERNELS[name].cuda(*args))
        assert got == want, f"{name}: the CUDA launcher returns {got}, the plain formula {want}"
        assert all(d == np.dtype(dtype) for _, d, _ in launches), f"{name}: {launches}"


def test_each_launch_is_a_compiled_variant(launches):
    """Every (kernel, inputs passed as numbers) the launchers start is one that the compile
    check compiles, and the check compiles none that no launch starts."""
    for dtype in cuda.DTYPES:
        for name, args in _calls(dtype):
            kernels.KERNELS[name].cuda(*args)
    started = {(kernel.name, scalars) for kernel, _, scalars in launches}
    checked = {(k.name, s) for k in cuda.SOURCES for s in k.scalar_choices()}
    assert started == checked


# --- the table -------------------------------------------------------------------------------


def test_every_op_has_a_cuda_launcher_with_the_plain_signature():
    for name, kernel in kernels.KERNELS.items():
        assert kernel.cuda.__module__ == cuda.__name__ and kernel.cuda.__name__ == name
        assert inspect.signature(kernel.cuda) == inspect.signature(kernel.plain), name
        assert inspect.signature(kernel.cpu) == inspect.signature(kernel.plain), name


def test_every_cuda_kernel_is_launched_and_in_the_compile_check():
    defined = {
        value.name
        for value in vars(cuda).values()
        if isinstance(value, cuda.Elementwise | cuda.Reduction)
    }
    assert defined == {k.name for k in cuda.SOURCES}
    launched = {
        getattr(cuda, global_name).name
        for kernel in kernels.KERNELS.values()
        for global_name in kernel.cuda.__code__.co_names
        if isinstance(getattr(cuda, global_name, None), cuda.Elementwise | cuda.Reduction)
    }
    assert launched == defined


# the kernels that compute a whole plain formula in one launch, under its parameter names
WHOLE = {
    "gelu_tanh": cuda.GELU_TANH,
    "gelu_tanh_grad": cuda.GELU_TANH_GRAD,
    "silu": cuda.SILU,
    "silu_grad": cuda.SILU_GRAD,
    "adam_step": cuda.ADAM_STEP,
}


@pytest.mark.parametrize("name", WHOLE)
def test_whole_formula_kernels_have_the_plain_parameters(name):
    """Same inputs (and the in-place arrays as outputs), the numbers (the float parameters) as
    scalars of the data's type T, and one output of type T for each array returned."""
    kernel, formula = WHOLE[name], kernels.KERNELS[name].plain
    signature = inspect.signature(formula).parameters
    inputs, outputs = cuda.parameters(kernel.inputs), cuda.parameters(kernel.outputs)
    assert {t for t, _ in inputs + outputs} == {"T"}
    numbers = tuple(p for p, spec in signature.items() if spec.annotation == "float")
    assert sorted(kernel.scalars) == sorted(numbers)
    if inspect.signature(formula).return_annotation == "None":  # updates arrays in place
        assert {n for _, n in inputs + outputs} == set(signature)
    else:
        assert [n for _, n in inputs] == list(signature)
        result = formula(*dict(_calls(np.float32))[name])
        assert len(result if isinstance(result, tuple) else (result,)) == len(outputs)
