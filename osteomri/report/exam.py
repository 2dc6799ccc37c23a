"""The exam report: one self-contained HTML page a radiologist recognises.

Sections: stage log and QC flags, mid-sagittal maps, ROI overlays, the per-vertebra table (with reference
values when known, e.g. phantom truth), scores (VBQ) and provenance. Imports no pipeline code at run time:
it reads the :class:`~osteomri.pipeline.spec.ExamResult` it is given.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from osteomri.report.figures import maps_figure
from osteomri.report.html import HtmlReport

if TYPE_CHECKING:
    from osteomri.pipeline.spec import ExamResult, ExamSpec


def level_table(vertebrae: pd.DataFrame) -> pd.DataFrame:
    """Wide view of the tidy per-vertebra table: one row per level, ``<map> mean ± SD`` columns."""
    df = vertebrae.copy()
    df["value"] = df.apply(lambda r: f"{r['mean']:.4g} ± {r['sd']:.2g}", axis=1)
    wide = df.pivot_table(index="level", columns="map", values="value", aggfunc="first")
    return wide.reset_index().rename_axis(columns=None)


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


def _as_dict(obj: Any) -> dict:
    if dataclasses.is_dataclass(obj):
        return dataclasses.asdict(obj)
    return obj if isinstance(obj, dict) else {"value": obj}


def exam_report(result: ExamResult, spec: ExamSpec | None = None) -> HtmlReport:
    rep = HtmlReport(f"osteomri exam report — {result.exam_id}")
    rep.paragraph("Quantitative lumbar-spine MRI: water–fat (PDFF, R2*), T1w (VBQ), IVIM; per-vertebra ROIs.")
    rep.heading("Stages")
    rep.table(result.stage_table(), float_format="{:.2f}")
    if not result.ok:
        rep.paragraph("Some stages failed: " + "; ".join(result.errors()), css_class="error")
    if result.qc:
        rep.heading("Quality control")
        rep.table(pd.DataFrame({"flag": list(result.qc), "value": [str(v) for v in result.qc.values()]}))
    if result.maps:
        rep.heading("Parametric maps (mid-sagittal)")
        shown = {k: v for k, v in result.maps.items() if not k.endswith("residual") and k not in ("water", "fat")}
        rep.figure(maps_figure(shown), caption="Mid-sagittal slice of each map (anterior left, superior up)")
    roi_figures = {k: v for k, v in result.figures.items() if k != "mrs"}
    if roi_figures:
        rep.heading("Regions of interest (mid-sagittal)")
        for fig in roi_figures.values():
            rep.figure(fig, caption="Each level's ROI outlined and labelled on the mid-sagittal slice")
    if "mrs" in result.figures:
        rep.heading("MR spectroscopy")
        rep.figure(result.figures["mrs"], caption="Each echo's spectrum with the fit; the first echo's water and fat "
                   "components and residual. Values with their Cramér–Rao SDs are under Scores (mrs_*).")
    if result.vertebrae is not None and len(result.vertebrae):
        rep.heading("Per-vertebra measurements")
        rep.table(level_table(result.vertebrae), caption="mean ± SD in each level's ROI")
        if spec is not None and spec.reference_values is not None:
            comp = reference_comparison(result.vertebrae, spec.reference_values)
            if len(comp):
                rep.table(comp, caption="Measured vs reference (known truth)", float_format="{:.4g}")
    if result.scores:
        rep.heading("Scores")
        scalars = _scalar_scores(result.scores)
        if len(scalars):
            rep.table(scalars, caption="Scalar results (value ± SD where one is known; 3 significant figures)")
        for name, score in result.scores.items():
            if name in set(scalars["quantity"]) or name.removesuffix("_sd") in set(scalars["quantity"]):
                continue
            if isinstance(score, pd.DataFrame):
                rep.table(score, caption=name.replace("_", " "), float_format="{:.4g}")
                continue
            d = {k: v for k, v in _as_dict(score).items() if not isinstance(v, (pd.DataFrame, list, dict))}
            rep.table(pd.DataFrame({"quantity": list(d), "value": [str(v) for v in d.values()]}), caption=name)
    if result.clinical:
        rep.heading("Clinical columns")
        rep.table(pd.DataFrame([result.clinical]))
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

