"""Bad input gets an error that names what was wrong, never a bare NumPy traceback."""

import numpy as np
import pytest

import minidiff as md


def test_shape_mismatch_names_both_shapes():
    with pytest.raises(md.ShapeError, match=r"add: shapes \(2, 3\) and \(4,\) do not broadcast"):
        md.zeros(2, 3) + md.zeros(4)


def test_matmul_inner_dimensions():
    with pytest.raises(md.ShapeError, match=r"inner dimensions differ: \(2, 3\) @ \(4, 5\)"):
        md.zeros(2, 3) @ md.zeros(4, 5)
    with pytest.raises(md.ShapeError, match="at least 1-D"):
        md.matmul(md.tensor(1.0), md.zeros(2))


def test_reshape_names_sizes():
    with pytest.raises(md.ShapeError, match=r"cannot reshape \(2, 3\) \(6 entries\) to \(4,\)"):
        md.zeros(2, 3).reshape(4)


def test_axis_out_of_range():
    with pytest.raises(md.ShapeError, match="axis 2 is out of range"):
        md.zeros(2, 3).sum(axis=2)


def test_concatenate_and_stack_shapes():
    with pytest.raises(md.ShapeError, match="differ outside that axis"):
        md.concatenate([md.zeros(2, 3), md.zeros(2, 4)], axis=0)
    with pytest.raises(md.ShapeError, match="shapes differ"):
        md.stack([md.zeros(2), md.zeros(3)])
    with pytest.raises(md.ShapeError, match="equal sections"):
        md.split(md.zeros(5), 2)


def test_getitem_out_of_range():
    with pytest.raises(md.ShapeError, match=r"does not fit shape \(3,\)"):
        md.zeros(3)[5]


def test_mixed_float_dtypes_are_refused():
    with pytest.raises(md.DTypeError, match="float32.*float64"):
        md.zeros(2) + md.zeros(2, dtype=np.float64)


def test_float64_constants_do_not_upcast():
    """A NumPy float64 scalar or array constant takes the tensor's dtype (no silent upcast)."""
    x = md.ones(3)
    for y in (x * np.float64(2.0), x + np.sqrt(2 / np.pi), x * np.ones(3), np.float64(3.0) - x):
        assert y.dtype == np.float32


def test_requires_grad_needs_floats():
    with pytest.raises(md.DTypeError, match="floating-point"):
        md.tensor([1, 2], requires_grad=True)


def test_numpy_ufuncs_on_tensors_are_refused():
    with pytest.raises(TypeError):
        np.exp(md.ones(2))


def test_item_needs_one_element():
    assert md.tensor([2.5]).item() == 2.5
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        md.ones(2).item()


def test_gelu_approximation_name():
    with pytest.raises(ValueError, match="'tanh' or 'none'"):
        md.gelu(md.ones(2), approximate="fast")


def test_integer_data_meets_floats_without_upcast():
    ints = md.tensor([1, 2, 3])
    assert ints.dtype.kind == "i"
    for y in (
        ints * md.ones(3),
        md.ones(3) + ints,
        ints / 2,
        ints.exp(),
        ints.mean(),
        md.softmax(ints, -1),
        ints.sqrt(),
    ):
        assert y.dtype == np.float32, y
    assert (ints + ints).dtype == ints.dtype
