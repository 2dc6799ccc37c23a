"""The study analysis and its report: from one cohort table to the seed study's tables and figures.

:func:`load_cohort` reads a CSV/TSV cohort — one row per patient, or the per-vertebra long table of the
measurement layer (``exam, level, map, [roi,] mean, ...``), averaged per patient over the chosen levels
(``L1-L4``, ``L1-L5`` or one level). :func:`run_study` computes Table 1 (groups by WHO T-score class),
Table 2 (ROC of each marker and their logistic combination, for osteoporosis vs the rest and for low bone
mass vs normal), correlations with BMD and reader agreement (ICC, Bland–Altman).
:func:`write_study` writes ``table1.csv, table2.csv, correlations.csv, agreement.csv`` (plus
``auc_comparisons.csv``) and a self-contained ``report.html``.
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
from osteomri.io.provenance import write_table_atomic
from osteomri.report.format import interval, label, reformat_mean_sd, sig, split_name
from osteomri.stats import (
    WHO_GROUPS,
    MissingDataWarning,
    bland_altman,
    correlation,
    format_p,
    icc_wide,
    roc_analysis,
    table1,
    table2,
    who_category,
)
from osteomri.stats._validate import require_columns, require_numeric
from osteomri.vertebrae.measure import AGGREGATE_COLUMNS, aggregate_levels

__all__ = ["OUTCOMES", "StudyResult", "load_cohort", "run_study", "write_study"]

#: ROC outcome definitions from the WHO group: name -> (label, positive groups, compared groups)
OUTCOMES = {
    "osteoporosis": ("osteoporosis vs normal + osteopenia", ("osteoporosis",), WHO_GROUPS),
    "low_bone_mass": ("osteopenia + osteoporosis vs normal", ("osteopenia", "osteoporosis"), WHO_GROUPS),
}


def load_cohort(path: str | os.PathLike, *, levels: str | Sequence[str] = "L1-L4", roi: str | None = None,
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
            t2 = table2(frame, "_outcome", markers, positive=True, n_bootstrap=n_bootstrap,
                        random_state=random_state, nan_policy=nan_policy)
            cmp, comb = t2.attrs["comparisons"], t2.attrs["combined"]
            t2.attrs = {}  # pandas cannot concatenate frames whose attrs hold DataFrames
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


def write_study(result: StudyResult, out_dir: str | os.PathLike, prov: dict[str, Any] | None = None,
                title: str = "osteomri study report") -> dict[str, Path]:
    """Write the tables (CSV) and the self-contained ``report.html``; returns the paths by name."""
    from osteomri.report.figures_study import bland_altman_figure, box_figure, roc_figure, scatter_figure
    from osteomri.report.html import HtmlReport

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "table1": write_table_atomic(result.table1, out / "table1.csv"),
        "table2": write_table_atomic(result.table2, out / "table2.csv"),
        "correlations": write_table_atomic(result.correlations, out / "correlations.csv"),
        "agreement": write_table_atomic(result.agreement, out / "agreement.csv"),
        "auc_comparisons": write_table_atomic(result.auc_comparisons, out / "auc_comparisons.csv"),
    }
    rep = HtmlReport(title)
    rep.paragraph(f"{len(result.data)} patients; markers: {', '.join(label(m) for m in result.markers)}"
                  + (f"; BMD: {label(result.bmd)}" if result.bmd else "") + ".")
    for note in result.notes:
        rep.paragraph(note, css_class="note")

    rep.heading("Table 1. Characteristics by WHO group")
    rep.table(table1_display(result.table1),
              caption="Mean ± SD per group; one-way ANOVA (continuous), chi-square (categorical)")
    rep.figure(box_figure(result.data, "who_group", result.markers, list(WHO_GROUPS)),
               caption="Markers by WHO group (box: quartiles; whiskers: 1.5 IQR; points: patients)")

    if not result.table2.empty:
        rep.heading("Table 2. Diagnostic performance")
        rep.table(table2_display(result.table2), caption="AUC (95% CI, DeLong), P vs AUC 0.5, Youden cut-off "
                  "with sensitivity and specificity; the combined marker's AUC is also given optimism-corrected "
                  "(bootstrap)")
        if not result.auc_comparisons.empty:
            rep.table(comparisons_display(result.auc_comparisons), caption="Paired DeLong tests of AUC differences")
        for label_, rocs in result.rocs.items():
            rep.figure(roc_figure(rocs, title=label_), caption=f"ROC curves, {label_} (points: Youden cut-offs)")

    rep.heading("Correlations")
    rep.table(correlations_display(result.correlations),
              caption="Correlation with " + (label(result.bmd) if result.bmd else "the T-score") + " (Fisher-z 95% CI)")
    against = result.bmd or result.correlations["y"].iloc[0]
    for m, corr in result.correlation_results.items():
        rep.figure(scatter_figure(result.data, against, m, corr, group="who_group"),
                   caption=f"{label(m)} against {label(against)}: regression line and Pearson r")

    rep.heading("Inter-reader agreement")
    if result.agreement.empty:
        rep.paragraph("No reader columns were given (--reader-columns A,B).")
    else:
        rep.table(agreement_display(result.agreement),
                  caption="ICC(2,1): two-way random, absolute agreement, single rater; ICC(3,1): two-way mixed, "
                  "consistency (Shrout & Fleiss 1979); Bland–Altman bias and 95% limits of agreement (LoA), "
                  "differences A − B")
        for (a, b), ba in result.bland_altman_results.items():
            rep.figure(bland_altman_figure(ba, a, b),
                       caption=f"Bland–Altman plot, {label(a)} vs {label(b)} (bands: 95% CIs)")
    if prov is not None:
        rep.provenance(prov)
    paths["report"] = rep.write(out / "report.html")
    return paths


# ---------------------------------------------------------------------------------------------------------
# display copies of the study tables (human headers with units, 3 significant figures): report only
# ---------------------------------------------------------------------------------------------------------
def table1_display(t1: pd.DataFrame) -> pd.DataFrame:
    """Table 1 with variable labels and units, ``mean ± SD`` to 3 significant figures, the test and P."""
    groups = [c for c in t1.columns if c not in ("variable", "test", "statistic", "p_value", "p", "n_missing")]
    out = pd.DataFrame({"Variable": [_variable_label(v) for v in t1["variable"]]})
    for g in groups:
        out[g[0].upper() + g[1:]] = t1[g].map(reformat_mean_sd)
    if "test" in t1.columns:
        out["Test"] = t1["test"]
    out["P"] = t1["p"] if "p" in t1.columns else t1["p_value"].map(format_p)
    return out


def _variable_label(name: str) -> str:
    base, _, rest = str(name).partition(" (")
    return label(base) + (f" ({rest}" if rest else "")


def table2_display(t2: pd.DataFrame) -> pd.DataFrame:
    """Table 2: outcome, marker, AUC (95% CI), P, cut-off (marker units), Se, Sp (%), Youden J."""
    out = pd.DataFrame({
        "Outcome": t2["outcome"], "Marker": t2["marker"].map(label),
        "AUC (95% CI)": [interval(a, lo, hi) for a, lo, hi in zip(t2["auc"], t2["auc_ci_low"], t2["auc_ci_high"],
                                                                  strict=True)],
        "P": t2["p"] if "p" in t2.columns else t2["p_value"].map(format_p),
        "Cut-off": t2["cutoff"].map(sig), "Sensitivity (%)": (100 * t2["sensitivity"]).map(sig),
        "Specificity (%)": (100 * t2["specificity"]).map(sig), "Youden J": t2["youden_j"].map(sig),
    })
    if "auc_corrected" in t2.columns and t2["auc_corrected"].notna().any():
        out["AUC, corrected"] = t2["auc_corrected"].map(sig)
    return out


def comparisons_display(cmp: pd.DataFrame) -> pd.DataFrame:
    """Paired AUC comparisons: markers, AUCs, difference (95% CI), z and P."""
    name = label

    return pd.DataFrame({
        "Outcome": cmp["outcome"], "Markers": [f"{name(a)} vs {name(b)}" for a, b in zip(cmp["marker_a"],
                                                                                         cmp["marker_b"], strict=True)],
        "AUCs": [f"{sig(a)} vs {sig(b)}" for a, b in zip(cmp["auc_a"], cmp["auc_b"], strict=True)],
        "Difference (95% CI)": [interval(d, lo, hi) for d, lo, hi in zip(cmp["diff"], cmp["diff_ci_low"],
                                                                          cmp["diff_ci_high"], strict=True)],
        "z": cmp["statistic"].map(sig), "P": cmp["p_value"].map(format_p),
    })


def correlations_display(corr: pd.DataFrame) -> pd.DataFrame:
    """Correlations: marker, against, method, n, r (95% CI), P."""
    return pd.DataFrame({
        "Marker": corr["x"].map(label), "Against": corr["y"].map(label), "Method": corr["method"].str.capitalize(),
        "n": corr["n"].astype(int).astype(str),
        "r (95% CI)": [interval(r, lo, hi) for r, lo, hi in zip(corr["r"], corr["ci_low"], corr["ci_high"],
                                                                strict=True)],
        "P": corr["p_value"].map(format_p),
    })


def agreement_display(ag: pd.DataFrame) -> pd.DataFrame:
    """Agreement: measures, n, ICC(2,1) and ICC(3,1) (95% CI), bias (95% CI), 95% LoA, proportional-bias P."""
    def units(a: str) -> str:
        unit = split_name(a)[1]
        return f" ({unit})" if unit else ""

    return pd.DataFrame({
        "Measures (A vs B)": [f"{label(a)} vs {split_name(b)[0]}" for a, b in zip(ag["measure_a"], ag["measure_b"],
                                                                                  strict=True)],
        "n": ag["n"].astype(int).astype(str),
        "ICC(2,1) (95% CI)": [interval(v, lo, hi) for v, lo, hi in zip(ag["icc2"], ag["icc2_ci_low"],
                                                                       ag["icc2_ci_high"], strict=True)],
        "ICC(3,1) (95% CI)": [interval(v, lo, hi) for v, lo, hi in zip(ag["icc3"], ag["icc3_ci_low"],
                                                                       ag["icc3_ci_high"], strict=True)],
        "Bias (95% CI)": [interval(v, lo, hi) + units(a) for v, lo, hi, a in
                          zip(ag["bias"], ag["bias_ci_low"], ag["bias_ci_high"], ag["measure_a"], strict=True)],
        "95% LoA": [f"{sig(lo)} to {sig(hi)}{units(a)}" for lo, hi, a in zip(ag["loa_low"], ag["loa_high"],
                                                                              ag["measure_a"], strict=True)],
        "Proportional bias P": ag["prop_bias_p"].map(format_p),
    })
