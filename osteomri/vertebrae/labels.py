"""Vertebra label maps from the segmenters people use, as named presets (plus a user JSON mapping).

Every preset is turned into one internal form, :class:`VertebraLabels`, on the grid of the map to be
measured: an integer ``level_map`` in the SPINEPS/TPTBox/VerSe numbering (C1 = 1 … C7 = 7, T1 = 8 … T12 = 19,
L1 = 20 … L5 = 24, L6 = 25, sacrum/S1 = 26, T13 = 28), plus optional masks of the vertebral body, of voxels
to exclude (endplates, vein), of the spinal canal and of the cord.

Presets (:data:`PRESETS`)
-------------------------
``spineps``
    SPINEPS instance mask: vertebra X = its VerSe number, ``100 + X`` disc below X, ``200 + X`` endplate of X
    (endplate voxels belong to X but are excluded from ROIs). Give the SPINEPS subregion mask as
    ``subregion=`` to restrict the body to label 49 (else the body is found geometrically).
``spineps_subregion``
    SPINEPS semantic/subregion mask alone: 49 vertebral body, 62 endplate, 100 disc, 60 cord, 61 canal,
    41–48 posterior elements. There is one body class for all levels: bodies are split into connected
    components, ordered along the spine and numbered upwards from ``lowest_level``.
``totalsegmentator`` (alias ``vertebrae_mr``)
    TotalSegmentator ``vertebrae_mr``: 1 sacrum, 2 L5, 3 L4, 4 L3, 5 L2, 6 L1, 7 T12 … 18 T1, 19 C7 … 25 C1.
``total_mr``
    TotalSegmentator ``total_mr``: 18 sacrum, 19 vertebrae (one class), 20 intervertebral discs, 21 spinal
    cord. Vertebrae are numbered from the sacrum upwards (the lowest component above it is L5), or from
    ``lowest_level`` when no sacrum is in view.
``totalspineseg``
    TotalSpineSeg: 1 spinal cord, 2 spinal canal, C1–C7 = 11–17, T1–T12 = 21–32, L1–L5 = 41–45, sacrum 50.
A JSON file (``preset="path/to/mapping.json"``) may define the same fields, e.g.
``{"name": "site-x", "vertebrae": {"L1": 5, "L2": 6}, "canal": [9], "cord": [], "body": [], "exclude": []}``.

Grids: a label map must be on the grid of the map it is measured on (same shape, affines within half a voxel);
another grid is refused (a shifted or flipped affine would measure soft tissue) unless resampling is asked for
(``resample=True``, CLI ``--resample-labels``): then it is resampled by nearest neighbour
(:func:`resample_labels`), with a warning, when the two fields of view overlap. Whatever the preset, the
vertebrae found must form a cranio-caudal column of vertebra-sized objects (:mod:`osteomri.vertebrae.sanity`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from osteomri.errors import InputError, UnknownLabelError
from osteomri.io.image import Image, same_grid

# --- level names in the VerSe/SPINEPS numbering ---------------------------------------------------------
LEVEL_CODES: dict[str, int] = {
    **{f"C{i}": i for i in range(1, 8)},
    **{f"T{i}": 7 + i for i in range(1, 13)},
    **{f"L{i}": 19 + i for i in range(1, 7)},
    "S1": 26,
    "T13": 28,
}
CODE_LEVELS: dict[int, str] = {v: k for k, v in LEVEL_CODES.items()}
# superior -> inferior order of the spine (T13 and L6 are transitional, used only when named)
SPINE_ORDER: tuple[str, ...] = (*[f"C{i}" for i in range(1, 8)], *[f"T{i}" for i in range(1, 13)],
                                *[f"L{i}" for i in range(1, 6)], "S1")
LUMBAR = ("L1", "L2", "L3", "L4", "L5")


def level_rank(level: str) -> float:
    """Position along the spine, superior → inferior (T13 between T12 and L1, L6 between L5 and S1)."""
    extra = {"T13": SPINE_ORDER.index("T12") + 0.5, "L6": SPINE_ORDER.index("L5") + 0.5}
    if level in extra:
        return extra[level]
    if level not in SPINE_ORDER:
        raise UnknownLabelError(f"unknown vertebral level {level!r}; use C1–C7, T1–T12, T13, L1–L6 or S1")
    return float(SPINE_ORDER.index(level))


@dataclass(frozen=True)
class LabelPreset:
    """How one segmenter writes vertebrae, canal and cord into a label map (label values per structure).

    ``vertebrae`` maps level names to label values (instance presets). ``semantic_vertebra`` lists label
    values of a single all-vertebrae class, numbered by connected components. ``body`` labels mark the
    vertebral body (subregion masks), ``exclude`` labels are removed from every ROI (endplates),
    ``exclude_offset`` = 200 makes ``200 + X`` an excluded part of vertebra X (SPINEPS endplates).
    """

    name: str
    description: str
    vertebrae: dict[str, int] = field(default_factory=dict)
    semantic_vertebra: tuple[int, ...] = ()
    body: tuple[int, ...] = ()
    exclude: tuple[int, ...] = ()
    exclude_offset: int | None = None
    canal: tuple[int, ...] = ()
    cord: tuple[int, ...] = ()
    sacrum: tuple[int, ...] = ()
    disc: tuple[int, ...] = ()


_TS_VERTEBRAE_MR = {"S1": 1, **{f"L{i}": 7 - i for i in range(1, 6)}, **{f"T{i}": 19 - i for i in range(1, 13)},
                    **{f"C{i}": 26 - i for i in range(1, 8)}}
_TSS = {**{f"C{i}": 10 + i for i in range(1, 8)}, **{f"T{i}": 20 + i for i in range(1, 13)},
        **{f"L{i}": 40 + i for i in range(1, 6)}, "S1": 50}

PRESETS: dict[str, LabelPreset] = {
    "spineps": LabelPreset(
        "spineps", "SPINEPS instance mask (VerSe numbering; 100+X disc, 200+X endplate)",
        vertebrae={k: v for k, v in LEVEL_CODES.items()}, exclude_offset=200),
    "spineps_subregion": LabelPreset(
        "spineps_subregion", "SPINEPS subregion mask (49 body, 62 endplate, 100 disc, 60 cord, 61 canal)",
        semantic_vertebra=(49, 62), body=(49, 62), exclude=(62,), canal=(61,), cord=(60,), disc=(100,)),
    "totalsegmentator": LabelPreset(
        "totalsegmentator", "TotalSegmentator vertebrae_mr (1 sacrum, 2 L5 … 6 L1, 7 T12 … 25 C1)",
        vertebrae=_TS_VERTEBRAE_MR),
    "total_mr": LabelPreset(
        "total_mr", "TotalSegmentator total_mr (18 sacrum, 19 vertebrae, 20 discs, 21 spinal cord)",
        semantic_vertebra=(19,), sacrum=(18,), cord=(21,), disc=(20,)),
    "totalspineseg": LabelPreset(
        "totalspineseg", "TotalSpineSeg (1 cord, 2 canal, C1–C7 11–17, T1–T12 21–32, L1–L5 41–45, sacrum 50)",
        vertebrae=_TSS, canal=(2, 1), cord=(1,)),
}
PRESETS["vertebrae_mr"] = PRESETS["totalsegmentator"]


def get_preset(preset: str | LabelPreset | Path) -> LabelPreset:
    """A :class:`LabelPreset` from its name, a JSON mapping file, or itself."""
    if isinstance(preset, LabelPreset):
        return preset
    key = str(preset)
    if key in PRESETS:
        return PRESETS[key]
    path = Path(key)
    if path.suffix.lower() == ".json":
        if not path.exists():
            raise InputError(f"label mapping file not found: {path}")
        return preset_from_json(path)
    raise UnknownLabelError(f"unknown label preset {key!r}; known: {', '.join(PRESETS)} (or a JSON mapping file)")


def preset_from_json(path: str | Path) -> LabelPreset:
    """Read a user label mapping (see the module docstring for the fields)."""
    try:
        spec = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read label mapping {path}: {exc}") from exc
    allowed = {"name", "description", "vertebrae", "semantic_vertebra", "body", "exclude", "exclude_offset",
               "canal", "cord", "sacrum", "disc"}
    unknown = set(spec) - allowed
    if unknown:
        raise InputError(f"label mapping {path}: unknown field(s) {sorted(unknown)}; allowed: {sorted(allowed)}")
    vert = {str(k): int(v) for k, v in dict(spec.get("vertebrae", {})).items()}
    for level in vert:
        level_rank(level)  # raises on unknown names
    if not vert and not spec.get("semantic_vertebra"):
        raise InputError(f"label mapping {path} defines no 'vertebrae' (level -> label) nor 'semantic_vertebra'")
    tup = {k: tuple(int(v) for v in spec.get(k, ())) for k in ("semantic_vertebra", "body", "exclude", "canal",
                                                                 "cord", "sacrum", "disc")}
    return LabelPreset(name=str(spec.get("name", Path(path).stem)), description=str(spec.get("description", "")),
                       vertebrae=vert, exclude_offset=spec.get("exclude_offset"), **tup)


@dataclass
class VertebraLabels:
    """Vertebra labels on one grid, in the internal (VerSe) numbering.

    ``level_map`` holds the VerSe code of each vertebra voxel (0 elsewhere). ``body`` marks the vertebral
    body when the labels say so (None: found geometrically by the ROI code). ``exclude`` marks voxels kept
    out of every ROI (endplates, vein labels). ``canal``/``cord`` are None when the preset has no such label.
    """

    level_map: np.ndarray
    affine: np.ndarray
    preset: str
    body: np.ndarray | None = None
    exclude: np.ndarray | None = None
    canal: np.ndarray | None = None
    cord: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.level_map.shape[:3])

    @property
    def levels(self) -> list[str]:
        """Levels present, superior → inferior."""
        codes = np.unique(self.level_map[self.level_map > 0])
        return sorted((CODE_LEVELS[int(c)] for c in codes), key=level_rank)

    def vertebra(self, level: str) -> np.ndarray:
        """Boolean mask of the whole vertebra ``level`` (body and, where labelled, posterior elements)."""
        if level not in LEVEL_CODES:
            raise UnknownLabelError(f"unknown vertebral level {level!r}")
        return self.level_map == LEVEL_CODES[level]

    def require(self, levels: list[str] | tuple[str, ...]) -> None:
        missing = [lv for lv in levels if lv not in self.levels]
        if missing:
            raise UnknownLabelError(f"level(s) {', '.join(missing)} missing from the {self.preset} label map "
                                    f"(present: {', '.join(self.levels) or 'none'})")


def resample_labels(labels: Image, reference: Image) -> Image:
    """Nearest-neighbour resampling of ``labels`` onto the grid of ``reference`` (world coordinates).

    Voxels of the reference outside the label volume get 0. Raises :class:`InputError` when no voxel of the
    reference falls inside the label volume (the affines say the two do not overlap).
    """
    if same_grid(labels, reference):
        return labels
    shape = reference.spatial_shape
    idx = np.indices(shape, dtype=np.float64).reshape(3, -1)
    world = reference.affine[:3, :3] @ idx + reference.affine[:3, 3:4]
    inv = np.linalg.inv(labels.affine)
    vox = np.rint(inv[:3, :3] @ world + inv[:3, 3:4]).astype(np.int64)
    lshape = np.asarray(labels.spatial_shape)[:, None]
    inside = np.all((vox >= 0) & (vox < lshape), axis=0)
    if not inside.any():
        raise InputError("the label map and the image do not overlap (no voxel of the image lies inside the "
                         "label volume according to the two affines); check that they belong together")
    data = np.asarray(labels.data)
    data = data if data.ndim == 3 else data[..., 0]
    out = np.zeros(idx.shape[1], dtype=data.dtype)
    out[inside] = data[vox[0, inside], vox[1, inside], vox[2, inside]]
    return Image(out.reshape(shape), reference.affine.copy(), {**labels.meta, "Resampled": "nearest"})


def _onto(labels: Image, reference: Image, resample: bool, what: str) -> Image:
    """``labels`` on ``reference``'s grid: as they are when aligned within half a voxel, resampled when allowed."""
    from osteomri.vertebrae.sanity import check_alignment

    if check_alignment(labels, reference, resample=resample, what=what):
        return resample_labels(labels, reference)
    return labels if same_grid(labels, reference) else Image(labels.data, reference.affine.copy(), labels.meta)


def _s_extent(mask: np.ndarray, affine: np.ndarray) -> tuple[float, float, float]:
    """World S coordinate (mm) of a mask: centroid, minimum and maximum over its voxels."""
    idx = np.argwhere(mask).astype(float)
    s = idx @ affine[2, :3] + affine[2, 3]
    return float(s.mean()), float(s.min()), float(s.max())


def _number_components(vert: np.ndarray, affine: np.ndarray, sacrum: np.ndarray | None,
                       lowest_level: str | None, min_volume_mm3: float, preset: str) -> np.ndarray:
    """Split a one-class vertebra mask into vertebrae and number them along the spine.

    Connected components are taken largest first; a component whose S centroid lies within the S extent of
    a vertebra already found joins it (posterior elements detached from the body), otherwise it starts a new
    vertebra. Vertebrae are numbered upwards from ``lowest_level``, or from L5 above a labelled sacrum.
    Adjacent vertebrae merged into one component (touching facets) are not split.
    """
    comp, n = ndimage.label(vert)
    out = np.zeros(vert.shape, dtype=np.int16)
    if n == 0:
        return out
    vox_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    sizes = np.bincount(comp.ravel(), minlength=n + 1)[1:] * vox_mm3
    groups: list[tuple[np.ndarray, float, float, float]] = []  # mask, s_centroid, s_min, s_max
    for k in np.argsort(-sizes):
        if sizes[k] < min_volume_mm3:
            break
        m = comp == k + 1
        c, lo, hi = _s_extent(m, affine)
        for i, (gm, gc, glo, ghi) in enumerate(groups):
            if glo <= c <= ghi:
                groups[i] = (gm | m, gc, glo, ghi)
                break
        else:
            groups.append((m, c, lo, hi))
    groups.sort(key=lambda g: g[1])  # inferior -> superior
    if lowest_level is None:
        if sacrum is None or not sacrum.any():
            raise UnknownLabelError(
                f"the {preset} label map has one class for all vertebrae and no sacrum in view: say which level "
                f"the lowest vertebra is (lowest_level='L5', CLI --lowest-level L5)")
        start = SPINE_ORDER.index("L5")
        out[sacrum] = LEVEL_CODES["S1"]
        s_top = _s_extent(sacrum, affine)[2]
        groups = [g for g in groups if g[1] > s_top]
    else:
        if lowest_level not in SPINE_ORDER:
            raise UnknownLabelError(f"lowest_level must be one of C1…S1, got {lowest_level!r}")
        start = SPINE_ORDER.index(lowest_level)
    for i, (m, *_rest) in enumerate(groups):
        pos = start - i
        if pos < 0:
            break
        out[m] = LEVEL_CODES[SPINE_ORDER[pos]]
    return out


def resolve_labels(
    labels: Image,
    preset: str | LabelPreset | Path = "spineps",
    reference: Image | None = None,
    subregion: Image | None = None,
    lowest_level: str | None = None,
    vein: Image | np.ndarray | None = None,
    min_component_mm3: float = 500.0,
    resample: bool = False,
) -> VertebraLabels:
    """Read a label map in the convention ``preset`` onto the grid of ``reference`` (default: its own grid).

    ``subregion``: a SPINEPS subregion mask restricting the body to labels 49/62 (with ``spineps``).
    ``lowest_level``: level of the lowest vertebra component for one-class presets (``total_mr`` without
    sacrum, ``spineps_subregion``). ``vein``: a mask (or label image, > 0) of the basivertebral vein, excluded
    from every ROI. ``min_component_mm3``: smaller components of one-class masks are ignored (fragments).
    ``resample``: a label map not on ``reference``'s grid (another shape, or an affine more than half a voxel
    away) is refused unless True; then it is resampled by world coordinates, with a warning
    (:func:`osteomri.vertebrae.sanity.check_alignment`).

    The result must form a cranio-caudal column of vertebra-sized objects
    (:func:`osteomri.vertebrae.sanity.check_vertebral_column`), whatever the preset.
    """
    from osteomri.vertebrae.sanity import check_vertebral_column

    p = get_preset(preset)
    if reference is not None:
        labels = _onto(labels, reference, resample, "label map")
        subregion = _onto(subregion, reference, resample, "subregion mask") if subregion is not None else None
    data = np.asarray(labels.data)
    if data.ndim > 3:
        data = data[..., 0]
    if np.iscomplexobj(data) or not np.all(np.isfinite(data)):
        raise InputError("label map must hold finite real integer labels")
    data = np.rint(data).astype(np.int64)
    if p.semantic_vertebra:
        sacrum = np.isin(data, p.sacrum) if p.sacrum else None
        level_map = _number_components(np.isin(data, p.semantic_vertebra), labels.affine, sacrum, lowest_level,
                                       min_component_mm3, p.name)
    else:
        level_map = np.zeros(data.shape, dtype=np.int16)
        for level, value in p.vertebrae.items():
            level_map[data == value] = LEVEL_CODES[level]
        if p.exclude_offset is not None:
            for level, value in p.vertebrae.items():
                level_map[data == value + p.exclude_offset] = LEVEL_CODES[level]
    if not (level_map > 0).any():
        present = np.unique(data[data > 0])[:20].tolist()
        raise UnknownLabelError(f"no vertebra of the {p.name} convention found in the label map (label values "
                                f"present: {present}); is the preset right? known: {', '.join(PRESETS)}")
    check_vertebral_column(level_map, labels.affine, p.name, raw_labels=data)
    exclude = np.isin(data, p.exclude) if p.exclude else np.zeros(data.shape, bool)
    if p.exclude_offset is not None:
        exclude |= np.isin(data, [v + p.exclude_offset for v in p.vertebrae.values()])
    body = np.isin(data, p.body) if p.body else None
    if subregion is not None:
        sub = np.rint(np.asarray(subregion.data)).astype(np.int64)
        sub = sub if sub.ndim == 3 else sub[..., 0]
        if sub.shape != data.shape:
            raise InputError(f"subregion mask shape {sub.shape} differs from the label map {data.shape}")
        body = np.isin(sub, PRESETS["spineps_subregion"].body) & (level_map > 0)
        exclude |= np.isin(sub, PRESETS["spineps_subregion"].exclude)
        canal, cord = np.isin(sub, (61,)), np.isin(sub, (60,))
    else:
        canal = np.isin(data, p.canal) if p.canal else None
        cord = np.isin(data, p.cord) if p.cord else None
    if vein is not None:
        v = np.asarray(vein.data if isinstance(vein, Image) else vein)
        if v.shape[:3] != data.shape:
            if isinstance(vein, Image) and reference is not None:
                v = np.asarray(_onto(vein, reference, resample, "vein mask").data)
            else:
                raise InputError(f"vein mask shape {v.shape} differs from the label map {data.shape}")
        exclude |= v > 0
    return VertebraLabels(level_map=level_map, affine=labels.affine.copy(), preset=p.name, body=body,
                          exclude=exclude, canal=canal, cord=cord)


def phantom_labels(phantom, convention: str) -> Image:
    """The phantom's anatomy written as a label map in ``convention`` (a preset name) — for tests and demos.

    ``spineps``: VerSe codes over the whole vertebra, 100+X discs, 200+X endplates. ``spineps_subregion``:
    49 body (marrow, cortex, vein), 62 endplate, 100 disc, 41 posterior elements, 61 canal (CSF), 60 cord.
    ``totalsegmentator``/``vertebrae_mr``, ``totalspineseg`` (with 2 canal, 1 cord) and ``total_mr`` (18 sacrum,
    19 vertebrae, 20 discs, 21 cord) likewise.
    """
    from osteomri.phantom.spine import TISSUES

    tis = np.asarray(phantom.tissues.data)
    lev = np.asarray(phantom.levels.data).astype(np.int64)
    vert = (lev > 0) & (lev < 100)
    endplate = tis == TISSUES["endplate"]
    disc = tis == TISSUES["disc"]
    csf, cord = tis == TISSUES["csf"], tis == TISSUES["cord"]
    out = np.zeros(tis.shape, dtype=np.int16)
    if convention == "spineps":
        out[vert] = lev[vert]
        out[vert & endplate] = 200 + lev[vert & endplate]
        out[disc] = lev[disc]
    elif convention == "spineps_subregion":
        body = np.isin(tis, [TISSUES[t] for t in ("marrow", "cortex", "basivertebral_vein")])
        out[vert & (tis == TISSUES["posterior_elements"])] = 41
        out[vert & body] = 49
        out[vert & endplate] = 62
        out[disc] = 100
        out[csf] = 61
        out[cord] = 60
    elif convention in ("totalsegmentator", "vertebrae_mr", "totalspineseg"):
        table = get_preset(convention).vertebrae
        for level, value in table.items():
            out[lev == LEVEL_CODES[level]] = value
        if convention == "totalspineseg":
            out[csf] = 2
            out[cord] = 1
    elif convention == "total_mr":
        out[vert] = 19
        out[lev == LEVEL_CODES["S1"]] = 18
        out[disc] = 20
        out[cord] = 21
    else:
        raise UnknownLabelError(f"unknown label convention {convention!r}; known: {', '.join(PRESETS)}")
    return Image(out, phantom.affine.copy(), {"LabelConvention": convention})
