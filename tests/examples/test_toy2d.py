"""The 2-D toy: its datasets, its denoiser, a short training run, and the `toy` command."""

import json

import imageio.v3 as iio
import numpy
import pytest

import minidiff as md
from minidiff.app import cli
from minidiff.diffusion import schedules
from minidiff.examples import toy2d


@pytest.mark.parametrize("name", sorted(toy2d.DATASETS))
def test_datasets_are_seeded_float32_and_about_unit_scale(name):
    make = toy2d.DATASETS[name]
    first = make(20_000, numpy.random.default_rng(7))
    assert first.shape == (20_000, 2) and first.dtype == numpy.float32
    numpy.testing.assert_array_equal(first, make(20_000, numpy.random.default_rng(7)))
    assert not numpy.array_equal(first, make(20_000, numpy.random.default_rng(8)))
    assert numpy.abs(first.mean(axis=0)).max() < 0.05
    assert 0.6 < first.std(axis=0).min() and first.std(axis=0).max() < 1.3
    assert numpy.abs(first).max() < toy2d.LIMITS[1]  # every figure shows all of the data


def test_held_out_sets_are_independent_of_the_training_set():
    train = toy2d.make_data("swiss_roll", 100, seed=0)
    held_out = toy2d.make_data("swiss_roll", 100, seed=0, split=1)
    assert not numpy.isin(held_out, train).any()
    with pytest.raises(ValueError, match="unknown dataset 'spiral'"):
        toy2d.make_data("spiral", 10, seed=0)


@pytest.mark.parametrize("objective", toy2d.OBJECTIVES)
def test_denoiser_maps_points_and_times_to_float32_points(objective):
    md.manual_seed(0)
    model = toy2d.build_denoiser(objective, hidden=32, depth=2)
    x = md.randn(16, 2)
    if objective == "flow":
        t = numpy.linspace(0, 1, 16, dtype=numpy.float32)
    else:
        t = numpy.arange(16, dtype=numpy.int64) * 60
    out = model(x, t)
    assert out.shape == (16, 2) and out.dtype == numpy.float32
    assert model.time_scale == (1000.0 if objective == "flow" else 1.0)
    assert not out.numpy().any()  # the output layer starts at zero
    (out * out + out).sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())


def test_flow_times_are_scaled_onto_the_diffusion_steps():
    md.manual_seed(0)
    diffusion, flow = toy2d.build_denoiser("eps"), toy2d.build_denoiser("flow")
    flow.load_state_dict(diffusion.state_dict())
    for p in flow.parameters():  # a nonzero output layer, so the outputs can differ
        p.data[...] = numpy.random.default_rng(0).normal(size=p.shape).astype(p.dtype)
    diffusion.load_state_dict(flow.state_dict())
    x = md.randn(4, 2)
    steps = numpy.array([0, 10, 500, 999])
    numpy.testing.assert_allclose(
        flow(x, (steps / 1000).astype(numpy.float32)).numpy(),
        diffusion(x, steps).numpy(),
        rtol=1e-4,
        atol=1e-3,
    )


# Small enough that every matrix product stays below OpenBLAS's threading threshold: a run that
# takes a second alone does not slow to minutes when other processes hold the cores.
SMALL = {"hidden": 48, "depth": 2, "batch": 128}


@pytest.fixture(scope="module")
def short_run():
    return toy2d.train("swiss_roll", "eps", steps=1000, lr=3e-3, progress=False, **SMALL)


def test_short_training_lowers_the_loss(short_run):
    curve = short_run.losses
    assert curve.shape == (1000,) and numpy.isfinite(curve).all()
    assert curve[-100:].mean() < 0.5 * curve[:20].mean()  # from about 1 (zero output) to 0.27
    assert short_run.config["steps"] == 1000 and short_run.config["objective"] == "eps"


def test_short_training_beats_noise_with_ddim(short_run):
    drawn = toy2d.sample(short_run.model, "eps", "ddim", steps=50, n=600, seed=3)
    assert drawn["samples"].shape == (600, 2) and drawn["samples"].dtype == numpy.float32
    assert drawn["evaluations"] == 50
    scores = toy2d.evaluate(drawn["samples"])
    assert scores["samples"]["energy"] < 0.8 * scores["ceiling"]["energy"]
    assert scores["samples"]["mmd_fine"] < scores["ceiling"]["mmd_fine"]


def test_sampling_is_seeded_and_returns_its_trajectory(short_run):
    first = toy2d.sample(short_run.model, "eps", "ddim", 20, n=50, seed=1, return_trajectory=True)
    again = toy2d.sample(short_run.model, "eps", "ddim", 20, n=50, seed=1)
    numpy.testing.assert_array_equal(first["samples"], again["samples"])
    assert first["trajectory"].shape == (21, 50, 2)
    numpy.testing.assert_array_equal(first["trajectory"][-1], first["samples"])


def test_sampling_rejects_mismatched_choices(short_run):
    model = short_run.model
    with pytest.raises(ValueError, match="cannot sample a model trained with objective 'eps'"):
        toy2d.sample(model, "eps", "flow", 10, n=4)
    with pytest.raises(ValueError, match="steps must be T = 1000"):
        toy2d.sample(model, "eps", "ddpm", 50, n=4)
    with pytest.raises(ValueError, match="method must be one of"):
        toy2d.sample(model, "eps", "euler", 10, n=4)
    with pytest.raises(ValueError, match="objective must be one of"):
        toy2d.train(objective="x0", steps=1)
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        toy2d.train(steps=0)


def test_evaluate_reports_floor_and_ceiling_for_each_set():
    data = toy2d.make_data("two_moons", 300, seed=0, split=2)  # the floor's own set
    scores = toy2d.evaluate({"copy": data, "noise": numpy.zeros((300, 2))}, "two_moons")
    assert set(scores) == {"floor", "ceiling", "copy", "noise", "settings"}
    assert scores["copy"] == scores["floor"]
    assert scores["floor"]["energy"] < 0.25 * scores["ceiling"]["energy"]
    assert scores["settings"]["n"] == 300
    with pytest.raises(ValueError, match="same size"):
        toy2d.evaluate({"a": data, "b": data[:10]})


def test_gif_frames_run_from_noise_to_data():
    schedule = schedules.linear(1000)
    frames = toy2d.gif_frames(schedule, 40)
    assert frames[0] == 0 and frames[-1] == 1000 and 30 <= len(frames) <= 40
    assert all(a < b for a, b in zip(frames, frames[1:]))


def test_toy_command_writes_table_json_figures_and_gif(tmp_path, capsys):
    argv = ["toy", "--out", str(tmp_path), "--steps", "60", "--batch", "64", "--hidden", "32"]
    argv += ["--depth", "1", "--samples", "200", "--ddim-steps", "10", "--flow-steps", "10"]
    assert cli.main([*argv, "--quiet"]) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    assert [row["sampler"] for row in result["rows"]] == ["DDPM", "DDIM", "flow Euler"]
    assert [row["evaluations"] for row in result["rows"]] == [1000, 10, 10]
    assert result["training"]["eps"]["steps"] == 60 and result["settings"]["n"] == 200
    assert result["training"]["flow"]["hidden"] == 32
    table = (tmp_path / "results.md").read_text()
    assert "| DDPM | eps | 1000 |" in table and "floor" in table and "ceiling" in table
    for name in ("samples.png", "losses.png", "field.png"):
        assert iio.imread(tmp_path / name).shape[0] > 200
    frames = iio.imread(tmp_path / "reverse.gif", index=None)
    assert 30 <= frames.shape[0] <= 40
    assert (tmp_path / "reverse.gif").stat().st_size < 1_000_000
    assert "energy distance" in capsys.readouterr().out


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--steps", "0"], "expected a positive integer, got 0"),
        (["--steps", "many"], "expected a positive integer, got 'many'"),
        (["--hidden", "-8"], "expected a positive integer, got -8"),
        (["--lr", "-1"], "expected a positive number, got -1"),
        (["--dataset", "spiral"], "invalid choice: 'spiral'"),
        (["--ddim-steps", "2000"], "--ddim-steps must be at most 1000"),
        (["--samples", "1"], "--samples must be at least 2"),
    ],
)
def test_toy_command_rejects_bad_flags(tmp_path, capsys, flags, message):
    with pytest.raises(SystemExit) as stop:
        cli.main(["toy", "--out", str(tmp_path), *flags])
    assert stop.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists()


@pytest.mark.slow
def test_full_comparison_approaches_the_floor(tmp_path):
    result = toy2d.compare("swiss_roll", out=tmp_path, progress=False)
    ceiling = result["ceiling"]
    for row in result["rows"]:
        assert row["energy"] < 0.2 * ceiling["energy"], row
        assert row["mmd_fine"] < 0.1 * ceiling["mmd_fine"], row
    assert (tmp_path / "reverse.gif").exists()
