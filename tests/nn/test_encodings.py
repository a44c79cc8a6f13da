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


from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import minidiff as md  # noqa: E402
from minidiff.nn import encodings  # noqa: E402


@given(p=st.integers(0, 50), q=st.integers(0, 50), shift=st.integers(0, 50))
def test_sincos_dot_product_depends_only_on_the_offset(p, q, shift):
    """(eq-sincos): <emb(p), emb(q)> = sum_k cos(w_k (p - q)) = <emb(p + c), emb(q + c)>."""
    emb = encodings.sincos_1d(np.array([p, q, p + shift, q + shift]), 16)
    assert emb[0] @ emb[1] == pytest.approx(emb[2] @ emb[3], abs=1e-9)
    w = 10000.0 ** (-np.arange(8) * 2 / 16)
    assert emb[0] @ emb[1] == pytest.approx(np.cos(w * (p - q)).sum(), abs=1e-9)


@given(
    frames=st.integers(1, 4),
    height=st.integers(1, 5),
    width=st.integers(1, 5),
    dim=st.sampled_from([16, 32, 48, 64]),
)
def test_sincos_3d_codes_are_unique_and_ordered_like_tokens(frames, height, width, dim):
    """(eq-sincos-3d): one distinct code per (t, i, j), rows in token order (t slowest)."""
    codes = encodings.sincos_3d(frames, height, width, dim)
    assert codes.shape == (frames * height * width, dim)
    distances = ((codes[:, None] - codes[None]) ** 2).sum(-1)
    np.fill_diagonal(distances, np.inf)
    assert distances.min() > 1e-6
    d_t, d_i, d_j = encodings.split_width(dim)
    positions = encodings.grid_positions(frames, height, width)
    np.testing.assert_allclose(codes[:, :d_t], encodings.sincos_1d(positions[:, 0], d_t))
    np.testing.assert_allclose(codes[:, d_t + d_i :], encodings.sincos_1d(positions[:, 2], d_j))
    grid = codes.reshape(frames, height, width, dim)
    np.testing.assert_allclose(
        grid[1 % frames, 0, 0, :d_t], encodings.sincos_1d(np.array([1 % frames]), d_t)[0]
    )


def test_split_width_shares():
    assert encodings.split_width(64) == (16, 24, 24)
    assert encodings.split_width(32, time_fraction=0.5) == (16, 8, 8)
    assert sum(encodings.split_width(48)) == 48
    with pytest.raises(ValueError, match="cannot split"):
        encodings.split_width(4)


@given(
    shift=st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 3)),
    seed=st.integers(0, 100),
)
def test_rope_scores_invariant_to_shifting_both_positions(shift, seed):
    """(eq-rope): q_rot(p) . k_rot(r) depends only on p - r, axis by axis."""
    frames, height, width, head_dim = 5, 5, 5, 12
    cos, sin = encodings.rope_3d(frames, height, width, head_dim, dtype=np.float64)
    rng = np.random.default_rng(seed)
    q = md.tensor(
        np.broadcast_to(rng.standard_normal(head_dim), (frames * height * width, head_dim)),
        dtype=np.float64,
    )
    k = md.tensor(np.broadcast_to(rng.standard_normal(head_dim), q.shape), dtype=np.float64)
    scores = (encodings.apply_rope(q, cos, sin) @ encodings.apply_rope(k, cos, sin).T).numpy()
    index = lambda t, i, j: (t * height + i) * width + j  # noqa: E731
    a, b = (0, 1, 0), (1, 0, 1)
    a2 = tuple(x + s for x, s in zip(a, shift))
    b2 = tuple(x + s for x, s in zip(b, shift))
    assert scores[index(*a), index(*b)] == pytest.approx(scores[index(*a2), index(*b2)], abs=1e-9)
    assert md.gradcheck(
        lambda x: encodings.apply_rope(x, cos[:3], sin[:3]), rng.standard_normal((3, head_dim))
    )


@given(
    slope=st.floats(0.1, 1.0),
    shift=st.tuples(st.integers(-2, 2), st.integers(-2, 2), st.integers(-2, 2)),
    seed=st.integers(0, 100),
)
def test_eq_rope_motion_pairs_follow_lines_of_motion(slope, shift, seed):
    """(eq-rope-motion): the tables are still rotary (scores depend on the offset only), and the
    first oblique pair turns by i - s t, the same all along a move of s rows per frame."""
    frames, height, width, head_dim = 4, 5, 5, 16
    cos, sin = encodings.rope_3d(frames, height, width, head_dim, motion_slope=slope)
    angles = np.arctan2(sin, cos).astype(np.float64)
    index = lambda t, i, j: (t * height + i) * width + j  # noqa: E731
    a, b = (1, 2, 2), (0, 1, 3)
    a2, b2 = (tuple(x + d for x, d in zip(p, shift)) for p in (a, b))
    if all(0 <= x < n for p in (a2, b2) for x, n in zip(p, (frames, height, width))):
        wrap = lambda x: np.angle(np.exp(1j * x))  # noqa: E731
        np.testing.assert_allclose(
            wrap(angles[index(*a)] - angles[index(*b)]),
            wrap(angles[index(*a2)] - angles[index(*b2)]),
            atol=1e-5,
        )
    t, i, j = grid_positions_of(frames, height, width)
    expected = i - slope * t
    np.testing.assert_allclose(angles[:, 0], np.angle(np.exp(1j * expected)), atol=1e-5)
    assert cos.shape == (frames * height * width, head_dim // 2)


def grid_positions_of(frames, height, width):
    return encodings.grid_positions(frames, height, width).T.astype(np.float64)


def test_rope_preserves_norms():
    cos, sin = encodings.rope_3d(2, 3, 3, 6, dtype=np.float64)
    x = md.randn(18, 6, dtype=np.float64)
    np.testing.assert_allclose(
        (encodings.apply_rope(x, cos, sin).numpy() ** 2).sum(-1),
        (x.numpy() ** 2).sum(-1),
        rtol=1e-12,
    )
