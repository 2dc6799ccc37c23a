"""Obuchowski variance/covariance of AUCs and the power and sample size of ROC tests (pROC conventions).

Formulas
--------
- One AUC against 0.5 (Obuchowski, Lieber & Wians 2004, Clin Chem 50:1118, formula 3 p. 1123; Obuchowski &
  McClish 1997, Stat Med 16:1529): V(θ) = 0.0099·e^(−A²/2)·[(5A² + 8) + (A² + 8)/κ] with A = 1.414·Φ⁻¹(θ) and
  κ = n_controls/n_cases (the printed constants 0.0099 ≈ 1/(32π) and 1.414 ≈ √2 are kept, as pROC does).
  Power = Φ[(√n_cases·|θ − 0.5| − z_{1−α/2}·√V(0.5)) / √V(θ)].
- Binormal variance and covariance of (partial) AUCs (Obuchowski & McClish 1997, eqs. 4–5 and Table 1):
  V = f²(1 + B²/κ + A²/2) + g²·B²(1 + κ)/(2κ);
  C = f₁f₂(r_a + r_n B₁B₂/κ + r_a² A₁A₂/2) + g₁g₂·B₁B₂(r_n² + κ r_a²)/(2κ) + f₁g₂ r_a² A₁B₂/2 + f₂g₁ r_a² A₂B₁/2,
  with f, g the derivatives of the (partial) binormal area with respect to A and B, r_a and r_n the
  correlations of the two tests in cases and in controls. Values are per case (divide by n_cases).
  For observed ROC curves A and B are the coefficients of the binormal fit z(Sp) = a + b·z(Se)
  (:func:`osteomri.stats.smooth.binormal_fit`), as pROC's ``cov(method="obuchowski")`` uses them.
- Two paired AUCs (Obuchowski & McClish 1997): with V_A = V₁ + V₂ − 2C (alternative) and V₀ = 2V₁ − 2C
  (null: both curves as the first), power = Φ[(√n_cases·|Δ| − z_{1−α/2}√V₀) / √V_A] and
  n_cases = [(z_{1−α/2}√V₀ + z_{power}√V_A)/Δ]². With ``method="delong"`` the per-case variances are the
  DeLong (1988) variances and covariance times n_cases.
Any one of n_cases, AUC (or Δ), significance level and power may be left out and is solved for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from osteomri.errors import InputError
from osteomri.stats.roc import _prepare, delong_test, roc_analysis
from osteomri.stats.smooth import binormal_fit

__all__ = [
    "PowerResult",
    "cov_obuchowski",
    "binormal_auc_covariance",
    "binormal_auc_variance",
    "power_roc_test",
    "power_roc_test_paired",
    "power_roc_test_params",
    "power_roc_test_roc",
    "var_obuchowski",
    "var_theta_obuchowski",
]


# ------------------------------------------------------------------ binormal building blocks
def _f_g(a: float, b: float, fpr: tuple[float, float] | None) -> tuple[float, float]:
    """∂AUC/∂A and ∂AUC/∂B of the binormal (partial) area (Obuchowski & McClish 1997, Table 1)."""
    s = 1.0 + b * b
    k = np.exp(-a * a / (2.0 * s))
    if fpr is None or (fpr[0] <= 0.0 and fpr[1] >= 1.0):
        return k / np.sqrt(2.0 * np.pi * s), -k * a * b / np.sqrt(2.0 * np.pi * s**3)
    e1, e2 = sorted(fpr)
    with np.errstate(divide="ignore"):
        c1 = (stats.norm.ppf(e1) + a * b / s) * np.sqrt(s)
        c2 = (stats.norm.ppf(e2) + a * b / s) * np.sqrt(s)
    dphi = stats.norm.cdf(c2) - stats.norm.cdf(c1)
    f = k / np.sqrt(2.0 * np.pi * s) * dphi
    g = k / (2.0 * np.pi * s) * (np.exp(-c1 * c1 / 2.0) - np.exp(-c2 * c2 / 2.0)) \
        - a * b * k / np.sqrt(2.0 * np.pi * s**3) * dphi
    return float(f), float(g)


def binormal_auc_variance(a: float, b: float, kappa: float, fpr: tuple[float, float] | None = None) -> float:
    """Per-case variance of a binormal (partial) AUC (Obuchowski & McClish 1997, eq. 4).

    ``kappa`` = n_controls/n_cases; ``fpr`` = (low, high) false-positive-rate range of a partial area.
    """
    if kappa <= 0:
        raise InputError(f"kappa must be positive, got {kappa}")
    f, g = _f_g(a, b, fpr)
    return f * f * (1.0 + b * b / kappa + a * a / 2.0) + g * g * b * b * (1.0 + kappa) / (2.0 * kappa)


def binormal_auc_covariance(a1: float, b1: float, a2: float, b2: float, rn: float, ra: float, kappa: float,
                          fpr1: tuple[float, float] | None = None,
                          fpr2: tuple[float, float] | None = None) -> float:
    """Per-case covariance of two binormal (partial) AUCs (Obuchowski & McClish 1997, eq. 5).

    ``rn``/``ra``: correlation of the two tests in controls/cases; ``kappa`` = n_controls/n_cases.
    """
    if kappa <= 0:
        raise InputError(f"kappa must be positive, got {kappa}")
    f1, g1 = _f_g(a1, b1, fpr1)
    f2, g2 = _f_g(a2, b2, fpr2)
    return (f1 * f2 * (ra + rn * b1 * b2 / kappa + ra * ra * a1 * a2 / 2.0)
            + g1 * g2 * (b1 * b2 * (rn * rn + kappa * ra * ra) / (2.0 * kappa))
            + f1 * g2 * (ra * ra * a1 * b2 / 2.0) + f2 * g1 * (ra * ra * a2 * b1 / 2.0))


def var_theta_obuchowski(theta: float, kappa: float) -> float:
    """Per-case variance of an AUC θ under the binormal model with B = 1 (Obuchowski 2004, formula 3)."""
    a = stats.norm.ppf(theta) * 1.414
    return 0.0099 * np.exp(-a * a / 2.0) * ((5.0 * a * a + 8.0) + (a * a + 8.0) / kappa)


def _pair_inputs(outcome, marker_a, marker_b, positive, nan_policy):
    y, cols, _ = _prepare(outcome, {"a": marker_a, "b": marker_b}, positive, nan_policy, "Obuchowski covariance")
    ra_, rb_ = (roc_analysis(y.is_case, cols[k], nan_policy=nan_policy) for k in ("a", "b"))
    xa, xb = cols["a"], cols["b"]
    r_cases = float(np.corrcoef(xa[y.is_case], xb[y.is_case])[0, 1])
    r_controls = float(np.corrcoef(xa[~y.is_case], xb[~y.is_case])[0, 1])
    return ra_, rb_, r_controls, r_cases


def var_obuchowski(outcome: Any, marker: Any, *, positive: Any = None,
                   nan_policy: Literal["omit", "raise"] = "omit") -> float:
    """Obuchowski variance of an observed AUC: binormal fit of the curve, eq. 4, divided by n_cases."""
    r = roc_analysis(outcome, marker, positive=positive, nan_policy=nan_policy)
    a, b = binormal_fit(r)
    return binormal_auc_variance(a, b, r.n_controls / r.n_cases) / r.n_cases


def cov_obuchowski(outcome: Any, marker_a: Any, marker_b: Any, *, positive: Any = None,
                   nan_policy: Literal["omit", "raise"] = "omit") -> float:
    """Obuchowski covariance of two paired AUCs (pROC ``cov(roc1, roc2, method="obuchowski")``).

    Binormal fits of both curves, Pearson correlations of the markers within cases and within controls,
    eq. 5 of Obuchowski & McClish (1997), divided by n_cases.
    """
    ra_, rb_, rn, rc = _pair_inputs(outcome, marker_a, marker_b, positive, nan_policy)
    a1, b1 = binormal_fit(ra_)
    a2, b2 = binormal_fit(rb_)
    return binormal_auc_covariance(a1, b1, a2, b2, rn, rc, ra_.n_controls / ra_.n_cases) / ra_.n_cases


# ------------------------------------------------------------------ power
@dataclass
class PowerResult:
    """Power / sample size of a ROC test; the solved-for quantity is named in ``solved``."""

    ncases: float
    ncontrols: float
    sig_level: float
    power: float
    auc: float | None = None  # one curve
    auc_a: float | None = None  # two curves
    auc_b: float | None = None
    delta: float | None = None
    method: str = "obuchowski"
    solved: str = "power"

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([self.__dict__])


def _power(n1: float, delta: float, v0: float, va: float, alpha: float) -> float:
    za = stats.norm.ppf(1.0 - alpha / 2.0)
    return float(stats.norm.cdf((np.sqrt(n1) * abs(delta) - za * np.sqrt(v0)) / np.sqrt(va)))


def _ncases(delta: float, v0: float, va: float, alpha: float, power: float) -> float:
    za, zb = stats.norm.ppf(1.0 - alpha / 2.0), stats.norm.ppf(power)
    return float(((za * np.sqrt(v0) + zb * np.sqrt(va)) / delta) ** 2)


def _zeroin(f, lo: float, hi: float, tol: float, maxit: int = 1000) -> float:
    """Brent's root finder (Brent 1973, ch. 4; the zeroin of Forsythe, Malcolm & Moler 1977) as R's uniroot."""
    eps = np.finfo(float).eps
    a, b = lo, hi
    fa, fb = f(a), f(b)
    c, fc = a, fa
    if fa == 0:
        return a
    if fb == 0:
        return b
    for _ in range(maxit):
        prev = b - a
        if abs(fc) < abs(fb):
            a, b, c = b, c, b
            fa, fb, fc = fb, fc, fb
        tol_act = 2 * eps * abs(b) + tol / 2
        new = (c - b) / 2
        if abs(new) <= tol_act or fb == 0:
            return b
        if abs(prev) >= tol_act and abs(fa) > abs(fb):
            cb = c - b
            if a == c:  # secant
                t1 = fb / fa
                p, q = cb * t1, 1 - t1
            else:  # inverse quadratic interpolation
                q, t1, t2 = fa / fc, fb / fc, fb / fa
                p = t2 * (cb * q * (q - t1) - (b - a) * (t1 - 1))
                q = (q - 1) * (t1 - 1) * (t2 - 1)
            if p > 0:
                q = -q
            else:
                p = -p
            if p < 0.75 * cb * q - abs(tol_act * q) / 2 and p < abs(prev * q / 2):
                new = p / q
        if abs(new) < tol_act:
            new = tol_act if new > 0 else -tol_act
        a, fa = b, fb
        b += new
        fb = f(b)
        if (fb > 0 and fc > 0) or (fb < 0 and fc < 0):
            c, fc = a, fa
    return b


def _check_prob(name: str, v: float | None) -> None:
    if v is not None and not 0.0 < v < 1.0:
        raise InputError(f"{name} must lie in (0, 1), got {v}")


def _kappa(ncases, ncontrols, kappa):
    if ncases is not None and ncontrols is not None:
        if ncases <= 0 or ncontrols <= 0:
            raise InputError(f"ncases and ncontrols must be positive, got {ncases}, {ncontrols}")
        return ncontrols / ncases
    if kappa is None or kappa <= 0:
        raise InputError("give ncases and ncontrols, or a positive kappa = ncontrols/ncases")
    return float(kappa)


def power_roc_test(
    *,
    auc: float | None = None,
    ncases: float | None = None,
    ncontrols: float | None = None,
    kappa: float | None = None,
    sig_level: float | None = 0.05,
    power: float | None = None,
    root_tol: float | None = None,
) -> PowerResult:
    """Power or sample size of the test of one AUC against 0.5 (Obuchowski 2004; pROC ``power.roc.test``).

    Give all but one of (``auc``, ``ncases`` [with ``ncontrols`` or ``kappa``], ``sig_level``, ``power``);
    the missing one is solved for. ``kappa`` = ncontrols/ncases. The AUC is solved from the sample-size
    power equation to machine precision by default; with ``root_tol`` it is found as pROC does, from the
    sample-size equation by Brent's method on (0.5, 1) stopped at ``root_tol``:
    ``root_tol=np.finfo(float).eps ** 0.25`` (R's ``uniroot`` default) reproduces pROC's printed value,
    which is only accurate to about 1e-5.
    """
    missing = [k for k, v in {"auc": auc, "ncases": ncases, "sig_level": sig_level, "power": power}.items()
               if v is None]
    if len(missing) != 1:
        raise InputError(f"exactly one of auc, ncases, sig_level, power must be None, got {missing or 'none'}")
    _check_prob("sig_level", sig_level)
    _check_prob("power", power)
    if auc is not None and not 0.5 < auc < 1.0:
        raise InputError(f"auc must lie in (0.5, 1), got {auc}")
    k = _kappa(ncases, ncontrols, kappa) if ncases is not None else _kappa(None, None, kappa)

    def pw(theta, n1, alpha):
        return _power(n1, theta - 0.5, var_theta_obuchowski(0.5, k), var_theta_obuchowski(theta, k), alpha)

    solved = missing[0]
    if solved == "power":
        power = pw(auc, ncases, sig_level)
    elif solved == "ncases":
        ncases = _ncases(auc - 0.5, var_theta_obuchowski(0.5, k), var_theta_obuchowski(auc, k), sig_level, power)
    elif solved == "sig_level":
        sig_level = float(optimize.brentq(lambda a: pw(auc, ncases, a) - power, 1e-12, 1 - 1e-12, xtol=1e-15))
    else:
        def excess_cases(theta):
            with np.errstate(all="ignore"):
                v0, va = var_theta_obuchowski(0.5, k), var_theta_obuchowski(theta, k)
                return _ncases(theta - 0.5, v0, va, sig_level, power) - ncases

        if root_tol is None:
            auc = float(optimize.brentq(lambda t: pw(t, ncases, sig_level) - power, 0.5 + 1e-12, 1 - 1e-12,
                                        xtol=1e-15))
        else:
            auc = float(_zeroin(excess_cases, 0.5, 1.0 - 1e-16, root_tol))
    return PowerResult(ncases=float(ncases), ncontrols=float(ncases * k), sig_level=float(sig_level),
                       power=float(power), auc=float(auc), method="obuchowski", solved=solved)


def _solve_two(delta, v0, va, ncases, k, sig_level, power, method, **extra) -> PowerResult:
    missing = [n for n, v in {"ncases": ncases, "sig_level": sig_level, "power": power}.items() if v is None]
    if len(missing) != 1:
        raise InputError(f"exactly one of ncases, sig_level, power must be None, got {missing or 'none'}")
    _check_prob("sig_level", sig_level)
    _check_prob("power", power)
    if delta == 0:
        raise InputError("the two AUCs are equal: no power to detect a difference")
    solved = missing[0]
    if solved == "power":
        power = _power(ncases, delta, v0, va, sig_level)
    elif solved == "ncases":
        ncases = _ncases(delta, v0, va, sig_level, power)
    else:
        sig_level = float(optimize.brentq(lambda a: _power(ncases, delta, v0, va, a) - power, 1e-12, 1 - 1e-12,
                                          xtol=1e-15))
    return PowerResult(ncases=float(ncases), ncontrols=float(ncases * k), sig_level=float(sig_level),
                       power=float(power), delta=float(delta), method=method, solved=solved, **extra)


def power_roc_test_params(
    a1: float, b1: float, a2: float, b2: float, rn: float, ra: float, delta: float, *,
    fpr1: tuple[float, float] | None = None,
    fpr2: tuple[float, float] | None = None,
    ncases: float | None = None,
    ncontrols: float | None = None,
    kappa: float = 1.0,
    sig_level: float | None = 0.05,
    power: float | None = None,
) -> PowerResult:
    """Power / sample size to detect a difference ``delta`` between two paired binormal (partial) AUCs.

    Obuchowski & McClish (1997): binormal parameters (A, B) of both tests, their correlations in controls
    (``rn``) and cases (``ra``), FPR ranges for partial areas. Leave one of ncases/sig_level/power as None.
    """
    k = ncontrols / ncases if ncases is not None and ncontrols is not None else kappa
    if k <= 0:
        raise InputError(f"kappa must be positive, got {k}")
    v1 = binormal_auc_variance(a1, b1, k, fpr1)
    v2 = binormal_auc_variance(a2, b2, k, fpr2)
    c = binormal_auc_covariance(a1, b1, a2, b2, rn, ra, k, fpr1, fpr2)
    return _solve_two(delta, 2 * v1 - 2 * c, v1 + v2 - 2 * c, ncases, k, sig_level, power, "obuchowski")


def power_roc_test_paired(
    outcome: Any,
    marker_a: Any,
    marker_b: Any,
    *,
    method: Literal["delong", "obuchowski"] = "delong",
    ncases: float | None = None,
    ncontrols: float | None = None,
    sig_level: float | None = 0.05,
    power: float | None = None,
    positive: Any = None,
    nan_policy: Literal["omit", "raise"] = "omit",
) -> PowerResult:
    """Power of (or sample size for) the paired comparison of two observed ROC curves.

    The effect is the observed difference of the AUCs, the per-case variances come from DeLong (1988) or
    from the Obuchowski & McClish (1997) binormal model; ``kappa`` is the observed ncontrols/ncases. By
    default the power at the observed sample size is returned; give ``power`` (and ``ncases=None``) for
    the sample size.
    """
    ra_, rb_, rn, rc = _pair_inputs(outcome, marker_a, marker_b, positive, nan_policy)
    n1, k = ra_.n_cases, ra_.n_controls / ra_.n_cases
    if ncases is not None and ncontrols is not None:
        k = _kappa(ncases, ncontrols, None)
    elif ncases is None and power is None:
        ncases = n1
    delta = ra_.auc - rb_.auc
    if method == "delong":
        t = delong_test(outcome, marker_a, marker_b, positive=positive, nan_policy=nan_policy)
        v1, v2, c = ra_.auc_var * n1, rb_.auc_var * n1, t.covariance * n1
    elif method == "obuchowski":
        a1, b1 = binormal_fit(ra_)
        a2, b2 = binormal_fit(rb_)
        v1 = binormal_auc_variance(a1, b1, k)
        v2 = binormal_auc_variance(a2, b2, k)
        c = binormal_auc_covariance(a1, b1, a2, b2, rn, rc, k)
    else:
        raise InputError(f"method must be 'delong' or 'obuchowski', got {method!r}")
    return _solve_two(delta, 2 * v1 - 2 * c, v1 + v2 - 2 * c, ncases, k, sig_level, power, method,
                      auc_a=ra_.auc, auc_b=rb_.auc)


def power_roc_test_roc(outcome: Any, marker: Any, *, ncases: float | None = None, ncontrols: float | None = None,
                       kappa: float | None = None, sig_level: float | None = 0.05, power: float | None = None,
                       positive: Any = None) -> PowerResult:
    """:func:`power_roc_test` with the AUC (and by default the sample sizes) of an observed ROC curve."""
    r = roc_analysis(outcome, marker, positive=positive)
    if power is None and ncases is None:
        ncases, ncontrols = r.n_cases, r.n_controls
    if kappa is None and ncontrols is None:
        kappa = r.n_controls / r.n_cases
    return power_roc_test(auc=r.auc, ncases=ncases, ncontrols=ncontrols, kappa=kappa, sig_level=sig_level,
                          power=power)
