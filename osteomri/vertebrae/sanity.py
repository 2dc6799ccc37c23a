"""Sanity checks of a label map before anything is measured in it (issue 13, items 3, 4 and 8).

Two mistakes give plausible-looking numbers with no error unless they are checked for:

- **Misregistration** (:func:`check_alignment`): a label map written for the image's voxel grid whose affine
  says otherwise (shifted, flipped A–P) is resampled by world coordinates onto soft tissue. Labels and map must
  lie on the same grid (same shape, every voxel corner within half a voxel); otherwise they are refused unless
  resampling was asked for (``resample=True``, CLI ``--resample-labels``), which is then said (a warning).
- **Wrong convention** (:func:`check_vertebral_column`): a label map read with another segmenter's preset
  (TotalSegmentator ``total_mr`` read as ``vertebrae_mr``: the liver, label 5, becomes "L2") names organs as
  vertebrae. Every preset's result must form a cranio-caudal column of vertebra-sized objects: each level no
  larger than :data:`MAX_VERTEBRA_VOLUME_MM3` and :data:`MAX_VERTEBRA_HEIGHT_MM`, consecutive levels in
  numbering order descending along world S, :data:`MIN_LEVEL_STEP_MM`–:data:`MAX_LEVEL_STEP_MM` apart per level
  step and at most :data:`MAX_LATERAL_STEP_MM` apart across the spine axis (left–right and antero-posterior).

Bounds (generous on purpose: they catch organs and mirrored labels, not anatomical variation). An adult lumbar
vertebral body is 25–30 mm high and 20–45 cm³ in volume; with its posterior elements the whole vertebra stays
below ~100 cm³ (Limthongkul W et al., Spine 2010;35:E1140; Zhou SH et al., Eur Spine J 2000;9:242), cervical
levels are 14–17 mm apart and lumbar levels 35–45 mm (body height + disc). A truncated vertebra (cut by the
field of view) is allowed but reported (:func:`truncated_levels`).
"""

from __future__ import annotations

import warnings

import numpy as np

from osteomri.errors import InputError, UnknownLabelError
from osteomri.io.image import Image

MAX_VERTEBRA_VOLUME_MM3 = 250_000.0  # 2.5x the largest adult lumbar vertebra incl. posterior elements
MAX_VERTEBRA_HEIGHT_MM = 90.0  # S extent of one level (lumbar body ~30 mm; spinous process slopes down)
MIN_LEVEL_STEP_MM = 8.0  # centroid S distance per level step (cervical pitch ~15 mm, compressed ~10 mm)
MAX_LEVEL_STEP_MM = 70.0  # lumbar pitch ~40 mm
MAX_LATERAL_STEP_MM = 40.0  # across the spine axis per level step (lordosis, scoliosis)
TOTAL_MR_SIGNATURE = (19, 20, 21)  # total_mr: vertebrae, intervertebral discs, spinal cord


class LabelAlignmentWarning(UserWarning):
    """Labels were resampled onto another grid by world coordinates (asked for with ``resample=True``)."""


class TruncatedVertebraWarning(UserWarning):
    """A vertebra is cut by the edge of the field of view: its ROI is partial or empty."""


class EmptyRoiWarning(UserWarning):
    """A level's ROI holds no finite voxel of a map: its statistics are blank."""


def misalignment_mm(moving: Image, reference: Image) -> float:
    """Largest world distance (mm) between the voxel corners of ``reference``'s grid as placed by the two
    affines (the voxel indices of ``reference`` mapped by ``moving.affine`` and by ``reference.affine``)."""
    shape = np.asarray(reference.spatial_shape, dtype=float) - 1.0
    corners = np.array([[i, j, k, 1.0] for i in (0, shape[0]) for j in (0, shape[1]) for k in (0, shape[2])])
    a = corners @ np.asarray(moving.affine, float).T
    b = corners @ np.asarray(reference.affine, float).T
    return float(np.max(np.linalg.norm(a[:, :3] - b[:, :3], axis=1)))


def same_voxel_grid(moving: Image, reference: Image, tol_voxel: float = 1e-3) -> bool:
    """True when ``moving``'s voxel centres are ``reference``'s, in another array order: the index map between
    the two is a signed axis permutation with integer offsets that takes one array's extent onto the other's
    (a sagittal DICOM series and its label map written in NIfTI order, say). Resampling is then exact."""
    m = np.linalg.solve(np.asarray(reference.affine, float), np.asarray(moving.affine, float))
    rot, shift = m[:3, :3], m[:3, 3]
    if not np.allclose(np.abs(rot).sum(axis=0), 1.0, atol=tol_voxel) or not np.allclose(
            np.abs(rot), np.rint(np.abs(rot)), atol=tol_voxel):
        return False
    if not np.allclose(shift, np.rint(shift), atol=tol_voxel):
        return False
    ext = np.asarray(moving.spatial_shape, float) - 1.0
    corners = np.array([[i, j, k] for i in (0, ext[0]) for j in (0, ext[1]) for k in (0, ext[2])]) @ rot.T + shift
    lo, hi = np.rint(corners.min(axis=0)), np.rint(corners.max(axis=0))
    return bool(np.all(lo == 0) and np.all(hi == np.asarray(reference.spatial_shape, float) - 1.0))


def check_alignment(labels: Image, reference: Image, *, resample: bool = False, what: str = "label map") -> bool:
    """Whether ``labels`` must be resampled onto ``reference``'s grid; raise when it may not.

    - Same shape and every corner within half the smallest voxel edge: the labels are on the grid (False).
    - Another shape but the same voxel centres in another array order (:func:`same_voxel_grid`): resampled,
      exactly (True). (With the same shape a reordering cannot be told from a flipped affine: refused below.)
    - Same shape but an affine that places the voxels more than half a voxel away: the signature of a label map
      shifted or flipped against its image (it would measure soft tissue): :class:`InputError` naming the
      displacement, unless ``resample=True`` (a :class:`LabelAlignmentWarning`, and True).
    - Another grid (labels drawn on another series of the exam, or a cropped map): resampled by world
      coordinates with a :class:`LabelAlignmentWarning` (True); the anatomy checks after it (a column of
      vertebrae, marrow-like values before any screening) catch labels that do not belong.
    """
    half_voxel = 0.5 * float(np.min(reference.voxel_size_mm))
    same_shape = tuple(labels.spatial_shape) == tuple(reference.spatial_shape)
    offset = misalignment_mm(labels, reference) if same_shape else None
    if same_shape and offset <= half_voxel:
        return False
    if not same_shape and same_voxel_grid(labels, reference):
        return True
    if same_shape and not resample:
        raise InputError(f"the {what} is not on the image's grid: its affine places the same voxels up to "
                         f"{offset:.1f} mm away (> half a voxel, {half_voxel:.2f} mm); the labels may be "
                         "misregistered (shifted or flipped). Give labels on the image's grid, or resample them by "
                         "world coordinates with --resample-labels (resample=True)")
    where = (f"its affine places the same voxels up to {offset:.1f} mm away (> half a voxel, {half_voxel:.2f} mm)"
             if same_shape else f"its grid {tuple(labels.spatial_shape)} differs from the image's "
             f"{tuple(reference.spatial_shape)}")
    warnings.warn(f"{what} resampled onto the image's grid by world coordinates (nearest neighbour): {where}",
                  LabelAlignmentWarning, stacklevel=3)
    return True


def check_vertebral_column(level_map: np.ndarray, affine: np.ndarray, preset: str,
                           raw_labels: np.ndarray | None = None) -> None:
    """Refuse labels whose "vertebrae" do not form a cranio-caudal column of vertebra-sized objects.

    ``level_map``: VerSe codes (0 elsewhere); ``raw_labels``: the label values as read (for the hint that a
    ``total_mr`` map was given with another preset). Raises :class:`UnknownLabelError` naming the offending
    level(s) and the check that failed.
    """
    from osteomri.vertebrae.labels import CODE_LEVELS, level_rank

    codes = np.unique(level_map[level_map > 0])
    if codes.size == 0:
        return
    affine = np.asarray(affine, dtype=float)
    vox_mm3 = float(abs(np.linalg.det(affine[:3, :3])))
    idx = np.argwhere(level_map > 0)
    world = idx @ affine[:3, :3].T + affine[:3, 3]
    lab = level_map[tuple(idx.T)]
    problems: list[str] = []
    cents: dict[str, np.ndarray] = {}
    for code in codes:
        level = CODE_LEVELS[int(code)]
        pts = world[lab == code]
        volume = pts.shape[0] * vox_mm3
        height = float(np.ptp(pts[:, 2])) if pts.shape[0] else 0.0
        if volume > MAX_VERTEBRA_VOLUME_MM3:
            problems.append(f"'{level}' is {volume / 1000:.0f} cm³ "
                            f"(a vertebra is < {MAX_VERTEBRA_VOLUME_MM3 / 1000:.0f})")
        elif height > MAX_VERTEBRA_HEIGHT_MM:
            problems.append(f"'{level}' spans {height:.0f} mm cranio-caudally "
                            f"(a vertebra < {MAX_VERTEBRA_HEIGHT_MM:.0f})")
        cents[level] = pts.mean(axis=0)
    order = sorted(cents, key=level_rank)  # superior -> inferior by name
    for upper, lower in zip(order, order[1:], strict=False):
        steps = max(level_rank(lower) - level_rank(upper), 0.5)
        d = cents[upper] - cents[lower]
        ds, lateral = d[2] / steps, float(np.hypot(d[0], d[1])) / steps
        if ds < MIN_LEVEL_STEP_MM:
            problems.append(f"'{upper}' is not a vertebra above '{lower}' ({ds:+.0f} mm per level along S)")
        elif ds > MAX_LEVEL_STEP_MM:
            problems.append(f"'{upper}' and '{lower}' are {ds:.0f} mm apart per level (> {MAX_LEVEL_STEP_MM:.0f})")
        if lateral > MAX_LATERAL_STEP_MM:
            problems.append(f"'{upper}' and '{lower}' are {lateral:.0f} mm apart across the spine axis per level "
                            f"(> {MAX_LATERAL_STEP_MM:.0f})")
    if not problems:
        return
    hint = ""
    if raw_labels is not None and preset != "total_mr" and np.isin(TOTAL_MR_SIGNATURE, raw_labels).all():
        hint = " The map holds labels 19, 20 and 21 (total_mr: vertebrae, discs, spinal cord): try --preset total_mr."
    shown = "; ".join(problems[:3]) + (f"; and {len(problems) - 3} more" if len(problems) > 3 else "")
    raise UnknownLabelError(f"the labels read with preset '{preset}' do not form a column of vertebrae: {shown}. "
                            f"Is the preset right?{hint}")


def truncated_levels(level_map: np.ndarray, affine: np.ndarray, levels: list[str] | None = None) -> list[str]:
    """Levels cut cranio-caudally by the field of view (voxels on the first or last slice along the array
    axis closest to world S), superior → inferior. Sagittal slabs narrower than a vertebra are not "cut": the
    ROIs are placed on the mid-sagittal slice."""
    from osteomri.io.orientation import anatomical_axes
    from osteomri.vertebrae.labels import CODE_LEVELS, level_rank

    si = anatomical_axes(affine)[2]
    ends = np.concatenate([np.take(level_map, [0], axis=si).ravel(), np.take(level_map, [-1], axis=si).ravel()])
    cut = {CODE_LEVELS[int(c)] for c in np.unique(ends[ends > 0])}
    if levels is not None:
        cut &= set(levels)
    return sorted(cut, key=level_rank)


def check_measured(table, levels_cut: list[str]) -> None:
    """After measuring: a map with no finite voxel in any ROI is an error (blank statistics are no result);
    a level whose ROI is empty for a map, or whose vertebra is cut by the field of view, is warned about.

    ``table``: the tidy long table (``level``, ``map``, ``n_voxels``); ``levels_cut``: from
    :func:`truncated_levels`.
    """
    for name, rows in table.groupby("map", sort=False):
        if not (rows["n_voxels"] > 0).any():
            raise InputError(f"map {name!r} has no finite value in any ROI (levels {', '.join(rows['level'])}): "
                             "nothing to measure (NaN-only data, or the map does not cover the vertebrae)")
    empty = table.loc[table["n_voxels"] == 0]
    for level, rows in empty.groupby("level", sort=False):
        cut = " (the vertebra is cut by the field of view)" if level in levels_cut else ""
        warnings.warn(f"{level}: empty ROI for {', '.join(rows['map'])}{cut}; its statistics are blank",
                      EmptyRoiWarning, stacklevel=3)
    for level in levels_cut:
        if level not in set(empty["level"]):
            warnings.warn(f"{level} is cut by the field of view: its ROI covers only the part in view",
                          TruncatedVertebraWarning, stacklevel=3)
