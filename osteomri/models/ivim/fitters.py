"""Vectorised IVIM fitting kernels on normalised signals ``y[n_vox, n_b]`` (no per-voxel Python loops).

All kernels take ascending unique b-values ``b`` (s/mm^2), bounds ``lower``/``upper`` ordered
(S0, f, D, D*) with D and D* in mm^2/s, and return parameters ``[n_vox, 4]`` in that order, inside the
bounds exactly.

* :func:`fit_segmented` -- Pekar et al., MRM 1992;23:122 and the "segmented" fit compared by
  Gurney-Champion et al., MRM 2018;79:2528 (see also Jalnefjord et al., MAGMA 2018;31:715): a
  mono-exponential fit of the b >= threshold points gives D and the intercept S0(1 - f); then the
  perfusion amplitude S0*f and D* are fitted to the remaining signal by variable projection over a
  logarithmic D* grid (the amplitude is linear, so it is solved in closed form, within its bounds, for
  every grid value), refined by parabolic interpolation.
* :func:`fit_full` -- the bi-exponential model of Le Bihan et al., Radiology 1988;168:497 fitted by
  nonlinear least squares: a batched Levenberg-Marquardt (Marquardt 1963, diagonal scaling) with
  projection onto the box bounds and an active set (parameters at a bound whose gradient points outwards
  are held). It starts from the segmented fit and from the best D* of each other third (log scale) of
  the segmented D* profile -- the (f, D*) plane is multimodal, e.g. "small f, fast D*" against "larger f,
  D* at its lower bound" -- and keeps each voxel's lowest-cost solution.
* :func:`fit_bayesian` -- posterior means and SDs under flat priors bounded by the box, with the
  Gaussian noise level marginalised under a Jeffreys prior (Neil & Bretthorst, MRM 1993;29:642), so that
  p(theta | y) is proportional to SSE(theta)^(-n/2); sampled by a random-walk Metropolis chain per voxel
  (all voxels advanced together), proposals shaped by the Laplace covariance at the least-squares fit
  and reflected at the bounds (as in the MCMC of Orton et al., MRM 2014;71:411, without its hierarchical
  prior).
"""

from __future__ import annotations

import numpy as np

# internal scaling of (S0, f, D, D*) for the Levenberg-Marquardt and MCMC kernels: all O(0.1-10)
_SCALE = np.array([1.0, 1.0, 1e-3, 1e-2])
_TINY = 1e-12


def _monoexp(yh: np.ndarray, bh: np.ndarray, d_lo: float, d_hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Fit ``yh = A exp(-bh D)``: weighted log-linear fit, 2 Gauss-Newton steps, D clipped, A re-solved."""
    positive = yh > 0
    ly = np.log(np.where(positive, yh, 1.0))
    w = np.where(positive, yh * yh, 0.0)
    sw, sb, sbb = w.sum(1), w @ bh, w @ (bh * bh)
    sy, sby = (w * ly).sum(1), (w * ly) @ bh
    det = sw * sbb - sb * sb
    ok = det > _TINY * np.maximum(sw * sbb, _TINY)
    det = np.where(ok, det, 1.0)
    slope = np.where(ok, (sw * sby - sb * sy) / det, 0.0)
    d = np.clip(-slope, d_lo, d_hi)
    c = np.where(ok, (sy + d * sb) / np.where(sw > 0, sw, 1.0), 0.0)
    for _ in range(2):  # Gauss-Newton on the linear-scale residual, parameters (c = ln A, D)
        m = np.exp(np.minimum(c[:, None] - bh * d[:, None], 50.0))
        r = yh - m
        m2 = m * m
        a11, a12, a22 = m2.sum(1), -(m2 @ bh), m2 @ (bh * bh)
        g1, g2 = (m * r).sum(1), -((m * r) @ bh)
        det = a11 * a22 - a12 * a12
        good = np.isfinite(det) & (det > _TINY * np.maximum(a11 * a22, _TINY))
        det = np.where(good, det, 1.0)
        c = np.where(good, c + (a22 * g1 - a12 * g2) / det, c)
        d = np.where(good, np.clip(d + (a11 * g2 - a12 * g1) / det, d_lo, d_hi), d)
    e = np.exp(-np.outer(d, bh))
    amp = (yh * e).sum(1) / np.maximum((e * e).sum(1), _TINY)
    return np.maximum(amp, 1e-6), d


def _amplitude_limits(s_int: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Range of the perfusion amplitude a = S0*f allowed by the S0 and f bounds when S0(1-f) = s_int."""
    f_lo, f_hi = lower[1], upper[1]
    a_lo = np.maximum(lower[0] - s_int, s_int * f_lo / (1.0 - f_lo))
    a_hi = upper[0] - s_int
    if f_hi < 1:
        a_hi = np.minimum(a_hi, s_int * f_hi / (1.0 - f_hi))
    return a_lo, np.maximum(a_hi, a_lo)


def fit_segmented(
    y: np.ndarray,
    b: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    b_threshold_s_mm2: float,
    n_grid: int = 96,
) -> np.ndarray:
    """Segmented IVIM fit; returns ``[n_vox, 4]`` (S0 relative, f, D mm^2/s, D* mm^2/s)."""
    return segmented_with_starts(y, b, lower, upper, b_threshold_s_mm2, n_grid, n_bands=1)[0]


def segmented_with_starts(
    y: np.ndarray,
    b: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    b_threshold_s_mm2: float,
    n_grid: int = 96,
    n_bands: int = 3,
) -> tuple[np.ndarray, np.ndarray]:
    """Segmented fit ``[n_vox, 4]`` and other starting points ``[n_vox, n_bands - 1, 4]`` for the full fit.

    The D* grid is split into ``n_bands`` log-spaced bands; the best D* (with its best perfusion amplitude)
    of each band that does not hold the segmented optimum is a start, so that local searches from the
    segmented fit and these starts cover the multimodal (f, D*) plane.
    """
    high = b >= b_threshold_s_mm2
    s_int, d = _monoexp(y[:, high], b[high], lower[2], upper[2])
    z = y - s_int[:, None] * np.exp(-np.outer(d, b))  # what the tissue compartment leaves: S0 f exp(-b D*)
    a_lo, a_hi = _amplitude_limits(s_int, lower, upper)
    ds_lo, ds_hi = lower[3], upper[3]
    grid = np.geomspace(max(ds_lo, ds_hi * 1e-3), ds_hi, n_grid)
    basis = np.exp(-np.outer(grid, b))  # [K, n_b]
    ee = (basis * basis).sum(1)
    ze = z @ basis.T  # [n_vox, K]
    a_grid = np.clip(ze / ee, a_lo[:, None], a_hi[:, None])
    sse = a_grid * (a_grid * ee - 2.0 * ze)  # SSE minus the constant sum(z^2)
    k = np.argmin(sse, axis=1)
    rows = np.arange(k.size)
    kc = np.clip(k, 1, n_grid - 2)
    s_m, s_0, s_p = sse[rows, kc - 1], sse[rows, kc], sse[rows, kc + 1]
    curv = s_m - 2.0 * s_0 + s_p
    offset = np.where(curv > 0, 0.5 * (s_m - s_p) / np.where(curv > 0, curv, 1.0), 0.0)
    offset = np.where(k == kc, np.clip(offset, -0.5, 0.5), 0.0)
    step = np.log(grid[1] / grid[0])
    dstar = np.clip(grid[k] * np.exp(offset * step), ds_lo, ds_hi)
    e = np.exp(-np.outer(dstar, b))
    a = np.clip((z * e).sum(1) / np.maximum((e * e).sum(1), _TINY), a_lo, a_hi)
    best = np.clip(_params(s_int, a, d, dstar), lower, upper)
    starts = np.empty((k.size, n_bands, 4))
    edges = np.linspace(0, n_grid, n_bands + 1).astype(int)
    for j in range(n_bands):
        kb = edges[j] + np.argmin(sse[:, edges[j] : edges[j + 1]], axis=1)
        starts[:, j] = _params(s_int, a_grid[rows, kb], d, grid[kb])
    own_band = np.searchsorted(edges, k, side="right") - 1
    others = np.argsort(np.arange(n_bands)[None, :] == own_band[:, None], axis=1, kind="stable")[:, : n_bands - 1]
    starts = starts[rows[:, None], others]
    return best, np.clip(starts, lower, upper)


def _params(s_int: np.ndarray, a: np.ndarray, d: np.ndarray, dstar: np.ndarray) -> np.ndarray:
    s0 = s_int + a
    return np.stack([s0, a / np.maximum(s0, _TINY), d, np.broadcast_to(dstar, d.shape)], axis=1)


def _model_jac(theta: np.ndarray, b_d: np.ndarray, b_s: np.ndarray, with_jac: bool = True):
    """Model and Jacobian in internal units; ``b_d = b*1e-3``, ``b_s = b*1e-2``."""
    s0, f, d, ds = (theta[:, i : i + 1] for i in range(4))
    e = np.exp(-b_d * d)
    es = np.exp(-b_s * ds)
    g = f * es + (1.0 - f) * e
    m = s0 * g
    if not with_jac:
        return m, None
    jac = np.stack([g, s0 * (es - e), -s0 * (1.0 - f) * b_d * e, -s0 * f * b_s * es], axis=1)  # [n, 4, n_b]
    return m, jac


def _solve(a: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Batched solve of small symmetric positive definite systems; singular ones give a zero step."""
    try:
        return np.linalg.solve(a, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        out = np.zeros_like(rhs)
        for i in range(a.shape[0]):  # rare fallback (a singular matrix somewhere in the batch)
            try:
                out[i] = np.linalg.solve(a[i], rhs[i])
            except np.linalg.LinAlgError:
                pass
        return out


def fit_full(
    y: np.ndarray,
    b: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    theta0: np.ndarray,
    max_iter: int = 60,
    rtol: float = 1e-9,
) -> np.ndarray:
    """Bounded bi-exponential least squares by batched projected Levenberg-Marquardt from ``theta0``.

    ``theta0`` is ``[n_vox, 4]`` or ``[n_vox, n_starts, 4]``; with several starts the lowest-cost solution
    of each voxel is returned. Starts with f at (almost) zero get f = 0.02 (clipped to the bounds) so that
    D* is not stuck where the perfusion term vanishes.
    """
    if theta0.ndim == 3:
        n_vox, n_starts = theta0.shape[:2]
        starts = theta0.reshape(-1, 4).copy()
        starts[:, 1] = np.clip(np.maximum(starts[:, 1], 0.02), lower[1], upper[1])
        sol = fit_full(np.repeat(y, n_starts, axis=0), b, lower, upper, starts, max_iter, rtol)
        model, _ = _model_jac(sol / _SCALE, b * 1e-3, b * 1e-2, with_jac=False)
        cost = ((model - np.repeat(y, n_starts, axis=0)) ** 2).sum(1).reshape(n_vox, n_starts)
        return sol.reshape(n_vox, n_starts, 4)[np.arange(n_vox), np.argmin(cost, axis=1)]
    n, n_b = y.shape
    lo, hi = lower / _SCALE, upper / _SCALE
    span = hi - lo
    b_d, b_s = b * 1e-3, b * 1e-2
    theta = np.clip(theta0 / _SCALE, lo, hi)
    result = theta.copy()
    idx = np.arange(n)
    yw = y
    e, es = np.exp(-b_d * theta[:, 2:3]), np.exp(-b_s * theta[:, 3:4])
    r = theta[:, :1] * (theta[:, 1:2] * es + (1.0 - theta[:, 1:2]) * e) - yw
    cost = (r * r).sum(1)
    lam = np.full(n, 1e-3)
    eye = np.eye(4)
    pairs = [(i, j) for i in range(4) for j in range(i, 4)]
    for _ in range(max_iter):
        if idx.size == 0:
            break
        s0, f = theta[:, 0:1], theta[:, 1:2]
        jac = np.empty((4, idx.size, n_b))  # parameter-major: contiguous rows, cache friendly
        np.add(f * es, (1.0 - f) * e, out=jac[0])
        np.multiply(s0, es - e, out=jac[1])
        np.multiply(-s0 * (1.0 - f) * b_d, e, out=jac[2])
        np.multiply(-s0 * f * b_s, es, out=jac[3])
        jtj = np.empty((idx.size, 4, 4))
        for i, j in pairs:
            jtj[:, i, j] = jtj[:, j, i] = np.einsum("nb,nb->n", jac[i], jac[j])
        grad = np.einsum("anb,nb->na", jac, r)
        held = ((theta <= lo + 1e-12 * span) & (grad > 0)) | ((theta >= hi - 1e-12 * span) & (grad < 0))
        diag = np.diagonal(jtj, axis1=1, axis2=2)
        damp = lam[:, None] * (diag + 1e-9 * diag.max(1, keepdims=True) + 1e-15)
        free = ~held
        mat = jtj * (free[:, :, None] & free[:, None, :]) + eye * np.where(free, damp, 1.0)[:, None, :]
        step = _solve(mat, -grad * free)
        trial = np.clip(theta + step, lo, hi)
        e_t, es_t = np.exp(-b_d * trial[:, 2:3]), np.exp(-b_s * trial[:, 3:4])
        r_t = trial[:, :1] * (trial[:, 1:2] * es_t + (1.0 - trial[:, 1:2]) * e_t) - yw
        cost_t = (r_t * r_t).sum(1)
        accept = cost_t < cost
        gain = cost - cost_t
        small = (np.abs(trial - theta) <= 1e-10 * (1.0 + np.abs(theta))).all(1)
        done = (accept & (gain <= rtol * cost + 1e-24)) | (lam > 1e10) | small
        acc = accept[:, None]
        theta = np.where(acc, trial, theta)
        r = np.where(acc, r_t, r)
        e = np.where(acc, e_t, e)
        es = np.where(acc, es_t, es)
        cost = np.where(accept, cost_t, cost)
        lam = np.where(accept, np.maximum(lam * 0.2, 1e-9), lam * 10.0)
        if done.any():
            result[idx[done]] = theta[done]
            keep = ~done
            idx, theta, r, e, es = idx[keep], theta[keep], r[keep], e[keep], es[keep]
            cost, lam, yw = cost[keep], lam[keep], yw[keep]
    result[idx] = theta
    return np.clip(result * _SCALE, lower, upper)


def _reflect(x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    width = hi - lo
    u = np.mod(x - lo, 2.0 * width)
    return lo + np.where(u > width, 2.0 * width - u, u)


def fit_bayesian(
    y: np.ndarray,
    b: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    theta_ls: np.ndarray,
    n_burn: int = 500,
    n_samples: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mean and SD ``([n_vox, 4], [n_vox, 4])`` under bounded flat priors, noise marginalised."""
    n, n_b = y.shape
    rng = np.random.default_rng(seed)
    lo, hi = lower / _SCALE, upper / _SCALE
    span = hi - lo
    b_d, b_s = b * 1e-3, b * 1e-2
    theta = np.clip(theta_ls / _SCALE, lo, hi)
    m, jac = _model_jac(theta, b_d, b_s)
    sse = ((m - y) ** 2).sum(1)
    # proposal: Laplace covariance sigma^2 (J^T J)^-1, regularised, each SD capped to a third of the range
    sigma2 = np.maximum(sse / max(n_b - 4, 1), 1e-10)
    jtj = np.matmul(jac, jac.transpose(0, 2, 1))
    jtj = jtj + np.eye(4) * (1e-6 * np.diagonal(jtj, axis1=1, axis2=2).max(1)[:, None, None] + 1e-12)
    cov = _inverse_or_diag(jtj) * sigma2[:, None, None]
    sd = np.sqrt(np.maximum(np.diagonal(cov, axis1=1, axis2=2), 1e-30))
    cap = np.minimum(sd, span / 3.0) / sd
    cov = cov * cap[:, :, None] * cap[:, None, :] + np.eye(4) * (1e-10 * span * span)
    chol = np.linalg.cholesky(cov)
    scale = np.full(n, 2.38 / 2.0)  # 2.38 / sqrt(dim)
    logp = -0.5 * n_b * np.log(np.maximum(sse, 1e-300))
    total = np.zeros((n, 4))
    total2 = np.zeros((n, 4))
    accepted = np.zeros(n)
    for it in range(n_burn + n_samples):
        z = rng.standard_normal((n, 4))
        prop = _reflect(theta + scale[:, None] * np.matmul(chol, z[..., None])[..., 0], lo, hi)
        m_p, _ = _model_jac(prop, b_d, b_s, with_jac=False)
        logp_p = -0.5 * n_b * np.log(np.maximum(((m_p - y) ** 2).sum(1), 1e-300))
        accept = np.log(rng.random(n)) < logp_p - logp
        theta = np.where(accept[:, None], prop, theta)
        logp = np.where(accept, logp_p, logp)
        if it < n_burn:
            accepted += accept
            if (it + 1) % 50 == 0:  # tune each voxel's step size towards ~25 % acceptance
                rate = accepted / 50.0
                scale = scale * np.where(rate < 0.15, 0.6, np.where(rate > 0.4, 1.6, 1.0))
                accepted[:] = 0.0
        else:
            total += theta
            total2 += theta * theta
    mean = total / n_samples
    sd = np.sqrt(np.maximum(total2 / n_samples - mean * mean, 0.0))
    return np.clip(mean * _SCALE, lower, upper), sd * _SCALE


def _inverse_or_diag(a: np.ndarray) -> np.ndarray:
    try:
        return np.linalg.inv(a)
    except np.linalg.LinAlgError:
        return np.eye(4) / np.diagonal(a, axis1=1, axis2=2)[:, :, None]
