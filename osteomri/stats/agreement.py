"""Agreement between readers or methods: intraclass correlation and Bland–Altman analysis.

- ICC: the six forms of Shrout & Fleiss (1979, Psychol Bull 86:420) from a two-way ANOVA of a complete
  targets × raters table, with F tests and confidence intervals of McGraw & Wong (1996, Psychol Methods
  1:30; ICC2 interval by Satterthwaite's approximation). Row names follow R's ``psych::ICC``: ICC1 = one-way
  random, ICC2 = two-way random absolute agreement, ICC3 = two-way mixed consistency; ``k`` = mean of the k
  raters (Spearman–Brown).
- Bland–Altman: bias, limits of agreement (Bland & Altman 1986, Lancet 327:307) and their CIs, either
  with the 1986 approximate SE √(3s²/n) or the 1999 SE √(s²/n + z²s²/(2(n−1))) (Bland & Altman 1999,
  Stat Methods Med Res 8:135), plus a proportional-bias test (regression of difference on mean, Bland &
  Altman 1999 §3.2) and the repeatability coefficient.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from osteomri.errors import InputError
from osteomri.stats._validate import as_float, check_nan_policy, drop_missing, require_columns

__all__ = ["icc", "icc_wide", "BlandAltmanResult", "bland_altman", "repeatability"]

_ICC_DESCRIPTION = {
    "ICC1": "Single raters absolute (one-way random)",
    "ICC2": "Single random raters (two-way random, absolute agreement)",
    "ICC3": "Single fixed raters (two-way mixed, consistency)",
    "ICC1k": "Average raters absolute",
    "ICC2k": "Average random raters",
    "ICC3k": "Average fixed raters",
}


def icc(
    data: pd.DataFrame,
    targets: str,
    raters: str,
    ratings: str,
    *,
    conf_level: float = 0.95,
    nan_policy: Literal["omit", "raise"] = "omit",
) -> pd.DataFrame:
    """Intraclass correlation coefficients from a long table (one row per target × rater).

    Returns one row per form (``ICC1, ICC2, ICC3, ICC1k, ICC2k, ICC3k``) with ``icc, F, df1, df2, p_value,
    ci_low, ci_high`` — the numbers of R's ``psych::ICC`` (Shrout & Fleiss 1979; McGraw & Wong 1996).
    Targets with a missing rating are dropped (``nan_policy="omit"``, counted in ``attrs["n_dropped"]``,
    with a warning) or refused (``"raise"``). The mean squares are in ``attrs["mean_squares"]``.
    """
    require_columns(data, [targets, raters, ratings], "ICC data")
    dup = data.duplicated([targets, raters])
    if dup.any():
        first = data.loc[dup, [targets, raters]].iloc[0].tolist()
        raise InputError(f"ICC data has {int(dup.sum())} duplicated target/rater pair(s), e.g. {first}")
    wide = data.pivot(index=targets, columns=raters, values=ratings)
    return icc_wide(wide, conf_level=conf_level, nan_policy=nan_policy)


def icc_wide(wide: pd.DataFrame | np.ndarray, *, conf_level: float = 0.95,
             nan_policy: Literal["omit", "raise"] = "omit") -> pd.DataFrame:
    """:func:`icc` for a wide table: one row per target, one column per rater."""
    check_nan_policy(nan_policy)
    frame = pd.DataFrame(wide)
    try:
        y = frame.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise InputError(f"ICC ratings must be numeric: {exc}") from None
    incomplete = np.isnan(y).any(axis=1)
    n_dropped = int(incomplete.sum())
    if n_dropped:
        drop_missing({"ratings_complete": np.where(incomplete, np.nan, 0.0)}, nan_policy,
                               "ICC (targets without a rating from every rater)")
        y = y[~incomplete]
    n, k = y.shape
    if k < 2:
        raise InputError(f"ICC needs at least 2 raters, got {k}")
    if n < 2:
        raise InputError(f"ICC needs at least 2 targets with complete ratings, got {n}")
    if np.all(y == y.flat[0]):
        raise InputError("ICC ratings are constant; the ICC is undefined")
    if not 0 < conf_level < 1:
        raise InputError(f"conf_level must lie in (0, 1), got {conf_level}")

    gm = y.mean()
    ss_total = float(((y - gm) ** 2).sum())
    ss_rows = k * float(((y.mean(axis=1) - gm) ** 2).sum())
    ss_cols = n * float(((y.mean(axis=0) - gm) ** 2).sum())
    ss_err = ss_total - ss_rows - ss_cols
    msb = ss_rows / (n - 1)
    msj = ss_cols / (k - 1)
    mse = ss_err / ((n - 1) * (k - 1))
    msw = (ss_total - ss_rows) / (n * (k - 1))

    # Shrout & Fleiss 1979, Table 2 (and McGraw & Wong 1996, Tables 4-6)
    icc1 = (msb - msw) / (msb + (k - 1) * msw)
    icc2 = (msb - mse) / (msb + (k - 1) * mse + k * (msj - mse) / n)
    icc3 = (msb - mse) / (msb + (k - 1) * mse)
    icc1k = (msb - msw) / msb
    icc2k = (msb - mse) / (msb + (msj - mse) / n)
    icc3k = (msb - mse) / msb

    alpha = 1 - conf_level
    df1, df2_1, df2_3 = n - 1, n * (k - 1), (n - 1) * (k - 1)
    f1, f3 = msb / msw, msb / mse
    p1, p3 = stats.f.sf(f1, df1, df2_1), stats.f.sf(f3, df1, df2_3)
    f1_l = f1 / stats.f.ppf(1 - alpha / 2, df1, df2_1)
    f1_u = f1 * stats.f.ppf(1 - alpha / 2, df2_1, df1)
    f3_l = f3 / stats.f.ppf(1 - alpha / 2, df1, df2_3)
    f3_u = f3 * stats.f.ppf(1 - alpha / 2, df2_3, df1)
    # ICC2: Satterthwaite degrees of freedom (McGraw & Wong 1996, Table 7, case 2A)
    fj = msj / mse
    vn = (k - 1) * (n - 1) * (k * icc2 * fj + n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    vd = (n - 1) * k**2 * icc2**2 * fj**2 + (n * (1 + (k - 1) * icc2) - k * icc2) ** 2
    v = vn / vd
    f2_l = stats.f.ppf(1 - alpha / 2, n - 1, v)
    f2_u = stats.f.ppf(1 - alpha / 2, v, n - 1)
    l2 = n * (msb - f2_l * mse) / (f2_l * (k * msj + (k * n - k - n) * mse) + n * msb)
    u2 = n * (f2_u * msb - mse) / (k * msj + (k * n - k - n) * mse + n * f2_u * msb)

    rows = [
        ("ICC1", icc1, f1, df1, df2_1, p1, (f1_l - 1) / (f1_l + k - 1), (f1_u - 1) / (f1_u + k - 1)),
        ("ICC2", icc2, f3, df1, df2_3, p3, l2, u2),
        ("ICC3", icc3, f3, df1, df2_3, p3, (f3_l - 1) / (f3_l + k - 1), (f3_u - 1) / (f3_u + k - 1)),
        ("ICC1k", icc1k, f1, df1, df2_1, p1, 1 - 1 / f1_l, 1 - 1 / f1_u),
        ("ICC2k", icc2k, f3, df1, df2_3, p3, l2 * k / (1 + l2 * (k - 1)), u2 * k / (1 + u2 * (k - 1))),
        ("ICC3k", icc3k, f3, df1, df2_3, p3, 1 - 1 / f3_l, 1 - 1 / f3_u),
    ]
    out = pd.DataFrame(rows, columns=["type", "icc", "F", "df1", "df2", "p_value", "ci_low", "ci_high"])
    out.insert(1, "description", out["type"].map(_ICC_DESCRIPTION))
    out["n_targets"], out["n_raters"] = n, k
    out.attrs["n_dropped"] = n_dropped
    out.attrs["mean_squares"] = {"BMS": msb, "WMS": msw, "JMS": msj, "EMS": mse}
    return out


@dataclass
class BlandAltmanResult:
    """Bland–Altman agreement of two methods (differences are ``a − b``)."""

    n: int
    n_dropped: int
    bias: float
    sd_diff: float
    multiplier: float
    loa_low: float
    loa_high: float
    se_bias: float
    bias_ci: tuple[float, float]
    se_loa: float
    loa_low_ci: tuple[float, float]
    loa_high_ci: tuple[float, float]
    t_crit: float
    loa_se_method: str
    paired_t: float
    paired_p: float
    pearson_r: float  # between the two methods (Bland & Altman warn it is not agreement)
    prop_bias_slope: float
    prop_bias_intercept: float
    prop_bias_slope_ci: tuple[float, float]
    prop_bias_p: float
    conf_level: float
    means: np.ndarray = field(repr=False)
    differences: np.ndarray = field(repr=False)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{
            "n": self.n, "bias": self.bias, "bias_ci_low": self.bias_ci[0], "bias_ci_high": self.bias_ci[1],
            "sd_diff": self.sd_diff, "loa_low": self.loa_low, "loa_low_ci_low": self.loa_low_ci[0],
            "loa_low_ci_high": self.loa_low_ci[1], "loa_high": self.loa_high,
            "loa_high_ci_low": self.loa_high_ci[0], "loa_high_ci_high": self.loa_high_ci[1],
            "paired_t": self.paired_t, "paired_p": self.paired_p, "prop_bias_slope": self.prop_bias_slope,
            "prop_bias_p": self.prop_bias_p, "pearson_r": self.pearson_r, "n_dropped": self.n_dropped,
        }])


def bland_altman(
    a: Any,
    b: Any,
    *,
    multiplier: float = 1.96,
    conf_level: float = 0.95,
    loa_se_method: Literal["1999", "1986"] = "1999",
    nan_policy: Literal["omit", "raise"] = "omit",
) -> BlandAltmanResult:
    """Bland–Altman analysis of paired measurements ``a`` and ``b`` of the same subjects.

    Bias d̄ = mean(a − b), s = SD of the differences, limits of agreement d̄ ± ``multiplier``·s (1.96, or 2 as
    in the 1986 paper). CIs: bias ± t(n−1)·s/√n; limits ± t(n−1)·SE with SE = √(3s²/n) (``"1986"``, Bland &
    Altman 1986) or √(s²/n + multiplier²·s²/(2(n−1))) (``"1999"``, Bland & Altman 1999 §4.2). Proportional
    bias: OLS slope of the differences on the means with its t test.
    """
    cols, n_dropped = drop_missing({"a": as_float(a, "a"), "b": as_float(b, "b")}, nan_policy, "Bland-Altman")
    x, y = cols["a"], cols["b"]
    n = x.size
    if n < 3:
        raise InputError(f"Bland-Altman analysis needs at least 3 paired measurements, got {n}")
    d = x - y
    m = (x + y) / 2.0
    bias = float(d.mean())
    s = float(d.std(ddof=1))
    if s == 0:
        raise InputError("the differences between the two methods are constant; limits of agreement are "
                         "degenerate")
    t_crit = float(stats.t.ppf(0.5 + conf_level / 2, n - 1))
    se_bias = s / np.sqrt(n)
    if loa_se_method == "1986":
        se_loa = float(np.sqrt(3.0 * s**2 / n))
    elif loa_se_method == "1999":
        se_loa = float(np.sqrt(s**2 / n + multiplier**2 * s**2 / (2.0 * (n - 1))))
    else:
        raise InputError(f"loa_se_method must be '1999' or '1986', got {loa_se_method!r}")
    lo, hi = bias - multiplier * s, bias + multiplier * s
    t_stat = bias / se_bias
    reg = stats.linregress(m, d) if np.ptp(m) > 0 else None
    if reg is not None:
        slope_ci = (reg.slope - _t_crit(n - 2, conf_level) * reg.stderr,
                    reg.slope + _t_crit(n - 2, conf_level) * reg.stderr)
    r = float(np.corrcoef(x, y)[0, 1]) if np.ptp(x) > 0 and np.ptp(y) > 0 else float("nan")
    return BlandAltmanResult(
        n=n, n_dropped=n_dropped, bias=bias, sd_diff=s, multiplier=multiplier, loa_low=lo, loa_high=hi,
        se_bias=float(se_bias), bias_ci=(float(bias - t_crit * se_bias), float(bias + t_crit * se_bias)), se_loa=se_loa,
        loa_low_ci=(lo - t_crit * se_loa, lo + t_crit * se_loa),
        loa_high_ci=(hi - t_crit * se_loa, hi + t_crit * se_loa),
        t_crit=t_crit, loa_se_method=loa_se_method, paired_t=float(t_stat),
        paired_p=float(2 * stats.t.sf(abs(t_stat), n - 1)), pearson_r=r,
        prop_bias_slope=float(reg.slope) if reg else float("nan"),
        prop_bias_intercept=float(reg.intercept) if reg else float("nan"),
        prop_bias_slope_ci=tuple(float(c) for c in slope_ci) if reg else (float("nan"), float("nan")),
        prop_bias_p=float(reg.pvalue) if reg else float("nan"), conf_level=conf_level, means=m, differences=d,
    )


def _t_crit(df: int, conf_level: float) -> float:
    return float(stats.t.ppf(0.5 + conf_level / 2, df))


def repeatability(first: Any, second: Any, *, nan_policy: Literal["omit", "raise"] = "omit") -> dict[str, float]:
    """Repeatability of duplicate measurements (Bland & Altman 1986, section 'Repeatability').

    Returns the SD of the differences, the within-subject SD s_w = √(Σd²/(2n)), and the repeatability
    coefficient 2·√(Σd²/n) (British Standards Institution; = 2√2·s_w), below which 95 % of differences
    between two measurements on the same subject are expected to lie.
    """
    cols, n_dropped = drop_missing({"first": as_float(first, "first"), "second": as_float(second, "second")},
                                   nan_policy, "repeatability")
    d = cols["first"] - cols["second"]
    if d.size < 2:
        raise InputError("repeatability needs at least 2 duplicate measurements")
    rms = float(np.sqrt(np.mean(d**2)))
    return {"n": int(d.size), "n_dropped": n_dropped, "sd_diff": float(d.std(ddof=1)),
            "within_subject_sd": float(rms / np.sqrt(2.0)), "repeatability_coefficient": 2.0 * rms}
