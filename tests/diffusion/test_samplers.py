"""Samplers, verified without training: driven by the exact denoiser of Gaussian-mixture data
they must reproduce the data (two-sample Kolmogorov-Smirnov test), and DDIM's algebra holds."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidiff as md
from minidiff.diffusion import process, samplers, schedules
from minidiff.diffusion.oracles import GaussianMixture

MIXTURE = GaussianMixture(weights=[0.3, 0.7], means=[[-2.0], [1.5]], stds=[0.3, 0.5])
N = 2000


def ks_statistic(a, b) -> float:
    """The two-sample Kolmogorov-Smirnov statistic: the largest gap between empirical CDFs."""
    a, b = np.sort(np.ravel(a)), np.sort(np.ravel(b))
    grid = np.concatenate([a, b])
    return float(
        np.abs(
            np.searchsorted(a, grid, "right") / a.size - np.searchsorted(b, grid, "right") / b.size
        ).max()
    )


# Critical value at level 0.001 for two samples of N: c(alpha) sqrt(2 / N), c = 1.949.
KS_CRITICAL = 1.949 * np.sqrt(2 / N)


@pytest.fixture(scope="module")
def data():
    return MIXTURE.sample(N, np.random.default_rng(1))


def test_two_sample_test_has_power(data):
    """The test itself: a second draw of the data passes, a single Gaussian with the same mean
    and variance does not."""
    rng = np.random.default_rng(2)
    assert ks_statistic(data, MIXTURE.sample(N, rng)) < KS_CRITICAL
    assert ks_statistic(data, data.mean() + data.std() * rng.standard_normal(N)) > KS_CRITICAL


@pytest.mark.parametrize("variance", ["small", "large"])
def test_ddpm_with_oracle_reproduces_the_mixture(data, variance):
    schedule = schedules.linear(1000)
    md.manual_seed(3)
    x = samplers.ddpm_sample(
        MIXTURE.eps_model(schedule),
        schedule,
        (N, 1),
        variance=variance,
        dtype=np.float64,
        device="cpu",
        progress=False,
    )
    assert ks_statistic(x, data) < KS_CRITICAL


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_ddim_with_oracle_reproduces_the_mixture(data, eta):
    schedule = schedules.cosine(1000)
    md.manual_seed(4)
    x = samplers.ddim_sample(
        MIXTURE.eps_model(schedule),
        schedule,
        (N, 1),
        steps=50,
        eta=eta,
        dtype=np.float64,
        device="cpu",
        progress=False,
    )
    assert ks_statistic(x, data) < KS_CRITICAL


def test_flow_euler_with_oracle_reproduces_the_mixture(data):
    md.manual_seed(5)
    x = samplers.flow_euler_sample(
        MIXTURE.velocity_model(), (N, 1), steps=100, dtype=np.float64, device="cpu", progress=False
    )
    assert ks_statistic(x, data) < KS_CRITICAL


def test_oracle_is_the_posterior_mean_of_the_noise():
    """(eq-mixture-oracle) against a Monte Carlo estimate of E[eps | x_t] near one x_t."""
    schedule = schedules.linear(1000)
    rng = np.random.default_rng(6)
    t = 400
    x0 = MIXTURE.sample(2_000_000, rng)
    eps = rng.standard_normal(x0.shape)
    x_t = schedule.sqrt_alpha_bars[t] * x0 + schedule.sqrt_one_minus_alpha_bars[t] * eps
    near = np.abs(x_t[:, 0] - 0.5) < 0.01
    oracle = MIXTURE.eps_model(schedule)(np.array([[0.5]]), np.array([t]))
    assert abs(eps[near].mean() - oracle[0, 0]) < 5 * eps[near].std() / np.sqrt(near.sum()) + 0.01


def test_ddim_eta_one_variance_is_beta_tilde():
    """(eq-ddim-sigma) with eta = 1 on consecutive steps is exactly the posterior variance."""
    for schedule in (schedules.linear(200), schedules.cosine(200)):
        for t in range(1, 200):
            assert samplers.ddim_sigma(schedule, t, t - 1, 1.0) ** 2 == pytest.approx(
                schedule.posterior_variance[t], rel=1e-10
            )
        assert samplers.ddim_sigma(schedule, 50, 49, 0.0) == 0.0


def test_ddim_eta_one_step_mean_is_the_posterior_mean():
    """With eta = 1 the DDIM step's mean is the DDPM posterior mean (eq-ddim-step)."""
    schedule = schedules.cosine(100)
    rng = np.random.default_rng(7)
    x0, eps = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    t = 40
    x_t = process.q_sample(schedule, x0, np.full(5, t), eps)
    mean = samplers.ddim_step(schedule, x0, eps, t, t - 1, 1.0)
    expected, _, _ = process.q_posterior(schedule, x0, x_t, np.full(5, t))
    np.testing.assert_allclose(mean, expected, rtol=1e-10, atol=1e-12)


def test_ddim_inversion_reconstructs_with_noise_oracle():
    """eta = 0: inverting x0 to x_T and sampling back returns x0, when the model is the exact
    noise oracle of a point x0 (E[eps | x_t] = (x_t - sqrt(a) x0) / sqrt(1 - a))."""
    schedule = schedules.cosine(1000)
    rng = np.random.default_rng(8)
    x0 = rng.standard_normal((4, 3))

    def oracle(x, t):
        return process.eps_from_x0(schedule, x.data, t, x0)

    x_T = samplers.ddim_invert(oracle, schedule, x0, steps=25, progress=False)
    back = samplers.ddim_sample(oracle, schedule, x0.shape, steps=25, x_T=x_T, progress=False)
    np.testing.assert_allclose(back, x0, atol=1e-9)
    assert np.abs(x_T - x0).max() > 0.5  # it did go somewhere


def test_cfg_convention():
    """(eq-cfg): w = 0 gives the unconditional, w = 1 the conditional prediction."""
    u, c = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    np.testing.assert_array_equal(samplers.classifier_free_guidance(u, c, 0.0), u)
    np.testing.assert_array_equal(samplers.classifier_free_guidance(u, c, 1.0), c)
    np.testing.assert_array_equal(samplers.classifier_free_guidance(u, c, 3.0), u + 3 * (c - u))
    model = samplers.guided(lambda x, t, cond: x * cond, 2.0, 0.0, 1.5)
    np.testing.assert_array_equal(model(np.ones(2), None), 3.0 * np.ones(2))


@given(
    t=st.integers(0, 99),
    scale=st.floats(-2, 8),
    values=st.lists(st.floats(-3, 3), min_size=3, max_size=3),
)
def test_eq_guidance_v_guided_v_is_guided_eps(t, scale, values):
    """(eq-guidance-v): at fixed x_t, v is an affine function of eps, so guiding the v
    predictions and converting the result to eps gives the guided eps; the same for x0."""
    schedule = schedules.cosine(100)
    x_t, v_u, v_c = (np.array([value]) for value in values)
    tt = np.array([t])
    guided_v = samplers.classifier_free_guidance(v_u, v_c, scale)
    eps_u, eps_c = (process.eps_from_v(schedule, x_t, tt, v) for v in (v_u, v_c))
    np.testing.assert_allclose(
        process.eps_from_v(schedule, x_t, tt, guided_v),
        samplers.classifier_free_guidance(eps_u, eps_c, scale),
        atol=1e-9,
    )
    x0_u, x0_c = (process.x0_from_v(schedule, x_t, tt, v) for v in (v_u, v_c))
    np.testing.assert_allclose(
        process.x0_from_v(schedule, x_t, tt, guided_v),
        samplers.classifier_free_guidance(x0_u, x0_c, scale),
        atol=1e-9,
    )


def test_sampling_repeats_under_a_seed():
    schedule = schedules.linear(50, scale_to_T=True)
    model = MIXTURE.eps_model(schedule)
    runs = []
    for _ in range(2):
        md.manual_seed(11)
        runs.append(samplers.ddpm_sample(model, schedule, (16, 1), progress=False))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert runs[0].dtype == np.float32


def test_ddim_timesteps_are_an_even_subsequence():
    seq = samplers.ddim_timesteps(1000, 50)
    assert seq[0] == 0 and seq[-1] == 999 and len(seq) == 50 and (np.diff(seq) > 0).all()
    with pytest.raises(ValueError, match="steps"):
        samplers.ddim_timesteps(10, 20)


def test_replacement_keeps_the_known_part_and_fills_the_rest():
    """(eq-replacement): the known entries come out exactly, and for data with independent
    coordinates (one isotropic Gaussian) the free coordinate still follows the data's law."""
    schedule = schedules.cosine(1000)
    gaussian = GaussianMixture(weights=[1.0], means=[[1.5]], stds=[0.5])
    known = np.zeros((N, 2))
    known[:, 0] = 0.7
    mask = np.zeros((N, 2), dtype=bool)
    mask[:, 0] = True
    md.manual_seed(12)
    x = samplers.ddim_sample(
        gaussian.eps_model(schedule),
        schedule,
        (N, 2),
        steps=50,
        known=known,
        known_mask=mask,
        dtype=np.float64,
        device="cpu",
        progress=False,
    )
    np.testing.assert_array_equal(x[:, 0], 0.7)
    reference = 1.5 + 0.5 * np.random.default_rng(13).standard_normal(N)
    assert ks_statistic(x[:, 1], reference) < KS_CRITICAL


@pytest.mark.parametrize(
    "sampler", ["ddpm_large", "ddpm_small", "ddim_clipped", "ddim_eta", "flow"]
)
def test_samplers_keep_float32(sampler):
    schedule = schedules.cosine(20)
    model = MIXTURE.eps_model(schedule)
    md.manual_seed(0)
    run = {
        "ddpm_large": lambda: samplers.ddpm_sample(
            model, schedule, (4, 1), variance="large", clip_x0=1.0, progress=False
        ),
        "ddpm_small": lambda: samplers.ddpm_sample(model, schedule, (4, 1), progress=False),
        "ddim_clipped": lambda: samplers.ddim_sample(
            model, schedule, (4, 1), steps=5, clip_x0=1.0, progress=False
        ),
        "ddim_eta": lambda: samplers.ddim_sample(
            model, schedule, (4, 1), steps=5, eta=0.5, progress=False
        ),
        "flow": lambda: samplers.flow_euler_sample(
            MIXTURE.velocity_model(), (4, 1), steps=5, progress=False
        ),
    }[sampler]
    assert run().dtype == np.float32


def test_float64_sampling_stays_float64():
    schedule = schedules.cosine(20)
    oracle = MIXTURE.eps_model(schedule)
    seen = set()

    def model(x, t):
        seen.add(x.dtype)
        return oracle(x, t)

    out = samplers.ddim_sample(
        model, schedule, (3, 1), steps=4, dtype=np.float64, device="cpu", progress=False
    )
    assert seen == {np.dtype(np.float64)} and out.dtype == np.float64
    assert samplers.ddim_sigma(schedule, 3, 7, 0.0) == 0.0  # upward steps are fine at eta = 0


def test_clean_known_entries_are_the_data_at_every_step():
    """With ``known_clean`` (a network trained with frame masks) the model sees the known data
    itself at every call, not a noised copy, and it comes back exactly."""
    schedule = schedules.cosine(1000)
    known = np.full((4, 3), 0.25)
    mask = np.zeros((4, 3), dtype=bool)
    mask[:, 1] = True
    seen = []

    def model(x, t):
        seen.append(x.numpy()[:, 1].copy())
        return md.tensor(np.zeros(x.shape), dtype=np.float64)

    md.manual_seed(3)
    x = samplers.ddim_sample(
        model,
        schedule,
        (4, 3),
        steps=6,
        known=known,
        known_mask=mask,
        known_clean=True,
        dtype=np.float64,
        device="cpu",
        progress=False,
    )
    assert len(seen) == 6 and all((column == 0.25).all() for column in seen)
    np.testing.assert_array_equal(x[:, 1], 0.25)
    assert not np.allclose(x[:, 0], 0.25)
