"""The preview writes an animated grid GIF, one GIF frame per clip frame."""

import imageio.v3 as iio
import numpy as np
import pytest

from minidiff.world import preview


def test_preview_writes_a_gif_with_one_picture_per_frame(tmp_path, capsys):
    out = tmp_path / "nested" / "world.gif"
    code = preview.main(["--out", str(out), "--n", "5", "--split", "ood", "--frames", "3"])
    assert code == 0 and "wrote" in capsys.readouterr().out
    pictures = iio.imread(out, index=None)
    assert pictures.shape[0] == 3 and pictures.shape[-1] in (3, 4)
    assert pictures.std() > 0  # something is drawn


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--n", "0"], "argument --n: expected a positive integer, got 0"),
        (["--frames", "-2"], "argument --frames: expected a positive integer, got -2"),
        (["--fps", "0"], "argument --fps: expected a positive number, got 0"),
        (["--fps", "nan"], "argument --fps: expected a positive number, got nan"),
    ],
)
def test_preview_refuses_counts_and_rates_that_divide_by_zero(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit):
        preview.main(["--out", str(tmp_path / "x.gif"), *arguments])
    assert message in capsys.readouterr().err


def test_write_grid_gif_refuses_no_clips_and_a_zero_rate(tmp_path):
    with pytest.raises(ValueError, match="the number of clips must be a positive integer, got 0"):
        preview.write_grid_gif(tmp_path / "x.gif", np.zeros((0, 2, 3, 4, 4)), [])
    with pytest.raises(ValueError, match=r"fps must be in \(0, inf\), got 0"):
        preview.write_grid_gif(tmp_path / "x.gif", np.zeros((1, 2, 3, 4, 4)), ["a"], fps=0)
