"""The exam report: one self-contained HTML page a radiologist recognises.

Sections: the osteoporosis risk estimate (a compact clinical summary with footnotes), stage log, QC flags and
metrics, mid-sagittal maps, ROI overlays, the per-vertebra table (with reference values when known, e.g.
phantom truth), scores (VBQ) and provenance. Every table goes through :mod:`osteomri.report.format` (human
headers with units, 3 significant figures). Imports no pipeline code at run time:
it reads the :class:`~osteomri.pipeline.spec.ExamResult` it is given.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from osteomri.report.figures import maps_figure
from osteomri.report.format import column_scale, humanise, label, mean_sd, sig, split_name
from osteomri.report.html import HtmlReport
from osteomri.report.qc import exam_qc_tables

if TYPE_CHECKING:
    from osteomri.pipeline.spec import ExamResult, ExamSpec


#: score fields shown in the exam report, with their human names
SCORE_FIELDS = {"value": "Score", "numerator": "L1–L4 median signal (a.u.)", "csf_signal": "CSF signal (a.u.)",
                "cutoff": "Cut-off", "classification": "Classification", "field_strength_t": "Field strength (T)",
                "csf_n_voxels": "CSF voxels", "csf_source": "CSF source", "roi": "ROI", "snr": "SNR",
                "signal": "Signal (a.u.)", "noise_sd": "Noise SD (a.u.)", "reference_mean": "Reference mean",
                "reference_sd": "Reference SD", "noise_source": "Noise source"}


def level_table(vertebrae: pd.DataFrame) -> pd.DataFrame:
    """Wide view of the tidy per-vertebra table: one row per level, one ``mean ± SD`` column per map,
    headed by the map's label and unit (values scaled per map when they need a power of ten)."""
    levels = list(dict.fromkeys(vertebrae["level"]))
    out = pd.DataFrame({"Level": levels})
    for map_name, grp in vertebrae.groupby("map", sort=False):
        exponent = column_scale(grp["mean"])
        by_level = grp.groupby("level").first()
        k = 10.0**exponent
        out[label(map_name, exponent)] = [mean_sd(by_level.loc[lv, "mean"] / k, by_level.loc[lv, "sd"] / k)
                                          if lv in by_level.index else "–" for lv in levels]
    return out


def reference_comparison(vertebrae: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Measured mean beside the reference value per level and map (maps present in both)."""
    ref = reference.set_index("level")
    rows = []
    for (level, map_name), grp in vertebrae.groupby(["level", "map"]):
        if map_name in ref.columns and level in ref.index:
            measured, truth = float(grp["mean"].iloc[0]), float(ref.loc[level, map_name])
            rows.append({"level": level, "map": map_name, "measured": measured, "reference": truth,
                         "difference": measured - truth})
    return pd.DataFrame(rows)


def reference_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """Display of :func:`reference_comparison`: one row per level, ``measured (reference)`` per map."""
    levels = list(dict.fromkeys(comparison["level"]))
    out = pd.DataFrame({"Level": levels})
    for map_name, grp in comparison.groupby("map", sort=False):
        exponent = column_scale(grp["reference"])
        k = 10.0**exponent
        g = grp.set_index("level")
        out[label(map_name, exponent)] = [f"{sig(g.loc[lv, 'measured'] / k)} ({sig(g.loc[lv, 'reference'] / k)})"
                                          if lv in g.index else "–" for lv in levels]
    return out


def screening_summary(screen: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The clinical summary of a screening estimate: marker, value, cut-off, result, LR and post-test
    probability (one row per marker), and its footnotes (source, pre-test probability, Se/Sp, levels)."""
    rows, notes = [], []
    for r in screen.to_dict("records"):
        symbol, unit = split_name(r["marker"])
        rows.append({"Marker": f"{symbol} ({unit})" if unit else symbol, "Value": sig(r["value"]),
                     "Cut-off": f"{r['rule'].split()[0]} {sig(r['cutoff'])}",
                     "Result": "positive" if bool(r["positive"]) else "negative",
                     "LR": sig(r["likelihood_ratio"]),
                     "Post-test probability (%)": sig(100.0 * r["posttest_probability"])})
        notes.append(f"{symbol}: sensitivity {sig(100 * r['sensitivity'])} % "
                     f"({sig(100 * r['sensitivity_ci_low'])}–{sig(100 * r['sensitivity_ci_high'])}), specificity "
                     f"{sig(100 * r['specificity'])} % ({sig(100 * r['specificity_ci_low'])}–"
                     f"{sig(100 * r['specificity_ci_high'])}) at the cut-off (95 % Clopper–Pearson CIs).")
    first = screen.iloc[0]
    notes.insert(0, f"Pre-test probability {sig(100 * first['pretest_probability'])} % (the source study's "
                 "prevalence unless set); LR: likelihood ratio of this result; each marker on its own (PDFF and "
                 "R2* are correlated: their LRs must not be multiplied).")
    if "levels" in screen.columns:
        notes.append(f"Value: mean over levels {first['levels']}.")
    if "applicability" in screen.columns and isinstance(first.get("applicability"), str):
        notes.append(f"Applicability: {first['applicability']}.")
    for source in dict.fromkeys(screen["source"]):
        notes.append(f"Source: {source}.")
    return pd.DataFrame(rows), notes


def _as_dict(obj: Any) -> dict:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    return obj if isinstance(obj, dict) else {"value": obj}


def score_table(score: Any) -> pd.DataFrame:
    """A score's scalar fields as ``Quantity`` / ``Value`` rows (human names, 3 significant figures)."""
    d = {k: v for k, v in _as_dict(score).items() if not isinstance(v, (pd.DataFrame, list, dict))}
    return pd.DataFrame({"Quantity": [SCORE_FIELDS.get(k, split_name(k)[0]) for k in d],
                         "Value": [sig(v) if not isinstance(v, str) else v for v in d.values()]})


def exam_report(result: ExamResult, spec: ExamSpec | None = None) -> HtmlReport:
    rep = HtmlReport(f"osteomri exam report — {result.exam_id}")
    rep.paragraph("Quantitative lumbar-spine MRI: water–fat (PDFF, R2*), T1w (VBQ), IVIM; per-vertebra ROIs.")
    screen = result.scores.get("osteoporosis_screen") if result.scores else None
    if isinstance(screen, pd.DataFrame) and len(screen):
        rep.heading("Osteoporosis risk estimate")
        summary, notes = screening_summary(screen)
        rep.table(summary, caption="Each marker against its published cut-off")
        rep.footnotes(notes)
    rep.heading("Stages")
    rep.table(humanise(result.stage_table()))
    if not result.ok:
        rep.paragraph("Some stages failed: " + "; ".join(result.errors()), css_class="error")
    if result.qc:
        rep.heading("Quality control")
        flags, metrics = exam_qc_tables(result.qc)
        if len(flags):
            rep.table(flags, caption="QC flags")
        if len(metrics):
            rep.table(metrics, caption="QC metrics")
    if result.maps:
        rep.heading("Parametric maps (mid-sagittal)")
        shown = {k: v for k, v in result.maps.items()
                 if not k.endswith("residual") and k not in ("water", "fat", "ute_s0", "ute_mt_s0")}
        rep.figure(maps_figure(shown), caption="Mid-sagittal slice of each map (anterior left, superior up)")
    roi_figures = {k: v for k, v in result.figures.items() if k == "qc" or k.endswith("_qc")}
    if roi_figures:
        rep.heading("Regions of interest (mid-sagittal)")
        for fig in roi_figures.values():
            rep.figure(fig, caption="Each level's ROI outlined on the mid-sagittal slice, labelled beside it")
    if "autolabel" in result.figures:
        rep.heading("Automatic vertebra labels")
        rep.figure(result.figures["autolabel"], caption="Vertebral bodies found and named by osteomri (no label file "
                   "given); per-level confidence under Quality control. Check them before using the numbers.")
    if "ute_fit" in result.figures:
        rep.heading("UTE bone water")
        rep.figure(result.figures["ute_fit"], caption="For each level, the voxel of the body ROI at the median of "
                   "the main UTE map: measured signal (points), model fit (line) and residual")
    if "mrs" in result.figures:
        rep.heading("MR spectroscopy")
        rep.figure(result.figures["mrs"], caption="Each echo's spectrum with the fit; the first echo's water and fat "
                   "components and residual. Values with their Cramér–Rao SDs are under Scores (mrs_*).")
    if result.vertebrae is not None and len(result.vertebrae):
        rep.heading("Per-vertebra measurements")
        rep.table(level_table(result.vertebrae), caption="Mean ± SD in each level's ROI")
        if spec is not None and spec.reference_values is not None:
            comp = reference_comparison(result.vertebrae, spec.reference_values)
            if len(comp):
                rep.table(reference_table(comp), caption="Measured (reference): mean in each level's ROI and "
                          "the known truth")
    scores = {k: v for k, v in (result.scores or {}).items() if k != "osteoporosis_screen"}
    if scores:
        rep.heading("Scores")
        scalars = _scalar_scores(scores)
        if len(scalars):
            rep.table(scalars, caption="Scalar results (value ± SD where one is known; 3 significant figures)")
        for name, score in scores.items():
            if name in set(scalars["quantity"]) or name.removesuffix("_sd") in set(scalars["quantity"]):
                continue
            if isinstance(score, pd.DataFrame):
                rep.table(humanise(score), caption=name.replace("_", " "))
                continue
            rep.table(score_table(score), caption=split_name(name)[0])
    if result.clinical:
        rep.heading("Clinical columns")
        rep.table(pd.DataFrame({"Column": [split_name(k)[0] for k in result.clinical],
                                "Value": [sig(v) if not isinstance(v, str) else v
                                          for v in result.clinical.values()]}))
    rep.provenance(result.provenance)
    return rep


def _scalar_scores(scores: dict) -> pd.DataFrame:
    """Plain-number scores in one table: ``X`` with ``X_sd`` as 'value ± SD', units from the map registry."""
    from osteomri.models.registry import map_spec

    rows = []
    for name, value in scores.items():
        if name.endswith("_sd") and name[:-3] in scores:
            continue
        if not isinstance(value, (bool, int, float, str)):
            continue
        sd = scores.get(f"{name}_sd")
        try:
            units = map_spec(name).units
        except KeyError:
            units = ""
        if isinstance(value, (str, bool)):
            text = str(value)
        elif isinstance(sd, (int, float)) and not isinstance(sd, bool) and np.isfinite(sd):
            text = f"{value:.3g} ± {sd:.2g}"
        else:
            text = f"{value:.3g}"
        rows.append({"quantity": name, "value": text, "units": units})
    return pd.DataFrame(rows, columns=["quantity", "value", "units"])

