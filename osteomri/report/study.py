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
from osteomri.stats import WHO_GROUPS

if TYPE_CHECKING:
    from osteomri.pipeline.study import StudyResult

__all__ = ["write_study"]


def _int_text(df: pd.DataFrame) -> pd.DataFrame:
    """Integer columns as text, so that the HTML float format does not print counts as 120.000."""
    return df.assign(**{c: df[c].astype(str) for c in df.columns if pd.api.types.is_integer_dtype(df[c])})


def write_study(result: StudyResult, out_dir: str | os.PathLike, prov: dict[str, Any] | None = None,
                title: str = "osteomri study report") -> dict[str, Path]:
    """Write the tables (CSV) and the self-contained ``report.html``; returns the paths by name."""
    from osteomri.report.figures_study import bland_altman_figure, box_figure, roc_figure, scatter_figure
    from osteomri.report.html import HtmlReport
    from osteomri.stats import format_p

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
    rep.paragraph(f"{len(result.data)} patients; markers: {', '.join(result.markers)}"
                  + (f"; BMD: {result.bmd}" if result.bmd else "") + ".")
    for note in result.notes:
        rep.paragraph(note, css_class="note")

    rep.heading("Table 1. Characteristics by WHO group")
    rep.table(_int_text(result.table1.drop(columns=["p_value"])), float_format="{:.2f}",
              caption="mean ± SD per group; one-way ANOVA (continuous), chi-square (categorical)")
    rep.figure(box_figure(result.data, "who_group", result.markers, list(WHO_GROUPS)),
               caption="Markers by WHO group (box: quartiles; whiskers: 1.5 IQR; points: patients)")

    if not result.table2.empty:
        rep.heading("Table 2. Diagnostic performance")
        cols = ["outcome", "marker", "auc_95ci", "p", "cutoff", "sensitivity", "specificity", "youden_j",
                "auc_corrected"]
        rep.table(result.table2[cols], caption="AUC (95% CI, DeLong), P vs AUC 0.5, Youden cut-off; "
                  "auc_corrected: bootstrap optimism-corrected AUC of the logistic combination",
                  float_format="{:.3f}")
        if not result.auc_comparisons.empty:
            cmp = result.auc_comparisons.assign(p=result.auc_comparisons["p_value"].map(format_p))
            rep.table(cmp[["outcome", "marker_a", "marker_b", "auc_a", "auc_b", "diff", "diff_ci_low",
                           "diff_ci_high", "statistic", "p"]],
                      caption="Paired DeLong tests of AUC differences", float_format="{:.3f}")
        for label, rocs in result.rocs.items():
            rep.figure(roc_figure(rocs, title=label), caption=f"ROC curves, {label} (points: Youden cut-offs)")

    rep.heading("Correlations")
    rep.table(_int_text(result.correlations[["x", "y", "method", "n", "r", "ci_low", "ci_high", "p_value"]]),
              caption="Correlation with " + (result.bmd or "T-score") + " (Fisher-z 95% CI)", float_format="{:.3g}")
    against = result.bmd or result.correlations["y"].iloc[0]
    for m, corr in result.correlation_results.items():
        rep.figure(scatter_figure(result.data, against, m, corr, group="who_group"),
                   caption=f"{m} against {against}: regression line and Pearson r")

    rep.heading("Inter-reader agreement")
    if result.agreement.empty:
        rep.paragraph("No reader columns were given (--reader-columns A,B).")
    else:
        show = ["measure_a", "measure_b", "n", "icc2", "icc2_ci_low", "icc2_ci_high", "icc3", "bias",
                "bias_ci_low", "bias_ci_high", "loa_low", "loa_high", "prop_bias_p"]
        rep.table(_int_text(result.agreement[show]), float_format="{:.3f}",
                  caption="ICC2: two-way random, absolute agreement, single rater (Shrout & Fleiss 1979); "
                  "Bland-Altman bias and 95% limits of agreement")
        for (a, b), ba in result.bland_altman_results.items():
            rep.figure(bland_altman_figure(ba, a, b), caption=f"Bland-Altman plot, {a} vs {b} (bands: 95% CIs)")
    if prov is not None:
        rep.provenance(prov)
    paths["report"] = rep.write(out / "report.html")
    return paths
