"""Magnitude-only water–fat fitting, for data exported without phase.

Model (Bydder et al., MRI 2008;26:347; Hernando et al., MRM 2012;67:638 "magnitude fitting"):

    |s(t)| = |W + F c(t)| exp(-R2* t),   W, F >= 0 real

The field map drops out. Water- and fat-dominant solutions are nearly symmetric (the "magnitude
ambiguity"); the multi-peak fat spectrum breaks the symmetry only weakly, so the fit is started from both a
water-dominant and a fat-dominant guess and the solution with the lower residual is kept, after a median
vote over each voxel's 3x3x3 neighbourhood of the residual difference (a light spatial prior).
Levenberg–Marquardt over all voxels at once (3x3 batched solves).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def _lm_magnitude(mag, te, c, w, f, r2, n_iter, r2_max):
    lam = np.full(mag.shape[0], 1e-2)

    def model(w, f, r2):
        z = w[:, None] + f[:, None] * c
        az = np.maximum(np.abs(z), 1e-12)
        dec = np.exp(-r2[:, None] * te)
        return z, az, dec, az * dec

    z, az, dec, m = model(w, f, r2)
    cost = ((mag - m) ** 2).sum(1)
    for _ in range(n_iter):
        dw = (z.real / az) * dec
        df = ((z.conj() * c).real / az) * dec
        dr = -te * m
        jac = np.stack([dw, df, dr], axis=2)
        r = mag - m
        jtj = np.einsum("vni,vnj->vij", jac, jac)
        jtr = np.einsum("vni,vn->vi", jac, r)
        diag = np.einsum("vii->vi", jtj)
        a = jtj + (lam[:, None] * (diag + 1e-12))[:, :, None] * np.eye(3)
        step = np.linalg.solve(a, jtr[..., None])[..., 0]
        step = np.where(np.isfinite(step), step, 0.0)
        w_n = np.maximum(w + step[:, 0], 0.0)
        f_n = np.maximum(f + step[:, 1], 0.0)
        r2_n = np.clip(r2 + step[:, 2], 0.0, r2_max)
        zn, azn, decn, mn = model(w_n, f_n, r2_n)
        cost_n = ((mag - mn) ** 2).sum(1)
        ok = cost_n < cost
        w, f, r2 = np.where(ok, w_n, w), np.where(ok, f_n, f), np.where(ok, r2_n, r2)
        cost = np.where(ok, cost_n, cost)
        z = np.where(ok[:, None], zn, z)
        az = np.where(ok[:, None], azn, az)
        dec = np.where(ok[:, None], decn, dec)
        m = np.where(ok[:, None], mn, m)
        lam = np.where(ok, lam * 0.3, lam * 10.0)
    return w, f, r2, cost


def fit_magnitude(magnitude: np.ndarray, te_s: np.ndarray, fat_signal: np.ndarray, shape: tuple[int, ...],
                  index: np.ndarray, r2star_max_hz: float = 1000.0, n_iter: int = 30,
                  chunk_voxels: int = 65536) -> dict[str, np.ndarray]:
    """Fit ``magnitude`` [n_vox, n] (voxels ``index`` of a grid of ``shape``); returns W, F, R2*, residual."""
    te = np.asarray(te_s, float)
    c = np.asarray(fat_signal, complex)
    n_vox = magnitude.shape[0]
    sols = []
    for fat_dominant in (False, True):
        res = {k: np.empty(n_vox) for k in ("water", "fat", "r2star_hz", "residual")}
        for start in range(0, n_vox, chunk_voxels):
            sl = slice(start, min(start + chunk_voxels, n_vox))
            mag = magnitude[sl].astype(float)
            s0 = mag[:, 0] * np.exp(te[0] * 30.0)
            w0, f0 = (0.1 * s0, 0.9 * s0) if fat_dominant else (0.9 * s0, 0.1 * s0)
            w, f, r2, cost = _lm_magnitude(mag, te, c, w0, f0, np.full(mag.shape[0], 30.0), n_iter, r2star_max_hz)
            res["water"][sl], res["fat"][sl], res["r2star_hz"][sl], res["residual"][sl] = w, f, r2, cost
        sols.append(res)
    # vote: residual difference (water-start minus fat-start), median over the neighbourhood
    diff = np.zeros(int(np.prod(shape)))
    diff[index] = sols[0]["residual"] - sols[1]["residual"]
    diff = ndimage.median_filter(diff.reshape(shape), size=3, mode="nearest").ravel()[index]
    use_fat = diff > 0
    return {k: np.where(use_fat, sols[1][k], sols[0][k]) for k in sols[0]}
