"""Comparisons between groups, and the WHO / ACR bone-density categories.

- One-way ANOVA (Fisher), Welch's heteroscedastic ANOVA (Welch 1951, Biometrika 38:330; R ``oneway.test``),
  Tukey's HSD with the Tukey–Kramer form for unequal sizes (Tukey 1949; Kramer 1956, Biometrics 12:307;
  R ``TukeyHSD``), Kruskal–Wallis with the tie correction (Kruskal & Wallis 1952), Bartlett's test.
- Categorical: Pearson's chi-square with Yates' continuity correction for 2×2 tables (R ``chisq.test``),
  and Fisher's exact test with the conditional maximum-likelihood odds ratio (R ``fisher.test``).
- :func:`who_category`: WHO (1994, Technical Report Series 843) DXA T-score classes;
  :func:`qct_category`: ACR (2018) QCT trabecular vBMD classes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from osteomri.errors import InputError
from osteomri.stats._validate import MissingDataWarning, as_float, drop_missing

__all__ = [
    "WHO_GROUPS",
    "GroupComparisonResult",
    "group_comparison",
    "anova_oneway",
    "welch_anova",
    "tukey_hsd",
    "kruskal_wallis",
    "chi_square_test",
    "fisher_exact_test",
    "who_category",
    "qct_category",
]

WHO_GROUPS = ("normal", "osteopenia", "osteoporosis")


# --------------------------------------------------------------------------------------------------
# classification
# --------------------------------------------------------------------------------------------------
def who_category(t_score: Any) -> Any:
    """WHO class of a DXA T-score: ``normal`` (T ≥ −1.0), ``osteopenia`` (−2.5 < T < −1.0), ``osteoporosis``
    (T ≤ −2.5) (WHO 1994). Scalars give a string (None for NaN); arrays and Series give an ordered
    categorical Series. T-scores are rounded to 1e-9 first so that −1.0 read from text is −1.0.
    """
    scalar = np.ndim(t_score) == 0
    t = np.atleast_1d(as_float(np.atleast_1d(t_score), "t_score"))
    t = np.round(t, 9)
    labels = np.where(t >= -1.0, WHO_GROUPS[0], np.where(t <= -2.5, WHO_GROUPS[2], WHO_GROUPS[1])).astype(object)
    labels[np.isnan(t)] = None
    if scalar:
        return labels[0]
    index = t_score.index if isinstance(t_score, pd.Series) else None
    return pd.Series(pd.Categorical(labels, categories=list(WHO_GROUPS), ordered=True), index=index,
                     name="who_group")


def qct_category(bmd_mg_cm3: Any) -> Any:
    """ACR QCT class of lumbar trabecular vBMD: ``normal`` (> 120 mg/cm³), ``low_bone_density`` (80–120),
    ``osteoporosis`` (< 80) (ACR–SPR–SSR practice parameter for QCT, 2018)."""
    scalar = np.ndim(bmd_mg_cm3) == 0
    b = np.atleast_1d(as_float(np.atleast_1d(bmd_mg_cm3), "bmd_mg_cm3"))
    cats = ["normal", "low_bone_density", "osteoporosis"]
    labels = np.where(b > 120, cats[0], np.where(b < 80, cats[2], cats[1])).astype(object)
    labels[np.isnan(b)] = None
    if scalar:
        return labels[0]
    index = bmd_mg_cm3.index if isinstance(bmd_mg_cm3, pd.Series) else None
    return pd.Series(pd.Categorical(labels, categories=cats, ordered=True), index=index, name="qct_group")


# --------------------------------------------------------------------------------------------------
# continuous variables
# --------------------------------------------------------------------------------------------------
def _split(values: Any, groups: Any, nan_policy: str, what: str, min_per_group: int = 1):
    vals = as_float(values, "values")
    g = np.asarray(groups.to_numpy() if isinstance(groups, pd.Series) else groups, dtype=object)
    cols, n_dropped = drop_missing({"values": vals, "group": g}, nan_policy, what)
    g = pd.Series(cols["group"])
    if isinstance(groups, pd.Series) and isinstance(groups.dtype, pd.CategoricalDtype):
        levels = [c for c in groups.cat.categories if (g == c).any()]
    else:
        levels = sorted(g.unique(), key=lambda v: (str(type(v)), v))
    if len(levels) < 2:
        raise InputError(f"{what}: needs at least 2 groups, got {len(levels)} ({levels})")
    samples = [cols["values"][(g == lv).to_numpy()] for lv in levels]
    small = [str(lv) for lv, s in zip(levels, samples, strict=True) if s.size < min_per_group]
    if small:
        raise InputError(f"{what}: group(s) {small} have fewer than {min_per_group} observations")
    return levels, samples, n_dropped


def _summary(levels, samples) -> pd.DataFrame:
    return pd.DataFrame({
        "group": levels, "n": [s.size for s in samples], "mean": [s.mean() for s in samples],
        "sd": [s.std(ddof=1) if s.size > 1 else np.nan for s in samples],
        "median": [np.median(s) for s in samples],
        "q1": [np.quantile(s, 0.25) for s in samples], "q3": [np.quantile(s, 0.75) for s in samples],
    })


@dataclass
class GroupComparisonResult:
    """A test comparing several groups; ``summary`` has n, mean, SD, median, quartiles per group."""

    method: str
    statistic: float
    df1: float
    df2: float | None
    p_value: float
    n: int
    n_dropped: int
    summary: pd.DataFrame = field(repr=False)
    posthoc: pd.DataFrame | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame([{"method": self.method, "statistic": self.statistic, "df1": self.df1,
                              "df2": self.df2, "p_value": self.p_value, "n": self.n, "n_dropped": self.n_dropped}])


def anova_oneway(values: Any, groups: Any, *, nan_policy: Literal["omit", "raise"] = "omit") -> GroupComparisonResult:
    """Classical one-way ANOVA F test; ``extra`` holds the sums of squares and mean squares."""
    levels, samples, n_dropped = _split(values, groups, nan_policy, "one-way ANOVA", 1)
    allv = np.concatenate(samples)
    gm = allv.mean()
    ss_b = float(sum(s.size * (s.mean() - gm) ** 2 for s in samples))
    ss_w = float(sum(((s - s.mean()) ** 2).sum() for s in samples))
    k, n = len(samples), allv.size
    if n - k < 1:
        raise InputError("one-way ANOVA needs more observations than groups")
    if ss_w == 0:
        raise InputError("one-way ANOVA: no variation within groups (constant values)")
    ms_b, ms_w = ss_b / (k - 1), ss_w / (n - k)
    f = ms_b / ms_w
    return GroupComparisonResult(
        method="anova", statistic=f, df1=k - 1, df2=n - k, p_value=float(stats.f.sf(f, k - 1, n - k)), n=n,
        n_dropped=n_dropped, summary=_summary(levels, samples),
        extra={"ss_between": ss_b, "ss_within": ss_w, "ms_between": ms_b, "ms_within": ms_w},
    )


def welch_anova(values: Any, groups: Any, *, nan_policy: Literal["omit", "raise"] = "omit") -> GroupComparisonResult:
    """Welch's (1951) one-way ANOVA for unequal variances (R ``oneway.test(var.equal = FALSE)``)."""
    levels, samples, n_dropped = _split(values, groups, nan_policy, "Welch ANOVA", 2)
    k = len(samples)
    ni = np.array([s.size for s in samples], float)
    mi = np.array([s.mean() for s in samples])
    vi = np.array([s.var(ddof=1) for s in samples])
    if np.any(vi == 0):
        raise InputError("Welch ANOVA: a group has zero variance")
    w = ni / vi
    mw = (w * mi).sum() / w.sum()
    a = (w * (mi - mw) ** 2).sum() / (k - 1)
    tmp = (((1 - w / w.sum()) ** 2) / (ni - 1)).sum()
    b = 1 + 2 * (k - 2) * tmp / (k**2 - 1)
    f = a / b
    df2 = (k**2 - 1) / (3 * tmp)
    return GroupComparisonResult(method="welch", statistic=float(f), df1=k - 1, df2=float(df2),
                                 p_value=float(stats.f.sf(f, k - 1, df2)), n=int(ni.sum()), n_dropped=n_dropped,
                                 summary=_summary(levels, samples))


def bartlett_test(values: Any, groups: Any, *,
                  nan_policy: Literal["omit", "raise"] = "omit") -> GroupComparisonResult:
    """Bartlett's (1937) test of equal variances (R ``bartlett.test``).

    K² = [(N − k) ln s²_p − Σ(nᵢ − 1) ln s²ᵢ] / C with C = 1 + (Σ 1/(nᵢ − 1) − 1/(N − k)) / (3(k − 1)),
    referred to χ² with k − 1 df; s²_p is the pooled variance.
    """
    levels, samples, n_dropped = _split(values, groups, nan_policy, "Bartlett test", 2)
    k = len(samples)
    ni = np.array([s.size for s in samples], float)
    vi = np.array([s.var(ddof=1) for s in samples])
    if np.any(vi == 0):
        raise InputError("Bartlett test: a group has zero variance")
    n = ni.sum()
    pooled = ((ni - 1) * vi).sum() / (n - k)
    c = 1 + ((1 / (ni - 1)).sum() - 1 / (n - k)) / (3 * (k - 1))
    k2 = ((n - k) * np.log(pooled) - ((ni - 1) * np.log(vi)).sum()) / c
    return GroupComparisonResult(method="bartlett", statistic=float(k2), df1=k - 1, df2=None,
                                 p_value=float(stats.chi2.sf(k2, k - 1)), n=int(n), n_dropped=n_dropped,
                                 summary=_summary(levels, samples))


def tukey_hsd(values: Any, groups: Any, *, conf_level: float = 0.95,
              nan_policy: Literal["omit", "raise"] = "omit") -> pd.DataFrame:
    """Tukey's honestly significant differences (Tukey–Kramer), laid out as R's ``TukeyHSD``.

    Rows ``"B-A"`` for each pair of groups in level order, with ``diff = mean(B) − mean(A)``, simultaneous
    CI ``diff ± q(1−α; k, N−k)·√(MSE/2·(1/n_A + 1/n_B))`` and the studentized-range p-value.
    """
    levels, samples, _ = _split(values, groups, nan_policy, "Tukey HSD", 1)
    k = len(samples)
    n = sum(s.size for s in samples)
    df = n - k
    mse = sum(((s - s.mean()) ** 2).sum() for s in samples) / df
    qcrit = stats.studentized_range.ppf(conf_level, k, df)
    rows = []
    for i, j in combinations(range(k), 2):
        diff = samples[j].mean() - samples[i].mean()
        se = np.sqrt(mse / 2 * (1 / samples[i].size + 1 / samples[j].size))
        rows.append({"comparison": f"{levels[j]}-{levels[i]}", "group_a": levels[j], "group_b": levels[i],
                     "diff": diff, "ci_low": diff - qcrit * se, "ci_high": diff + qcrit * se,
                     "p_adj": float(stats.studentized_range.sf(abs(diff) / se, k, df))})
    return pd.DataFrame(rows)


def kruskal_wallis(values: Any, groups: Any, *,
                   nan_policy: Literal["omit", "raise"] = "omit") -> GroupComparisonResult:
    """Kruskal–Wallis H test with the correction for ties (Kruskal & Wallis 1952, JASA 47:583)."""
    levels, samples, n_dropped = _split(values, groups, nan_policy, "Kruskal-Wallis test", 1)
    allv = np.concatenate(samples)
    if np.all(allv == allv[0]):
        raise InputError("Kruskal-Wallis test: all values are identical")
    ranks = stats.rankdata(allv)
    n = allv.size
    bounds = np.cumsum([0] + [s.size for s in samples])
    h = 12.0 / (n * (n + 1)) * sum(ranks[a:b].sum() ** 2 / (b - a) for a, b in
                                   zip(bounds[:-1], bounds[1:], strict=True)) - 3 * (n + 1)
    _, counts = np.unique(allv, return_counts=True)
    h /= 1 - (counts**3 - counts).sum() / (n**3 - n)
    k = len(samples)
    return GroupComparisonResult(method="kruskal", statistic=float(h), df1=k - 1, df2=None,
                                 p_value=float(stats.chi2.sf(h, k - 1)), n=n, n_dropped=n_dropped,
                                 summary=_summary(levels, samples))


# --------------------------------------------------------------------------------------------------
# categorical variables
# --------------------------------------------------------------------------------------------------
def _table(x: Any, y: Any | None, nan_policy: str) -> tuple[pd.DataFrame, int]:
    if y is None:
        table = pd.DataFrame(x)
        if (table.to_numpy() < 0).any():
            raise InputError("contingency table counts must be non-negative")
        return table, 0
    xs = np.asarray(x.to_numpy() if isinstance(x, pd.Series) else x, dtype=object)
    ys = np.asarray(y.to_numpy() if isinstance(y, pd.Series) else y, dtype=object)
    cols, n_dropped = drop_missing({"x": xs, "y": ys}, nan_policy, "contingency table")
    table = pd.crosstab(pd.Series(cols["x"], name="x"), pd.Series(cols["y"], name="y"))
    if isinstance(x, pd.Series) and isinstance(x.dtype, pd.CategoricalDtype):
        table = table.reindex([c for c in x.cat.categories if c in table.index])
    if isinstance(y, pd.Series) and isinstance(y.dtype, pd.CategoricalDtype):
        table = table[[c for c in y.cat.categories if c in table.columns]]
    return table, n_dropped


def chi_square_test(x: Any, y: Any | None = None, *, correction: bool = True,
                    nan_policy: Literal["omit", "raise"] = "omit") -> GroupComparisonResult:
    """Pearson's chi-square test of independence (R ``chisq.test``).

    ``x`` and ``y`` are two categorical vectors, or ``x`` is a table of counts and ``y`` is None. Yates'
    continuity correction (Yates 1934) applies to 2×2 tables when ``correction`` is true, as in R
    (the correction is capped at |O − E|). ``extra["expected"]`` holds the expected counts.
    """
    table, n_dropped = _table(x, y, nan_policy)
    obs = table.to_numpy(dtype=float)
    if obs.shape[0] < 2 or obs.shape[1] < 2:
        raise InputError(f"chi-square test needs at least a 2x2 table, got {obs.shape[0]}x{obs.shape[1]}")
    n = obs.sum()
    expected = obs.sum(axis=1, keepdims=True) * obs.sum(axis=0, keepdims=True) / n
    if np.any(expected == 0):
        raise InputError("chi-square test: a row or column of the table is empty")
    dev = np.abs(obs - expected)
    if correction and obs.shape == (2, 2):
        dev = dev - np.minimum(0.5, dev)
    x2 = float((dev**2 / expected).sum())
    df = (obs.shape[0] - 1) * (obs.shape[1] - 1)
    return GroupComparisonResult(
        method="chi2_yates" if correction and obs.shape == (2, 2) else "chi2", statistic=x2, df1=df, df2=None,
        p_value=float(stats.chi2.sf(x2, df)), n=int(n), n_dropped=n_dropped,
        summary=table.reset_index(), extra={"expected": expected, "table": table,
                                            "min_expected": float(expected.min())},
    )


def fisher_exact_test(x: Any, y: Any | None = None, *, conf_level: float = 0.95,
                      nan_policy: Literal["omit", "raise"] = "omit") -> GroupComparisonResult:
    """Fisher's exact test of a 2×2 table (Fisher 1935) with the conditional-MLE odds ratio and its exact
    CI (Cornfield 1956), as R's ``fisher.test``; ``statistic`` is the odds ratio, ``extra`` has its CI."""
    table, n_dropped = _table(x, y, nan_policy)
    obs = table.to_numpy(dtype=int)
    if obs.shape != (2, 2):
        raise InputError(f"Fisher's exact test is implemented for 2x2 tables, got {obs.shape[0]}x{obs.shape[1]}; "
                         "use chi_square_test")
    p = float(stats.fisher_exact(obs).pvalue)
    res = stats.contingency.odds_ratio(obs, kind="conditional")
    ci = res.confidence_interval(confidence_level=conf_level)
    return GroupComparisonResult(method="fisher", statistic=float(res.statistic), df1=float("nan"), df2=None,
                                 p_value=p, n=int(obs.sum()), n_dropped=n_dropped, summary=table.reset_index(),
                                 extra={"odds_ratio": float(res.statistic), "ci": (float(ci.low), float(ci.high)),
                                        "table": table})


# --------------------------------------------------------------------------------------------------
# dispatcher
# --------------------------------------------------------------------------------------------------
def group_comparison(
    values: Any,
    groups: Any,
    *,
    method: Literal["anova", "welch", "kruskal", "chi2", "fisher", "auto"] = "anova",
    posthoc: bool = True,
    nan_policy: Literal["omit", "raise"] = "omit",
) -> GroupComparisonResult:
    """Compare a variable across groups.

    Numeric variables: ``"anova"`` (with Tukey HSD in ``posthoc``), ``"welch"``, ``"kruskal"``.
    Categorical variables: ``"chi2"`` (Yates-corrected for 2×2) or ``"fisher"`` (2×2). ``"auto"`` picks
    ANOVA for numeric values, else chi-square — or Fisher for a 2×2 table with an expected count below 5
    (Cochran 1954).
    """
    is_numeric = pd.api.types.is_numeric_dtype(pd.Series(values).dtype) and not pd.api.types.is_bool_dtype(
        pd.Series(values).dtype)
    if method == "auto":
        if is_numeric:
            method = "anova"
        else:
            res = chi_square_test(values, groups, nan_policy=nan_policy)
            if res.extra["table"].shape == (2, 2) and res.extra["min_expected"] < 5:
                return fisher_exact_test(values, groups, nan_policy=nan_policy)
            return res
    if method in ("anova", "welch", "kruskal") and not is_numeric:
        raise InputError(f"method {method!r} needs a numeric variable; use 'chi2' or 'fisher' for categories")
    if method == "anova":
        res = anova_oneway(values, groups, nan_policy=nan_policy)
        if posthoc:
            with warnings.catch_warnings():  # already reported by the ANOVA
                warnings.simplefilter("ignore", MissingDataWarning)
                res.posthoc = tukey_hsd(values, groups, nan_policy=nan_policy)
        return res
    if method == "welch":
        return welch_anova(values, groups, nan_policy=nan_policy)
    if method == "kruskal":
        return kruskal_wallis(values, groups, nan_policy=nan_policy)
    if method == "chi2":
        return chi_square_test(values, groups, nan_policy=nan_policy)
    if method == "fisher":
        return fisher_exact_test(values, groups, nan_policy=nan_policy)
    raise InputError(f"unknown method {method!r}; use anova, welch, kruskal, chi2, fisher or auto")
