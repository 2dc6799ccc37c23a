"""The study report: the seed study's tables and figures from a :class:`~osteomri.pipeline.study.StudyResult`.

:func:`write_study` writes ``table1.csv, table2.csv, correlations.csv, agreement.csv`` (plus
``auc_comparisons.csv``) and a self-contained ``report.html``. The analysis itself is
:func:`osteomri.pipeline.study.run_study`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from osteomri.io.provenance import write_table_atomic
from osteomri.report.format import interval, label, reformat_mean_sd, sig, split_name
from osteomri.stats import WHO_GROUPS, format_p

if TYPE_CHECKING:
    from osteomri.pipeline.study import StudyResult

__all__ = ["write_study"]


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
