"""Correlation coefficients with Fisher-z confidence intervals.

Pearson's r with the t test of H0 ρ = 0 and the Fisher (1921) z-transform CI tanh(atanh r ± z/√(n−3)) —
the numbers of R's ``cor.test``. Spearman's ρ (Pearson's r of the midranks) with the t-approximation
p-value (as R's ``cor.test(exact=FALSE)``), S = (n³ − n)(1 − ρ)/6, and a Fisher-z CI with SE 1/√(n−3)
(Fieller, Hartley & Pearson 1957 suggest √(1.06/(n−3)); the plain form is what pingouin reports).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from osteomri.errors import InputError
from osteomri.stats._validate import as_float, check_not_constant, drop_missing

__all__ = ["CorrelationResult", "correlation"]


@dataclass
class CorrelationResult:
    method: str
    n: int
    n_dropped: int
    r: float
    ci_low: float
    ci_high: float
    t: float
    df: int
    p_value: float
    statistic_s: float | None  # Spearman's S (R cor.test); None for Pearson
    slope: float  # OLS regression line y = intercept + slope x (for plots)
    intercept: float
    conf_level: float
    x_name: str = "x"
    y_name: str = "y"

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "x": self.x_name, "y": self.y_name, "method": self.method, "n": self.n, "r": self.r,
            "ci_low": self.ci_low, "ci_high": self.ci_high, "t": self.t, "df": self.df, "p_value": self.p_value,
            "slope": self.slope, "intercept": self.intercept, "n_dropped": self.n_dropped,
        }])


def correlation(
    x: Any,
    y: Any,
    method: Literal["pearson", "spearman"] = "pearson",
    *,
    conf_level: float = 0.95,
    nan_policy: Literal["omit", "raise"] = "omit",
    names: tuple[str, str] | None = None,
) -> CorrelationResult:
    """Pearson or Spearman correlation with a Fisher-z CI (Fisher 1921) and a two-sided t-test p-value."""
    if names is None:
        names = tuple(v.name if isinstance(v, pd.Series) and v.name is not None else d
                      for v, d in ((x, "x"), (y, "y")))
    nx, ny = str(names[0]), str(names[1])
    key_y = ny if ny != nx else f"{ny} (2)"
    cols, n_dropped = drop_missing({nx: as_float(x, nx), key_y: as_float(y, ny)}, nan_policy,
                                   f"correlation of {nx} and {ny}")
    a, b = cols[nx], cols[key_y]
    n = a.size
    if n < 4:
        raise InputError(f"correlation needs at least 4 complete pairs (for the Fisher-z CI), got {n}")
    check_not_constant(a, f"{nx!r}")
    check_not_constant(b, f"{ny!r}")
    if method == "pearson":
        r = float(np.corrcoef(a, b)[0, 1])
        s_stat = None
    elif method == "spearman":
        r = float(np.corrcoef(stats.rankdata(a), stats.rankdata(b))[0, 1])
        s_stat = (n**3 - n) * (1 - r) / 6.0
    else:
        raise InputError(f"method must be 'pearson' or 'spearman', got {method!r}")
    r = float(np.clip(r, -1.0, 1.0))
    df = n - 2
    with np.errstate(divide="ignore"):
        t = r * np.sqrt(df / (1 - r * r)) if abs(r) < 1 else np.copysign(np.inf, r)
    p = float(2 * stats.t.sf(abs(t), df))
    q = stats.norm.ppf(0.5 + conf_level / 2)
    z = np.arctanh(r) if abs(r) < 1 else np.copysign(np.inf, r)
    lo, hi = np.tanh(z - q / np.sqrt(n - 3)), np.tanh(z + q / np.sqrt(n - 3))
    slope, intercept = np.polyfit(a, b, 1)
    return CorrelationResult(method=method, n=n, n_dropped=n_dropped, r=r, ci_low=float(lo), ci_high=float(hi),
                             t=float(t), df=df, p_value=p, statistic_s=s_stat, slope=float(slope),
                             intercept=float(intercept), conf_level=conf_level, x_name=nx, y_name=ny)
