"""Frame masks of masked training: their kinds, their frequencies, bad mixes."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.diffusion import masking


@given(
    batch=st.integers(1, 40),
    frames=st.integers(2, 9),
    kind=st.sampled_from(masking.KINDS),
    seed=st.integers(0, 2**16),
)
def test_eq_frame_masks_each_kind_is_what_it_says(batch, frames, kind, seed):
    """A mask of a single kind: none knows nothing, first is a proper prefix, last a proper
    suffix, random anything but everything; no mask ever knows every frame."""
    masks = masking.draw_frame_masks(np.random.default_rng(seed), batch, frames, {kind: 1.0})
    assert masks.shape == (batch, frames) and masks.dtype == bool
    known = masks.sum(axis=1)
    assert (known < frames).all()
    if kind == "none":
        assert not masks.any()
    if kind in ("first", "last"):
        assert (known >= 1).all()
        ordered = masks if kind == "first" else masks[:, ::-1]
        # a prefix: once a frame is unknown, every later one is too
        assert (np.diff(ordered.astype(int), axis=1) <= 0).all()


def test_the_mix_decides_how_often_each_kind_is_drawn():
    mix = {"none": 0.4, "first": 0.4, "last": 0.1, "random": 0.1}
    masks = masking.draw_frame_masks(np.random.default_rng(0), 20_000, 8, mix)
    none = ~masks.any(axis=1)
    # random masks can come out empty too (1/2^8 of them); prefixes start at frame 0
    assert abs(none.mean() - (0.4 + 0.1 / 256)) < 0.015
    first = masks[:, 0] & ~masks[:, -1] & (np.diff(masks.astype(int), axis=1) <= 0).all(axis=1)
    assert 0.4 < first.mean() < 0.4 + 0.1 * 0.2 + 0.015


def test_bad_mixes_are_refused_by_name():
    with pytest.raises(ValueError, match="middle"):
        masking.check_mix({"middle": 1.0})
    with pytest.raises(ValueError, match="sum to 1"):
        masking.check_mix({"none": 0.5, "first": 0.2})
    with pytest.raises(ValueError, match="at least 2 frames"):
        masking.draw_frame_masks(np.random.default_rng(0), 4, 1, {"none": 1.0})
