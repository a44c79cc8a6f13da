"""Schedule invariants and the formulas that define them."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidiff as md
from minidiff.diffusion import schedules

T_VALUES = st.sampled_from([10, 50, 200, 1000])
ALL = {
    "linear": schedules.linear,
    "cosine": schedules.cosine,
    "sigmoid": schedules.sigmoid,
    "linear_scaled": lambda T: schedules.linear(max(T, 50), scale_to_T=True),
}


@pytest.mark.parametrize("name", sorted(ALL))
@given(T=T_VALUES)
def test_alpha_bar_strictly_decreasing_in_unit_interval(name, T):
    s = ALL[name](T)
    assert ((s.alpha_bars > 0) & (s.alpha_bars < 1)).all()
    assert (np.diff(s.alpha_bars) < 0).all()
    np.testing.assert_allclose(s.alpha_bars, np.cumprod(1 - s.betas), rtol=1e-14)
    np.testing.assert_allclose(s.snr, s.alpha_bars / (1 - s.alpha_bars), rtol=1e-14)


def test_linear_schedule_endpoints():
    s = schedules.linear(1000)
    assert s.betas[0] == pytest.approx(1e-4) and s.betas[-1] == pytest.approx(0.02)
    short = schedules.linear(250, scale_to_T=True)
    assert short.betas[0] == pytest.approx(4e-4) and short.betas[-1] == pytest.approx(0.08)
    assert short.alpha_bars[-1] == pytest.approx(s.alpha_bars[-1], rel=0.5)
    with pytest.raises(ValueError, match="beta_end < 1"):
        schedules.linear(10, scale_to_T=True)


@given(T=T_VALUES)
def test_cosine_schedule_formula(T):
    """(eq-cosine-schedule): alpha_bar_t = f(t) / f(0), f(t) = cos^2(((t/T + s)/(1 + s)) pi / 2),
    wherever the beta clip (at 0.999) is not active, i.e. everywhere but the very end."""
    s = schedules.cosine(T)
    f = lambda u: math.cos((u / T + 0.008) / 1.008 * math.pi / 2) ** 2  # noqa: E731
    expected = np.array([f(i) / f(0) for i in range(1, T + 1)])
    clipped = s.betas >= 0.999
    assert not clipped[:-1].any(), "cosine clips only at the end"
    np.testing.assert_allclose(s.alpha_bars[~clipped], expected[~clipped], rtol=1e-12)


@pytest.mark.parametrize("name", ["linear", "cosine", "sigmoid"])
def test_zero_terminal_snr_rescale(name):
    """(eq-zero-terminal-snr): alpha_bar_T = 0 and alpha_bar_1 is kept; sqrt(alpha_bar) is an
    affine function of the original one."""
    base = ALL[name](1000)
    s = schedules.rescale_zero_terminal_snr(base)
    assert s.alpha_bars[-1] == 0.0 and s.snr[-1] == 0.0 and s.log_snr[-1] == -np.inf
    assert s.alpha_bars[0] == pytest.approx(base.alpha_bars[0], rel=1e-12)
    assert (np.diff(s.alpha_bars) < 0).all()
    slope, intercept = np.polyfit(base.sqrt_alpha_bars, s.sqrt_alpha_bars, 1)
    np.testing.assert_allclose(
        s.sqrt_alpha_bars, slope * base.sqrt_alpha_bars + intercept, atol=1e-12
    )


def test_schedule_arrays_are_float64_and_coefficients_consistent():
    s = schedules.cosine(100)
    for name in ("betas", "alphas", "alpha_bars", "posterior_variance", "posterior_mean_coef1"):
        assert getattr(s, name).dtype == np.float64
    np.testing.assert_allclose(s.alpha_bars_prev[1:], s.alpha_bars[:-1])
    assert s.alpha_bars_prev[0] == 1.0 and s.posterior_variance[0] == 0.0
    assert np.isfinite(s.posterior_log_variance_clipped).all()


def test_at_gathers_in_the_data_dtype_and_shape(device):
    s = schedules.linear(10)
    x = md.zeros(3, 2, 4)
    t = md.backend.module_for(device).asarray([0, 9, 4])
    values = s.at("alpha_bars", t, x)
    assert values.shape == (3, 1, 1) and values.dtype == np.float32
    assert md.backend.device_of(values) == device
    np.testing.assert_allclose(
        md.backend.to_numpy(values).ravel(), s.alpha_bars[[0, 9, 4]], rtol=1e-6
    )
    with pytest.raises(KeyError, match="unknown schedule coefficient"):
        s.at("alpha_bar", t, x)
    with pytest.raises(TypeError, match="integers"):
        s.at("betas", np.array([0.5]), x)


def test_bad_betas_are_refused():
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        md.diffusion.NoiseSchedule([0.1, 0.0])


def test_comparison_figure_has_three_panels():
    import matplotlib

    matplotlib.use("Agg")
    fig = schedules.comparison_figure(
        {"linear": schedules.linear(100), "cosine": schedules.cosine(100)}
    )
    assert len(fig.axes) == 3 and len(fig.axes[0].lines) == 2
