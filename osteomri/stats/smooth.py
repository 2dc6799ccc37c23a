"""Smoothed ROC curves: binormal and kernel-density smoothing (pROC ``smooth.roc`` conventions).

- **Binormal** (Dorfman & Alf 1969; Hanley 1988, Med Decis Making 8:197): the empirical ROC points are
  mapped to normal deviates and a straight line is fitted by ordinary least squares,
  ``z(Sp) = a + b·z(Se)`` with ``z = Φ⁻¹``; points where Se or Sp is 0 or 1 (infinite deviates) are left
  out. This is pROC's parametrisation (its ``smooth(method="binormal")$model``); the usual binormal
  parameters of ``z(Se) = A + B·z(FPR)`` are ``A = −a/b`` and ``B = −1/b``, and the smoothed AUC is the
  binormal area ``Φ(A / √(1 + B²))``.
- **Density** (Zhou, McClish & Obuchowski 2002, ch. 4; Lloyd 1998, JASA 93:1356): Gaussian kernel
  densities of the controls and of the cases on a common grid of ``n`` points spanning the pooled range ±
  3 bandwidths; the bandwidth is Silverman's rule of thumb on the pooled values (R ``bw.nrd0``; Silverman
  1986, eq. 3.31) times ``adjust``. The densities are computed as R's ``density()`` does (R ≤ 4.3 grid:
  linear binning on 2n cells over the range ± 4 bandwidths, FFT convolution, linear interpolation), so the
  curve matches pROC's to machine precision. Se and Sp are the normalised cumulative sums of the two
  densities, and the AUC is the trapezoidal area under the smoothed curve.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from osteomri.errors import InputError
from osteomri.stats.roc import Direction, RocResult, _auto_direction, _prepare, roc_analysis

__all__ = ["SmoothRocResult", "binormal_fit", "bw_nrd0", "kernel_density", "smooth_roc"]


@dataclass
class SmoothRocResult:
    """A smoothed ROC curve: ``curve`` has columns sensitivity, specificity (Sp increasing)."""

    auc: float
    method: str
    n_cases: int
    n_controls: int
    direction: str
    a: float | None = None  # binormal: z(Sp) = a + b z(Se)
    b: float | None = None
    bandwidth: float | None = None  # density
    curve: pd.DataFrame = field(default=None, repr=False)
    n_dropped: int = 0

    @property
    def binormal_params(self) -> tuple[float, float] | None:
        """(A, B) of the conventional form z(Se) = A + B·z(1 − Sp), or None for density smoothing."""
        if self.a is None or self.b is None:
            return None
        return -self.a / self.b, -1.0 / self.b


def binormal_fit(roc: RocResult) -> tuple[float, float]:
    """OLS fit ``z(Sp) = a + b·z(Se)`` over the finite empirical ROC points (pROC's binormal model).

    Returns ``(a, b)``. Raises :class:`InputError` when fewer than two points have finite deviates.
    """
    se = roc.curve["sensitivity"].to_numpy(float)
    sp = roc.curve["specificity"].to_numpy(float)
    with np.errstate(divide="ignore"):
        zse, zsp = stats.norm.ppf(se), stats.norm.ppf(sp)
    ok = np.isfinite(zse) & np.isfinite(zsp)
    if ok.sum() < 2 or np.ptp(zse[ok]) == 0:
        raise InputError(f"ROC curve of {roc.marker_name} cannot be smoothed: fewer than two interior points")
    b, a = np.polyfit(zse[ok], zsp[ok], 1)
    return float(a), float(b)


def bw_nrd0(x: Any) -> float:
    """Silverman's rule-of-thumb bandwidth 0.9·min(SD, IQR/1.34)·n^(−1/5) (R ``bw.nrd0``; Silverman 1986)."""
    x = np.asarray(x, dtype=float)
    if x.size < 2:
        raise InputError("bandwidth needs at least two observations")
    hi = float(np.std(x, ddof=1))
    q1, q3 = np.quantile(x, [0.25, 0.75])  # R quantile type 7
    lo = min(hi, (q3 - q1) / 1.34)
    if not lo:
        lo = hi or abs(float(x[0])) or 1.0
    return 0.9 * lo * x.size ** -0.2


def kernel_density(x: Any, bw: float, n: int, start: float, stop: float) -> np.ndarray:
    """Gaussian kernel density of ``x`` at ``n`` equally spaced points from ``start`` to ``stop``.

    Computed as R's ``density.default`` (R ≤ 4.3): the data are linearly binned with weights 1/len(x) on
    a grid of max(n, 512) points (a power of two above 512) spanning ``start − 4·bw`` to ``stop + 4·bw``,
    convolved with the kernel by FFT (circular over twice the grid), clipped at 0 and linearly interpolated
    at the requested points.
    """
    x = np.asarray(x, dtype=float)
    m = max(int(n), 512)
    if m > 512:
        m = 2 ** int(np.ceil(np.log2(m)))
    lo, up = start - 4.0 * bw, stop + 4.0 * bw
    delta = (up - lo) / (m - 1)
    pos = (x - lo) / delta
    ix = np.floor(pos).astype(np.int64)
    fx = pos - ix
    w = 1.0 / x.size
    binned = np.zeros(2 * m)
    inner = (ix >= 0) & (ix <= m - 2)
    np.add.at(binned, ix[inner], w * (1.0 - fx[inner]))
    np.add.at(binned, ix[inner] + 1, w * fx[inner])
    np.add.at(binned, np.zeros(int((ix == -1).sum()), np.int64), w * fx[ix == -1])
    edge = ix == m - 1
    np.add.at(binned, ix[edge], w * (1.0 - fx[edge]))
    kords = np.linspace(0.0, 2.0 * (up - lo), 2 * m)
    kords[m + 1:] = -kords[m - 1:0:-1]
    kernel = stats.norm.pdf(kords, scale=bw)
    dens = np.fft.ifft(np.fft.fft(binned) * np.conj(np.fft.fft(kernel))).real[:m]
    dens = np.maximum(dens, 0.0)
    return np.interp(np.linspace(start, stop, int(n)), np.linspace(lo, up, m), dens)


def smooth_roc(
    outcome: Any,
    marker: Any,
    *,
    method: Literal["binormal", "density"] = "binormal",
    n: int = 512,
    bw: Literal["nrd0"] | float = "nrd0",
    adjust: float = 1.0,
    positive: Any = None,
    direction: Direction = "auto",
    nan_policy: Literal["omit", "raise"] = "omit",
) -> SmoothRocResult:
    """Smoothed ROC curve of one marker and its AUC (pROC ``smooth(roc, method=...)``; see module docstring).

    ``n`` is the number of smoothed points; ``bw`` ("nrd0" or a number) and ``adjust`` set the kernel
    bandwidth for ``method="density"``.
    """
    if n < 2:
        raise InputError(f"n must be at least 2, got {n}")
    roc = roc_analysis(outcome, marker, positive=positive, direction=direction, nan_policy=nan_policy)
    if method == "binormal":
        a, b = binormal_fit(roc)
        with np.errstate(divide="ignore"):
            z = stats.norm.ppf(np.linspace(0.0, 1.0, n))
        se, sp = stats.norm.cdf(z), stats.norm.cdf(a + b * z)
        big_a, big_b = -a / b, -1.0 / b
        auc = float(stats.norm.cdf(big_a / np.sqrt(1.0 + big_b**2)))
        order = np.argsort(sp, kind="stable")
        curve = pd.DataFrame({"sensitivity": se[order], "specificity": sp[order]})
        return SmoothRocResult(auc=auc, method=method, n_cases=roc.n_cases, n_controls=roc.n_controls,
                               direction=roc.direction, a=a, b=b, curve=curve, n_dropped=roc.n_dropped)
    if method != "density":
        raise InputError(f"method must be 'binormal' or 'density', got {method!r}")
    if not adjust > 0:
        raise InputError(f"adjust must be positive, got {adjust}")
    name = "marker"
    y, cols, _ = _prepare(outcome, {name: marker}, positive, nan_policy, "smoothed ROC")
    x = cols[name]
    d = roc.direction if direction == "auto" else direction
    if d == "auto":
        d = _auto_direction(x, y.is_case)
    if bw == "nrd0":
        h = bw_nrd0(x)
    elif isinstance(bw, int | float) and bw > 0:
        h = float(bw)
    else:
        raise InputError(f"bw must be 'nrd0' or a positive number, got {bw!r}")
    h *= adjust
    start, stop = float(x.min()) - 3.0 * h, float(x.max()) + 3.0 * h
    dens_controls = kernel_density(x[~y.is_case], h, n, start, stop)
    dens_cases = kernel_density(x[y.is_case], h, n, start, stop)
    if d == ">":
        dens_controls, dens_cases = dens_controls[::-1], dens_cases[::-1]
    sp = np.concatenate(([0.0], np.cumsum(dens_controls) / dens_controls.sum()))
    se = np.concatenate(([1.0], 1.0 - np.cumsum(dens_cases) / dens_cases.sum()))
    auc = float(np.trapezoid(se, sp))
    curve = pd.DataFrame({"sensitivity": se, "specificity": sp})
    return SmoothRocResult(auc=auc, method=method, n_cases=roc.n_cases, n_controls=roc.n_controls,
                           direction=d, bandwidth=h, curve=curve, n_dropped=roc.n_dropped)
