"""The preview writes an animated grid GIF, one GIF frame per clip frame."""

import imageio.v3 as iio

from minidiff.world import preview


def test_preview_writes_a_gif_with_one_picture_per_frame(tmp_path, capsys):
    out = tmp_path / "nested" / "world.gif"
    code = preview.main(["--out", str(out), "--n", "5", "--split", "ood", "--frames", "3"])
    assert code == 0 and "wrote" in capsys.readouterr().out
    pictures = iio.imread(out, index=None)
    assert pictures.shape[0] == 3 and pictures.shape[-1] in (3, 4)
    assert pictures.std() > 0  # something is drawn
