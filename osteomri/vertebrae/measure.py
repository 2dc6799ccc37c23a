"""Per-vertebra statistics of any number of maps: the numbers a paper reports.

Public API (used by the exam pipeline, the CLI and the reports):

- :func:`measure_vertebrae` ``(maps, labels, preset, roi="paper", exam="", **options) -> DataFrame``: the tidy
  long table, one row per exam × level × map × ROI with :data:`LONG_COLUMNS` — ``n_voxels``, ``volume_mm3``
  (ROI volume, mm³), ``mean``, ``median``, ``sd`` (ddof = 1), ``iqr`` (P75 − P25), ``p05``, ``p95`` in the
  map's own units (PDFF %, R2* 1/s, T1w a.u., IVIM D mm²/s, ...).
- :func:`measure_readers`: reader-drawn ROIs (several readers), the per-reader and the reader-averaged table
  (the seed study averaged its two readers' values) and their agreement (ICC, Bland–Altman, from
  :mod:`osteomri.stats.agreement`).
- :func:`summarise_levels`: the wide per-exam row with each level's mean and the L1–L4 / L1–L5 means the
  literature uses.
- :func:`roi_statistics`: the statistics of one set of voxel values.

Label maps on another grid than a map are resampled (nearest neighbour) onto the map's grid; ROIs are placed
once per distinct grid.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.stats._validate import MissingDataWarning, require_columns
from osteomri.vertebrae.labels import LUMBAR, VertebraLabels, get_preset, level_rank, resolve_labels
from osteomri.vertebrae.plausibility import warn_if_implausible
from osteomri.vertebrae.rois import (
    RoiSet,
    load_reader_roi,
    parse_seed,
    place_rois,
    reader_rois,
    seed_rois,
    select_levels,
)
from osteomri.vertebrae.sanity import check_measured, truncated_levels

LONG_COLUMNS = ("exam", "level", "map", "roi", "n_voxels", "volume_mm3", "mean", "median", "sd", "iqr", "p05",
                "p95")
STAT_COLUMNS = LONG_COLUMNS[4:]
LEVEL_SETS = {"L1-L4": ("L1", "L2", "L3", "L4"), "L1-L5": LUMBAR}
# The one default level set of per-patient means (exam screening, cohort table, study): L1–L5, the levels of the
# seed study whose published PDFF/R2* cut-offs the screening uses. Overridable (study/cohort ``--levels``); the
# VBQ score keeps its own definition (L1–L4, Ehresman et al. 2020).
DEFAULT_LEVEL_SET = "L1-L5"
_LABEL_OPTIONS = ("subregion", "lowest_level", "vein", "min_component_mm3", "resample")


def roi_statistics(values: np.ndarray, voxel_volume_mm3: float) -> dict[str, float]:
    """Statistics of the finite ``values`` of one ROI (complex values are taken in magnitude).

    Returns ``n_voxels`` (finite voxels), ``volume_mm3`` (all ROI voxels × voxel volume), ``mean``, ``median``,
    ``sd`` (ddof = 1; NaN below 2 voxels), ``iqr``, ``p05``, ``p95`` (linear-interpolated percentiles).
    """
    values = np.abs(values) if np.iscomplexobj(values) else np.asarray(values, dtype=float)
    volume = float(values.size * voxel_volume_mm3)
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {"n_voxels": 0, "volume_mm3": volume, **{k: np.nan for k in STAT_COLUMNS[2:]}}
    p05, p25, p50, p75, p95 = np.percentile(v, [5, 25, 50, 75, 95])
    return {"n_voxels": int(v.size), "volume_mm3": volume, "mean": float(v.mean()), "median": float(p50),
            "sd": float(v.std(ddof=1)) if v.size > 1 else np.nan, "iqr": float(p75 - p25), "p05": float(p05),
            "p95": float(p95)}


def _map_data(image: Image) -> np.ndarray:
    data = np.asarray(image.data)
    if data.ndim > 3:
        if data.shape[3] != 1:
            raise InputError(f"a map must be 3-D, got shape {data.shape}")
        data = data[..., 0]
    return data


def measure_rois(maps: dict[str, Image], rois: RoiSet, exam: str = "", roi_name: str | None = None) -> pd.DataFrame:
    """The tidy long table of ``maps`` (all on the grid of ``rois``) in each level's ROI."""
    rows = []
    vol = rois.voxel_volume_mm3()
    for level in rois.levels:
        mask = rois.masks[level]
        for name, image in maps.items():
            data = _map_data(image)
            if data.shape != mask.shape:
                raise InputError(f"map {name!r} shape {data.shape} differs from the ROI grid {mask.shape}")
            stats = roi_statistics(data[mask], vol)
            rows.append({"exam": exam, "level": level, "map": name, "roi": roi_name or rois.strategy, **stats})
    return pd.DataFrame(rows, columns=list(LONG_COLUMNS))


def _grid_key(image: Image) -> tuple:
    return tuple(image.spatial_shape), np.round(image.affine, 4).tobytes()


def _group_by_grid(maps: dict[str, Image]) -> list[tuple[Image, dict[str, Image]]]:
    groups: dict[tuple, tuple[Image, dict[str, Image]]] = {}
    for name, image in maps.items():
        if not isinstance(image, Image):
            raise InputError(f"map {name!r} must be an Image, got {type(image).__name__}")
        groups.setdefault(_grid_key(image), (image, {}))[1][name] = image
    return list(groups.values())


def measure_vertebrae(
    maps: dict[str, Image],
    labels: Image | None,
    preset: str = "spineps",
    roi: str = "paper",
    exam: str = "",
    levels: str | list[str] | None = None,
    seeds: dict[str, tuple[float, float, float]] | list[str] | None = None,
    seed_map: str | None = None,
    reader_rois: dict[str, Image | str | Path] | None = None,
    **options,
) -> pd.DataFrame:
    """Per-vertebra statistics of every map in each level's ROI: the tidy long table (:data:`LONG_COLUMNS`).

    :func:`measure_vertebrae_with_rois` also returns the ROIs used for each map (for QC figures).

    Parameters
    ----------
    maps:
        Name → :class:`Image` (3-D), e.g. ``{"pdff_percent": ..., "r2star_hz": ...}``; any grids.
    labels, preset:
        Vertebra label map and its convention (:data:`osteomri.vertebrae.labels.PRESETS` or a JSON mapping);
        resampled by nearest neighbour onto each map's grid. ``None`` only with ``roi="seed"``.
    roi:
        ``"paper"`` (seed study), ``"body"``, ``"seed"`` or ``"reader"`` (alias ``"roi"``; averaged readers —
        use :func:`measure_readers` for the per-reader table and agreement).
    levels:
        ``None`` = L1–L5 present, ``"all"``, or a list such as ``["L1", "L2"]``.
    seeds, seed_map:
        For ``roi="seed"``: level → world RAS mm (or strings ``"L3=x,y,z"``), grown on ``maps[seed_map]``
        (default: the first map).
    reader_rois:
        For ``roi="reader"``: reader name → ROI image or file.
    options:
        Label options (``subregion``, ``lowest_level``, ``vein``, ``min_component_mm3``; see
        :func:`~osteomri.vertebrae.labels.resolve_labels`) and ROI options of the strategy (``margin_mm``,
        ``anterior_fraction``, ``slices``, ``exclude_vein``, ``radius_mm``, ``tolerance``, ...).
    """
    return measure_vertebrae_with_rois(maps, labels, preset, roi, exam, levels, seeds, seed_map, reader_rois,
                                       **options)[0]


def measure_vertebrae_with_rois(
    maps: dict[str, Image],
    labels: Image | None,
    preset: str = "spineps",
    roi: str = "paper",
    exam: str = "",
    levels: str | list[str] | None = None,
    seeds: dict[str, tuple[float, float, float]] | list[str] | None = None,
    seed_map: str | None = None,
    reader_rois: dict[str, Image | str | Path] | None = None,
    **options,
) -> tuple[pd.DataFrame, dict[str, RoiSet]]:
    """As :func:`measure_vertebrae`, plus map name → the :class:`RoiSet` measured on it (none for readers)."""
    if not maps:
        raise InputError("no map to measure")
    for name, image in maps.items():
        if isinstance(image, Image) and not np.isfinite(np.abs(np.asarray(image.data))).any():
            raise InputError(f"map {name!r} has no finite values (NaN-only data): nothing to measure")
    roi = "reader" if roi == "roi" else roi
    if roi == "reader":
        return measure_readers(maps, labels, reader_rois or {}, preset=preset, exam=exam, levels=levels,
                               **options).averaged, {}
    label_opts = {k: options.pop(k) for k in _LABEL_OPTIONS if k in options}
    tables, used = [], {}
    if roi == "seed":
        if not seeds:
            raise InputError("roi='seed' needs seeds, e.g. {'L3': (x, y, z)} in world RAS mm "
                             "(CLI --roi-point L3=x,y,z)")
        seeds = dict(parse_seed(s) for s in seeds) if isinstance(seeds, (list, tuple)) else dict(seeds)
        key = seed_map or next(iter(maps))
        if key not in maps:
            raise InputError(f"seed_map {key!r} is not one of the maps ({', '.join(maps)})")
        ref = maps[key]
        vl = resolve_labels(labels, preset, reference=ref, **label_opts) if labels is not None else None
        rois = seed_rois(ref, seeds, labels=vl, **options)
        for grid_ref, group in _group_by_grid(maps):
            if _grid_key(grid_ref) != _grid_key(ref):
                raise InputError(f"seed ROIs are grown on {key!r}; map(s) {', '.join(group)} are on another grid")
            tables.append(measure_rois(group, rois, exam))
            used.update(dict.fromkeys(group, rois))
        return pd.concat(tables, ignore_index=True), used
    if labels is None:
        raise InputError(f"roi={roi!r} needs a vertebra label map (or use roi='seed' with seeds)")
    for grid_ref, group in _group_by_grid(maps):
        vl = resolve_labels(labels, preset, reference=grid_ref, **label_opts)
        lv = select_levels(vl, levels)
        rois = place_rois(vl, roi, lv, **options)
        table = measure_rois(group, rois, exam)
        check_measured(table, truncated_levels(vl.level_map, vl.affine, lv))
        warn_if_implausible(table, _field_strength(group))
        tables.append(table)
        used.update(dict.fromkeys(group, rois))
    return pd.concat(tables, ignore_index=True), used


def _field_strength(maps: dict[str, Image]) -> float | None:
    for image in maps.values():
        value = image.meta.get("MagneticFieldStrength")
        if value is not None:
            return float(value)
    return None


def rois_for(image: Image, labels: Image, preset: str = "spineps", roi: str = "paper",
             levels: str | list[str] | None = None, **options) -> RoiSet:
    """The ROIs that :func:`measure_vertebrae` uses on the grid of ``image`` (for QC figures and scores)."""
    label_opts = {k: options.pop(k) for k in _LABEL_OPTIONS if k in options}
    vl = resolve_labels(labels, preset, reference=image, **label_opts)
    return place_rois(vl, roi, select_levels(vl, levels), **options)


@dataclass
class ReaderMeasurement:
    """Reader-ROI results: per-reader long table (``roi = "reader:<name>"``), the reader-averaged long table
    (``roi = "reader"``; each statistic averaged over readers), ICC per map (long: ``map`` + the rows of
    :func:`osteomri.stats.agreement.icc`) and Bland–Altman per map for two readers (``bland_altman``)."""

    per_reader: pd.DataFrame
    averaged: pd.DataFrame
    icc: pd.DataFrame
    bland_altman: dict[str, object]


def measure_readers(
    maps: dict[str, Image],
    labels: Image | None,
    readers: dict[str, Image | str | Path],
    preset: str = "spineps",
    exam: str = "",
    levels: str | list[str] | None = None,
    **label_options,
) -> ReaderMeasurement:
    """Measure every map in each reader's ROIs, average the readers, and report their agreement.

    Each reader's ROI image labels levels in the preset's values (or is binary and takes the level of the
    vertebra it overlaps, ``labels`` required). Agreement needs at least two readers and three levels
    (targets = exam × level): ICC by Shrout & Fleiss (ICC1..ICC3k), Bland–Altman of reader 1 − reader 2.
    """
    if not readers:
        raise InputError("roi='reader' needs reader ROI masks (CLI --reader-roi PATH, repeatable)")
    p = get_preset(preset)
    per = []
    for grid_ref, group in _group_by_grid(maps):
        vl: VertebraLabels | None = None
        if labels is not None:
            vl = resolve_labels(labels, preset, reference=grid_ref, **label_options)
        lv = select_levels(vl, levels) if (vl is not None or levels is not None) else None
        for name, source in readers.items():
            img = source if isinstance(source, Image) else load_reader_roi(source)
            rois = reader_rois(img, grid_ref.affine, grid_ref.spatial_shape, vl, lv,
                               p.vertebrae if p.vertebrae else None, name=name)
            per.append(measure_rois(group, rois, exam, roi_name=f"reader:{name}"))
    per_reader = pd.concat(per, ignore_index=True)
    per_reader["reader"] = per_reader["roi"].str.slice(len("reader:"))
    averaged = (per_reader.groupby(["exam", "level", "map"], sort=False)[list(STAT_COLUMNS)].mean().reset_index())
    averaged["roi"] = "reader"
    averaged["n_readers"] = per_reader.groupby(["exam", "level", "map"], sort=False)["reader"].nunique().to_numpy()
    averaged = averaged[[*LONG_COLUMNS, "n_readers"]]
    icc_tab, ba = _agreement(per_reader)
    return ReaderMeasurement(per_reader, averaged, icc_tab, ba)


def _agreement(per_reader: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, object]]:
    names = list(dict.fromkeys(per_reader["reader"]))
    if len(names) < 2:
        return pd.DataFrame(), {}
    from osteomri.stats.agreement import bland_altman, icc

    icc_rows, ba = [], {}
    for map_name, grp in per_reader.groupby("map", sort=False):
        grp = grp.assign(target=grp["exam"].astype(str) + "/" + grp["level"].astype(str))
        if grp["target"].nunique() < 3:
            continue
        try:
            icc_rows.append(icc(grp, "target", "reader", "mean").assign(map=map_name))
            wide = grp.pivot(index="target", columns="reader", values="mean")
            ba[map_name] = bland_altman(wide[names[0]], wide[names[1]])
        except InputError as exc:  # e.g. identical readings: agreement undefined, measurements still valid
            warnings.warn(f"reader agreement of {map_name}: {exc}", stacklevel=3)
    icc_tab = pd.concat(icc_rows, ignore_index=True) if icc_rows else pd.DataFrame()
    return icc_tab, ba


def summarise_levels(long: pd.DataFrame, statistic: str = "mean") -> pd.DataFrame:
    """The wide per-exam view of the long table: one row per exam (and ROI kind).

    Columns ``<map>_<level>`` (the level's ``statistic``) and ``<map>_L1-L4`` / ``<map>_L1-L5``, the means of
    the level values over L1–L4 / L1–L5 (NaN when a level of the set is missing), as the literature reports.
    """
    missing = [c for c in ("exam", "level", "map", "roi", statistic) if c not in long.columns]
    if missing:
        raise InputError(f"per-vertebra table lacks column(s) {missing}")
    rows = []
    for (exam, roi), grp in long.groupby(["exam", "roi"], sort=False):
        row: dict[str, object] = {"exam": exam, "roi": roi}
        for map_name, g in grp.groupby("map", sort=False):
            per_level = g.set_index("level")[statistic]
            for level in sorted(per_level.index, key=level_rank):
                row[f"{map_name}_{level}"] = float(per_level[level])
            for set_name, members in LEVEL_SETS.items():
                vals = [per_level.get(lv, np.nan) for lv in members]
                row[f"{map_name}_{set_name}"] = float(np.mean(vals)) if np.all(np.isfinite(vals)) else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


AGGREGATE_COLUMNS = ("exam", "level", "map", "mean")


def parse_level_set(levels: str | Sequence[str]) -> tuple[str, ...]:
    """``"L1-L4"``, ``"L1-L5"``, one level (``"L3"``) or a comma list (``"L2,L3"``) -> tuple of levels."""
    if isinstance(levels, str):
        key = levels.upper().replace("–", "-")
        if key in LEVEL_SETS:
            return LEVEL_SETS[key]
        parts = tuple(p.strip() for p in key.split(","))
        if all(p in LEVEL_SETS["L1-L5"] for p in parts):
            return parts
        raise InputError(f"unknown level choice {levels!r}; use L1-L4, L1-L5 or one level such as L3")
    return tuple(levels)


def aggregate_levels(long: pd.DataFrame, levels: str | Sequence[str] = DEFAULT_LEVEL_SET, roi: str | None = None
                     ) -> pd.DataFrame:
    """Per-patient means of a per-vertebra long table over ``levels``; one column per map.

    Columns constant within an exam (clinical data carried in the long table) are kept. ``n_levels`` counts
    the levels averaged per exam; exams missing some of the levels are averaged over those present (with a
    :class:`MissingDataWarning` naming how many).
    """
    require_columns(long, AGGREGATE_COLUMNS, "per-vertebra table")
    want = parse_level_set(levels)
    data = long
    if "roi" in data.columns:
        rois = sorted(data["roi"].dropna().unique())
        if roi is None and len(rois) > 1:
            raise InputError(f"the per-vertebra table has several ROI kinds {rois}; choose one with --roi")
        if roi is not None:
            if roi not in rois:
                raise InputError(f"ROI {roi!r} not in the per-vertebra table (has {rois})")
            data = data[data["roi"] == roi]
    data = data[data["level"].astype(str).isin(want)]
    if data.empty:
        raise InputError(f"no rows for levels {list(want)} in the per-vertebra table "
                         f"(levels present: {sorted(long['level'].astype(str).unique())})")
    dup = data.duplicated(["exam", "level", "map"])
    if dup.any():
        raise InputError(f"per-vertebra table has {int(dup.sum())} duplicated exam/level/map rows")
    wide = data.pivot_table(index="exam", columns="map", values="mean", aggfunc="mean")
    wide.columns = [str(c) for c in wide.columns]
    n_levels = data.groupby("exam")["level"].nunique().rename("n_levels")
    short = int((n_levels < len(want)).sum())
    if short:
        warnings.warn(f"{short} exam(s) lack some of the levels {list(want)}; averaged over the levels present",
                      MissingDataWarning, stacklevel=2)
    extra = [c for c in long.columns if c not in {"level", "map", "roi", "mean", "median", "sd", "n_voxels",
                                                  "volume_mm3", "exam", "label", "p05", "p95", "iqr"}]
    const = [c for c in extra if (long.groupby("exam")[c].nunique(dropna=False) <= 1).all()]
    out = wide.join(n_levels)
    if const:
        out = out.join(long.groupby("exam")[const].first())
    return out.reset_index()
