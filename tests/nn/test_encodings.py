"""Timestep embedding: the documented convention, shapes and dtypes."""

import math

import numpy as np
import pytest

from minidiff.nn.encodings import timestep_embedding


def test_timestep_embedding_convention():
    """(eq-timestep-embedding): cosines first, then sines, freq_k = 10000^(-k / half)."""
    t = np.array([0, 1, 250, 999])
    emb = timestep_embedding(t, 8).numpy()
    assert emb.shape == (4, 8) and emb.dtype == np.float32
    freqs = np.array([10000 ** (-k / 4) for k in range(4)])
    np.testing.assert_allclose(emb[:, :4], np.cos(t[:, None] * freqs), atol=1e-4)
    np.testing.assert_allclose(emb[:, 4:], np.sin(t[:, None] * freqs), atol=1e-4)
    np.testing.assert_array_equal(emb[0], [1, 1, 1, 1, 0, 0, 0, 0])
    assert math.isclose(float((emb[2] ** 2).sum()), 4.0, rel_tol=1e-5)


def test_timestep_embedding_accepts_float_times_and_checks_width():
    emb = timestep_embedding(np.array([0.25, 0.5]), 6)
    assert emb.shape == (2, 6)
    with pytest.raises(ValueError, match="even"):
        timestep_embedding(np.array([1]), 5)
