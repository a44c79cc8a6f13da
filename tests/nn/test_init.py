"""Initializers draw with the variances their derivations give."""

import math

import numpy as np
import pytest

import minidiff as md
from minidiff.nn import init


@pytest.mark.parametrize(
    ("initializer", "variance"),
    [
        (init.xavier_uniform_, lambda fi, fo: 2 / (fi + fo)),
        (init.xavier_normal_, lambda fi, fo: 2 / (fi + fo)),
        (init.kaiming_uniform_, lambda fi, fo: 2 / fi),
        (init.kaiming_normal_, lambda fi, fo: 2 / fi),
    ],
)
def test_initializer_variances(initializer, variance):
    """(eq-xavier) Var = 2 / (fan_in + fan_out); (eq-kaiming) Var = 2 / fan_in (ReLU gain)."""
    md.manual_seed(0)
    fan_in, fan_out = 300, 500
    w = initializer(md.nn.Parameter(md.zeros(fan_in, fan_out)))
    values = w.numpy().astype(np.float64)
    n = values.size
    expected = variance(fan_in, fan_out)
    # the sample variance of n draws has relative standard error about sqrt(2 / n) (<= 1% here)
    assert abs(values.var() / expected - 1) < 5 * math.sqrt(2 / n) * 1.5
    assert abs(values.mean()) < 5 * math.sqrt(expected / n)


def test_trunc_normal_stays_in_range():
    md.manual_seed(0)
    w = init.trunc_normal_(md.nn.Parameter(md.zeros(100, 100)), std=0.02)
    values = w.numpy()
    assert values.min() >= -0.04 and values.max() <= 0.04
    assert 0.015 < values.std() < 0.02


def test_fans_need_a_matrix():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(md.nn.Parameter(md.zeros(3)))
