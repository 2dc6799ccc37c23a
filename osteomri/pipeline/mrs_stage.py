"""The exam pipeline's MRS stage: fit the exam's marrow spectrum (or multi-TE series) and put its results
beside the PDFF of the same vertebra.

The spectra come from ``spec.options["mrs"]["spectra"]`` (paths; ``osteomri exam --mrs``). Results go to the
exam's scores as flat ``mrs_*`` numbers (so the cohort table gets MRS columns) and its figures (the fit).
The voxel centre (scanner RAS+ mm, from the NIfTI-MRS affine) is looked up in the label map, when there is
one, to name the level; the per-vertebra table's PDFF of that level (imaging) is then reported beside the
spectroscopic PDFF.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from osteomri.errors import InputError

if TYPE_CHECKING:
    from osteomri.pipeline.spec import ExamSpec
    from osteomri.pipeline.stages import ExamContext

REPORTED = ("mrs_pdff_percent", "water_t2_ms", "fat_t2_ms", "ndb", "unsaturation_index", "fpufa",
            "water_linewidth_hz", "fat_linewidth_hz", "mrs_snr")


def mrs_applies(spec: ExamSpec) -> bool:
    return bool(spec.options.get("mrs", {}).get("spectra"))


def run_mrs(spec: ExamSpec, ctx: ExamContext) -> str:
    from osteomri.io.spectrum import load_series
    from osteomri.models.mrs import MrsModel
    from osteomri.report.figures_mrs import mrs_fit_figure

    opts = dict(spec.options.get("mrs", {}))
    paths = opts.pop("spectra")
    series = load_series(list(paths))
    if series.grid_shape:
        raise InputError(f"the exam's MRS must be single-voxel, got a grid {series.grid_shape}")
    opts.setdefault("t2_correction", np.unique(series.te_s).size >= 2)
    model = MrsModel.from_spectrum(series, **opts)
    fit = model.fit(series.fids)
    if fit.implausible().any():
        raise InputError(f"{', '.join(series.sources)}: the spectrum does not read as marrow water + fat (PDFF "
                         f"{float(np.asarray(fit.values['mrs_pdff_percent']).ravel()[0]):.3g} %, outside 0-100 %)")
    scores = ctx.result.scores
    for name in REPORTED:
        scores[name] = float(fit.values[name])
        scores[f"{name}_sd"] = float(fit.sd[f"{name}_sd"])
    scores["mrs_t2_corrected"] = bool(fit.qc["t2_corrected"])
    level = _level_of_voxel(spec, ctx, series.voxel_position_mm)
    if level is not None:
        scores["mrs_level"] = level
        table = ctx.result.vertebrae
        if table is not None and len(table):
            hit = table[(table["level"] == level) & (table["map"] == "pdff_percent")]
            if len(hit):
                scores["mrs_level_imaging_pdff_percent"] = float(hit["mean"].iloc[0])
    ctx.result.figures["mrs"] = mrs_fit_figure(fit, series.fids, (), title=f"{spec.exam_id} MRS"
                                               + (f" ({level})" if level else ""))
    ctx.result.qc.update({f"mrs_{k}": v for k, v in fit.qc.items() if isinstance(v, (bool, int, float))})
    where = f" in {level}" if level else ""
    return (f"PDFF {scores['mrs_pdff_percent']:.3g} ± {scores['mrs_pdff_percent_sd']:.2g} %{where}, "
            f"{series.te_s.size} TE")


def _level_of_voxel(spec: ExamSpec, ctx: ExamContext, position_mm) -> str | None:
    """The vertebral level whose label holds the voxel centre (None without labels or outside every vertebra)."""
    if spec.labels is None or position_mm is None:
        return None
    from osteomri.vertebrae.labels import CODE_LEVELS, resolve_labels

    try:
        vl = resolve_labels(ctx.input("labels"), spec.label_preset)
    except InputError:
        return None
    ijk = np.rint(np.linalg.inv(vl.affine) @ np.array([*position_mm, 1.0]))[:3].astype(int)
    if np.any(ijk < 0) or np.any(ijk >= np.array(vl.shape)):
        return None
    code = int(vl.level_map[tuple(ijk)])
    return CODE_LEVELS.get(code) if code > 0 else None
