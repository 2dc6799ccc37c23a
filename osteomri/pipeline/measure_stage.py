"""The measurement stages of the exam pipeline: given maps, and per-vertebra statistics.

``maps``: parametric maps given as inputs (``ExamSpec.maps``, by registry name or a short alias: ``pdff``,
``r2star``, ``t1w``, ``d``, ``dstar``, ``f``) are measured, not written again. ``measure``: the statistics of
every measured map in each level's ROI (``ExamSpec.roi``: ``paper``, ``body``, ``seed`` with
``options["measure"]["seeds"]``, ``reader`` with ``options["measure"]["reader_rois"]``), the one-row summary
(``vertebrae_summary``), for readers their per-reader table and agreement, and the QC figures (ROIs outlined;
``options["measure"]["qc"] = False``: none).
``osteomri measure`` is the exam pipeline restricted to these stages (and ``vbq``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.io.loader import load_image
from osteomri.models.registry import registered_maps
from osteomri.pipeline.guards import labelled_options, with_notes
from osteomri.pipeline.model_stages import check_finite
from osteomri.pipeline.ute import UTE_MEASURED_MAPS

if TYPE_CHECKING:
    from osteomri.pipeline.spec import ExamSpec
    from osteomri.pipeline.stages import ExamContext

#: Short names accepted for given maps -> registry names.
MAP_ALIASES = {"pdff": "pdff_percent", "ff": "pdff_percent", "r2star": "r2star_hz", "r2s": "r2star_hz",
               "t1w": "t1w_signal", "d": "d_mm2_s", "dstar": "dstar_mm2_s"}
#: Maps that the exam pipeline measures per vertebra when it made them, and those shown with their ROIs.
MEASURED_MAPS = ("pdff_percent", "r2star_hz", "t1w_signal", "f", "d_mm2_s", "dstar_mm2_s", *UTE_MEASURED_MAPS)
QC_FIGURE_MAPS = ("pdff_percent", "r2star_hz", "t1w_signal", "f")


def map_name(name: str) -> str:
    """The registry name of a given map (aliases resolved: ``pdff`` -> ``pdff_percent``); any other name that is
    a plain lower-case identifier (``t2w``, ``water``) is measured under that name, without units; other text
    raises :class:`InputError`."""
    key = MAP_ALIASES.get(name.strip().lower(), name.strip())
    if key not in registered_maps() and not re.fullmatch(r"[a-z][a-z0-9_]*", key):
        known = ", ".join(sorted({*MAP_ALIASES, *registered_maps()}))
        raise InputError(f"map name {name!r} is neither a registered map ({known}) nor a lower-case identifier")
    return key


def run_given_maps(spec: ExamSpec, ctx: ExamContext) -> str:
    for name, source in spec.maps.items():
        img = load_image(source)
        check_finite(img, f"map {name}")
        if img.data.ndim == 4 and img.data.shape[-1] == 1:
            img = img.with_data(img.data[..., 0])
        ctx.result.input_maps[map_name(name)] = img
    return "given: " + ", ".join(ctx.result.input_maps)


def run_measure(spec: ExamSpec, ctx: ExamContext) -> str:
    from osteomri.vertebrae import measure_readers, measure_vertebrae_with_rois, summarise_levels

    opts: dict[str, Any] = labelled_options(spec, "measure")
    readers, seeds, levels = opts.pop("reader_rois", None), opts.pop("seeds", None), opts.pop("levels", None)
    qc = opts.pop("qc", True)
    if opts.get("subregion") is not None and not isinstance(opts["subregion"], Image):
        opts["subregion"] = load_image(opts["subregion"])
    maps = {**{k: v for k, v in ctx.result.maps.items() if k in MEASURED_MAPS}, **ctx.result.input_maps}
    if not maps:
        raise InputError("no parametric map to measure (no MEGRE, vendor map, T1w or DWI stage succeeded)")
    labels = ctx.input("labels") if spec.labels is not None or "labels" in ctx.images else None  # given or automatic
    roi = "reader" if spec.roi == "roi" else spec.roi
    notes: list[str] = []
    if roi == "reader":
        res = measure_readers(maps, labels, readers or {}, preset=spec.label_preset, exam=spec.exam_id,
                              levels=levels, **opts)
        table, rois = res.averaged, _first_reader_rois(maps, labels, readers or {}, spec.label_preset, opts)
        ctx.result.tables["vertebrae_readers"] = res.per_reader
        if len(res.icc):
            ctx.result.tables["agreement"] = _agreement(res)
    else:
        (table, rois), notes = with_notes(lambda: measure_vertebrae_with_rois(
            maps, labels, spec.label_preset, roi, spec.exam_id, levels, seeds, **opts))
    ctx.result.vertebrae = table
    ctx.result.tables["vertebrae_summary"] = summarise_levels(table)
    if qc:
        _figures(ctx, maps, rois)
    return "; ".join([f"{table['level'].nunique()} levels x {len(maps)} maps, ROI '{spec.roi}'", *notes])


def _figures(ctx: ExamContext, maps: dict[str, Image], rois: dict) -> None:
    """Given maps: one QC figure each (``<map>_qc``); maps the exam made: one panel row (``qc``)."""
    from osteomri.report.figures import qc_figure, qc_panels

    for name in ctx.result.input_maps:
        if name in rois:
            ctx.result.figures[f"{name}_qc"] = qc_figure(maps[name], rois[name], map_name=name)
    shown = {n: maps[n] for n in QC_FIGURE_MAPS if n in rois and n not in ctx.result.input_maps}
    if shown:
        ctx.result.figures["qc"] = qc_panels(shown, rois)


def _first_reader_rois(maps: dict[str, Image], labels: Image | None, readers: dict, preset: str,
                       opts: dict[str, Any]) -> dict:
    """The first reader's ROIs on each map's grid (what the QC figures outline)."""
    from osteomri.vertebrae.labels import get_preset, resolve_labels
    from osteomri.vertebrae.rois import load_reader_roi, reader_rois

    if not readers:
        return {}
    name, source = next(iter(readers.items()))
    roi_image = source if isinstance(source, Image) else load_reader_roi(source)
    label_opts = {k: opts[k] for k in ("subregion", "lowest_level") if k in opts}
    out = {}
    for key, image in maps.items():
        vl = resolve_labels(labels, preset, reference=image, **label_opts) if labels is not None else None
        out[key] = reader_rois(roi_image, image.affine, image.spatial_shape, vl, None,
                               get_preset(preset).vertebrae or None, name=name)
    return out


def _agreement(res) -> pd.DataFrame:
    """ICC rows per map with the Bland–Altman bias and limits of agreement beside them."""
    agreement = res.icc.copy()
    for map_name_, ba in res.bland_altman.items():
        sel = agreement["map"] == map_name_
        agreement.loc[sel, "ba_bias"] = ba.bias
        agreement.loc[sel, "ba_loa_low"] = ba.loa_low
        agreement.loc[sel, "ba_loa_high"] = ba.loa_high
    return agreement
