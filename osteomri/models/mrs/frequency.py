"""Frequency-domain fit of separate peaks to a phased real spectrum (e.g. an LCModel-processed spectrum).

Each peak is a Voigt line of unit area (``scipy.special.voigt_profile``: Lorentzian half width ``gamma`` and
Gaussian SD ``sigma``, both in ppm and shared by all peaks), at its nominal position plus a common shift; the
baseline is a polynomial (default linear) over the window. Areas and baseline enter linearly (variable
projection, Golub & Pereyra 1973); the three nonlinear parameters by ``scipy.optimize.least_squares`` (one
spectrum: not a hot path). Area SDs from the linear least-squares covariance with the residual variance.

:data:`LCMODEL_LIPIDS_PPM`: the lipid components of LCModel's liver/muscle basis named by their nominal
chemical shift (Lip09 = 0.9 ppm, ..., as in the LCModel manual), for reproducing LCModel's lipid ratios.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from osteomri.errors import InputError

LCMODEL_LIPIDS_PPM = {"Lip09": 0.9, "Lip13": 1.3, "Lip16": 1.6, "Lip21": 2.1, "Lip23": 2.3, "Lip28": 2.8}


@dataclass
class PeakFit:
    areas: dict[str, float]
    area_sd: dict[str, float]
    shift_ppm: float
    lorentz_hwhm_ppm: float
    gauss_sd_ppm: float
    fitted: np.ndarray
    baseline: np.ndarray
    components: dict[str, np.ndarray]

    def ratios(self, denominator: tuple[str, ...]) -> dict[str, float]:
        """Area of each peak divided by the summed areas of ``denominator`` (LCModel's ratio column)."""
        den = sum(self.areas[k] for k in denominator)
        return {k: v / den for k, v in self.areas.items()}


def fit_peaks(ppm: np.ndarray, spectrum: np.ndarray, peaks: Mapping[str, float], *, baseline_degree: int = 1,
              max_shift_ppm: float = 0.1) -> PeakFit:
    """Fit Voigt peaks at ``peaks`` ({name: ppm}) plus a polynomial baseline to the real ``spectrum`` on ``ppm``."""
    from scipy.optimize import least_squares
    from scipy.special import voigt_profile

    ppm = np.asarray(ppm, float)
    y = np.asarray(spectrum, float)
    if ppm.shape != y.shape or ppm.ndim != 1 or ppm.size < 3 * (len(peaks) + baseline_degree + 1):
        raise InputError(f"need equally long 1-D ppm axis and spectrum with enough points, got {ppm.shape} and "
                         f"{y.shape}")
    if not (np.all(np.isfinite(ppm)) and np.all(np.isfinite(y))):
        raise InputError("the spectrum or its ppm axis holds NaN/inf")
    names = list(peaks)
    centre = np.array([peaks[k] for k in names])
    z = (ppm - ppm.mean()) / max(np.ptp(ppm), 1e-12)
    poly = np.stack([z**d for d in range(baseline_degree + 1)], 1)

    def design(p):
        shift, gamma, sigma = p
        lines = voigt_profile(ppm[:, None] - (centre[None, :] + shift), sigma, gamma)
        return np.concatenate([lines, poly], 1)

    def residual(p):
        a = design(p)
        coef, *_ = np.linalg.lstsq(a, y, rcond=None)
        return a @ coef - y

    step = np.abs(np.median(np.diff(ppm)))
    best = None
    for x0 in ([0.0, 0.05, 0.05], [0.0, 0.01, 0.1], [0.0, 0.1, 0.01]):
        r = least_squares(residual, x0, bounds=([-max_shift_ppm, step / 10, step / 10], [max_shift_ppm, 1.0, 1.0]))
        if best is None or r.cost < best.cost:
            best = r
    a = design(best.x)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    res = a @ coef - y
    sigma2 = float(res @ res) / max(y.size - a.shape[1] - 3, 1)
    cov = np.linalg.pinv(a.T @ a) * sigma2
    k = len(names)
    return PeakFit(areas=dict(zip(names, coef[:k].tolist(), strict=True)),
                   area_sd=dict(zip(names, np.sqrt(np.diag(cov))[:k].tolist(), strict=True)),
                   shift_ppm=float(best.x[0]), lorentz_hwhm_ppm=float(best.x[1]), gauss_sd_ppm=float(best.x[2]),
                   fitted=a @ coef, baseline=poly @ coef[k:],
                   components={n: a[:, i] * coef[i] for i, n in enumerate(names)})
