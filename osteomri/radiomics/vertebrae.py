"""Radiomics per vertebra: every map in each level's ROI of the vertebra label layer.

:func:`vertebra_features` ``(maps, labels, preset, roi="body", exam="", settings="default") -> DataFrame``
is the tidy long table (:data:`LONG_COLUMNS`: ``exam, level, roi, map, ibsi_tag, feature, value``).
Shape features depend on the ROI only: they are computed once per level and grid and reported under
``map = "mask"``. :func:`wide_features` turns it into one row per vertebra or per exam (mean over levels),
columns ``<map>__<tag>`` (IBSI tag, else the PyRadiomics name) for modelling.

ROIs come from :func:`osteomri.vertebrae.rois_for` (``body``, ``paper``, ``seed``, ...), so texture is measured
where the per-vertebra statistics are.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.radiomics.features import FAMILY_NAMES, extract_features, resolve_settings

LONG_COLUMNS = ("exam", "level", "roi", "map", "ibsi_tag", "feature", "value")
SHAPE_MAP = "mask"


def _grid_key(image: Image) -> tuple:
    return tuple(image.spatial_shape), np.round(image.affine, 4).tobytes()


def vertebra_features(
    maps: dict[str, Image],
    labels: Image,
    preset: str = "spineps",
    roi: str = "body",
    exam: str = "",
    settings: str | dict[str, Any] = "default",
    levels: str | list[str] | None = None,
    map_settings: dict[str, dict[str, Any]] | None = None,
    **options,
) -> pd.DataFrame:
    """Radiomics features of every map in every level's ROI (tidy long table).

    Parameters
    ----------
    maps:
        Name → 3-D :class:`Image` (``pdff_percent``, ``r2star_hz``, ``water``, ``t1w``, ...); any grids.
    labels, preset, roi, levels, options:
        As :func:`osteomri.vertebrae.measure_vertebrae` (label map and its convention, ROI strategy, levels,
        label and ROI options).
    settings:
        Radiomics settings for every map (preset name or dict; see :mod:`osteomri.radiomics.features`).
    map_settings:
        Per-map overrides laid over ``settings`` (e.g. ``{"pdff_percent": {"discretisation":
        "fixed_bin_size", "bin_width": 2.0}}``).

    ``DataFrame.attrs["provenance"]``: the resolved settings per map and the library version. A level whose ROI
    has fewer than 2 finite voxels in a map is left out with a warning naming it.
    """
    from osteomri.vertebrae import rois_for

    if not maps:
        raise InputError("no map for radiomics")
    if labels is None:
        raise InputError("radiomics per vertebra needs a vertebra label map")
    base = resolve_settings(settings)
    per_map = {}
    for name in maps:
        over = (map_settings or {}).get(name)
        per_map[name] = resolve_settings({**base, **over, "preset": base["preset"]}) if over else base
    unknown = sorted(set(map_settings or {}) - set(maps))
    if unknown:
        raise InputError(f"map_settings for unknown map(s) {unknown}; maps: {', '.join(maps)}")
    groups: dict[tuple, list[str]] = {}
    for name, image in maps.items():
        if not isinstance(image, Image):
            raise InputError(f"map {name!r} must be an Image, got {type(image).__name__}")
        groups.setdefault(_grid_key(image), []).append(name)
    rows: list[pd.DataFrame] = []
    texture_families = [f for f in FAMILY_NAMES if f != "shape"]
    for g, names in enumerate(groups.values()):
        ref = maps[names[0]]
        rois = rois_for(ref, labels, preset, roi, levels, **dict(options))
        shape_map = SHAPE_MAP if g == 0 else f"{SHAPE_MAP}@{names[0]}"
        for level in rois.levels:
            mask = rois.masks[level]
            if int(mask.sum()) < 2:
                warnings.warn(f"{exam or 'exam'} {level}: ROI has {int(mask.sum())} voxel(s); no radiomics",
                              stacklevel=2)
                continue
            if "shape" in base["families"]:
                t = extract_features(ref, mask, settings={**base, "families": ["shape"]})
                rows.append(t.assign(exam=exam, level=level, roi=roi, map=shape_map))
            for name in names:
                fam = [f for f in per_map[name]["families"] if f in texture_families]
                if not fam:
                    continue
                try:
                    t = extract_features(maps[name], mask, settings={**per_map[name], "families": fam})
                except InputError as exc:
                    warnings.warn(f"{exam or 'exam'} {level} {name}: {exc}", stacklevel=2)
                    continue
                rows.append(t.assign(exam=exam, level=level, roi=roi, map=name))
    if not rows:
        raise InputError("no vertebra ROI gave radiomics features (empty ROIs or all-NaN maps)")
    table = pd.concat(rows, ignore_index=True)[list(LONG_COLUMNS)]
    from osteomri.radiomics.features import _library_version, pyradiomics_parameters

    table.attrs["provenance"] = {
        "library": "pyradiomics-bhklab", "library_version": _library_version(), "roi": roi, "preset": preset,
        "settings": {name: s for name, s in per_map.items()},
        "pyradiomics_parameters": {name: pyradiomics_parameters(s) for name, s in per_map.items()},
        "shape_features": f"computed once per ROI, reported under map={SHAPE_MAP!r}",
    }
    return table


def feature_column(map_name: str, ibsi_tag: str, feature: str) -> str:
    """Wide-table column name: ``<map>__<IBSI tag>`` (``<map>__pyrad_<feature>`` without an IBSI tag)."""
    return f"{map_name}__{ibsi_tag or 'pyrad_' + feature}"


def wide_features(long: pd.DataFrame, by: str = "vertebra",
                  levels: Sequence[str] | str | None = None) -> pd.DataFrame:
    """The wide table for modelling: one row per vertebra (``by="vertebra"``: exam, level, roi) or per exam
    (``by="exam"``: exam, roi; the mean of each feature over ``levels``, default all levels present, e.g.
    ``"L1-L4"``), one column per map × feature (:func:`feature_column`)."""
    missing = [c for c in LONG_COLUMNS if c not in long.columns]
    if missing:
        raise InputError(f"radiomics table lacks column(s) {missing}")
    if by not in ("vertebra", "exam"):
        raise InputError(f"by must be 'vertebra' or 'exam', got {by!r}")
    data = long.assign(column=[feature_column(m, t, f) for m, t, f in
                               zip(long["map"], long["ibsi_tag"].fillna(""), long["feature"], strict=True)])
    if levels is not None:
        from osteomri.vertebrae.measure import parse_level_set

        want = parse_level_set(levels)
        data = data[data["level"].astype(str).isin(want)]
        if data.empty:
            raise InputError(f"no radiomics rows for levels {list(want)}")
    index = ["exam", "level", "roi"] if by == "vertebra" else ["exam", "roi"]
    wide = data.pivot_table(index=index, columns="column", values="value", aggfunc="mean", sort=False)
    wide.columns = [str(c) for c in wide.columns]
    return wide.reset_index()
