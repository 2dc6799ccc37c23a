"""The vectorised IVIM kernels against slow, independent references.

* ``full``: the batched Levenberg-Marquardt (3 starts per voxel) must reach the bounded least-squares
  optimum that a 4-start ``scipy.optimize.least_squares`` (trust-region reflective, per voxel) finds.
* ``bayesian``: the vectorised Metropolis posterior means/SDs must match brute-force quadrature of
  p(theta | y) ~ SSE^(-n/2) on a 4-D grid within the bounds.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import least_squares

from osteomri.ivim import IvimModel, ivim_signal
from osteomri.models.ivim import make_bounds

B18 = np.array([0, 1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 250, 350, 400, 550, 700, 850, 1000.0])


def _noisy(n: int, snr: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    f = rng.uniform(0.05, 0.4, n)
    d = rng.uniform(0.3e-3, 1.5e-3, n)
    ds = rng.uniform(0.01, 0.1, n)
    return ivim_signal(B18, 1.0, f, d, ds) + rng.normal(0, 1 / snr, (n, B18.size))


def test_full_fit_reaches_the_multistart_least_squares_optimum():
    signal = _noisy(60, 30.0, seed=11)
    fit = IvimModel(B18, "full").fit(signal)
    ours = ((fit.predict() - signal) ** 2).sum(-1)
    bounds = make_bounds()
    scale = np.array([1.0, 1.0, 1e-3, 1e-2])
    best = np.full(len(signal), np.inf)
    for i, y in enumerate(signal):
        lo, hi = bounds.lower.copy(), bounds.upper.copy()
        lo[0], hi[0] = lo[0] * y[0], hi[0] * y[0]  # S0 bounds are relative to the b = 0 signal

        def resid(p, y=y):
            return ivim_signal(B18, p[0], p[1], p[2] * 1e-3, p[3] * 1e-2) - y

        for start in ((y[0], 0.1, 1.0, 2.0), (y[0], 0.3, 0.5, 0.8), (y[0], 0.2, 1.0, 8.0), (y[0], 0.05, 0.4, 20.0)):
            sol = least_squares(resid, np.clip(start, lo / scale, hi / scale), bounds=(lo / scale, hi / scale),
                                xtol=1e-12, ftol=1e-12, gtol=1e-12)
            best[i] = min(best[i], 2 * sol.cost)
    # secondary minima with D* at its lower bound remain possible (1 in 60 here, 3 in 400 at this SNR),
    # but never far off; everything else is the optimum
    assert np.all(ours <= best * 1.01), np.max(ours / best)
    assert np.mean(ours <= best * (1 + 1e-6)) >= 0.95, np.sort(ours / best)[-5:]


def _grid_posterior(y: np.ndarray, theta: np.ndarray, n: int = 24, n_dstar: int = 120):
    """Posterior mean and SD of (S0, f, D, D*) by quadrature on a grid (flat priors, noise marginalised)."""
    bounds = make_bounds()
    s0, f, d, ds = theta
    e, es = np.exp(-B18 * d), np.exp(-B18 * ds)
    jac = np.stack([f * es + (1 - f) * e, s0 * (es - e), -s0 * (1 - f) * B18 * e, -s0 * f * B18 * es], axis=1)
    sse = ((ivim_signal(B18, s0, f, d, ds) - y) ** 2).sum()
    sd = np.sqrt(np.diag(np.linalg.inv(jac.T @ jac)) * sse / (B18.size - 4))
    axes = []
    for i in range(3):  # S0, f, D: +-8 Laplace SDs clipped to the bounds; D*: all of its range
        lo, hi = max(bounds.lower[i], theta[i] - 8 * sd[i]), min(bounds.upper[i], theta[i] + 8 * sd[i])
        axes.append(np.linspace(lo, hi, n))
    axes.append(np.linspace(bounds.lower[3], bounds.upper[3], n_dstar))
    g0, g1, g2 = np.meshgrid(*axes[:3], indexing="ij")
    logp = np.empty((n, n, n, n_dstar))
    for k, dstar in enumerate(axes[3]):
        model = ivim_signal(B18, g0, g1, g2, dstar)
        logp[..., k] = -0.5 * B18.size * np.log(((model - y) ** 2).sum(-1))
    w = np.exp(logp - logp.max())
    w /= w.sum()
    grids = np.meshgrid(*axes, indexing="ij")
    mean = np.array([(w * g).sum() for g in grids])
    sdev = np.sqrt(np.array([(w * g * g).sum() for g in grids]) - mean**2)
    return mean, sdev


def test_bayesian_posterior_matches_grid_quadrature():
    rng = np.random.default_rng(21)
    clean = ivim_signal(B18, 1.0, np.array([0.145, 0.3]), np.array([0.43e-3, 0.8e-3]), np.array([0.05, 0.03]))
    signal = clean + rng.normal(0, 1 / 40.0, clean.shape)
    full = IvimModel(B18, "full").fit(signal)
    bayes = IvimModel(B18, "bayesian", n_samples=8000, n_burn=1000, seed=3).fit(signal)
    for v in range(2):
        theta = np.array([full.s0[v], full.f[v], full.d_mm2_s[v], full.dstar_mm2_s[v]])
        mean, sdev = _grid_posterior(signal[v], theta)
        got = np.array([bayes.s0[v], bayes.f[v], bayes.d_mm2_s[v], bayes.dstar_mm2_s[v]])
        got_sd = np.array([bayes.sd[k][v] for k in ("ivim_s0_sd", "f_sd", "d_mm2_s_sd", "dstar_mm2_s_sd")])
        assert np.all(np.abs(got - mean) <= 0.2 * sdev), (v, got, mean, sdev)
        np.testing.assert_allclose(got_sd, sdev, rtol=0.2)
