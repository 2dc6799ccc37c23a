"""ROI strategies: where in each vertebra a map is measured.

Every strategy returns a :class:`RoiSet` (one boolean mask per level on the map's grid). Directions come
from the affine through per-vertebra frames (:mod:`osteomri.vertebrae.geometry`), never from the array's
axis order, so sagittal scans stored as (P, I, R), (A, S, L), ... are handled alike.

Strategies
----------
``body`` (:func:`body_rois`)
    The whole vertebral body (label, or found as the part of the vertebra anterior to the canal on its
    mid-sagittal slice), keeping voxels farther than ``margin_mm`` from outside the body (cortex and
    endplates), minus endplate/vein labels and the basivertebral-vein zone.
``paper`` (:func:`paper_rois`)
    The seed study's rule (lumbar FF/R2* study, seeds/002: "a rectangular ROI in the anterior 2/3 of the
    vertebral body on the mid-sagittal FF and R2* images, avoiding the basivertebral venous groove"): on
    each vertebra's own mid-sagittal slice, the body inset by ``margin_mm`` from cortex and endplates, cut to
    its anterior ``anterior_fraction`` (2/3) of the antero-posterior depth, minus the vein zone and labels.
    For a box-shaped body this is the readers' rectangle.
``reader`` / ``roi`` (:func:`reader_rois`)
    Reader-drawn ROI masks (NIfTI label maps, or DICOM SEG read with highdicom via :func:`load_reader_roi`).
``seed`` (:func:`seed_rois`)
    One click per level (world RAS mm) grown on a map within ``radius_mm`` on the seed's sagittal slice
    while values stay within a tolerance of the seed neighbourhood, for exams without labels.

The basivertebral vein enters the body's posterior wall at mid-height in the midline; its zone is the
posterior ``vein_depth_fraction`` of the depth, within ``vein_halfwidth_mm`` of the midline and the middle
``vein_height_fraction`` of the body height. A vein mask can be given as well (``resolve_labels(vein=...)``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import ndimage

from osteomri.errors import InputError, UnknownLabelError
from osteomri.io.image import Image
from osteomri.io.orientation import lr_axis, voxel_size_mm, voxel_world
from osteomri.vertebrae.geometry import (
    VertebraFrame,
    centroid_ijk,
    interior,
    make_frames,
)
from osteomri.vertebrae.labels import LEVEL_CODES, LUMBAR, VertebraLabels, level_rank, resample_labels

STRATEGIES = ("body", "paper", "reader", "seed")


@dataclass
class BodyGeometry:
    """A vertebral body: its mask (grid), frame and extents on its mid-sagittal slice (mm, frame coords)."""

    frame: VertebraFrame
    body: np.ndarray
    u_lo: float
    u_hi: float
    v_post: float
    v_ant: float

    @property
    def height_mm(self) -> float:
        return self.u_hi - self.u_lo

    @property
    def depth_mm(self) -> float:
        return self.v_ant - self.v_post


@dataclass
class RoiSet:
    """One boolean mask per level (on the grid of ``affine``), the strategy and the frames used."""

    strategy: str
    masks: dict[str, np.ndarray]
    affine: np.ndarray
    geometry: dict[str, BodyGeometry] = field(default_factory=dict)
    reader: str | None = None

    @property
    def levels(self) -> list[str]:
        return sorted(self.masks, key=level_rank)

    def voxel_volume_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))

    def sagittal_index(self, level: str | None = None) -> int:
        """Mid-sagittal slice index of ``level`` (default: median over the levels) along the LR array axis."""
        lr = lr_axis(self.affine)
        if level is not None and level in self.geometry:
            return self.geometry[level].frame.slice_index
        idx = [int(np.rint(centroid_ijk(m)[lr])) for m in self.masks.values() if m.any()]
        if not idx:
            raise InputError("every ROI is empty")
        return int(np.median(idx))


def select_levels(labels: VertebraLabels | None, levels: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """The levels to measure: ``None`` = the lumbar levels L1–L5 present, ``"all"`` = every level present,
    else the named levels (each must be present)."""
    present = labels.levels if labels is not None else []
    if levels is None:
        out = [lv for lv in LUMBAR if lv in present]
        if not out:
            raise UnknownLabelError(f"no lumbar level (L1–L5) in the label map (present: {', '.join(present) or 'none'}"
                                    "); name the levels to measure")
        return out
    if isinstance(levels, str):
        if levels == "all":
            return list(present)
        levels = [s.strip() for s in levels.split(",") if s.strip()]
    for lv in levels:
        if lv not in LEVEL_CODES:
            raise UnknownLabelError(f"unknown vertebral level {lv!r}")
    if labels is not None:
        labels.require(list(levels))
    return sorted(levels, key=level_rank)


def _indices(mask: np.ndarray) -> np.ndarray:
    return np.argwhere(mask).astype(float)


def body_geometry(labels: VertebraLabels, levels: list[str]) -> dict[str, BodyGeometry]:
    """Frames and body masks of ``levels``; the spine axis uses every level present."""
    present = labels.levels
    cents = {lv: centroid_ijk(labels.vertebra(lv)) for lv in present}
    frames = make_frames(cents, labels.affine, present)
    out = {}
    for level in levels:
        vert = labels.vertebra(level)
        frame = frames[level]
        if labels.body is not None:
            body = vert & labels.body
            if not body.any():
                raise UnknownLabelError(f"level {level} has no vertebral-body voxels in the label map")
        else:
            body = _body_from_vertebra(vert, frame, labels.affine, level)
        # re-centre the frame on the body itself
        c = centroid_ijk(body)
        frame = VertebraFrame(level, voxel_world(c[None], labels.affine)[0], frame.si, frame.ap, frame.lr,
                              int(np.rint(c[frame.lr_axis])), frame.lr_axis)
        mid = _on_slice(body, frame)
        if not mid.any():
            raise InputError(f"level {level}: the body has no voxel on its mid-sagittal slice {frame.slice_index}")
        u, v, _ = frame.coords(_indices(mid), labels.affine)
        out[level] = BodyGeometry(frame, body, float(u.min()), float(u.max()), float(v.min()), float(v.max()))
    return out


def _on_slice(mask: np.ndarray, frame: VertebraFrame, slices: int = 1) -> np.ndarray:
    """``mask`` restricted to the ``slices`` sagittal slices centred on the frame's mid-sagittal slice."""
    keep = np.zeros(mask.shape[frame.lr_axis], bool)
    half = (slices - 1) // 2
    keep[max(frame.slice_index - half, 0): frame.slice_index + half + 1] = True
    shape = [1, 1, 1]
    shape[frame.lr_axis] = -1
    return mask & keep.reshape(shape)


def _body_from_vertebra(vert: np.ndarray, frame: VertebraFrame, affine: np.ndarray, level: str) -> np.ndarray:
    """The body of a whole-vertebra mask: the part anterior to the posterior wall found on the mid-sagittal
    slice, where the canal separates the body from the lamina and spinous process."""
    mid = np.take(vert, frame.slice_index, axis=frame.lr_axis)
    comp, n = ndimage.label(mid, structure=np.ones((3, 3)))
    if n == 0:
        raise InputError(f"level {level}: no vertebra voxel on its mid-sagittal slice {frame.slice_index}")
    sizes = np.bincount(comp.ravel(), minlength=n + 1)
    best_v, v_wall = -np.inf, 0.0
    for k in range(1, n + 1):
        if sizes[k] < 0.1 * sizes[1:].max():
            continue
        ij = np.argwhere(comp == k)
        idx = np.insert(ij.astype(float), frame.lr_axis, frame.slice_index, axis=1)
        _, v, _ = frame.coords(idx, affine)
        if v.mean() > best_v:
            best_v, v_wall = v.mean(), float(v.min())
    idx = _indices(vert)
    _, v, _ = frame.coords(idx, affine)
    body = np.zeros_like(vert)
    sel = idx[v >= v_wall - 1e-6].astype(int)
    body[tuple(sel.T)] = True
    return body


def _frame_coords(mask: np.ndarray, geom: BodyGeometry, affine: np.ndarray):
    idx = _indices(mask)
    u, v, w = geom.frame.coords(idx, affine)
    return idx.astype(int), u, v, w


def vein_zone(u: np.ndarray, v: np.ndarray, w: np.ndarray, geom: BodyGeometry, depth_fraction: float = 0.4,
              height_fraction: float = 0.4, halfwidth_mm: float = 6.0) -> np.ndarray:
    """Where the basivertebral vein runs: posterior midline at mid-height (boolean per voxel)."""
    u_mid = 0.5 * (geom.u_lo + geom.u_hi)
    return ((v < geom.v_post + depth_fraction * geom.depth_mm) & (np.abs(w) <= halfwidth_mm)
            & (np.abs(u - u_mid) <= 0.5 * height_fraction * geom.height_mm))


def _mask_from(idx: np.ndarray, keep: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    out = np.zeros(shape, bool)
    sel = idx[keep]
    out[tuple(sel.T)] = True
    return out


def _check_fraction(name: str, value: float) -> None:
    if not 0 <= value <= 1:
        raise InputError(f"{name} must lie in [0, 1], got {value}")


def body_rois(labels: VertebraLabels, levels: list[str], margin_mm: float = 3.0, exclude_vein: bool = True,
              vein_depth_fraction: float = 0.4, vein_height_fraction: float = 0.4, vein_halfwidth_mm: float = 6.0,
              geometry: dict[str, BodyGeometry] | None = None) -> RoiSet:
    """``body``: each vertebral body eroded by ``margin_mm`` (3-D distance to the outside of the body), minus
    endplate/vein labels and (``exclude_vein``) the basivertebral-vein zone."""
    if margin_mm < 0:
        raise InputError(f"margin_mm must be >= 0, got {margin_mm}")
    geometry = geometry or body_geometry(labels, levels)
    spacing = voxel_size_mm(labels.affine)
    masks = {}
    for level in levels:
        g = geometry[level]
        inner = interior(g.body, spacing, margin_mm)
        if labels.exclude is not None:
            inner &= ~labels.exclude
        if exclude_vein:
            idx, u, v, w = _frame_coords(inner, g, labels.affine)
            zone = vein_zone(u, v, w, g, vein_depth_fraction, vein_height_fraction, vein_halfwidth_mm)
            inner = _mask_from(idx, ~zone, inner.shape)
        masks[level] = inner
    return RoiSet("body", masks, labels.affine.copy(), geometry)


def paper_rois(labels: VertebraLabels, levels: list[str], margin_mm: float = 3.0, anterior_fraction: float = 2 / 3,
               slices: int = 1, exclude_vein: bool = True, vein_depth_fraction: float = 0.4,
               vein_height_fraction: float = 0.4, vein_halfwidth_mm: float = 6.0,
               geometry: dict[str, BodyGeometry] | None = None) -> RoiSet:
    """``paper``: the seed study's mid-sagittal ROI in the anterior two thirds of each body.

    On ``slices`` (odd, default 1) sagittal slices centred on each vertebra's own mid-sagittal slice: body
    voxels at least one voxel and more than ``margin_mm`` (in-plane) inside the body (cortex, endplates), with
    ``v >= v_post + (1 - anterior_fraction) * depth``, minus endplate/vein labels and the vein zone.
    """
    _check_fraction("anterior_fraction", anterior_fraction)
    if slices < 1 or slices % 2 == 0:
        raise InputError(f"slices must be a positive odd number, got {slices}")
    geometry = geometry or body_geometry(labels, levels)
    spacing = voxel_size_mm(labels.affine)
    masks = {}
    for level in levels:
        g = geometry[level]
        lr = g.frame.lr_axis
        plane_spacing = np.delete(spacing, lr)
        on = _on_slice(g.body, g.frame, slices)
        inner = np.zeros_like(on)
        for s in np.flatnonzero(on.any(axis=tuple(a for a in range(3) if a != lr))):
            sl = [slice(None)] * 3
            sl[lr] = s
            body2d = on[tuple(sl)]
            inner[tuple(sl)] = interior(body2d, plane_spacing, margin_mm)
        if labels.exclude is not None:
            inner &= ~labels.exclude
        idx, u, v, w = _frame_coords(inner, g, labels.affine)
        keep = v >= g.v_post + (1 - anterior_fraction) * g.depth_mm
        if exclude_vein:
            keep &= ~vein_zone(u, v, w, g, vein_depth_fraction, vein_height_fraction, vein_halfwidth_mm)
        masks[level] = _mask_from(idx, keep, inner.shape)
    return RoiSet("paper", masks, labels.affine.copy(), geometry)


# --- reader ROIs --------------------------------------------------------------------------------------------
def load_reader_roi(path: str | Path) -> Image:
    """A reader's ROI file: NIfTI label map (``.nii``/``.nii.gz``) or DICOM SEG (read with highdicom).

    DICOM SEG segments are named by level in their segment label (``"L3"``, ``"L3 ROI"``); the result is a
    label image in VerSe codes (L1 = 20 …), with the affine converted from DICOM LPS to RAS.
    """
    from osteomri.io.nifti import is_nifti, load_nifti

    path = Path(path)
    if not path.exists():
        raise InputError(f"reader ROI file not found: {path}")
    if is_nifti(path):
        return load_nifti(path)
    return _load_dicom_seg(path)


def _load_dicom_seg(path: Path) -> Image:
    """A reader's DICOM SEG (read by :func:`osteomri.io.dicomout.seg.load_dicom_seg`) as a VerSe-coded label
    image. When the SEG holds ``"<level> vertebra"`` and ``"<level> ROI"`` segments (as osteomri's own SEG
    does), the vertebra segments are left out: the ROIs are what was measured."""
    from osteomri.io.dicomout.seg import load_dicom_seg

    seg = load_dicom_seg(path)
    has_roi = any(lab.strip().upper().endswith("ROI") for lab in seg.labels.values())
    chosen = {n: lab for n, lab in seg.labels.items() if not (has_roi and lab.strip().upper().endswith("VERTEBRA"))}
    out = np.zeros(next(iter(seg.masks.values())).shape, dtype=np.int16)
    for number, text in chosen.items():
        label = text.strip().split()[0].upper() if text.strip() else ""
        if label not in LEVEL_CODES:
            raise UnknownLabelError(f"DICOM SEG {path.name}: segment label {text!r} does not name a "
                                    "vertebral level (e.g. 'L3')")
        out[seg.masks[number]] = LEVEL_CODES[label]
    return Image(out, seg.affine, {"Source": "DICOM SEG"})


def reader_rois(roi_image: Image, reference_affine: np.ndarray, shape: tuple[int, ...],
                labels: VertebraLabels | None, levels: list[str] | None, preset_values: dict[str, int] | None = None,
                name: str = "reader") -> RoiSet:
    """One reader's ROIs on the grid (``reference_affine``, ``shape``).

    The ROI map either labels each level (values of ``preset_values`` — the label preset's level → value —
    or VerSe codes when ``preset_values`` is None), or is binary (0/1): then each connected ROI takes the
    level of the vertebra label it overlaps most (``labels`` required).
    """
    ref = Image(np.zeros(shape, np.uint8), reference_affine)
    data = np.rint(np.asarray(resample_labels(roi_image, ref).data)).astype(np.int64)
    values = set(np.unique(data).tolist()) - {0}
    if not values:
        raise InputError(f"reader ROI {name!r} is empty on the map's grid")
    masks: dict[str, np.ndarray] = {}
    if values == {1}:
        if labels is None:
            raise InputError(f"reader ROI {name!r} is binary: give the vertebra label map to assign levels")
        comp, n = ndimage.label(data > 0)
        for k in range(1, n + 1):
            m = comp == k
            codes = labels.level_map[m]
            codes = codes[codes > 0]
            if codes.size == 0:
                raise InputError(f"reader ROI {name!r}: a drawn region overlaps no labelled vertebra")
            level = {v: k for k, v in LEVEL_CODES.items()}[int(np.bincount(codes).argmax())]
            masks[level] = masks.get(level, np.zeros(shape, bool)) | m
    else:
        table = preset_values if preset_values else LEVEL_CODES
        inverse = {v: k for k, v in table.items()}
        unknown = sorted(values - set(inverse))
        if unknown:
            raise UnknownLabelError(f"reader ROI {name!r}: label value(s) {unknown} name no level in this preset")
        for value in values:
            masks[inverse[value]] = data == value
    if levels is not None:
        missing = [lv for lv in levels if lv not in masks]
        if missing:
            raise UnknownLabelError(f"reader ROI {name!r} has no ROI for level(s) {', '.join(missing)}")
        masks = {lv: masks[lv] for lv in levels}
    return RoiSet("reader", masks, np.asarray(reference_affine, float).copy(), reader=name)


# --- single-click seeds -------------------------------------------------------------------------------------
def parse_seed(text: str) -> tuple[str, np.ndarray]:
    """``"L3=x,y,z"`` (world RAS mm) -> ``("L3", array([x, y, z]))``."""
    level, sep, xyz = text.partition("=")
    parts = xyz.split(",")
    if not sep or len(parts) != 3:
        raise InputError(f"a seed reads LEVEL=x,y,z in world RAS mm (e.g. L3=0,25.5,-3), got {text!r}")
    level = level.strip()
    if level not in LEVEL_CODES:
        raise UnknownLabelError(f"seed {text!r}: unknown vertebral level {level!r}")
    try:
        return level, np.array([float(p) for p in parts])
    except ValueError as exc:
        raise InputError(f"seed {text!r}: coordinates must be numbers") from exc


def seed_rois(image: Image, seeds: dict[str, np.ndarray | tuple[float, float, float]], radius_mm: float = 10.0,
              tolerance: float | None = None, tolerance_sd: float = 3.0, relative_floor: float = 0.05,
              labels: VertebraLabels | None = None, in_plane: bool = True) -> RoiSet:
    """``seed``: grow an ROI from one click per level (world RAS mm) on ``image`` (a map, e.g. PDFF).

    Voxels within ``radius_mm`` of the seed (on the seed's sagittal slice when ``in_plane``) whose value
    differs from the median of the seed's 3 × 3 in-plane neighbourhood by at most ``tolerance`` (default:
    ``max(tolerance_sd`` × robust SD of that neighbourhood, ``relative_floor`` × |median|)), connected to the
    seed. With ``labels``, the ROI stays inside the seed's vertebra (minus excluded voxels).
    """
    if radius_mm <= 0:
        raise InputError(f"radius_mm must be positive, got {radius_mm}")
    data = np.asarray(image.data, dtype=float) if not np.iscomplexobj(image.data) else np.abs(image.data)
    data = data if data.ndim == 3 else data[..., 0]
    affine = image.affine
    lr = lr_axis(affine)
    inv = np.linalg.inv(affine)
    shape = data.shape
    masks = {}
    grid = np.indices(shape).reshape(3, -1).T.astype(float)
    world = voxel_world(grid, affine)
    for level, xyz in seeds.items():
        xyz = np.asarray(xyz, float)
        ijk = np.rint(inv[:3, :3] @ xyz + inv[:3, 3]).astype(int)
        if np.any(ijk < 0) or np.any(ijk >= shape):
            raise InputError(f"seed {level} at {xyz.tolist()} mm lies outside the image")
        near = (np.linalg.norm(world - xyz, axis=1) <= radius_mm).reshape(shape)
        if in_plane:
            plane = np.zeros(shape[lr], bool)
            plane[ijk[lr]] = True
            near &= plane.reshape([-1 if a == lr else 1 for a in range(3)])
        nb = tuple(slice(max(c - 1, 0), c + 2) if a != lr or not in_plane else slice(c, c + 1)
                   for a, c in enumerate(ijk))
        vals = data[nb][np.isfinite(data[nb])]
        if vals.size == 0:
            raise InputError(f"seed {level}: no finite map value around the seed")
        med = float(np.median(vals))
        robust_sd = 1.4826 * float(np.median(np.abs(vals - med)))
        tol = tolerance if tolerance is not None else max(tolerance_sd * robust_sd, relative_floor * abs(med))
        ok = near & np.isfinite(data) & (np.abs(data - med) <= tol)
        if labels is not None:
            ok &= labels.vertebra(level)
            if labels.exclude is not None:
                ok &= ~labels.exclude
        comp, _ = ndimage.label(ok)
        k = comp[tuple(ijk)]
        if k == 0:
            raise InputError(f"seed {level}: the seed voxel itself is outside the grown region (on an edge?)")
        masks[level] = comp == k
    return RoiSet("seed", masks, affine.copy())


def place_rois(labels: VertebraLabels, roi: str, levels: list[str], **options) -> RoiSet:
    """Dispatch to the label-based strategies ``body`` and ``paper`` (readers and seeds take other inputs)."""
    if roi == "body":
        return body_rois(labels, levels, **options)
    if roi == "paper":
        return paper_rois(labels, levels, **options)
    raise InputError(f"unknown ROI strategy {roi!r}; use one of {', '.join(STRATEGIES)} (alias 'roi' = 'reader')")
