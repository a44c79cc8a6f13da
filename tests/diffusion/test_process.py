"""The forward chain, the closed form, the posterior, parameterizations, KL and the VLB weight."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minidiff as md
from minidiff.diffusion import process, schedules

SCHEDULES = st.sampled_from(
    [
        schedules.linear(100),
        schedules.cosine(100),
        schedules.rescale_zero_terminal_snr(schedules.cosine(100)),
    ]
)


@given(schedule=SCHEDULES, t=st.integers(0, 99))
def test_closed_form_matches_composed_steps(schedule, t):
    """(eq-closed-form) from (eq-forward-step): composing t + 1 steps x <- sqrt(1 - b) x +
    sqrt(b) z gives mean coefficient prod sqrt(alpha) = sqrt(alpha_bar) and variance
    1 - alpha_bar (analytically, by the recursion on mean and variance)."""
    mean_coef, var = 1.0, 0.0
    for s in range(t + 1):
        mean_coef *= np.sqrt(1 - schedule.betas[s])
        var = (1 - schedule.betas[s]) * var + schedule.betas[s]
    assert mean_coef == pytest.approx(schedule.sqrt_alpha_bars[t], rel=1e-12, abs=1e-300)
    assert var == pytest.approx(1 - schedule.alpha_bars[t], rel=1e-12)


def test_closed_form_matches_composed_steps_by_monte_carlo():
    """The same by sampling: 20,000 chains of q_step against q_sample's moments."""
    schedule = schedules.linear(50, scale_to_T=True)
    rng = np.random.default_rng(0)
    x0 = np.full((20_000, 1), 1.5)
    x = x0.copy()
    for s in range(30):
        x = process.q_step(schedule, x, np.full(len(x), s), rng.standard_normal(x.shape))
    mean, var = schedule.sqrt_alpha_bars[29] * 1.5, 1 - schedule.alpha_bars[29]
    n = len(x)
    assert abs(x.mean() - mean) < 5 * np.sqrt(var / n)
    assert abs(x.var() - var) < 5 * var * np.sqrt(2 / n)
    direct = process.q_sample(schedule, x0, np.full(n, 29), rng.standard_normal(x0.shape))
    assert abs(direct.mean() - mean) < 5 * np.sqrt(var / n)


@given(schedule=SCHEDULES, t=st.integers(1, 98), x0=st.floats(-2, 2), x_t=st.floats(-3, 3))
def test_posterior_matches_bayes(schedule, t, x0, x_t):
    """(eq-posterior): q(x_{t-1} | x_t, x0) is proportional to q(x_t | x_{t-1}) q(x_{t-1} | x0).
    Completing the square numerically: the log of that product is a quadratic in x_{t-1}; its
    curvature gives the variance and its vertex the mean."""
    beta, ab_prev = schedule.betas[t], schedule.alpha_bars_prev[t]

    def log_product(y):
        return -((x_t - np.sqrt(1 - beta) * y) ** 2) / (2 * beta) - (
            y - np.sqrt(ab_prev) * x0
        ) ** 2 / (2 * (1 - ab_prev))

    a, b, _ = np.polyfit([-1.0, 0.0, 1.0], [log_product(y) for y in (-1.0, 0.0, 1.0)], 2)
    variance, mean = -1 / (2 * a), -b / (2 * a)
    got_mean, got_var, _ = process.q_posterior(
        schedule, np.array([x0]), np.array([x_t]), np.array([t])
    )
    assert float(got_var[0]) == pytest.approx(variance, rel=1e-8)
    assert float(got_mean[0]) == pytest.approx(mean, rel=1e-8, abs=1e-10)


@given(schedule=SCHEDULES, t=st.integers(0, 98), data=st.data())
def test_parameterization_round_trips(schedule, t, data):
    """(eq-parameterizations): eps <-> x0 <-> v conversions invert each other."""
    x0 = data.draw(st.floats(-2, 2))
    eps = data.draw(st.floats(-3, 3))
    tt, a = np.array([t]), np.array([x0])
    e = np.array([eps])
    x_t = process.q_sample(schedule, a, tt, e)
    v = process.v_from(schedule, a, tt, e)
    np.testing.assert_allclose(process.x0_from_v(schedule, x_t, tt, v), a, atol=1e-12)
    np.testing.assert_allclose(process.eps_from_v(schedule, x_t, tt, v), e, atol=1e-12)
    np.testing.assert_allclose(process.eps_from_x0(schedule, x_t, tt, a), e, atol=1e-9)
    if schedule.alpha_bars[t] > 1e-6:
        np.testing.assert_allclose(process.x0_from_eps(schedule, x_t, tt, e), a, atol=1e-6)


@given(schedule=SCHEDULES, t=st.integers(0, 98), x0=st.floats(-2, 2), eps=st.floats(-3, 3))
def test_posterior_mean_from_eps(schedule, t, x0, eps):
    """(eq-posterior-mean-eps): the posterior mean with x0 = x0(x_t, eps) substituted equals
    (x_t - beta / sqrt(1 - alpha_bar) eps) / sqrt(alpha)."""
    tt, a, e = np.array([t]), np.array([x0]), np.array([eps])
    x_t = process.q_sample(schedule, a, tt, e)
    mean, _, _ = process.q_posterior(schedule, a, x_t, tt)
    np.testing.assert_allclose(
        process.posterior_mean_from_eps(schedule, x_t, tt, e), mean, rtol=1e-9, atol=1e-9
    )


@given(m1=st.floats(-2, 2), m2=st.floats(-2, 2), lv1=st.floats(-2, 1), lv2=st.floats(-2, 1))
def test_gaussian_kl_matches_monte_carlo(m1, m2, lv1, lv2):
    """(eq-gaussian-kl) against E_{x ~ N1}[log N1(x) - log N2(x)] over 200,000 draws."""
    rng = np.random.default_rng(0)
    x = m1 + np.exp(lv1 / 2) * rng.standard_normal(200_000)
    log_ratio = (
        -0.5 * lv1
        - (x - m1) ** 2 / (2 * np.exp(lv1))
        + 0.5 * lv2
        + (x - m2) ** 2 / (2 * np.exp(lv2))
    )
    kl = float(process.gaussian_kl(np.array(m1), np.array(lv1), np.array(m2), np.array(lv2)))
    assert kl >= -1e-15
    assert abs(log_ratio.mean() - kl) < 5 * log_ratio.std() / np.sqrt(len(x)) + 1e-12


@given(
    schedule=SCHEDULES,
    t=st.integers(1, 98),
    x0=st.floats(-2, 2),
    eps=st.floats(-3, 3),
    eps_hat=st.floats(-3, 3),
)
def test_eps_loss_weight_follows_from_kl(schedule, t, x0, eps, eps_hat):
    """(eq-vlb-eps-weight): with the model mean written through eps_hat and variance sigma^2,
    L_{t-1} = beta^2 / (2 sigma^2 alpha (1 - alpha_bar)) ||eps - eps_hat||^2 (+ a constant that
    does not depend on eps_hat, which equal variances make zero)."""
    tt, a = np.array([t]), np.array([x0])
    x_t = process.q_sample(schedule, a, tt, np.array([eps]))
    sigma2 = schedule.posterior_variance[t]
    model_mean = process.posterior_mean_from_eps(schedule, x_t, tt, np.array([eps_hat]))
    loss = process.vlb_term(schedule, a, x_t, tt, model_mean, np.log(np.array([[sigma2]]))[0])
    beta, alpha, ab = schedule.betas[t], schedule.alphas[t], schedule.alpha_bars[t]
    weight = beta**2 / (2 * sigma2 * alpha * (1 - ab))
    assert float(loss[0]) == pytest.approx(weight * (eps - eps_hat) ** 2, rel=1e-6, abs=1e-9)


def test_vlb_first_step_is_the_decoder_nll_and_prior_kl_is_small():
    schedule = schedules.linear(1000)
    x0 = np.array([[0.3]])
    mean, log_var = np.array([[0.1]]), np.array([[-2.0]])
    nll = process.vlb_term(schedule, x0, x0, np.array([0]), mean, log_var)
    expected = 0.5 * (np.log(2 * np.pi) - 2.0 + (0.2**2) / np.exp(-2.0))
    assert float(nll[0, 0]) == pytest.approx(expected)
    assert float(process.prior_kl(schedule, np.ones((1, 1)))[0, 0]) < 1e-4


# --- the variational bound (eq-vlb) on Gaussian data, where everything is known in closed form --

# Probabilists' Gauss-Hermite rule: E f(m + sd Z) = sum_i w_i f(m + sd z_i), Z ~ N(0, 1), exact
# for polynomials of degree <= 9. Every term of (eq-vlb) is a quadratic in x_t, and the whole
# bound a quadratic in x0, so the rule gives their expectations exactly.
_NODES, _HERMITE_WEIGHTS = np.polynomial.hermite_e.hermegauss(5)
_WEIGHTS = _HERMITE_WEIGHTS / np.sqrt(2 * np.pi)


@st.composite
def short_chains(draw):
    """Schedules of T = 1..8 steps: drawn betas, the last one optionally 1 (zero terminal SNR),
    or the cosine schedule."""
    T = draw(st.integers(1, 8))
    if draw(st.booleans()):
        return schedules.cosine(T)
    betas = draw(st.lists(st.floats(1e-3, 0.6), min_size=T, max_size=T))
    if draw(st.booleans()):
        betas[-1] = 1.0
    return schedules.NoiseSchedule(betas)


def _exact_reverse_steps(schedule, mu, s):
    """The true reverse steps q(x_{t-1} | x_t) = N(A x_t + b, c) for data N(mu, s^2), one per
    index (book step t = index + 1). x_{t-1} ~ N(m, v) with m = sqrt(alpha_bar_{t-1}) mu,
    v = alpha_bar_{t-1} s^2 + 1 - alpha_bar_{t-1}, and x_t = sqrt(alpha_t) x_{t-1} +
    sqrt(beta_t) z, so conditioning the joint Gaussian gives A = sqrt(alpha_t) v / w,
    b = m - A sqrt(alpha_t) m and c = beta_t v / w with w = alpha_t v + beta_t."""
    ab_prev, alphas, betas = schedule.alpha_bars_prev, schedule.alphas, schedule.betas
    m = np.sqrt(ab_prev) * mu
    v = ab_prev * s**2 + 1 - ab_prev
    w = alphas * v + betas
    A = np.sqrt(alphas) * v / w
    return A, m - A * np.sqrt(alphas) * m, betas * v / w


def _library_bound(schedule, x0, A, b, c):
    """L(x0) = L_T + sum_{t=2}^T L_{t-1} + L_0 (eq-vlb) for each entry of ``x0`` (shape (n,)),
    from ``prior_kl`` and ``vlb_term`` with the model p_theta(x_{t-1} | x_t) = N(A x_t + b, c),
    the expectation over x_t ~ q(x_t | x0) of every term by quadrature."""
    grid = np.broadcast_to(x0[:, None], (x0.size, _NODES.size))
    total = process.prior_kl(schedule, x0[:, None])[:, 0]
    for k in range(len(schedule)):
        t = np.full(x0.size, k)
        x_t = process.q_sample(schedule, grid, t, np.broadcast_to(_NODES, grid.shape))
        log_var = np.full(grid.shape, np.log(c[k]))
        term = process.vlb_term(schedule, grid, x_t, t, A[k] * x_t + b[k], log_var)
        total = total + term @ _WEIGHTS
    return total


def _log_normal(x, mean, var):
    return -0.5 * (np.log(2 * np.pi * var) + (x - mean) ** 2 / var)


def _chain_log_ratio(schedule, x0, A, b, c, rng, n):
    """log q(x_{1:T} | x0) - log p_theta(x_{0:T}) on n forward chains from x0, drawn step by step
    (eq-forward-step), with p_theta(x_{0:T}) = N(x_T; 0, 1) prod_t N(x_{t-1}; A x_t + b, c)."""
    x, ratio = np.full(n, x0), np.zeros(n)
    for k, beta in enumerate(schedule.betas):
        following = np.sqrt(1 - beta) * x + np.sqrt(beta) * rng.standard_normal(n)
        ratio += _log_normal(following, np.sqrt(1 - beta) * x, beta)
        ratio -= _log_normal(x, A[k] * following + b[k], c[k])
        x = following
    return ratio - _log_normal(x, 0.0, 1.0)


def _model_nll(A, b, c, x0):
    """-log p_theta(x0) exactly: from p(x_T) = N(0, 1), each step N(A x + b, c) keeps the
    marginal Gaussian, mean <- A mean + b and variance <- A^2 variance + c."""
    mean, var = 0.0, 1.0
    for k in reversed(range(len(A))):
        mean, var = A[k] * mean + b[k], A[k] ** 2 * var + c[k]
    return -_log_normal(x0, mean, var)


@given(
    schedule=short_chains(),
    mu=st.floats(-2, 2),
    s=st.floats(0.1, 2),
    x0=st.floats(-3, 3),
    wrong=st.tuples(st.floats(-0.5, 0.5), st.floats(-0.5, 0.5), st.floats(-0.5, 0.5)),
    seed=st.integers(0, 2**16),
)
def test_eq_vlb_telescopes_and_bounds_the_nll(schedule, mu, s, x0, wrong, seed):
    """(eq-vlb) on data x0 ~ N(mu, s^2), for the exact reverse model q(x_{t-1} | x_t) and for a
    model with its slope, offset and log-variance moved by ``wrong``: the library's
    L = L_T + sum_{t=2}^T L_{t-1} + L_0

    * equals E_q[log q(x_{1:T} | x0) - log p_theta(x_{0:T})], estimated on forward chains
      within 5 standard errors: the telescoping identity;
    * is >= -log p_theta(x0), computed in closed form: the bound;
    * for the exact model, averaged over the data, equals H(x0) + KL(q(x_T) || N(0, 1)) with
      H(x0) = 0.5 log(2 pi e s^2) (the joint KL between q(x_{0:T}) and p_theta(x_{0:T}) is that
      of x_T alone), so it bounds the data's entropy -E log p(x0), and no other model does
      better."""
    exact = _exact_reverse_steps(schedule, mu, s)
    A, b, c = exact
    model = (A * (1 + wrong[0]), b + wrong[1], c * np.exp(wrong[2]))
    bound = _library_bound(schedule, np.array([x0]), *model)[0]
    ratio = _chain_log_ratio(schedule, x0, *model, np.random.default_rng(seed), 4000)
    tol = 1e-9 * (1 + abs(bound))
    assert abs(ratio.mean() - bound) < 5 * ratio.std() / np.sqrt(ratio.size) + tol
    assert bound >= _model_nll(*model, x0) - tol

    data = mu + s * _NODES
    average = _library_bound(schedule, data, *exact) @ _WEIGHTS
    last_mean = schedule.sqrt_alpha_bars[-1] * mu
    last_var = schedule.alpha_bars[-1] * s**2 + 1 - schedule.alpha_bars[-1]
    prior_gap = 0.5 * (last_mean**2 + last_var - 1 - np.log(last_var))
    entropy = 0.5 * np.log(2 * np.pi * np.e * s**2)
    assert average == pytest.approx(entropy + prior_gap, rel=1e-9, abs=1e-9)
    assert _library_bound(schedule, data, *model) @ _WEIGHTS >= average - 1e-9 * (1 + abs(average))


@given(schedule=SCHEDULES, t=st.integers(1, 99), x0=st.floats(-2, 2), x_t=st.floats(-3, 3))
def test_eq_vlb_kl_terms_vanish_at_the_true_posterior(schedule, t, x0, x_t):
    """Each L_{t-1} of (eq-vlb) (index t >= 1) is KL(q(x_{t-1} | x_t, x0) || p_theta): zero for
    any x0 and x_t when the model's step has the posterior's mean tilde mu_t and variance
    tilde beta_t (eq-posterior), so the bound is then L_T + L_0 alone; with the same mean and
    variance beta_t it is the constant 0.5 (log(beta_t / tilde beta_t) + tilde beta_t / beta_t
    - 1), whatever x0 and x_t."""
    tt, a, x = np.array([t]), np.array([[x0]]), np.array([[x_t]])
    mean, _, log_var = process.q_posterior(schedule, a, x, tt)
    assert float(process.vlb_term(schedule, a, x, tt, mean, log_var)[0, 0]) == pytest.approx(
        0.0, abs=1e-12
    )
    ratio = schedule.posterior_variance[t] / schedule.betas[t]
    kl = process.vlb_term(schedule, a, x, tt, mean, np.log(schedule.at("betas", tt, x)))
    assert float(kl[0, 0]) == pytest.approx(0.5 * (ratio - 1 - np.log(ratio)), rel=1e-9)


def test_process_runs_on_tensors_too():
    schedule = schedules.cosine(10)
    x0 = md.randn(4, 3, requires_grad=True)
    t = np.array([0, 3, 5, 9])
    x_t = process.q_sample(schedule, x0, t, md.randn(4, 3))
    assert isinstance(x_t, md.Tensor) and x_t.dtype == np.float32
    x_t.sum().backward()
    np.testing.assert_allclose(x0.grad[:, 0], schedule.sqrt_alpha_bars[t], rtol=1e-6)
