"""Losses: targets, min-SNR weights, timestep sampling, and the oracle's loss floor."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidiff as md
from minidiff.diffusion import losses, process, schedules

SCHEDULES = st.sampled_from(
    [
        schedules.linear(100),
        schedules.cosine(1000),
        schedules.rescale_zero_terminal_snr(schedules.cosine(100)),
    ]
)


@given(schedule=SCHEDULES, data=st.data(), gamma=st.floats(0.1, 50))
def test_eq_min_snr_one_error_costs_the_same_in_every_target(schedule, data, gamma):
    """(eq-min-snr): one model output, read as an eps, an x0 and a v prediction through
    (eq-parameterizations), has errors with ||eps - eps_hat||^2 = SNR ||x0 - x0_hat||^2 and
    ||v - v_hat||^2 = (SNR + 1) ||x0 - x0_hat||^2, so the three min-SNR-weighted losses
    ``diffusion_loss`` computes are all min(SNR, gamma) ||x0 - x0_hat||^2, averaged."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    b = data.draw(st.integers(1, 6))
    x0, noise = rng.standard_normal((b, 3)), rng.standard_normal((b, 3))
    t = rng.integers(0, len(schedule), b)
    t[0] = data.draw(st.sampled_from([0, len(schedule) - 1, int(t[0])]))
    x_t = process.q_sample(schedule, x0, t, noise)
    v_hat = process.v_from(schedule, x0, t, noise) + rng.standard_normal(x0.shape)
    x0_hat, eps_hat = process.to_x0_and_eps(schedule, x_t, t, v_hat, "v")
    predictions = {"eps": eps_hat, "x0": x0_hat, "v": v_hat}
    snr = schedule.at("snr", t, x0)
    expected = (np.minimum(snr, gamma) * (x0 - x0_hat) ** 2).mean()
    for target, prediction in predictions.items():
        loss = losses.diffusion_loss(
            lambda x, tt, out=prediction: md.tensor(out, dtype=np.float64),
            schedule,
            x0,
            target=target,
            t=t,
            noise=noise,
            min_snr_gamma=gamma,
        )
        assert loss.item() == pytest.approx(expected, rel=1e-8, abs=1e-300), target


@given(schedule=SCHEDULES, data=st.data(), gamma=st.floats(0.1, 50))
def test_eq_min_snr_weights_cap_only_the_low_noise_steps(schedule, data, gamma):
    """(eq-min-snr) at its boundaries: w_eps = min(SNR, gamma) / SNR lies in (0, 1], is exactly
    1 where SNR <= gamma (zero SNR included, its limit) and gamma / SNR above; w_x0 =
    min(SNR, gamma) <= gamma; w_v = min(SNR, gamma) / (SNR + 1) < 1; and all three put the
    same weight min(SNR, gamma) on the x0 error: w_x0 = SNR w_eps = (SNR + 1) w_v. A larger
    gamma never lowers a weight."""
    last = len(schedule) - 1
    t = np.array([data.draw(st.one_of(st.sampled_from([0, last]), st.integers(0, last)))])
    like = np.zeros((1, 2))
    snr = float(schedule.snr[t[0]])

    def weight(target, g=gamma):
        return float(losses.min_snr_weight(schedule, t, like, target, g)[0, 0])

    w_eps, w_x0, w_v = weight("eps"), weight("x0"), weight("v")
    assert 0 < w_eps <= 1
    if snr <= gamma:
        assert w_eps == 1.0
    else:
        assert w_eps == pytest.approx(gamma / snr, rel=1e-12)
    assert w_x0 == pytest.approx(min(snr, gamma), rel=1e-12) and w_x0 <= gamma
    assert 0 <= w_v < 1
    assert w_x0 == pytest.approx(snr * w_eps, rel=1e-12, abs=1e-300)
    assert w_x0 == pytest.approx((snr + 1) * w_v, rel=1e-12, abs=1e-300)
    for target in ("eps", "x0", "v"):
        assert weight(target, 2 * gamma) >= weight(target)


@pytest.mark.parametrize("target", ["eps", "x0", "v"])
def test_perfect_model_has_zero_loss(target):
    """With the true target as the prediction, the simple loss (eq-simple-loss) is zero."""
    schedule = schedules.linear(100)
    rng = np.random.default_rng(0)
    x0, noise = rng.standard_normal((8, 3)), rng.standard_normal((8, 3))
    t = rng.integers(0, 100, 8)
    truth = {"eps": noise, "x0": x0, "v": process.v_from(schedule, x0, t, noise)}[target]
    loss = losses.diffusion_loss(
        lambda x, tt: md.tensor(truth, dtype=np.float64),
        schedule,
        x0,
        target=target,
        t=t,
        noise=noise,
        min_snr_gamma=5.0,
    )
    assert loss.item() == pytest.approx(0.0, abs=1e-20)


def test_loss_gradient_reaches_the_model():
    schedule = schedules.linear(100)
    layer = md.nn.Linear(2, 2)
    md.manual_seed(0)
    loss = losses.diffusion_loss(lambda x, t: layer(x), schedule, md.randn(16, 2).data)
    loss.backward()
    assert layer.weight.grad is not None and loss.dtype == np.float32


def test_timesteps_are_uniform():
    md.manual_seed(0)
    t = losses.sample_timesteps(100_000, 10, device="cpu")
    counts = np.bincount(t, minlength=10)
    assert t.min() == 0 and t.max() == 9
    assert np.abs(counts / 1e4 - 1).max() < 0.05


def test_flow_matching_loss_zero_for_the_true_velocity():
    """(eq-flow-loss): the regression target on the straight path is noise - x0."""
    rng = np.random.default_rng(1)
    x0, noise, t = rng.standard_normal((6, 2)), rng.standard_normal((6, 2)), rng.random(6)
    loss = losses.flow_matching_loss(
        lambda x, tt: md.tensor(noise - x0, dtype=np.float64), x0, t=t, noise=noise
    )
    assert loss.item() == pytest.approx(0.0, abs=1e-20)


@given(
    data=st.data(),
    target=st.sampled_from(["eps", "x0", "v"]),
    gamma=st.sampled_from([None, 5.0]),
)
def test_eq_masked_loss(data, target, gamma):
    """(eq-masked-loss): known frames enter clean, the model is told which, and the loss is the
    (weighted) mean squared error over the unknown entries only: whatever the model outputs on
    known frames changes nothing."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    b, f = data.draw(st.integers(1, 4)), data.draw(st.integers(2, 5))
    schedule = schedules.cosine(100)
    x0, noise = rng.standard_normal((b, f, 2, 3)), rng.standard_normal((b, f, 2, 3))
    t = rng.integers(0, 100, b)
    known = rng.random((b, f)) < 0.5
    known[:, 0] = False  # at least one unknown frame per clip
    garbage = rng.standard_normal(x0.shape)
    seen = {}

    def model(x, tt, mask):
        seen["x"], seen["mask"] = x.numpy(), mask
        return md.tensor(np.where(mask[:, :, None, None], 1e3 * garbage, garbage), dtype=np.float64)

    loss = losses.diffusion_loss(
        model, schedule, x0, target=target, t=t, noise=noise, min_snr_gamma=gamma, known=known
    )
    x_t = process.q_sample(schedule, x0, t, noise)
    np.testing.assert_array_equal(seen["x"], np.where(known[:, :, None, None], x0, x_t))
    np.testing.assert_array_equal(seen["mask"], known)
    truth = {"eps": noise, "x0": x0, "v": process.v_from(schedule, x0, t, noise)}[target]
    weight = np.ones((b, 1, 1, 1))
    if gamma is not None:
        weight = losses.min_snr_weight(schedule, t, x0, target, gamma)
    squared = (garbage - truth) ** 2 * weight
    unknown = np.broadcast_to(~known[:, :, None, None], x0.shape)
    assert loss.item() == pytest.approx(squared[unknown].mean(), rel=1e-10)


@given(data=st.data(), weight=st.floats(0.1, 3.0))
def test_eq_motion_loss(data, weight):
    """(eq-motion-loss): the frame-difference term adds lambda times the mean of
    (e_{f+1} - e_f)^2 for the error e = prediction - target; an error that is the same in every
    frame adds nothing."""
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    b, f = data.draw(st.integers(1, 3)), data.draw(st.integers(2, 5))
    schedule = schedules.cosine(100)
    x0, noise = rng.standard_normal((b, f, 3)), rng.standard_normal((b, f, 3))
    t = rng.integers(0, 100, b)
    prediction = rng.standard_normal(x0.shape)

    def total(out, lam):
        return losses.diffusion_loss(
            lambda x, tt: md.tensor(out, dtype=np.float64),
            schedule,
            x0,
            "eps",
            t,
            noise,
            frame_difference_weight=lam,
        ).item()

    error = prediction - noise
    expected = (error**2).mean() + weight * (np.diff(error, axis=1) ** 2).mean()
    assert total(prediction, weight) == pytest.approx(expected, rel=1e-10)
    steady = noise + rng.standard_normal((b, 1, 3))  # the same error in every frame
    assert total(steady, weight) == pytest.approx(total(steady, 0.0), rel=1e-12)


def test_masked_loss_refuses_a_mask_of_the_wrong_shape():
    schedule = schedules.cosine(100)
    with pytest.raises(ValueError, match="known mask of shape"):
        losses.diffusion_loss(
            lambda x, t, k: x, schedule, np.zeros((2, 3, 4)), known=np.zeros((2, 4), bool)
        )


def test_one_noise_level_per_frame_noises_each_frame_by_its_own_closed_form():
    """t of shape (B, F): frame f of clip b is x_t = sqrt(abar_{t[b,f]}) x0 + sqrt(1 - abar) eps
    (eq-closed-form per frame), and its min-SNR weight is its own level's."""
    schedule = schedules.cosine(100)
    rng = np.random.default_rng(3)
    x0, noise = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 4))
    t = np.array([[0, 50, 99], [10, 10, 80]])
    seen = {}

    def model(x, tt):
        seen["x"] = x.numpy()
        return md.tensor(np.zeros(x.shape), dtype=np.float64)

    loss = losses.diffusion_loss(model, schedule, x0, "eps", t, noise, min_snr_gamma=5.0)
    a = np.sqrt(schedule.alpha_bars[t])[..., None]
    np.testing.assert_allclose(seen["x"], a * x0 + np.sqrt(1 - a**2) * noise, rtol=1e-12)
    snr = schedule.snr[t][..., None]
    weight = np.minimum(snr, 5.0) / snr
    assert loss.item() == pytest.approx(float((noise**2 * weight).mean()), rel=1e-10)
