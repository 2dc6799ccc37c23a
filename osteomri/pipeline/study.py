"""The study analysis: from one cohort table to the seed study's tables (the report is
:func:`osteomri.report.study.write_study`).

:func:`load_cohort` reads a CSV/TSV cohort — one row per patient, or the per-vertebra long table of the
measurement layer (``exam, level, map, [roi,] mean, ...``), averaged per patient over the chosen levels
(``L1-L4``, ``L1-L5`` or one level). :func:`run_study` computes Table 1 (groups by WHO T-score class),
Table 2 (ROC of each marker and their logistic combination, for osteoporosis vs the rest and for low bone
mass vs normal), correlations with BMD and reader agreement (ICC, Bland–Altman).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from osteomri.errors import InputError
from osteomri.stats import (
    WHO_GROUPS,
    MissingDataWarning,
    bland_altman,
    correlation,
    icc_wide,
    roc_analysis,
    table1,
    table2,
    who_category,
)
from osteomri.stats._validate import require_columns, require_numeric
from osteomri.vertebrae.measure import AGGREGATE_COLUMNS, DEFAULT_LEVEL_SET, aggregate_levels

__all__ = ["OUTCOMES", "StudyResult", "load_cohort", "run_study"]

#: ROC outcome definitions from the WHO group: name -> (label, positive groups, compared groups)
OUTCOMES = {
    "osteoporosis": ("osteoporosis vs normal + osteopenia", ("osteoporosis",), WHO_GROUPS),
    "low_bone_mass": ("osteopenia + osteoporosis vs normal", ("osteopenia", "osteoporosis"), WHO_GROUPS),
}


def load_cohort(path: str | os.PathLike, *, levels: str | Sequence[str] = DEFAULT_LEVEL_SET, roi: str | None = None,
                clinical: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read a cohort CSV/TSV (separator from the extension, else sniffed); long per-vertebra tables are
    averaged per patient (:func:`aggregate_levels`) and may be joined to a ``clinical`` table on ``exam``."""
    df = _read_table(path)
    if set(AGGREGATE_COLUMNS) <= set(df.columns):
        require_numeric(df, ["mean"], f"per-vertebra table {Path(path).name}", id_columns=("exam", "level", "map"))
        df = aggregate_levels(df, levels, roi)
    if clinical is not None:
        clin = _read_table(clinical)
        require_columns(clin, ["exam"], f"clinical table {Path(clinical).name}")
        require_columns(df, ["exam"], f"cohort table {Path(path).name}")
        overlap = [c for c in clin.columns if c in df.columns and c != "exam"]
        df = df.merge(clin.drop(columns=overlap), on="exam", how="left", validate="one_to_one")
    df.attrs["source"] = Path(path).name + (f" + {Path(clinical).name}" if clinical is not None else "")
    return df


def _read_table(path: str | os.PathLike) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError(f"cohort file not found: {path}")
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else ("," if path.suffix.lower() == ".csv" else None)
    try:
        return pd.read_csv(path, sep=sep, engine="python" if sep is None else "c")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"cannot read {path.name} as a table: {exc}") from None


@dataclass
class StudyResult:
    data: pd.DataFrame  # analysed cohort with who_group and outcome columns
    markers: list[str]
    bmd: str | None
    table1: pd.DataFrame
    table2: pd.DataFrame
    auc_comparisons: pd.DataFrame
    correlations: pd.DataFrame
    agreement: pd.DataFrame
    rocs: dict[str, dict[str, Any]] = field(repr=False)  # outcome -> {name: RocResult}
    correlation_results: dict[str, Any] = field(repr=False)
    bland_altman_results: dict[tuple[str, str], Any] = field(repr=False)
    notes: list[str] = field(default_factory=list)


def run_study(
    df: pd.DataFrame,
    *,
    tscore: str,
    markers: Sequence[str],
    bmd: str | None = None,
    reader_pairs: Sequence[tuple[str, str]] = (),
    table1_variables: Sequence[str] | None = None,
    outcomes: Sequence[str] = ("osteoporosis", "low_bone_mass"),
    n_bootstrap: int = 200,
    random_state: int | None = 0,
    nan_policy: str = "omit",
) -> StudyResult:
    """The seed study's analysis on one cohort table (see the module docstring)."""
    markers = list(markers)
    if not markers:
        raise InputError("give at least one marker column (--marker)")
    needed = [tscore, *markers, *([bmd] if bmd else []), *[c for p in reader_pairs for c in p]]
    what = " ".join(("cohort table", *([df.attrs["source"]] if df.attrs.get("source") else [])))
    require_columns(df, needed, what)
    require_numeric(df, needed, what)  # names the exam and value of each text cell; refuses all-empty columns
    unknown = [o for o in outcomes if o not in OUTCOMES]
    if unknown:
        raise InputError(f"unknown outcome(s) {unknown}; use {list(OUTCOMES)}")
    notes: list[str] = []
    data = df.copy()
    n_no_t = int(data[tscore].isna().sum())
    if n_no_t:
        if nan_policy == "raise":
            raise InputError(f"{n_no_t} patient(s) have no T-score in {tscore!r}")
        notes.append(f"{n_no_t} patient(s) without a T-score were excluded")
        data = data[data[tscore].notna()].copy()
    data["who_group"] = who_category(data[tscore]).to_numpy()
    counts = data["who_group"].value_counts()
    notes.append("WHO groups: " + ", ".join(f"{g} n={int(counts.get(g, 0))}" for g in WHO_GROUPS))

    if table1_variables is None:
        table1_variables = [c for c in ("sex", "age", "bmi") if c in data.columns]
        table1_variables += [c for c in [bmd, *markers] if c]
    else:
        require_columns(data, table1_variables, "cohort table")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", MissingDataWarning)
        t1 = table1(data, "who_group", list(dict.fromkeys(table1_variables)), group_order=WHO_GROUPS,
                    nan_policy=nan_policy)

        t2_parts, cmp_parts, rocs = [], [], {}
        for key in outcomes:
            label, positives, _ = OUTCOMES[key]
            outcome = data["who_group"].isin(positives)
            if outcome.all() or not outcome.any():
                notes.append(f"ROC '{label}' skipped: the cohort has a single class")
                continue
            frame = data[[*markers]].assign(_outcome=outcome.to_numpy())
            res = table2(frame, "_outcome", markers, positive=True, n_bootstrap=n_bootstrap,
                         random_state=random_state, nan_policy=nan_policy)
            t2, cmp, comb = res.table, res.comparisons, res.combined
            t2.insert(0, "outcome", label)
            t2_parts.append(t2)
            if not cmp.empty:
                cmp_parts.append(cmp.assign(outcome=label))
            complete = frame.dropna()
            rocs[label] = {m: roc_analysis(complete["_outcome"], complete[m], positive=True, marker_name=m)
                           for m in markers}
            if comb is not None:
                rocs[label]["combined"] = comb.roc

        corr_rows, corr_results = [], {}
        against = bmd or tscore
        for m in markers:
            for method in ("pearson", "spearman"):
                c = correlation(data[m], data[against], method=method, names=(m, against), nan_policy=nan_policy)
                corr_rows.append(c.to_frame())
                if method == "pearson":
                    corr_results[m] = c

        ag_rows, ba_results = [], {}
        for a, b in reader_pairs:
            ba = bland_altman(data[a], data[b], nan_policy=nan_policy)
            ba_results[(a, b)] = ba
            icc_tab = icc_wide(data[[a, b]], nan_policy=nan_policy).set_index("type")
            row = {"measure_a": a, "measure_b": b}
            for form in ("ICC2", "ICC3", "ICC1"):
                r = icc_tab.loc[form]
                row.update({f"{form.lower()}": r["icc"], f"{form.lower()}_ci_low": r["ci_low"],
                            f"{form.lower()}_ci_high": r["ci_high"], f"{form.lower()}_p": r["p_value"]})
            row.update(ba.to_frame().iloc[0].to_dict())
            ag_rows.append(row)
    for w in caught:
        notes.append(str(w.message))

    agreement = pd.DataFrame(ag_rows).astype({"n": int, "n_dropped": int}) if ag_rows else pd.DataFrame(
        columns=["measure_a", "measure_b", "icc2", "icc2_ci_low", "icc2_ci_high", "bias", "loa_low", "loa_high"])
    return StudyResult(
        data=data, markers=markers, bmd=bmd, table1=t1,
        table2=pd.concat(t2_parts, ignore_index=True) if t2_parts else pd.DataFrame(),
        auc_comparisons=pd.concat(cmp_parts, ignore_index=True) if cmp_parts else pd.DataFrame(),
        correlations=pd.concat(corr_rows, ignore_index=True), agreement=agreement, rocs=rocs,
        correlation_results=corr_results, bland_altman_results=ba_results, notes=list(dict.fromkeys(notes)),
    )
