"""Synthetic marrow MR spectra with known truth (multi-TE STEAM, triglyceride fat, Lorentzian lines), and the
Monte-Carlo of the fit against it (:func:`run_condition`).

Noise: complex Gaussian, scaled per spectrum so that ``SNR`` = the largest peak magnitude of the first
echo's noise-free spectrum ``|fft(fid)|`` divided by the noise SD of the real part of the spectrum
(``sigma_t * sqrt(N / 2)`` for complex time-domain noise of variance ``sigma_t^2`` per point).
"""

from __future__ import annotations

import numpy as np

from osteomri.models.mrs import lm
from osteomri.models.mrs.model import MrsModel


def simulate_marrow_fids(model: MrsModel, n_points: int, *, pdff_percent, ndb, water_t2_ms, fat_t2_ms,
                         water_linewidth_hz, fat_linewidth_hz, phase_rad=0.0, shift_hz=0.0, snr=np.inf,
                         rng: np.random.Generator | None = None) -> tuple[np.ndarray, np.ndarray]:
    """FIDs ``(n, n_te, n_points)`` and their parameter rows ``(n, 9)`` (:data:`lm.PARAMS`); every keyword
    broadcasts to the number of spectra. Total proton signal W + F = 1."""
    args = np.broadcast_arrays(*(np.asarray(v, float) for v in (pdff_percent, ndb, water_t2_ms, fat_t2_ms,
                                                               water_linewidth_hz, fat_linewidth_hz,
                                                               phase_rad, shift_hz, snr)))
    args = [np.atleast_1d(a).ravel() for a in args]
    pdff, ndb_, t2w, t2f, lww, lwf, phi, dlt, snr_ = args
    theta = np.zeros((pdff.size, lm.N_PARAMS))
    theta[:, lm.W], theta[:, lm.F] = 1 - pdff / 100, pdff / 100
    theta[:, lm.R2W], theta[:, lm.R2F] = 1000 / t2w, 1000 / t2f
    theta[:, lm.PHI], theta[:, lm.DEL] = phi, dlt
    theta[:, lm.LWW], theta[:, lm.LWF], theta[:, lm.NDB] = lww, lwf, ndb_
    design = model.design(n_points)
    fids = lm.model_signal(theta, design)
    peak = np.abs(np.fft.fft(fids[:, 0], axis=-1)).max(-1)
    sigma = np.where(np.isfinite(snr_), peak / (snr_ * np.sqrt(n_points / 2)), 0.0)
    rng = np.random.default_rng() if rng is None else rng
    noise = rng.standard_normal(fids.shape) + 1j * rng.standard_normal(fids.shape)
    return fids + noise * (sigma / np.sqrt(2))[:, None, None], theta


# --- Monte-Carlo of the fit against known truth (the issue #17 conditions) -----------------------------------
# STEAM, 5 echoes TE 10-50 ms, 3 T (127.74 MHz) and 1.5 T (63.87 MHz), 1024 points at 0.5 ms dwell; per
# spectrum ndb ~ U(2.5, 3.5) (nmidb and CL by Hamilton's relations), water T2 ~ U(10, 45) ms, one fat T2
# ~ U(50, 70) ms, water and fat Lorentzian FWHM ~ U(10, 40) Hz each, phase ~ U(-pi, pi), shift ~ U(-0.1, 0.1)
# ppm. The Cramér–Rao bound of each spectrum is evaluated at its true parameters (full FID, known noise).

MC_TE_S = np.array([10, 20, 30, 40, 50]) * 1e-3
MC_FIELDS_MHZ = {"3T": 127.74, "1.5T": 63.87}
MC_N_POINTS, MC_DWELL_S = 1024, 5e-4


def true_crb(model: MrsModel, theta: np.ndarray, sigma2: np.ndarray, n_points: int) -> dict[str, np.ndarray]:
    """Cramér–Rao SDs of PDFF (points), water T2 (ms) and ndb at the true parameter rows ``theta`` (b, 9)
    for complex noise of variance ``sigma2`` (b,) per point."""
    design = model.design(n_points)
    clean = lm.model_signal(theta, design)
    y_t = np.ascontiguousarray(clean.transpose(0, 2, 1))
    energy = np.einsum("ben,ben->b", clean.conj(), clean).real
    _, hess, _ = lm.normal_equations(theta, y_t, energy, design, design.peak_matrix, model.free_parameters())
    cov = np.linalg.inv(hess) * (sigma2 / 2)[:, None, None]
    w, f = theta[:, lm.W], theta[:, lm.F]
    g = np.stack([-100 * f / (w + f) ** 2, 100 * w / (w + f) ** 2], 1)
    pdff = np.sqrt(np.einsum("bi,bij,bj->b", g, cov[:, :2, :2], g))
    return {"pdff": pdff, "water_t2": 1000 * np.sqrt(cov[:, lm.R2W, lm.R2W]) / theta[:, lm.R2W] ** 2,
            "ndb": np.sqrt(cov[:, lm.NDB, lm.NDB])}


def run_condition(field: str, pdff: float, snr: float, n: int, seed: int) -> dict[str, float]:
    """Fit ``n`` synthetic spectra of one condition (random generator ``seed``): per quantity (``pdff``,
    ``water_t2``, ``ndb``) the bias, spread (SD of the error), RMS error, RMS Cramér–Rao bound at the truth,
    RMS reported SD, relative bias / RMS relative error / relative CRB, and the number reported."""
    mhz = MC_FIELDS_MHZ[field]
    model = MrsModel(MC_TE_S, mhz, MC_DWELL_S)
    rng = np.random.default_rng(seed)
    truth = dict(pdff_percent=np.full(n, float(pdff)), ndb=rng.uniform(2.5, 3.5, n),
                 water_t2_ms=rng.uniform(10, 45, n), fat_t2_ms=rng.uniform(50, 70, n),
                 water_linewidth_hz=rng.uniform(10, 40, n), fat_linewidth_hz=rng.uniform(10, 40, n),
                 phase_rad=rng.uniform(-np.pi, np.pi, n), shift_hz=rng.uniform(-0.1, 0.1, n) * mhz)
    clean, theta = simulate_marrow_fids(model, MC_N_POINTS, **truth)
    fids, _ = simulate_marrow_fids(model, MC_N_POINTS, **truth, snr=snr, rng=rng)
    peak = np.abs(np.fft.fft(clean[:, 0], axis=-1)).max(-1)
    crb = true_crb(model, theta, (peak / (snr * np.sqrt(MC_N_POINTS / 2))) ** 2, MC_N_POINTS)
    fit = model.fit(fids)
    out: dict[str, float] = {"field": field, "pdff": pdff, "snr": snr, "n": n, "seed": seed,
                             "n_converged": fit.qc["n_converged"]}
    for key, est, true, sd in (
        ("pdff", fit.pdff_percent, truth["pdff_percent"], fit.sd["mrs_pdff_percent_sd"]),
        ("water_t2", fit.water_t2_ms, truth["water_t2_ms"], fit.sd["water_t2_ms_sd"]),
        ("ndb", fit.ndb, truth["ndb"], fit.sd["ndb_sd"]),
    ):
        err = est - true
        ok = np.isfinite(err)
        e, rel = err[ok], err[ok] / true[ok]
        out[f"{key}_n"] = int(ok.sum())
        out[f"{key}_bias"] = float(e.mean()) if e.size else np.nan
        out[f"{key}_spread"] = float(e.std(ddof=1)) if e.size > 1 else np.nan
        out[f"{key}_rmse"] = float(np.sqrt(np.mean(e**2))) if e.size else np.nan
        out[f"{key}_crb"] = float(np.sqrt(np.mean(crb[key] ** 2)))
        out[f"{key}_sd"] = float(np.sqrt(np.mean(sd[ok] ** 2))) if e.size else np.nan
        out[f"{key}_rel_bias"] = float(rel.mean()) if e.size else np.nan
        out[f"{key}_rel_rmse"] = float(np.sqrt(np.mean(rel**2))) if e.size else np.nan
        out[f"{key}_rel_crb"] = float(np.sqrt(np.mean((crb[key] / true) ** 2)))
    return out
