"""Automatic vertebral-body labelling of a sagittal lumbar MR without any outside segmenter (classical, CPU).

``label_vertebrae(image, contrast="auto", lowest_level=None) -> Image`` returns a uint8 label map on the image's
grid in the VerSe/SPINEPS instance numbering (T11 = 18, T12 = 19, L1 = 20 … L5 = 24), the vertebral bodies only,
with per-level confidence and the evidence used in ``meta["VertebraLabelling"]``.

Method
------
1. The volume is put on a working grid (superior→inferior, anterior→posterior, left–right; 1 mm in-plane) read
   from the affine (:mod:`~osteomri.vertebrae.spinegrid`).
2. On the mid-sagittal slab (±4 mm) the spinal canal's centreline and the disc profile in front of it are found
   (:mod:`~osteomri.vertebrae.column`) for the contrast's polarity (bright discs on water/T2w/PD, dark discs on
   T1w/fat/PDFF; ``auto`` tries both and keeps the more periodic profile).
3. Each body between two consecutive discs is segmented in 3-D by a marker-controlled watershed of the gradient
   magnitude (Beucher & Meyer 1993) between its core (middle third between the discs, near the midline) and
   what cannot be body (outside a body-shaped prior: between the two disc planes, at most 30 mm either side of
   the midline, 5–62 mm in front of the canal centre; or intensities on the disc/CSF side, or far darker), then
   opened, and each sagittal slice replaced by its convex hull (bodies are convex to a good approximation).
4. Naming counts upwards from the lumbosacral disc: the first disc from the top tilted like the sacral endplate
   (>= 18 deg, and >= 12 deg more than the discs above it; sacral slope, Legaye et al. 1998). Discs below it are
   sacral and not counted. Without it (sacrum out of view, or not recognised), with an irregular disc spacing,
   or with fewer than four vertebral gaps, :class:`AmbiguousLevelsError` asks for ``lowest_level`` instead of
   guessing; ``lowest_level`` names the body directly above the lowest disc found.

Limits: lumbosacral transitional anatomy (L6, sacralised L5) cannot be told from a lumbar field of view alone;
the count from the sacrum then names the lowest mobile vertebra L5. Give ``lowest_level`` when the thorax is
not in view and the anatomy is known to be transitional.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from skimage import morphology, segmentation

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.vertebrae.column import Column, find_column
from osteomri.vertebrae.discs import normalise, ridge_map
from osteomri.vertebrae.labels import CODE_LEVELS, LEVEL_CODES, SPINE_ORDER
from osteomri.vertebrae.spinegrid import SpineGrid, spine_grid

CONTRASTS = {"auto": (1, -1), "water": (1,), "t2w": (1,), "pd": (1,), "t1w": (-1,), "fat": (-1,),
             "pdff": (-1,)}
SLAB_HALF_MM = 4.0
SACRUM_VIEW_MM = 12.0
BODY_LR_HALF_MM = 30.0
BODY_AP_MM = (5.0, 62.0)  # anterior offsets from the canal centre that may hold the body
MIN_BODY_ML = 4.0
MIN_LS_TILT_DEG = 18.0  # the lumbosacral disc follows the sacral slope (typically 30-50 deg; Legaye et al. 1998)
MIN_LS_TILT_JUMP_DEG = 12.0  # ... and is markedly more tilted than the lumbar discs above it
MAX_PITCH_CV = 0.2  # coefficient of variation of the disc spacing above which the count is not trusted


class AmbiguousLevelsError(InputError):
    """The bodies were found but their levels cannot be named safely; give ``lowest_level``."""

    def __init__(self, message: str, evidence: dict):
        super().__init__(message)
        self.evidence = evidence


@dataclass
class Detection:
    """Unnamed bodies (working grid), superior → inferior, and what was seen."""

    grid: SpineGrid
    column: Column
    bodies: list[np.ndarray]  # boolean masks on the working grid
    body_rows: list[float]
    body_gaps: list[int]  # index of the gap (between disc i and i + 1, from the top) holding each body
    disc_points: np.ndarray  # (n, 2) s, a of each disc
    body_confidence: list[float]
    evidence: dict = field(default_factory=dict)


def _slab(volume: np.ndarray, spacing_lr: float) -> tuple[np.ndarray, int]:
    centre = volume.shape[2] // 2
    half = max(1, int(round(SLAB_HALF_MM / spacing_lr)))
    return volume[:, :, max(0, centre - half):centre + half + 1].mean(axis=2), centre


def detect_bodies(image: Image, contrast: str = "auto") -> Detection:
    """Find the vertebral bodies (unnamed) of a sagittal lumbar image; see the module docstring."""
    key = str(contrast).lower()
    if key not in CONTRASTS:
        raise InputError(f"unknown contrast {contrast!r}; use one of {', '.join(CONTRASTS)}")
    grid = spine_grid(image)
    vol = normalise(grid.data)
    slab, centre = _slab(vol, grid.spacing_mm[2])
    columns = [c for p in CONTRASTS[key] if (c := find_column(slab, p)) is not None]
    if not columns:
        raise InputError("no spinal column found: no periodic disc pattern in front of a spinal canal on the "
                         "mid-sagittal slices (is this a sagittal spine image?)")
    column = max(columns, key=lambda c: c.score * c.path_strength)
    rows = column.discs.astype(int)
    mid = 0.5 * (BODY_AP_MM[0] + BODY_AP_MM[1]) * 0.5
    disc_pts = np.stack([rows + mid * column.normal[rows, 0], column.canal_a[rows] + mid * column.normal[rows, 1]],
                        axis=1)
    geo = _refine_discs(slab, column, rows)
    disc_pts = geo[:, :2] + np.array([0.0, 10.0])  # reported near the posterior third of the disc, as before
    smooth = ndimage.gaussian_filter(vol, (1.0, 1.0, 1.0 / grid.spacing_mm[2]))
    bodies, body_rows, conf, gaps = [], [], [], []
    for gap, (upper, lower) in enumerate(zip(rows[:-1], rows[1:], strict=True)):
        pitch = lower - upper
        if not 18 <= pitch <= 60:
            continue
        mask, c = _grow_body(smooth, column, int(upper), int(lower), centre, grid.spacing_mm, geo[gap], geo[gap + 1])
        if mask is None:
            continue
        bodies.append(mask)
        body_rows.append(0.5 * (upper + lower))
        conf.append(c)
        gaps.append(gap)
    if not bodies:
        raise InputError("discs were found but no vertebral body between them could be segmented")
    n_s = vol.shape[0]
    below_mm = (n_s - 1 - disc_pts[-1, 0]) * grid.spacing_mm[0]
    tilts = _disc_tilts(slab, column, disc_pts)
    evidence = {
        "disc_tilts_deg": [round(t, 1) for t in tilts],
        "disc_like_peak_below_cut_by_image_edge": column.disc_below_cut,
        "contrast": key, "disc_polarity": "bright" if column.polarity > 0 else "dark",
        "profile_periodicity": round(column.score, 3), "discs_found": int(rows.size),
        "bodies_found": len(bodies), "image_below_lowest_disc_mm": round(float(below_mm), 1),
        "mean_pitch_mm": round(float(np.mean(np.diff(rows))) * grid.spacing_mm[0], 1) if rows.size > 1 else None,
    }
    return Detection(grid, column, bodies, body_rows, gaps, disc_pts, conf, evidence)


def _disc_tilts(slab: np.ndarray, column: Column, disc_pts: np.ndarray) -> list[float]:
    """Tilt (degrees from the image's axial direction, positive: anterior end lower) of each disc, from the
    ridge normal averaged over the disc's centre (the lumbosacral disc follows the sacral slope)."""
    strength, ns, na = ridge_map(slab, column.polarity, 4.0)
    out = []
    for s, a in disc_pts:
        s0, a0 = int(round(s)), int(round(a - 10))
        win = (slice(max(0, s0 - 3), s0 + 4), slice(max(0, a0 - 6), a0 + 7))
        w = strength[win]
        if w.sum() <= 0:
            out.append(float("nan"))
            continue
        n_s, n_a = (ns[win] * w).sum() / w.sum(), (na[win] * w).sum() / w.sum()
        out.append(float(np.degrees(np.arctan2(n_a * np.sign(n_s), abs(n_s)))))
    return out


def _refine_discs(slab: np.ndarray, column: Column, rows: np.ndarray) -> np.ndarray:
    """Each disc's centre and normal on the slab, ``(s, a, n_s, n_a)``: the strongest plate ridge (normal within
    60 deg of the spine's axis) near where the profile put it, 8–45 mm in front of the canal. A tilted disc (the
    lumbosacral one) crosses the profile band obliquely, so the profile's row alone misplaces it."""
    strength, ns, na = ridge_map(slab, column.polarity, 3.0)
    strength = ndimage.gaussian_filter(strength * (np.abs(ns) >= 0.5), 1.5)
    n_s, n_a = slab.shape
    out = []
    for r in rows:
        s0 = r + 22 * column.normal[r, 0]
        lo, hi = int(max(0, s0 - 10)), int(min(n_s, s0 + 16))
        best, arg = -1.0, None
        for s in range(lo, hi):
            c = column.canal_a[min(s, n_s - 1)]
            a_lo, a_hi = int(max(0, c - 45)), int(min(n_a, c - 8))
            if a_hi <= a_lo:
                continue
            k = int(np.argmax(strength[s, a_lo:a_hi]))
            if strength[s, a_lo + k] > best:
                best, arg = float(strength[s, a_lo + k]), (s, a_lo + k)
        if arg is None or best <= 0:
            arg = (int(round(s0)), int(round(column.canal_a[r] + 22 * column.normal[r, 1])))
            normal = np.array([-column.normal[r, 1], column.normal[r, 0]])
        else:
            normal = np.array([ns[arg], na[arg]])
        normal = normal if normal[0] >= 0 else -normal
        out.append((float(arg[0]), float(arg[1]), float(normal[0]), float(normal[1])))
    return np.asarray(out)


def _grow_body(smooth: np.ndarray, column: Column, upper: int, lower: int, centre_lr: int,
               spacing: np.ndarray, top: np.ndarray, bottom: np.ndarray) -> tuple[np.ndarray | None, float]:
    """One body between the discs at rows ``upper`` and ``lower`` of the canal centreline."""
    n_s, n_a, n_l = smooth.shape
    pol = column.polarity
    s0 = int(max(0, min(upper, top[0]) - 10))
    s1 = int(min(n_s, max(lower, bottom[0]) + 11))
    a_lo = int(max(0, np.min(column.canal_a[s0:s1]) - BODY_AP_MM[1] - 10))
    a_hi = int(min(n_a, np.max(column.canal_a[s0:s1]) + 5))
    half_lr = int(round(BODY_LR_HALF_MM / spacing[2]))
    l0, l1 = max(0, centre_lr - half_lr), min(n_l, centre_lr + half_lr + 1)
    sub = smooth[s0:s1, a_lo:a_hi, l0:l1]
    ss, aa = np.meshgrid(np.arange(s0, s1), np.arange(a_lo, a_hi), indexing="ij")
    # position relative to the two disc planes (normal = centreline tangent) and to the canal
    def plane_side(disc: np.ndarray) -> np.ndarray:  # signed distance (mm) below the disc's mid-plane
        return (ss - disc[0]) * disc[2] + (aa - disc[1]) * disc[3]

    pitch = float(np.hypot(bottom[0] - top[0], bottom[1] - top[1]))
    upper_side, lower_side = plane_side(top), plane_side(bottom)
    between = (upper_side > 2) & (lower_side < -2)
    rows_c = np.clip(ss, 0, n_s - 1)
    depth = column.canal_a[rows_c] - aa  # mm anterior of the canal centre
    prior2d = between & (depth >= BODY_AP_MM[0]) & (depth <= BODY_AP_MM[1])
    # body intensity from its core (middle third between the discs, 15-30 mm in front of the canal)
    core2d = prior2d & (upper_side > pitch / 3) & (lower_side < -pitch / 3) & (depth >= 14) & (
        depth <= 30)
    lc = centre_lr - l0
    core_vals = sub[core2d][:, max(0, lc - 3):lc + 4]
    if core_vals.size < 20:
        return None, 0.0
    body_level = float(np.median(core_vals))
    spread = float(np.median(np.abs(core_vals - body_level))) * 1.4826 + 1e-3
    disc_level = float(np.median([smooth[int(d[0]), int(d[1]), centre_lr] for d in (top, bottom)]))
    contrast = pol * (disc_level - body_level)
    if contrast <= 0:
        return None, 0.0
    towards_disc = pol * (sub - body_level)
    lr_mm = (np.arange(l0, l1) - centre_lr) * spacing[2]
    core3d = core2d[:, :, None] & (np.abs(lr_mm) <= 8)[None, None, :]
    # watershed between the body's core and everything that cannot be body: outside the prior, the discs and
    # CSF (towards the disc level), and far darker/brighter tissue; the boundary settles on the strongest
    # edge between them, the cortical rim (Beucher & Meyer 1993, marker-controlled watershed)
    outside = ~(prior2d[:, :, None] & (np.abs(lr_mm) <= BODY_LR_HALF_MM)[None, None, :])
    not_body = (towards_disc > max(0.6 * contrast, 2.5 * spread)) | (towards_disc < -max(0.8 * contrast, 5 * spread))
    markers = np.zeros(sub.shape, dtype=np.int32)
    markers[outside | not_body] = 2
    markers[core3d & ~not_body] = 1
    if not (markers == 1).any():
        return None, 0.0
    grad = ndimage.gaussian_gradient_magnitude(sub, 1.0)
    region = segmentation.watershed(grad, markers) == 1
    region = ndimage.binary_opening(region, structure=_ball(2))
    lab, n = ndimage.label(region)
    if n == 0:
        return None, 0.0
    counts = np.bincount(lab[core3d & (lab > 0)], minlength=n + 1)
    counts[0] = 0
    if counts.max() == 0:
        return None, 0.0
    body = lab == int(np.argmax(counts))
    # vertebral bodies are convex to a good approximation: the hull of each sagittal slice fills the holes that
    # the basivertebral vein and marrow heterogeneity leave
    for k in range(body.shape[2]):
        if body[:, :, k].sum() >= 10:
            body[:, :, k] = morphology.convex_hull_image(body[:, :, k]) & prior2d
    body = ndimage.binary_opening(body, structure=_ball(1))
    volume_ml = body.sum() * float(np.prod(spacing)) / 1000
    if volume_ml < MIN_BODY_ML:
        return None, 0.0
    full = np.zeros(smooth.shape, dtype=bool)
    full[s0:s1, a_lo:a_hi, l0:l1] = body
    confidence = float(np.clip(contrast / (6 * spread), 0, 1))
    return full, confidence


def _ball(radius: int) -> np.ndarray:
    r = np.arange(-radius, radius + 1)
    return (r[:, None, None] ** 2 + r[None, :, None] ** 2 + r[None, None, :] ** 2) <= radius**2


def _names_from(lowest: str, n: int) -> list[str]:
    """Names of ``n`` bodies superior → inferior, the lowest being ``lowest``."""
    order = [*SPINE_ORDER[:SPINE_ORDER.index("L5") + 1]]
    if lowest == "L6":
        order = [*order, "L6"]
    if lowest not in order:
        raise InputError(f"lowest_level must be a thoracic or lumbar level (T1–T12, L1–L6), got {lowest!r}")
    i = order.index(lowest)
    if i - n + 1 < 0:
        raise InputError(f"{n} bodies found: they cannot end at {lowest}")
    return order[i - n + 1:i + 1]


def label_vertebrae(image: Image, *, contrast: str = "auto", lowest_level: str | None = None) -> Image:
    """Find and name the vertebral bodies of a sagittal lumbar MR image (see the module docstring).

    Parameters
    ----------
    image:
        A 3-D image (4-D: the first volume is used); any orientation, read from the affine.
    contrast:
        ``auto``, ``water``, ``t2w``, ``pd`` (bright discs), ``t1w``, ``fat``, ``pdff`` (dark discs).
    lowest_level:
        Level of the body directly above the lowest disc found (normally ``"L5"``); required when the sacrum
        is not in view, otherwise it overrides the count from the sacrum.

    Returns
    -------
    Image
        uint8 label map on the image's grid (VerSe numbering), with ``meta["VertebraLabelling"]``: method,
        per-level confidence (0–1), evidence, and whether the names come from the sacrum or from
        ``lowest_level``. Raises :class:`AmbiguousLevelsError` when the count is ambiguous and no
        ``lowest_level`` is given.
    """
    det = detect_bodies(image, contrast)
    n = len(det.bodies)
    ev = dict(det.evidence)
    tilts = np.asarray(ev["disc_tilts_deg"], float)
    # the lumbosacral disc: the first disc from the top tilted like the sacral endplate, markedly more than
    # the discs above it; anything below it is sacral (S1/S2 remnants) and is not counted
    ls_index = next((i for i in range(3, tilts.size) if np.isfinite(tilts[i]) and tilts[i] >= MIN_LS_TILT_DEG
                     and tilts[i] - np.nanmedian(tilts[:i]) >= MIN_LS_TILT_JUMP_DEG), None)
    lumbosacral = ls_index is not None
    ev["lowest_disc_is_lumbosacral"] = lumbosacral
    if lumbosacral and lowest_level is None:
        ev["sacral_discs_ignored"] = int(tilts.size - 1 - ls_index)
        keep = [i for i, g in enumerate(det.body_gaps) if g < ls_index]
        det = Detection(det.grid, det.column, [det.bodies[i] for i in keep], [det.body_rows[i] for i in keep],
                        [det.body_gaps[i] for i in keep], det.disc_points[:ls_index + 1],
                        [det.body_confidence[i] for i in keep], det.evidence)
        tilts = tilts[:ls_index + 1]
        n = len(det.bodies)
        ev["discs_found"] = ls_index + 1
    pitches = np.diff(det.disc_points[:, 0])
    regular = pitches.size >= 3 and float(np.std(pitches) / np.mean(pitches)) <= MAX_PITCH_CV
    n_gaps = ev["discs_found"] - 1
    complete = n >= n_gaps - 1  # at most one gap without a segmented body (names follow the disc count)
    ev["pitch_cv"] = round(float(np.std(pitches) / np.mean(pitches)), 3) if pitches.size else None
    ev["gaps_without_a_body"] = int(n_gaps - n)
    if lowest_level is not None:
        names = _names_from(str(lowest_level).upper(), n_gaps)
        ev["naming"] = f"from lowest_level={lowest_level} (user)"
        naming_conf = 1.0
    elif not (regular and complete and n_gaps >= 4):
        raise AmbiguousLevelsError(
            f"{n} vertebral bodies between {ev['discs_found']} discs found, but the disc sequence is irregular or "
            "incomplete (pitch CV {}, gaps without a body: {}): the levels cannot be counted safely; give "
            "lowest_level (--lowest-level), the level of the body directly above the lowest disc".format(
                ev["pitch_cv"], n_gaps - n), ev)
    elif lumbosacral:
        names = _names_from("L5", n_gaps)
        ev["naming"] = "count upwards from the lumbosacral disc (lowest disc, tilted like the sacral endplate)"
        naming_conf = float(np.clip((tilts[-1] - np.nanmedian(tilts[:-1])) / (2 * MIN_LS_TILT_JUMP_DEG), 0.5, 1))
    else:
        raise AmbiguousLevelsError(
            f"{n} vertebral bodies found but the lumbosacral disc is not recognised (lowest disc tilt "
            f"{tilts[-1]:.0f} deg, the others' median {np.nanmedian(tilts[:-1]):.0f} deg): the sacrum may be out of "
            "view; give lowest_level (--lowest-level), the level of the body directly above the lowest disc", ev)
    labels = np.zeros(det.grid.data.shape, dtype=np.uint8)
    confidences = {}
    named = [names[g] for g in det.body_gaps]
    for mask, name, c in zip(det.bodies, named, det.body_confidence, strict=True):
        labels[mask & (labels == 0)] = LEVEL_CODES[name]
        confidences[name] = round(float(c * naming_conf), 3)
    out = det.grid.to_source(labels)
    meta = {
        "LabelConvention": "spineps-instance",
        "VertebraLabelling": {
            "method": "osteomri classical (canal centreline, disc profile, 3-D body growing)",
            "levels": named, "codes": {nm: LEVEL_CODES[nm] for nm in named},
            "confidence": confidences, "evidence": ev,
            "lowest_level": lowest_level, "automatic": True,
        },
    }
    return Image(out.astype(np.uint8), image.affine.copy(), meta)


def level_name(code: int) -> str:
    return CODE_LEVELS[int(code)]
