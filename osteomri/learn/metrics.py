"""Performance of predicted probabilities: discrimination (via :mod:`osteomri.stats`), calibration, net benefit.

- AUC with DeLong CI: :func:`osteomri.stats.roc_analysis` (DeLong et al. 1988).
- Sensitivity / specificity at a pre-specified probability threshold with Clopper–Pearson CIs
  (:func:`osteomri.stats.proportion_ci`).
- Calibration slope and intercept (Cox 1958; Van Calster et al. 2019, *BMC Med* 17:230): logistic recalibration
  ``logit P(y=1) = a + b·logit(p)`` gives the slope ``b`` (1 = ideal; < 1: predictions too extreme); the
  intercept (calibration-in-the-large) is ``a`` with ``b`` fixed at 1 (0 = ideal).
- Brier score (Brier 1950): mean of ``(p − y)²``.
- Decision-curve net benefit (Vickers & Elkin 2006, *Med Decis Making* 26:565): at threshold probability
  ``pt``, ``NB = TP/n − FP/n · pt/(1 − pt)``; "treat all" ``= prevalence − (1 − prevalence) · pt/(1 − pt)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from osteomri.errors import InputError
from osteomri.stats import proportion_ci, roc_analysis

_EPS = 1e-6


def _checked(y, p) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).astype(int)
    p = np.asarray(p, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise InputError(f"outcome and probabilities must be 1-D of equal length, got {y.shape} and {p.shape}")
    if not np.all(np.isin(y, (0, 1))) or len(np.unique(y)) < 2:
        raise InputError("outcome must be binary 0/1 with both classes present")
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise InputError("predicted probabilities must be finite and within [0, 1]")
    return y, p


def calibration(y, p) -> tuple[float, float]:
    """(slope, intercept) of the logistic recalibration of probabilities ``p`` against outcome ``y``."""
    import statsmodels.api as sm

    y, p = _checked(y, p)
    lp = np.log(np.clip(p, _EPS, 1 - _EPS) / (1 - np.clip(p, _EPS, 1 - _EPS)))
    fam = sm.families.Binomial()
    slope = float(sm.GLM(y, sm.add_constant(lp), family=fam).fit().params[1])
    intercept = float(sm.GLM(y, np.ones((y.size, 1)), family=fam, offset=lp).fit().params[0])
    return slope, intercept


def brier(y, p) -> float:
    """Brier score: mean squared difference of probability and outcome (0 = perfect; 0.25 = coin at 50 %)."""
    y, p = _checked(y, p)
    return float(np.mean((p - y) ** 2))


def decision_curve(y, p, thresholds=None) -> pd.DataFrame:
    """Net benefit of the model, of treating all and of treating none at each threshold probability."""
    y, p = _checked(y, p)
    pt = np.round(np.arange(0.01, 1.0, 0.01), 2) if thresholds is None else np.asarray(thresholds, dtype=float)
    n, prev = y.size, y.mean()
    odds = pt / (1 - pt)
    pos = p[None, :] >= pt[:, None]
    tp = (pos & (y[None, :] == 1)).sum(axis=1)
    fp = (pos & (y[None, :] == 0)).sum(axis=1)
    return pd.DataFrame({"threshold": pt, "net_benefit": tp / n - fp / n * odds,
                         "treat_all": prev - (1 - prev) * odds, "treat_none": 0.0})


def threshold_metrics(y, p, threshold: float) -> dict[str, float]:
    """Sensitivity and specificity (with Clopper–Pearson 95 % CIs) of ``p >= threshold``."""
    y, p = _checked(y, p)
    if not 0 < threshold < 1:
        raise InputError(f"threshold must lie in (0, 1), got {threshold}")
    pos = p >= threshold
    tp, fn = int((pos & (y == 1)).sum()), int((~pos & (y == 1)).sum())
    tn, fp = int((~pos & (y == 0)).sum()), int((pos & (y == 0)).sum())
    se_ci, sp_ci = proportion_ci(tp, tp + fn), proportion_ci(tn, tn + fp)
    return {"threshold": float(threshold), "sensitivity": tp / (tp + fn), "sensitivity_ci_low": se_ci[0],
            "sensitivity_ci_high": se_ci[1], "specificity": tn / (tn + fp), "specificity_ci_low": sp_ci[0],
            "specificity_ci_high": sp_ci[1], "tp": tp, "fp": fp, "tn": tn, "fn": fn}


def performance(y, p, threshold: float) -> dict[str, float]:
    """All of the above in one dict: AUC (DeLong CI), threshold metrics, calibration, Brier."""
    y, p = _checked(y, p)
    roc = roc_analysis(y, p, direction="<", marker_name="model")
    slope, intercept = calibration(y, p)
    return {"n": int(y.size), "n_positive": int(y.sum()), "auc": roc.auc, "auc_ci_low": roc.auc_ci_low,
            "auc_ci_high": roc.auc_ci_high, **threshold_metrics(y, p, threshold), "calibration_slope": slope,
            "calibration_intercept": intercept, "brier": brier(y, p)}
