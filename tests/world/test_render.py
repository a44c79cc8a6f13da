"""The renderer: anti-aliased coverage sums to the disc's area, the centre shows the exact
colour, and clips have the promised shape, dtype and range."""

import numpy
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minidiff.world.physics import Ball, World, simulate
from minidiff.world.render import (
    BACKGROUND,
    PALETTE,
    colour_of,
    from_signed,
    render,
    render_clip,
    to_signed,
)


def coverage(clip, name):
    """The painted fraction of each pixel, read back from the channel where the colour and the
    background differ most."""
    colour, background = colour_of(name), numpy.array(BACKGROUND)
    channel = int(numpy.argmax(numpy.abs(colour - background)))
    return (clip[:, channel] - background[channel]) / (colour[channel] - background[channel])


@given(st.floats(1.2, 6.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_the_coverage_of_a_disc_sums_to_its_area(radius, dx, dy):
    clip = render_clip([[[12.0 + dx, 12.0 + dy]]], [radius], ["blue"], height=24, width=24)
    area = float(numpy.sum(coverage(clip.astype(numpy.float64), "blue")))
    assert area == pytest.approx(numpy.pi * radius**2, rel=0.04)


@pytest.mark.parametrize("radius", [1.44, 2.0, 3.3, 5.0])
def test_over_sub_pixel_offsets_the_coverage_is_unbiased(radius):
    # without the 1/12 correction of the ramp radius this is pi/12 px^2 too large
    offsets = numpy.linspace(0.0, 1.0, 8, endpoint=False)
    positions = [[[12.0 + dx, 12.0 + dy]] for dx in offsets for dy in offsets]
    clip = render_clip(positions, [radius], ["red"], height=24, width=24)
    areas = numpy.sum(coverage(clip.astype(numpy.float64), "red"), axis=(1, 2))
    assert numpy.mean(areas) == pytest.approx(numpy.pi * radius**2, rel=0.003)


@pytest.mark.parametrize("name", sorted(PALETTE))
def test_the_centre_pixel_has_the_exact_colour(name):
    clip = render_clip([[[8.5, 8.5]]], [2.0], [name], height=16, width=16)
    numpy.testing.assert_array_equal(clip[0, :, 8, 8], numpy.float32(PALETTE[name]))
    numpy.testing.assert_array_equal(clip[0, :, 0, 0], numpy.float32(BACKGROUND))


def test_clips_are_float32_frames_channels_rows_columns_in_the_unit_range():
    balls = [Ball("red", 2.5, (5.0, 5.0), (1.0, 0.5)), Ball("yellow", 1.5, (12.0, 3.0), (0.0, 1.0))]
    clip = render(simulate(balls, World(16, 20, gravity=0.2, restitution=0.8), 8))
    assert clip.shape == (8, 3, 20, 16) and clip.dtype == numpy.float32
    assert clip.min() >= 0.0 and clip.max() <= 1.0


def test_a_disc_is_drawn_where_the_simulator_puts_it():
    clip = render_clip([[[4.0, 11.0]]], [2.0], ["green"], height=16, width=16)
    alpha = coverage(clip, "green")[0]
    rows, columns = numpy.mgrid[0:16, 0:16] + 0.5
    centre = (numpy.sum(alpha * columns) / alpha.sum(), numpy.sum(alpha * rows) / alpha.sum())
    assert centre == pytest.approx((4.0, 11.0), abs=0.02)


def test_later_balls_cover_earlier_ones():
    clip = render_clip([[[8.5, 8.5], [8.5, 8.5]]], [3.0, 2.0], ["red", "cyan"], 16, 16)
    numpy.testing.assert_array_equal(clip[0, :, 8, 8], numpy.float32(PALETTE["cyan"]))


def test_signed_range_round_trip():
    clip = render_clip([[[8.0, 8.0]]], [3.0], ["magenta"], 16, 16)
    signed = to_signed(clip)
    assert signed.dtype == numpy.float32 and signed.min() >= -1.0 and signed.max() <= 1.0
    numpy.testing.assert_allclose(from_signed(signed), clip, atol=1e-6)
    assert from_signed(numpy.array([-3.0, 3.0])).tolist() == [0.0, 1.0]


def test_unknown_colour_is_refused():
    with pytest.raises(ValueError, match="unknown colour"):
        render_clip([[[8.0, 8.0]]], [3.0], ["mauve"], 16, 16)
