"""The kernels on a GPU: CUDA sources for CuPy, and the functions that launch them.

Each formula of ``plain.py`` (where the math is written out) becomes one or two CUDA kernels:
an :class:`Elementwise` kernel (the loop body in CUDA C, applied to every element, as
``cupy.ElementwiseKernel`` compiles it) or, for row sums, a :class:`Reduction` (a map, then a
reduction along an axis: ``cupy.ReductionKernel``). One launch reads the inputs once and writes
the outputs once.

A kernel here is plain data: its name, its typed parameters and its CUDA C. From that one
description come both the CuPy kernel object, made on the first call on a GPU (so this module
imports without CuPy), and the whole CUDA C translation unit that CuPy compiles for it, which
``nvrtc.py`` compiles on any machine, GPU or not. GELU's constants are formatted into its source
from ``plain.GELU_C`` and ``plain.GELU_A``. The casts ``(T)`` keep float32 arithmetic in float32
(a bare ``0.5`` in C is a double).

Each launching function takes the arguments of its namesake in ``plain.py`` and returns what it
returns.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cache

import numpy

from .. import backend
from .plain import GELU_A, GELU_C, layer_norm_statistics, split_pairs, stable_shift

CUPY_HEADERS = ("cupy/complex.cuh", "cupy/carray.cuh", "cupy/atomics.cuh", "cupy/math_constants.h")
"""The headers CuPy puts before the code of every kernel it compiles."""

C_TYPES = {"float32": "float", "float64": "double", "bool": "bool", "int32": "int"}
"""The C type CuPy declares for each dtype a kernel here meets."""

REDUCTION_BLOCK = 512
"""Threads per block of CuPy's reduction kernels on CUDA (the size of their shared buffer)."""


def parameters(declaration: str) -> tuple[tuple[str, str], ...]:
    """CuPy's parameter list, e.g. ``"T x, bool keep"``, as (type, name) pairs."""
    return tuple(tuple(part.split()) for part in declaration.split(","))


def _c_type(type_name: str, dtype) -> str:
    """The C type of a parameter typed ``type_name`` (``T``: the data's dtype) for ``dtype``."""
    return C_TYPES[numpy.dtype(dtype).name if type_name == "T" else type_name]


def _array(c_type: str) -> str:
    """CuPy's type for an array argument: ``CArray<type, rank, C-contiguous, 32-bit index>``.

    The rank and the flags vary from call to call (CuPy recompiles for each); they change how an
    element is found, not what the kernel's own code sees, so the translation units use one.
    """
    return f"CArray<{c_type}, 1, 1, 1>"


def _headers() -> str:
    """The ``#include`` lines of :data:`CUPY_HEADERS`."""
    return "".join(f"#include <{header}>\n" for header in CUPY_HEADERS)


@dataclass(frozen=True)
class Elementwise:
    """A CUDA kernel run once for each element, as ``cupy.ElementwiseKernel`` compiles it.

    ``inputs`` and ``outputs`` are CuPy's typed parameter lists (``"T x, bool keep"``: ``T`` is
    the data's dtype, the same for every parameter typed ``T``); ``body`` is the CUDA C that
    computes one element, in which each parameter names its element (an output is a reference to
    write to). ``scalars`` are the inputs that the launching function passes as one number in the
    data's dtype, ``scalars_or_arrays`` those it passes as a number or as an array.
    """

    name: str
    inputs: str
    outputs: str
    body: str
    scalars: tuple[str, ...] = ()
    scalars_or_arrays: tuple[str, ...] = ()

    def build(self, cp):
        """The ``cupy.ElementwiseKernel`` of this kernel (CuPy compiles it on its first call)."""
        return cp.ElementwiseKernel(self.inputs, self.outputs, self.body, self.name)

    def scalar_choices(self) -> list[tuple[str, ...]]:
        """Every set of inputs that a launch passes as numbers: :attr:`scalars` with each subset
        of :attr:`scalars_or_arrays`."""
        either = self.scalars_or_arrays
        subsets = itertools.chain.from_iterable(
            itertools.combinations(either, k) for k in range(len(either) + 1)
        )
        return [self.scalars + subset for subset in subsets]

    def translation_unit(self, dtype, scalars: tuple[str, ...] | None = None) -> str:
        """The CUDA C that CuPy compiles for this kernel when the data are ``dtype`` and the
        inputs in ``scalars`` (default :attr:`scalars`) are numbers: CuPy's headers, ``T``'s
        typedef, the kernel with CuPy's parameter types, and in its loop a reference to each
        array's element, then the body."""
        scalars = self.scalars if scalars is None else scalars
        inputs, outputs = parameters(self.inputs), parameters(self.outputs)
        declared, element = [], []
        typed = [(t, n, "const ") for t, n in inputs] + [(t, n, "") for t, n in outputs]
        for type_name, name, const in typed:
            c_type = _c_type(type_name, dtype)
            if name in scalars:
                declared.append(f"{const}{c_type} {name}")
            else:
                declared.append(f"{const}{_array(c_type)} _raw_{name}")
                element.append(f"{const}{type_name} &{name} = _raw_{name}[_ind.get()];")
        declared.append("CIndexer<1, 1> _ind")
        lines = [
            f"typedef {_c_type('T', dtype)} T;",
            "",
            f'extern "C" __global__ void {self.name}({", ".join(declared)}) {{',
            "  ;",
            "  #pragma unroll 1",
            "  CUPY_FOR(i, _ind.size()) {",
            "    _ind.set(i);",
            *(f"    {line}" for line in element),
            *(f"    {line}" for line in self.body.splitlines()),
            "    ;",
            "  }",
            "  ;",
            "}",
        ]
        return _headers() + "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Reduction:
    """A CUDA reduction along axes, as ``cupy.ReductionKernel`` compiles it.

    ``inputs`` and ``outputs`` are typed parameter lists as for :class:`Elementwise`;
    ``map_expr`` turns the inputs' elements into one value, ``reduce_expr`` combines two values
    ``a`` and ``b`` (starting from ``identity``), and ``post_map_expr`` writes the result ``a``
    to the outputs.
    """

    name: str
    inputs: str
    outputs: str
    map_expr: str
    reduce_expr: str
    post_map_expr: str
    identity: str

    def build(self, cp):
        """The ``cupy.ReductionKernel`` of this kernel (CuPy compiles it on its first call)."""
        return cp.ReductionKernel(
            self.inputs,
            self.outputs,
            self.map_expr,
            self.reduce_expr,
            self.post_map_expr,
            self.identity,
            self.name,
        )

    def scalar_choices(self) -> list[tuple[str, ...]]:
        """Every set of inputs that a launch passes as numbers: none, as every input is an
        array."""
        return [()]

    def translation_unit(self, dtype, scalars: tuple[str, ...] = ()) -> str:
        """The CUDA C that CuPy compiles for this reduction when the data are ``dtype``, with
        arrays for every input (``scalars`` is empty): CuPy's headers, the typedefs, the
        expressions as macros, and CuPy's block reduction through shared memory, which reads
        each input's element into a constant and writes through a reference to the output's."""
        if scalars:
            raise ValueError(f"{self.name}: a reduction here takes arrays only, not {scalars}")
        inputs, outputs = parameters(self.inputs), parameters(self.outputs)
        declared = [f"const {_array(_c_type(t, dtype))} _raw_{n}" for t, n in inputs]
        declared += [f"{_array(_c_type(t, dtype))} _raw_{n}" for t, n in outputs]
        declared += ["CIndexer<1, 1> _in_ind", "CIndexer<1, 1> _out_ind", "const int _block_stride"]
        read = [f"      const {t} {n} = _raw_{n}[_in_ind.get()];" for t, n in inputs]
        write = [f"      {t} &{n} = _raw_{n}[_out_ind.get()];" for t, n in outputs]
        block = REDUCTION_BLOCK
        lines = [
            "typedef int IndexT;",
            f"typedef {_c_type('T', dtype)} T;",
            "",
            f"#define REDUCE(a, b) ({self.reduce_expr})",
            f"#define POST_MAP(a) ({self.post_map_expr})",
            "#define _REDUCE(_offset) if (_tid < _offset) {"
            " _type_reduce _a = _sdata[_tid], _b = _sdata[(_tid + _offset)];"
            " _sdata[_tid] = REDUCE(_a, _b); }",
            "",
            "typedef T _type_reduce;",
            f'extern "C" __global__ void {self.name}({", ".join(declared)}) {{',
            f"  __shared__ char _sdata_raw[{block} * sizeof(_type_reduce)];",
            "  _type_reduce *_sdata = reinterpret_cast<_type_reduce*>(_sdata_raw);",
            "  unsigned int _tid = threadIdx.x;",
            "  IndexT _J_offset = _tid >> __popc(_block_stride - 1);",
            "  ptrdiff_t _j_offset = (ptrdiff_t)_J_offset * _out_ind.size();",
            f"  IndexT _J_stride = {block} >> __popc(_block_stride - 1);",
            "  ptrdiff_t _j_stride = (ptrdiff_t)_J_stride * _out_ind.size();",
            "  for (ptrdiff_t _i_base = (ptrdiff_t)blockIdx.x * _block_stride;",
            "       _i_base < _out_ind.size();",
            "       _i_base += (ptrdiff_t)gridDim.x * _block_stride) {",
            f"    _type_reduce _s = _type_reduce({self.identity});",
            "    ptrdiff_t _i = _i_base + (_tid & (_block_stride - 1));",
            "    IndexT _J = _J_offset;",
            "    for (ptrdiff_t _j = _i + _j_offset; _j < _in_ind.size();",
            "         _j += _j_stride, _J += _J_stride) {",
            "      _in_ind.set(_j);",
            *read,
            f"      _type_reduce _a = static_cast<_type_reduce>({self.map_expr});",
            "      _s = REDUCE(_s, _a);",
            "    }",
            "    _sdata[_tid] = _s;",
            "    __syncthreads();",
            f"    for (unsigned int _block = {block} / 2;",
            "         _block >= _block_stride; _block >>= 1) {",
            "      if (_tid < _block) {",
            "        _REDUCE(_block);",
            "      }",
            "      __syncthreads();",
            "    }",
            "    if (_tid < _block_stride) {",
            "      _s = _sdata[_tid];",
            "    }",
            "    if (_tid < _block_stride && _i < _out_ind.size()) {",
            "      _out_ind.set(static_cast<ptrdiff_t>(_i));",
            *write,
            "      POST_MAP(_s);",
            "    }",
            "  }",
            "}",
        ]
        return _headers() + "\n".join(lines) + "\n"


_C, _A = repr(GELU_C), repr(GELU_A)

GELU_TANH = Elementwise(
    name="minidiff_gelu_tanh",
    inputs="T x",
    outputs="T y, T t",
    body=f"t = tanh((T){_C} * x * ((T)1 + (T){_A} * x * x));\ny = (T)0.5 * x * ((T)1 + t);",
)
GELU_TANH_GRAD = Elementwise(
    name="minidiff_gelu_tanh_grad",
    inputs="T g, T x, T t",
    outputs="T dx",
    body=f"T du = (T){_C} * ((T)1 + (T)(3 * {_A}) * x * x);\n"
    "dx = g * ((T)0.5 * ((T)1 + t) + (T)0.5 * x * ((T)1 - t * t) * du);",
)
SILU = Elementwise(
    name="minidiff_silu",
    inputs="T x",
    outputs="T y, T s",
    body="s = (T)0.5 * ((T)1 + tanh((T)0.5 * x));\ny = x * s;",
)
SILU_GRAD = Elementwise(
    name="minidiff_silu_grad",
    inputs="T g, T x, T s",
    outputs="T dx",
    body="dx = g * s * ((T)1 + x * ((T)1 - s));",
)
SCALE_MASK = Elementwise(
    name="minidiff_scale_mask",
    inputs="T z, bool keep, T scale, T hidden",
    outputs="T logits",
    body="logits = keep ? z * scale : hidden;",
    scalars=("scale", "hidden"),
)
EXP_SHIFT = Elementwise(
    name="minidiff_exp_shift",
    inputs="T logits, T shift",
    outputs="T e",
    body="e = exp(logits - shift);",
)
ROW_DOT = Reduction(
    name="minidiff_row_dot",
    inputs="T a, T b",
    outputs="T total",
    map_expr="a * b",
    reduce_expr="a + b",
    post_map_expr="total = a",
    identity="0",
)
SOFTMAX_GRAD = Elementwise(
    name="minidiff_softmax_grad",
    inputs="T g, T y, T total, T scale",
    outputs="T dz",
    body="dz = scale * y * (g - total);",
    scalars=("scale",),
)
LAYER_NORM = Elementwise(
    name="minidiff_layer_norm",
    inputs="T x, T mean, T rstd, T w, T b",
    outputs="T y, T x_hat",
    body="x_hat = (x - mean) * rstd;\ny = x_hat * w + b;",
    scalars_or_arrays=("w", "b"),  # a number where layer_norm has no weight or no bias
)
LAYER_NORM_GRAD = Elementwise(
    name="minidiff_layer_norm_grad",
    inputs="T gh, T x_hat, T rstd, T mean_gh, T mean_ghx",
    outputs="T dx",
    body="dx = rstd * (gh - mean_gh - x_hat * mean_ghx);",
)
ROTATE_PAIRS = Elementwise(
    name="minidiff_rotate_pairs",
    inputs="T a, T b, T c, T s",
    outputs="T ra, T rb",
    body="ra = a * c - b * s;\nrb = a * s + b * c;",
)
ADAM_STEP = Elementwise(
    name="minidiff_adam",
    inputs="T g, T beta1, T beta2, T eps, T step_size, T correction2",
    outputs="T p, T m, T v",
    body="m = beta1 * m + ((T)1 - beta1) * g;\n"
    "v = beta2 * v + ((T)1 - beta2) * g * g;\n"
    "p = p - step_size * m / (sqrt(v) * correction2 + eps);",
    scalars=("beta1", "beta2", "eps", "step_size", "correction2"),
)

SOURCES = (
    GELU_TANH,
    GELU_TANH_GRAD,
    SILU,
    SILU_GRAD,
    SCALE_MASK,
    EXP_SHIFT,
    ROW_DOT,
    SOFTMAX_GRAD,
    LAYER_NORM,
    LAYER_NORM_GRAD,
    ROTATE_PAIRS,
    ADAM_STEP,
)
"""Every CUDA kernel above, as the compile check (``nvrtc.py``) takes them."""

DTYPES = (numpy.float32, numpy.float64)
"""The dtypes the kernels are launched with: float32, and float64 for gradient checks."""


@cache
def compiled(kernel: Elementwise | Reduction):
    """The CuPy kernel object of ``kernel``, made once (CuPy compiles it on its first call for
    each dtype)."""
    return kernel.build(backend.module_for("cuda"))


def _scalar(x, value):
    """``value`` as a scalar of ``x``'s dtype (for the kernels' typed parameters)."""
    return x.dtype.type(value)


def gelu_tanh(x):
    return compiled(GELU_TANH)(x)


def gelu_tanh_grad(g, x, t):
    return compiled(GELU_TANH_GRAD)(g, x, t)


def silu(x):
    return compiled(SILU)(x)


def silu_grad(g, x, s):
    return compiled(SILU_GRAD)(g, x, s)


def softmax(z, scale: float = 1.0, mask=None):
    """Scaled and masked logits in one launch (a float mask is added as an array expression),
    the shift, then exp(logits - shift) written over the logits in one more."""
    cp = backend.module_for("cuda")
    if mask is None or mask.dtype == bool:
        keep = cp.ones((), dtype=bool) if mask is None else mask
        logits = compiled(SCALE_MASK)(z, keep, _scalar(z, scale), _scalar(z, -math.inf))
    else:
        logits = z * _scalar(z, scale) + mask.astype(z.dtype, copy=False)
    e = compiled(EXP_SHIFT)(logits, stable_shift(logits), logits)  # written over the logits
    e /= e.sum(axis=-1, keepdims=True)
    return e


def softmax_grad(g, y, scale: float = 1.0):
    total = compiled(ROW_DOT)(g, y, axis=-1, keepdims=True)
    return compiled(SOFTMAX_GRAD)(g, y, total, _scalar(y, scale))


def layer_norm(x, weight, bias, eps: float):
    """The row statistics as array expressions, then x_hat and y in one launch."""
    mean, _, rstd = layer_norm_statistics(x, eps)
    w = _scalar(x, 1.0) if weight is None else weight
    b = _scalar(x, 0.0) if bias is None else bias
    y, x_hat = compiled(LAYER_NORM)(x, mean, rstd, w, b)
    return y, x_hat, rstd


def layer_norm_grad(g, x_hat, rstd, weight, needs=(True, True, True)):
    lead = tuple(range(g.ndim - 1))
    dx = None
    if needs[0]:
        gh = g if weight is None else g * weight
        d = g.shape[-1]
        mean_gh = gh.mean(axis=-1, keepdims=True)
        mean_ghx = compiled(ROW_DOT)(gh, x_hat, axis=-1, keepdims=True) / _scalar(g, d)
        dx = compiled(LAYER_NORM_GRAD)(gh, x_hat, rstd, mean_gh, mean_ghx)
    dw = compiled(ROW_DOT)(g, x_hat, axis=lead) if needs[1] else None
    db = g.sum(axis=lead) if needs[2] else None
    return dx, dw, db


def rotate_pairs(x, cos, sin):
    out = backend.module_for("cuda").empty(x.shape, dtype=x.dtype)
    (a, b), (ra, rb) = split_pairs(x), split_pairs(out)
    compiled(ROTATE_PAIRS)(a, b, cos, sin, ra, rb)
    return out


def adam_step(
    p, g, m, v, step_size: float, beta1: float, beta2: float, eps: float, correction2: float
) -> None:
    """One launch per parameter: m, v and p updated in place."""
    scalars = (_scalar(p, value) for value in (beta1, beta2, eps, step_size, correction2))
    compiled(ADAM_STEP)(g, *scalars, p, m, v)
