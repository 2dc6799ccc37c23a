"""Paper tables: Table 1 (characteristics by group) and Table 2 (diagnostic performance of markers).

Both return DataFrames laid out like the seed study's tables, with machine-readable numeric columns
beside the formatted text, so that one CSV serves the manuscript and further analysis.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from osteomri.errors import InputError
from osteomri.stats._validate import MissingDataWarning, require_columns
from osteomri.stats.combined import CombinedMarkerResult, combined_marker
from osteomri.stats.groups import group_comparison
from osteomri.stats.roc import delong_test, roc_analysis

__all__ = ["table1", "table2", "format_p"]


def format_p(p: float) -> str:
    """P value as printed in clinical papers: three decimals, "<0.001" below that."""
    if p is None or not np.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _group_levels(series: pd.Series, order: Sequence[Any] | None) -> list[Any]:
    present = list(pd.unique(series.dropna()))
    if order is not None:
        unknown = [g for g in present if g not in list(order)]
        if unknown:
            raise InputError(f"group values {unknown} are not in the given group order {list(order)}")
        return [g for g in order if g in present]
    if isinstance(series.dtype, pd.CategoricalDtype):
        return [c for c in series.cat.categories if c in present]
    return sorted(present, key=str)


def table1(
    df: pd.DataFrame,
    group: str,
    variables: Sequence[str],
    *,
    categorical: Sequence[str] | None = None,
    group_order: Sequence[Any] | None = None,
    method: Literal["anova", "welch", "kruskal"] = "anova",
    decimals: int = 2,
    nan_policy: Literal["omit", "raise"] = "omit",
) -> pd.DataFrame:
    """Characteristics by group: mean ± SD per group and the one-way ANOVA F and P (continuous variables),
    counts per category and the chi-square test (categorical variables; Fisher's exact test for a 2×2
    table with an expected count below 5).

    Columns: ``variable``, one text column per group headed ``"<group> (n=..)"``, ``test``, ``statistic``,
    ``p_value``, ``p`` (formatted), and ``n_missing``. Categorical variables are auto-detected
    (non-numeric dtype) or listed in ``categorical``. Tukey HSD pairwise P values are in
    ``attrs["posthoc"]`` (one tidy DataFrame).
    """
    require_columns(df, [group, *variables], "Table 1 data")
    if df[group].isna().any():
        n = int(df[group].isna().sum())
        if nan_policy == "raise":
            raise InputError(f"Table 1: {n} row(s) have no {group!r}")
        warnings.warn(f"Table 1: dropped {n} row(s) without a {group!r} value", MissingDataWarning, stacklevel=2)
        df = df[df[group].notna()]
    levels = _group_levels(df[group], group_order)
    if len(levels) < 2:
        raise InputError(f"Table 1 needs at least 2 groups in {group!r}, got {levels}")
    sizes = df[group].value_counts()
    headers = {g: f"{g} (n={int(sizes[g])})" for g in levels}
    categorical = set(categorical or [])
    rows, posthoc = [], []
    for var in variables:
        col = df[var]
        is_cat = var in categorical or not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)
        row: dict[str, Any] = {"variable": var}
        n_missing = int(col.isna().sum())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MissingDataWarning)  # counted in n_missing instead
            if is_cat:
                res = group_comparison(col.astype(object), df[group].astype(object), method="auto",
                                       nan_policy=nan_policy)
                cats = sorted(pd.unique(col.dropna()), key=str)
                row["variable"] = f"{var} ({'/'.join(map(str, cats))})"
                for g in levels:
                    counts = col[df[group] == g].value_counts()
                    row[headers[g]] = "/".join(str(int(counts.get(c, 0))) for c in cats)
            else:
                res = group_comparison(col, df[group].astype(object), method=method, nan_policy=nan_policy)
                for g in levels:
                    vals = col[(df[group] == g) & col.notna()]
                    sd = vals.std(ddof=1) if len(vals) > 1 else float("nan")
                    row[headers[g]] = f"{vals.mean():.{decimals}f} ± {sd:.{decimals}f}"
                if res.posthoc is not None:
                    posthoc.append(res.posthoc.assign(variable=var))
        row.update({"test": {"anova": "ANOVA F", "welch": "Welch F", "kruskal": "Kruskal-Wallis H",
                             "chi2": "chi-square", "chi2_yates": "chi-square (Yates)",
                             "fisher": "Fisher exact (OR)"}[res.method],
                    "statistic": res.statistic, "p_value": res.p_value, "p": format_p(res.p_value),
                    "n_missing": n_missing})
        rows.append(row)
    out = pd.DataFrame(rows, columns=["variable", *headers.values(), "test", "statistic", "p_value", "p",
                                      "n_missing"])
    out.attrs["posthoc"] = pd.concat(posthoc, ignore_index=True) if posthoc else pd.DataFrame()
    return out


@dataclass(frozen=True)
class Table2:
    """What :func:`table2` returns: the table, the paired comparisons, the combined marker, rows dropped."""

    table: pd.DataFrame
    comparisons: pd.DataFrame
    combined: CombinedMarkerResult | None
    n_dropped: int


def table2(
    df: pd.DataFrame,
    outcome: str,
    markers: Sequence[str],
    *,
    positive: Any = None,
    combined: bool = True,
    optimism: Literal["bootstrap", "cv"] | None = "bootstrap",
    n_bootstrap: int = 200,
    random_state: int | np.random.Generator | None = None,
    conf_level: float = 0.95,
    decimals: int = 3,
    nan_policy: Literal["omit", "raise"] = "omit",
) -> Table2:
    """Diagnostic performance of each marker (and their logistic combination): AUC, 95 % CI (DeLong), P
    (AUC vs 0.5), cut-off (Youden), sensitivity, specificity, Youden index, with Clopper–Pearson CIs of
    Se and Sp. All markers are analysed on the same complete cases so that their AUCs are comparable.

    Returns a :class:`Table2`: ``table`` (one row per marker), ``comparisons`` (paired DeLong tests of the
    combination against each marker and between markers), ``combined`` (the
    :class:`~osteomri.stats.combined.CombinedMarkerResult`, None without a combination), ``n_dropped``.
    """
    require_columns(df, [outcome, *markers], "Table 2 data")
    if len(markers) == 0:
        raise InputError("Table 2 needs at least one marker")
    data = df[[outcome, *markers]]
    complete = data.notna().all(axis=1)
    n_dropped = int((~complete).sum())
    if n_dropped:
        if nan_policy == "raise":
            raise InputError(f"Table 2: {n_dropped} row(s) with missing {outcome!r} or marker values")
        warnings.warn(f"Table 2: dropped {n_dropped} row(s) with missing outcome or marker values",
                      MissingDataWarning, stacklevel=2)
        data = data[complete]
    rows = []
    for m in markers:
        r = roc_analysis(data[outcome], data[m], positive=positive, conf_level=conf_level, marker_name=m)
        rows.append(_row(m, r, decimals))
    comparisons = []
    for i, a in enumerate(markers):
        for b in markers[i + 1:]:
            comparisons.append(delong_test(data[outcome], data[a], data[b], positive=positive,
                                           conf_level=conf_level, names=(a, b)).to_frame())
    comb = None
    if combined and len(markers) > 1:
        comb = combined_marker(data[outcome], data[list(markers)], positive=positive, optimism=optimism,
                               n_bootstrap=n_bootstrap, random_state=random_state, conf_level=conf_level)
        row = _row(" + ".join(markers), comb.roc, decimals)
        row["auc_corrected"] = comb.auc_corrected
        rows.append(row)
        comparisons.insert(0, comb.comparisons)
    return Table2(pd.DataFrame(rows), pd.concat(comparisons, ignore_index=True) if comparisons else pd.DataFrame(),
                  comb, n_dropped)


def _row(name: str, r, decimals: int) -> dict[str, Any]:
    d = decimals
    return {
        "marker": name, "n_cases": r.n_cases, "n_controls": r.n_controls, "direction": r.direction,
        "auc": r.auc, "auc_ci_low": r.auc_ci_low, "auc_ci_high": r.auc_ci_high,
        "auc_95ci": f"{r.auc:.{d}f} ({r.auc_ci_low:.{d}f}–{r.auc_ci_high:.{d}f})",
        "p_value": r.p_value, "p": format_p(r.p_value), "cutoff": r.cutoff,
        "sensitivity": r.sensitivity, "sensitivity_ci_low": r.sensitivity_ci[0],
        "sensitivity_ci_high": r.sensitivity_ci[1], "specificity": r.specificity,
        "specificity_ci_low": r.specificity_ci[0], "specificity_ci_high": r.specificity_ci[1],
        "youden_j": r.youden_j, "lr_pos": r.lr_pos, "lr_neg": r.lr_neg, "auc_corrected": np.nan,
    }
