"""The cohort summary page: counts, failures, QC flags, distributions of the per-patient markers, timings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from osteomri.io.provenance import provenance
from osteomri.report._mpl import plt
from osteomri.report.format import column_scale, humanise, label, mean_sd, sig
from osteomri.report.html import HtmlReport
from osteomri.report.qc import cohort_qc_tables

if TYPE_CHECKING:
    from osteomri.pipeline.cohort import CohortResult

MAX_ERROR_ROWS = 200


def counts_table(result: CohortResult) -> pd.DataFrame:
    """Exams per outcome of this run (done now, failed now, skipped as already complete, lost)."""
    c = result.counts
    rows = [("exams in the cohort", c["total"]), ("complete and without errors", c["ok"]),
            ("processed in this run", c["done"] + c["failed"]), ("failed (error record)", c["with_errors"]),
            ("skipped (already complete)", c["skipped"]), ("lost (no result; redone next run)", c["lost"])]
    return pd.DataFrame(rows, columns=["", "Exams"])


def marker_columns(patients: pd.DataFrame) -> list[str]:
    """Per-patient numeric markers (L1–L4 means, scores), not ids, QC flags, counters or clinical columns."""
    measured = set(patients.attrs.get("measured", []))
    return [c for c in patients.columns if c in measured and pd.api.types.is_numeric_dtype(patients[c])]


def qc_table(patients: pd.DataFrame) -> pd.DataFrame:
    """Per QC flag: exams flagged and exams reporting it. Only flags count (:mod:`osteomri.report.qc`):
    a metric such as the number of fitted voxels is never "flagged" for being non-zero."""
    return cohort_qc_tables(patients)[0]


def screening_table(patients: pd.DataFrame) -> pd.DataFrame:
    """Per screening marker (columns ``<score>_<marker>_positive``): exams positive and exams screened."""
    rows = []
    for col in (c for c in patients.columns if c.endswith("_positive")):
        values = patients[col].dropna().astype(str).str.lower()
        marker = col[: -len("_positive")].removeprefix("osteoporosis_screen_")
        rows.append((label(marker), int((values == "true").sum()), len(values)))
    return pd.DataFrame(rows, columns=["Marker", "Exams positive", "Exams screened"])


def summary_table(patients: pd.DataFrame, markers: list[str]) -> pd.DataFrame:
    """Per marker: n, mean ± SD, median and range, to 3 significant figures with the unit in the label."""
    rows = []
    for m in markers:
        v = pd.to_numeric(patients[m], errors="coerce").dropna()
        exponent = column_scale(v)
        w = v / 10.0**exponent
        rows.append((label(m, exponent), len(v), mean_sd(w.mean(), w.std()) if len(v) else "–",
                     sig(w.median()) if len(v) else "–", f"{sig(w.min())}–{sig(w.max())}" if len(v) else "–"))
    return pd.DataFrame(rows, columns=["Marker (L1–L4 mean)", "Exams", "Mean ± SD", "Median", "Range"])


def distributions_figure(patients: pd.DataFrame, markers: list[str], by: str | None = None) -> plt.Figure:
    """One histogram per marker, stacked by ``by`` (e.g. the WHO group) when given."""
    n = len(markers)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.2 * rows), squeeze=False)
    for ax, marker in zip(axes.flat, markers, strict=False):
        values = pd.to_numeric(patients[marker], errors="coerce")
        if by and by in patients.columns:
            groups = [(str(g), values[patients[by] == g].dropna()) for g in pd.unique(patients[by].dropna())]
            groups = [(g, v) for g, v in groups if len(v)]
            ax.hist([v for _, v in groups], bins=12, stacked=True, label=[g for g, _ in groups])
            if groups:
                ax.legend(fontsize=7)
        else:
            ax.hist(values.dropna(), bins=12, color="#456")
        ax.set_xlabel(label(marker))
        ax.set_ylabel("exams")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in list(axes.flat)[n:]:
        ax.axis("off")
    fig.tight_layout()
    return fig


def cohort_report(result: CohortResult) -> HtmlReport:
    """Build the cohort summary page (one self-contained HTML file)."""
    rep = HtmlReport("Cohort summary")
    patients = result.patients
    rep.paragraph(f"{result.counts['total']} exams; outputs per exam in sub-XX[/ses-YY]/, cohort tables in "
                  "cohort_vertebrae.tsv and cohort_patients.tsv (input of `osteomri study`).")
    rep.heading("Counts")
    rep.table(counts_table(result))
    rep.heading("Failures")
    if result.errors.empty:
        rep.paragraph("No exam failed.")
    else:
        rep.paragraph(f"{result.errors['exam'].nunique()} exam(s) with errors; all are listed in errors.tsv.",
                      css_class="error")
        by_stage = result.errors.groupby("stage").size().rename("errors").reset_index()
        rep.table(humanise(by_stage, labels={"errors": "Errors"}), caption="Errors per stage")
        rep.table(humanise(result.errors.head(MAX_ERROR_ROWS)), caption="Error records (first "
                  f"{min(len(result.errors), MAX_ERROR_ROWS)})")
    rep.heading("Quality control")
    flags, metrics = cohort_qc_tables(patients) if not patients.empty else (pd.DataFrame(), pd.DataFrame())
    if flags.empty and metrics.empty:
        rep.paragraph("No stage reported QC flags.")
    if not flags.empty:
        rep.table(flags, caption="QC flags (an exam counts when the flag is raised)")
    if not metrics.empty:
        rep.table(metrics, caption="QC metrics (reported, not flags)")
    screen = screening_table(patients) if not patients.empty else pd.DataFrame()
    if not screen.empty:
        rep.heading("Screening")
        rep.table(screen, caption="Risk estimates against published cut-offs (see each exam's report)")
    rep.heading("Distributions")
    markers = marker_columns(patients) if not patients.empty else []
    if markers:
        rep.table(summary_table(patients, markers))
        by = "who_group" if "who_group" in patients.columns else None
        rep.figure(distributions_figure(patients, markers, by),
                   caption="Per-patient markers" + (" by WHO group" if by else ""))
    else:
        rep.paragraph("No per-vertebra measurements yet (the measurement stage did not run): no marker to show.",
                      css_class="note")
    seconds = pd.Series([o.seconds for o in result.outcomes if o.status in ("done", "failed")], dtype=float)
    if len(seconds):
        rep.heading("Timing")
        rep.table(pd.DataFrame([("Exams processed", str(len(seconds))),
                                ("Median time per exam (s)", sig(seconds.median())),
                                ("Longest exam (s)", sig(seconds.max())),
                                ("Wall time of the run (s)", sig(result.seconds))],
                               columns=["", "Value"]))
    rep.provenance(provenance("osteomri cohort run", {"exams": result.counts["total"]}))
    return rep
