"""The backend: which module holds an array, devices, dtypes, seeded generators."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import minidiff as md
from minidiff import backend

from .conftest import requires_gpu


def test_xp_of_and_device_of_numpy():
    a = np.zeros(3)
    assert backend.xp_of(a) is np and backend.device_of(a) == "cpu"
    assert backend.xp_of(1.0) is np and backend.device_of(1.0) == "cpu"
    assert backend.to_device(a, "cpu") is a


@requires_gpu
def test_to_device_round_trip_and_mixed_devices():
    import cupy

    a = np.arange(6.0).reshape(2, 3)
    g = backend.to_device(a, "cuda")
    assert isinstance(g, cupy.ndarray) and backend.xp_of(g) is cupy
    np.testing.assert_array_equal(backend.to_device(g, "cpu"), a)
    with pytest.raises(md.DeviceError, match="different devices"):
        backend.xp_of(a, g)
    with pytest.raises(md.DeviceError, match="different devices"):
        md.tensor(a, device="cpu") + md.tensor(a, device="cuda")


@pytest.mark.parametrize("value", ["cpu", "CPU", " cpu "])
def test_default_device_from_environment(monkeypatch, value):
    monkeypatch.setenv("MINIDIFF_DEVICE", value)
    assert backend.default_device() == "cpu"


def test_auto_device_falls_back_to_cpu(monkeypatch):
    monkeypatch.setenv("MINIDIFF_DEVICE", "auto")
    assert backend.default_device() == ("cuda" if backend.gpu_available() else "cpu")


def test_unknown_device_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MINIDIFF_DEVICE", "tpu")
    with pytest.raises(md.DeviceError, match="MINIDIFF_DEVICE='tpu'"):
        backend.default_device()
    with pytest.raises(md.DeviceError, match="unknown device 'gpu'"):
        md.zeros(2, device="gpu")


@pytest.mark.skipif(backend.gpu_available(), reason="checks the error raised without a GPU")
def test_cuda_without_gpu_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("MINIDIFF_DEVICE", "cuda")
    with pytest.raises(md.DeviceError, match="CuPy is not installed or no CUDA GPU"):
        backend.default_device()
    with pytest.raises(md.DeviceError, match="CuPy"):
        md.tensor([1.0], device="cuda")


def test_float32_by_default_float64_on_request(xp):
    assert md.tensor([1.0, 2.0]).dtype == np.float32
    assert md.tensor(np.zeros(3)).dtype == np.float32
    assert md.tensor([1, 2]).dtype.kind == "i"
    assert md.tensor([1.0], dtype=np.float64).dtype == np.float64
    assert md.randn(2, 3).dtype == np.float32 and md.zeros(2).dtype == np.float32
    assert md.randn(2, dtype=np.float64).dtype == np.float64


def test_seeded_generators_repeat(device):
    md.manual_seed(123)
    a = md.randn(4, 5).numpy()
    b = md.rand(3).numpy()
    md.manual_seed(123)
    np.testing.assert_array_equal(md.randn(4, 5).numpy(), a)
    np.testing.assert_array_equal(md.rand(3).numpy(), b)
    md.manual_seed(124)
    assert not np.array_equal(md.randn(4, 5).numpy(), a)


def test_machine_epsilon_float32():
    """(eq-machine-epsilon): eps = 2^-23 in float32, 2^-52 in float64; 1 + eps/2 rounds to 1."""
    assert np.finfo(np.float32).eps == 2.0**-23
    assert np.finfo(np.float64).eps == 2.0**-52
    one = md.tensor([1.0])
    assert (one + 2.0**-23).numpy()[0] != 1.0
    assert (one + 2.0**-24).numpy()[0] == 1.0
    assert (md.tensor([1.0], dtype=np.float64) + 2.0**-24).numpy()[0] != 1.0


def _broadcast_rule(*shapes):
    """(eq-broadcast-shape), written out: align right; each axis is n where all sizes are 1 or n."""
    ndim = max(len(s) for s in shapes)
    padded = [(1,) * (ndim - len(s)) + tuple(s) for s in shapes]
    result = []
    for sizes in zip(*padded):
        others = {n for n in sizes if n != 1}
        if len(others) > 1:
            return None
        result.append(others.pop() if others else 1)
    return tuple(result)


@given(
    shapes=st.lists(
        hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3), min_size=2, max_size=3
    )
)
def test_broadcast_shape_rule(shapes):
    """(eq-broadcast-shape) matches NumPy, and an elementwise op's result shape follows it."""
    expected = _broadcast_rule(*shapes)
    try:
        numpy_shape = np.broadcast_shapes(*shapes)
    except ValueError:
        numpy_shape = None
    assert expected == numpy_shape
    a, b = md.zeros(shapes[0]), md.zeros(shapes[1])
    if _broadcast_rule(shapes[0], shapes[1]) is None:
        with pytest.raises(md.ShapeError, match="do not broadcast"):
            a + b
    else:
        assert (a + b).shape == _broadcast_rule(shapes[0], shapes[1])


def test_erf_matches_math():
    import math

    x = np.linspace(-4, 4, 33)
    np.testing.assert_allclose(backend.erf(x), [math.erf(v) for v in x], rtol=0, atol=1e-15)
    assert backend.erf(np.float32(0.5) * np.ones(2, np.float32)).dtype == np.float32


def test_tensor_copies_its_input_parameter_owns_its_array(xp):
    source = xp.zeros(3, dtype=np.float32)
    t, p = md.tensor(source), md.nn.Parameter(source)
    source[0] = 1.0
    assert t.numpy()[0] == 0.0 and p.numpy()[0] == 0.0


# Run before minidiff is imported: records every call of mallopt in a C library loaded by ctypes.
_RECORD_MALLOPT = """
import ctypes
mallopt_calls = []
class Recording(ctypes.CDLL):
    def __getattr__(self, name):
        function = super().__getattr__(name)
        if name == "mallopt":
            def recorded(*args):
                mallopt_calls.append(args)
                return function(*args)
            setattr(self, name, recorded)
            return recorded
        return function
ctypes.CDLL = Recording
"""


def _in_a_fresh_process(code: str, **env) -> str:
    environment = {k: v for k, v in os.environ.items() if k != "MINIDIFF_SYSTEM_MALLOC"}
    out = subprocess.run(
        [sys.executable, "-c", _RECORD_MALLOPT + code],
        env=environment | env,
        cwd=Path(__file__).parents[1],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip().splitlines()[-1]


def test_importing_minidiff_leaves_the_host_allocator_alone():
    """The allocator is the whole process's: importing minidiff (even its entry points) must not
    change it."""
    code = (
        "import minidiff, minidiff.app.cli, minidiff.app.train, benchmarks.workloads\n"
        "print(minidiff.backend.HOST_ALLOCATOR_TUNED, len(mallopt_calls))"
    )
    assert _in_a_fresh_process(code) == "False 0"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_the_command_line_tunes_the_host_allocator_once_unless_asked_not_to():
    """``python -m minidiff`` keeps freed heap blocks for reuse: three settings, set once however
    often it is asked; MINIDIFF_SYSTEM_MALLOC=1 opts out."""
    code = (
        "from minidiff import backend\n"
        "from minidiff.app import cli\n"
        "cli.main(['study', '--list'])\n"
        "print(backend.HOST_ALLOCATOR_TUNED, backend.tune_host_allocator(), len(mallopt_calls))"
    )
    assert _in_a_fresh_process(code) == "True True 3"
    assert _in_a_fresh_process(code, MINIDIFF_SYSTEM_MALLOC="1") == "False False 0"
