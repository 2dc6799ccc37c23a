"""Compiled Levenberg–Marquardt for the mono- and bi-exponential UTE decay (one voxel at a time, in Numba).

Same algorithm and stopping rules as :func:`osteomri.models.lm.levenberg_marquardt` (Marquardt's diagonal
damping, box bounds by projection, a step kept only when it lowers the cost, stop when the relative decrease
falls below ``tol`` or the damping exceeds 1e8), specialised to S = sum_k A_k exp(-R_k TE) and, when
``sigma > 0``, its Rician expected magnitude read from the table of :mod:`.signal`. A per-voxel loop in
compiled code avoids the batched NumPy version's temporaries: it is the hot path of whole-volume UTE fits.
"""

from __future__ import annotations

import numpy as np

from osteomri.models.jit import compiled


@compiled
def _forward(th, te, k, sigma, snr_step, tab_mean, tab_deriv, f, jac):
    m = te.size
    n_tab = tab_mean.size
    for j in range(m):
        s = 0.0
        for c in range(k):
            e = np.exp(-th[k + c] * te[j])
            s += th[c] * e
            jac[j, c] = e
            jac[j, k + c] = -te[j] * th[c] * e
        if sigma > 0.0:
            x = s / sigma
            if x < 12.0:
                pos = x / snr_step
                i = int(pos)
                if i >= n_tab - 1:
                    i = n_tab - 2
                w = pos - i
                mean = sigma * (tab_mean[i] + w * (tab_mean[i + 1] - tab_mean[i]))
                d = tab_deriv[i] + w * (tab_deriv[i + 1] - tab_deriv[i])
            else:
                q = 1.0 / (x * x)
                mean = s * (1.0 + 0.5 * q + 0.125 * q * q)
                d = 1.0 - 0.5 * q - 0.375 * q * q
            f[j] = mean
            for p in range(2 * k):
                jac[j, p] *= d
        else:
            f[j] = s


@compiled
def _solve_small(a, g, out):
    """Gaussian elimination with partial pivoting of a small dense system (a and g are overwritten)."""
    n = g.size
    for col in range(n):
        piv = col
        best = abs(a[col, col])
        for r in range(col + 1, n):
            if abs(a[r, col]) > best:
                best = abs(a[r, col])
                piv = r
        if best == 0.0:
            return False
        if piv != col:
            for c in range(n):
                a[col, c], a[piv, c] = a[piv, c], a[col, c]
            g[col], g[piv] = g[piv], g[col]
        for r in range(col + 1, n):
            fac = a[r, col] / a[col, col]
            for c in range(col, n):
                a[r, c] -= fac * a[col, c]
            g[r] -= fac * g[col]
    for r in range(n - 1, -1, -1):
        acc = g[r]
        for c in range(r + 1, n):
            acc -= a[r, c] * out[c]
        out[r] = acc / a[r, r]
    return True


@compiled
def fit_multiexp(y, te, theta0, k, lower, upper, sigma, snr_step, tab_mean, tab_deriv, n_iter, tol):
    """Fit every row of ``y[n, m]``; returns theta [n, 2k], cost [n], jac [n, m, 2k] (at the solution)."""
    n, m = y.shape
    p = 2 * k
    theta = theta0.copy()
    cost = np.empty(n)
    jac_out = np.empty((n, m, p))
    f = np.empty(m)
    jac = np.empty((m, p))
    f_t = np.empty(m)
    jac_t = np.empty((m, p))
    a = np.empty((p, p))
    g = np.empty(p)
    delta = np.empty(p)
    trial = np.empty(p)
    for i in range(n):
        th = theta[i]
        for q in range(p):
            th[q] = min(max(th[q], lower[q]), upper[q])
        _forward(th, te, k, sigma, snr_step, tab_mean, tab_deriv, f, jac)
        c = 0.0
        for j in range(m):
            c += (y[i, j] - f[j]) ** 2
        lam = 1e-3
        for _ in range(n_iter):
            for q in range(p):
                acc = 0.0
                for j in range(m):
                    acc += jac[j, q] * (y[i, j] - f[j])
                g[q] = acc
                for r in range(p):
                    acc = 0.0
                    for j in range(m):
                        acc += jac[j, q] * jac[j, r]
                    a[q, r] = acc
            for q in range(p):
                a[q, q] += lam * max(a[q, q], 1e-30)
            if not _solve_small(a, g, delta):
                break
            for q in range(p):
                trial[q] = min(max(th[q] + delta[q], lower[q]), upper[q])
            _forward(trial, te, k, sigma, snr_step, tab_mean, tab_deriv, f_t, jac_t)
            c_t = 0.0
            for j in range(m):
                c_t += (y[i, j] - f_t[j]) ** 2
            if c_t < c:
                rel = (c - c_t) / max(c, 1e-300)
                for q in range(p):
                    th[q] = trial[q]
                for j in range(m):
                    f[j] = f_t[j]
                    for q in range(p):
                        jac[j, q] = jac_t[j, q]
                c = c_t
                lam = max(lam / 3.0, 1e-9)
                if rel < tol:
                    break
            else:
                lam *= 4.0
                if lam > 1e8:
                    break
        cost[i] = c
        for j in range(m):
            for q in range(p):
                jac_out[i, j, q] = jac[j, q]
    return theta, cost, jac_out
