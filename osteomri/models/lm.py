"""Batched Levenberg–Marquardt: many small least-squares problems solved together, no per-voxel loop.

``levenberg_marquardt(model, theta0, y, lower, upper)`` minimises ``sum((y - model(theta))**2)`` for every
row at once (Levenberg 1944; Marquardt 1963, with Marquardt's diagonal scaling), projected onto the box
``[lower, upper]``. The Jacobian is analytic when ``model`` returns it, else forward differences. Each row
keeps its own damping; a step is accepted per row only when it lowers that row's cost.

:func:`crlb_sd` turns the Jacobian at the solution into Cramér–Rao standard deviations for Gaussian noise
(Kay 1993, Fundamentals of Statistical Signal Processing I, ch. 3).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Model = Callable[[np.ndarray, np.ndarray], np.ndarray | tuple[np.ndarray, np.ndarray]]


def _evaluate(model: Model, theta: np.ndarray, rows: np.ndarray, lower: np.ndarray,
              upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = model(theta, rows)
    if isinstance(out, tuple):
        return out
    f0 = out
    jac = np.empty(f0.shape + (theta.shape[1],))
    span = upper - lower
    for k in range(theta.shape[1]):
        h = 1e-6 * np.maximum(np.abs(theta[:, k]), np.where(np.isfinite(span[k]), 1e-3 * span[k], 1e-6))
        h = np.maximum(h, 1e-12)
        step = np.where(theta[:, k] + h <= upper[k], h, -h)
        t = theta.copy()
        t[:, k] += step
        jac[..., k] = (model(t, rows) - f0) / step[:, None]
    return f0, jac


def _gram(j: np.ndarray) -> np.ndarray:
    """J^T J per row, ``[n, p, p]`` from ``[n, m, p]`` (p small: one product per parameter pair)."""
    p = j.shape[2]
    out = np.empty((j.shape[0], p, p))
    for a in range(p):
        for b in range(a, p):
            out[:, a, b] = out[:, b, a] = (j[:, :, a] * j[:, :, b]).sum(axis=1)
    return out


def levenberg_marquardt(model: Model, theta0: np.ndarray, y: np.ndarray, lower: np.ndarray, upper: np.ndarray,
                        *, n_iter: int = 50, tol: float = 1e-9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit ``theta[n, p]`` to ``y[n, m]``; returns (theta, cost = sum of squares [n], Jacobian [n, m, p]).

    ``model(theta, rows)`` returns the prediction ``[len(rows), m]`` or ``(prediction, jacobian [.., m, p])``
    for the problems ``rows`` (indices into the ``n`` problems, so that a model can read per-problem data such
    as an R1 map); row i of the output depends on row i of ``theta`` only.
    """
    lower = np.broadcast_to(np.asarray(lower, dtype=float), theta0.shape[1:])
    upper = np.broadcast_to(np.asarray(upper, dtype=float), theta0.shape[1:])
    theta = np.clip(np.asarray(theta0, dtype=float), lower, upper)
    y = np.asarray(y, dtype=float)
    n, p = theta.shape
    f, jac = _evaluate(model, theta, np.arange(n), lower, upper)
    r = y - f
    cost = np.einsum("nm,nm->n", r, r)
    lam = np.full(n, 1e-3)
    active = np.ones(n, dtype=bool)
    eye = np.eye(p)
    for _ in range(n_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        j, ri = jac[idx], r[idx]
        jtj = _gram(j)
        g = (j * ri[:, :, None]).sum(axis=1)
        diag = np.einsum("npp->np", jtj)
        a = jtj + (lam[idx, None] * np.maximum(diag, 1e-30))[:, :, None] * eye
        try:
            delta = np.linalg.solve(a, g[..., None])[..., 0]
        except np.linalg.LinAlgError:
            delta = np.linalg.lstsq(a.reshape(-1, p), g.reshape(-1), rcond=None)[0].reshape(-1, p)
        delta = np.nan_to_num(delta)
        trial = np.clip(theta[idx] + delta, lower, upper)
        f_t = model(trial, idx)
        f_t = f_t[0] if isinstance(f_t, tuple) else f_t
        r_t = y[idx] - f_t
        cost_t = np.einsum("nm,nm->n", r_t, r_t)
        better = np.isfinite(cost_t) & (cost_t < cost[idx])
        good = idx[better]
        if good.size:
            rel = (cost[good] - cost_t[better]) / np.maximum(cost[good], 1e-300)
            theta[good] = trial[better]
            cost[good] = cost_t[better]
            f_new, jac_new = _evaluate(model, theta[good], good, lower, upper)
            r[good] = y[good] - f_new
            jac[good] = jac_new
            lam[good] = np.maximum(lam[good] / 3.0, 1e-9)
            active[good[rel < tol]] = False
        bad = idx[~better]
        lam[bad] *= 4.0
        active[bad[lam[bad] > 1e8]] = False
    return theta, cost, jac


def crlb_covariance(jac: np.ndarray, noise_sd: np.ndarray | float) -> np.ndarray:
    """Cramér–Rao covariance ``[n, p, p]`` = sigma^2 (J^T J)^-1 (Gaussian noise); NaN where J^T J is singular."""
    jtj = _gram(jac)
    cov = np.full_like(jtj, np.nan)
    diag = np.sqrt(np.maximum(np.einsum("npp->np", jtj), 1e-300))
    scaled = jtj / (diag[:, :, None] * diag[:, None, :])  # unit diagonal: conditioning judged scale-free
    ok = np.isfinite(scaled).all(axis=(1, 2))
    ok[ok] = np.linalg.cond(scaled[ok]) < 1e12
    if ok.any():
        cov[ok] = np.linalg.inv(scaled[ok]) / (diag[ok, :, None] * diag[ok, None, :])
    return cov * np.asarray(noise_sd, dtype=float).reshape(-1, 1, 1) ** 2


def crlb_sd(jac: np.ndarray, noise_sd: np.ndarray | float) -> np.ndarray:
    """Cramér–Rao standard deviations ``[n, p]``: sqrt(diag(sigma^2 (J^T J)^-1)); NaN where singular."""
    var = np.einsum("npp->np", crlb_covariance(jac, noise_sd))
    return np.sqrt(np.where(var >= 0, var, np.nan))
