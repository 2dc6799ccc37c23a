"""Digital lumbar-spine phantom: geometry, tissue and vertebra label maps, per-vertebra ground truth.

A 3-D sagittal volume (array axes x = left→right, y = posterior→anterior, z = inferior→superior, RAS+ mm)
holding T12 (partial), L1–L5 and S1 (partial) vertebral bodies — trabecular marrow, cortical shell,
endplates and a basivertebral vein — intervertebral discs, the spinal canal with CSF and the cord (down to
the conus at L1/L2), posterior elements, paraspinal muscle, anterior soft tissue and subcutaneous fat.

Geometry is defined in millimetres, so the matrix and voxel size only set the sampling. Voxels are labelled
at their centres (no partial volume), so the label maps are exact for the true parameter maps.

Label conventions
-----------------
``tissues``: the codes in :data:`TISSUES`.
``levels``: vertebra instances numbered as SPINEPS/TPTBox/VerSe (T12 = 19, L1 = 20 … L5 = 24, S1 = 26) over
the whole vertebra (body and posterior elements); the disc below vertebra X is ``100 + X``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from osteomri.errors import InputError
from osteomri.io.image import Image

TISSUES: dict[str, int] = {
    "background": 0,
    "marrow": 1,
    "cortex": 2,
    "endplate": 3,
    "basivertebral_vein": 4,
    "disc": 5,
    "csf": 6,
    "cord": 7,
    "muscle": 8,
    "subcutaneous_fat": 9,
    "posterior_elements": 10,
    "soft_tissue": 11,
}
VERTEBRAL_BODY_TISSUES = ("marrow", "cortex", "endplate", "basivertebral_vein")

LEVEL_IDS: dict[str, int] = {"T12": 19, "L1": 20, "L2": 21, "L3": 22, "L4": 23, "L5": 24, "L6": 25, "S1": 26}
LUMBAR_LEVELS = ("L1", "L2", "L3", "L4", "L5")

# Tissue parameters at 3 T (marrow values are per level, see `draw_level_truth`). PD: proton density
# relative to pure water; t1w_signal: arbitrary units of a spin-echo T1-weighted image (CSF dark, fat bright);
# IVIM D, D* in mm^2/s, f fraction, seen on fat-suppressed DWI (water signal only).
TISSUE_PARAMETERS = pd.DataFrame.from_records(
    [
        # tissue, pd, pdff_percent, r2star_hz, t1w_signal, d_mm2_s, dstar_mm2_s, f
        ("background", 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0),
        ("marrow", 0.90, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan),
        ("cortex", 0.10, 0.0, 400.0, 40.0, 0.3e-3, 0.02, 0.05),
        ("endplate", 0.25, 20.0, 300.0, 120.0, 0.4e-3, 0.02, 0.05),
        ("basivertebral_vein", 1.00, 0.0, 40.0, 220.0, 1.8e-3, 0.10, 0.40),
        ("disc", 0.90, 0.0, 30.0, 260.0, 1.6e-3, 0.02, 0.05),
        ("csf", 1.00, 0.0, 5.0, 150.0, 3.0e-3, 0.02, 0.0),
        ("cord", 0.80, 0.0, 25.0, 320.0, 1.0e-3, 0.02, 0.05),
        ("muscle", 0.80, 5.0, 35.0, 350.0, 1.4e-3, 0.03, 0.10),
        ("subcutaneous_fat", 1.00, 92.0, 40.0, 900.0, 0.2e-3, 0.02, 0.02),
        ("posterior_elements", 0.60, 60.0, 120.0, 600.0, 0.4e-3, 0.04, 0.10),
        ("soft_tissue", 0.80, 3.0, 30.0, 400.0, 1.5e-3, 0.04, 0.12),
    ],
    columns=["tissue", "pd", "pdff_percent", "r2star_hz", "t1w_signal", "d_mm2_s", "dstar_mm2_s", "f"],
).set_index("tissue")

MAP_NAMES = ("pd", "pdff_percent", "r2star_hz", "t1w_signal", "d_mm2_s", "dstar_mm2_s", "f")

# Realistic per-level marrow ranges (uniform draws) for adults at 3 T.
MARROW_RANGES = {
    "pdff_percent": (30.0, 65.0),
    "r2star_hz": (110.0, 160.0),
    "d_mm2_s": (0.35e-3, 0.55e-3),
    "dstar_mm2_s": (0.03, 0.07),
    "f": (0.08, 0.20),
}


def marrow_t1w_signal(pdff_percent: np.ndarray | float) -> np.ndarray:
    """T1-weighted marrow signal (a.u.) of the phantom: fat is bright, so signal rises with PDFF.

    ``300 + 5 * PDFF`` — with CSF at 150 a marrow PDFF of 45 % gives VBQ = 525/150 = 3.5.
    """
    return 300.0 + 5.0 * np.asarray(pdff_percent, dtype=float)


@dataclass
class SpinePhantom:
    """The phantom's label maps, true parameter maps and per-level truth table.

    ``maps`` holds the true voxel-wise maps (keys of :data:`MAP_NAMES` plus ``fieldmap_hz`` once
    synthesised), each an :class:`Image` on the phantom grid. ``truth`` has one row per lumbar level with the
    nominal marrow values; ``mid_sagittal_index`` is the x index of the mid-sagittal slice.
    """

    tissues: Image
    levels: Image
    maps: dict[str, Image]
    truth: pd.DataFrame
    seed: int | None
    mid_sagittal_index: int
    geometry: dict = field(default_factory=dict)

    @property
    def affine(self) -> np.ndarray:
        return self.tissues.affine

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.tissues.spatial_shape

    def mask(self, *tissue_names: str) -> np.ndarray:
        """Boolean mask of the named tissues."""
        unknown = [t for t in tissue_names if t not in TISSUES]
        if unknown:
            raise InputError(f"unknown tissue(s) {unknown}; known: {', '.join(TISSUES)}")
        return np.isin(self.tissues.data, [TISSUES[t] for t in tissue_names])

    def level_mask(self, level: str, tissues: tuple[str, ...] = ("marrow",)) -> np.ndarray:
        """Voxels of ``level`` (e.g. ``"L3"``) belonging to ``tissues``."""
        if level not in LEVEL_IDS:
            raise InputError(f"unknown level {level!r}; known: {', '.join(LEVEL_IDS)}")
        return (self.levels.data == LEVEL_IDS[level]) & self.mask(*tissues)

    @property
    def body_mask(self) -> np.ndarray:
        """Everything with signal (not air)."""
        return self.tissues.data != TISSUES["background"]

    @property
    def vbq_truth(self) -> float:
        """VBQ by hand from the known signals: median L1–L4 marrow T1w signal / CSF T1w signal."""
        t1w = self.truth.set_index("level").loc[["L1", "L2", "L3", "L4"], "t1w_signal"]
        return float(np.median(t1w) / TISSUE_PARAMETERS.loc["csf", "t1w_signal"])


def draw_level_truth(
    random_state: int | np.random.Generator | None = None,
    overrides: dict[str, dict[str, float]] | pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per-level marrow truth: uniform draws from :data:`MARROW_RANGES`, then ``overrides``.

    ``overrides`` maps a level (``"L1"``…``"L5"``) to values, e.g. ``{"L3": {"pdff_percent": 55}}``, or is
    a DataFrame with a ``level`` column. ``t1w_signal`` follows :func:`marrow_t1w_signal` unless given.
    """
    rng = np.random.default_rng(random_state)
    rows = []
    for level in LUMBAR_LEVELS:
        row = {"level": level, "label": LEVEL_IDS[level]}
        row.update({k: float(rng.uniform(*rng_range)) for k, rng_range in MARROW_RANGES.items()})
        rows.append(row)
    truth = pd.DataFrame(rows).set_index("level")
    if overrides is not None:
        ov = overrides.set_index("level") if isinstance(overrides, pd.DataFrame) else pd.DataFrame(overrides).T
        bad_levels = set(ov.index) - set(LUMBAR_LEVELS)
        bad_cols = set(ov.columns) - set(MARROW_RANGES) - {"t1w_signal"}
        if bad_levels:
            raise InputError(f"unknown level(s) in overrides: {sorted(bad_levels)}; use {LUMBAR_LEVELS}")
        if bad_cols:
            raise InputError(f"unknown truth column(s): {sorted(bad_cols)}; use {sorted(MARROW_RANGES)} or t1w_signal")
        for col in ov.columns:
            if col not in truth:
                truth[col] = np.nan
            vals = ov[col].dropna()
            truth.loc[vals.index, col] = vals.astype(float)
    if "t1w_signal" not in truth or truth["t1w_signal"].isna().any():
        default = marrow_t1w_signal(truth["pdff_percent"])
        truth["t1w_signal"] = truth.get("t1w_signal", pd.Series(np.nan, index=truth.index)).fillna(
            pd.Series(default, index=truth.index))
    _check_ranges(truth)
    return truth.reset_index()[["level", "label", "pdff_percent", "r2star_hz", "t1w_signal", "d_mm2_s",
                                "dstar_mm2_s", "f"]]


def _check_ranges(truth: pd.DataFrame) -> None:
    checks = {"pdff_percent": (0, 100), "r2star_hz": (0, 2000), "f": (0, 1), "d_mm2_s": (0, 0.01),
              "dstar_mm2_s": (0, 1)}
    for col, (lo, hi) in checks.items():
        v = truth[col].to_numpy(float)
        if not np.all(np.isfinite(v)) or np.any(v < lo) or np.any(v > hi):
            raise InputError(f"truth {col} must lie in [{lo}, {hi}], got {v.tolist()}")


def make_spine_phantom(
    shape: tuple[int, int, int] = (16, 128, 160),
    voxel_size_mm: tuple[float, float, float] = (3.0, 1.6, 1.8),
    seed: int | None = 0,
    level_truth: dict[str, dict[str, float]] | pd.DataFrame | None = None,
    lordosis_mm: float = 6.0,
    heterogeneity_percent: float = 0.0,
    *,
    n_lumbar: int = 5,
    scoliosis_mm: float = 0.0,
    wedge_fracture: dict[str, float] | None = None,
    disc_height_mm: float = 9.0,
    degenerated_discs: bool = False,
) -> SpinePhantom:
    """Build the phantom.

    Parameters
    ----------
    shape, voxel_size_mm:
        Matrix (x, y, z) and voxel edge lengths in mm. The default covers 48 × 205 × 288 mm (LR × AP × SI).
    seed:
        Seeds the per-level truth draws (:func:`draw_level_truth`).
    level_truth:
        Per-level overrides of the drawn marrow values (see :func:`draw_level_truth`).
    lordosis_mm:
        Anterior shift of the L3 body relative to T12/S1 (lumbar lordosis).
    heterogeneity_percent:
        Amplitude of a smooth superior–inferior PDFF gradient inside each vertebra's marrow (± points); the
        level's nominal value is the mean over its marrow.
    n_lumbar:
        Number of lumbar vertebrae, 4–6 (6: an L6, label 25, between L5 and S1, with L5's marrow values;
        4: no L5, its truth row has no voxels).
    scoliosis_mm:
        Lateral (left–right) shift of the L3 body relative to T12/S1: a scoliotic C-curve.
    wedge_fracture:
        ``{level: fraction}``: the anterior height of that body reduced by ``fraction`` (0–0.8), the
        posterior height kept (a wedge fracture).
    disc_height_mm, degenerated_discs:
        Disc height (default 9 mm); degenerated discs are dark on water/T2w/PD images (proton density 0.45,
        T1w signal 150) — combine with a small height for dark, flat discs.

    Fatty or red marrow: give ``level_truth`` PDFF overrides (e.g. 75 % or 15 %). Field-of-view cut-offs:
    :func:`crop_si` of the built phantom. The defaults give the same phantom, voxel for voxel, as before these
    options existed.
    """
    shape = tuple(int(s) for s in shape)
    vox = np.asarray(voxel_size_mm, dtype=float)
    if len(shape) != 3 or min(shape) < 4:
        raise InputError(f"phantom shape must be 3 integers >= 4, got {shape}")
    if vox.shape != (3,) or np.any(vox <= 0) or not np.all(np.isfinite(vox)):
        raise InputError(f"voxel_size_mm must be 3 positive numbers, got {voxel_size_mm}")
    fov = np.asarray(shape) * vox
    if fov[2] < 200 or fov[1] < 150 or fov[0] < 20:
        raise InputError(
            f"field of view {fov.round(1).tolist()} mm too small: need >= 20 (LR) x 150 (AP) x 200 (SI) mm")

    if n_lumbar not in (4, 5, 6):
        raise InputError(f"n_lumbar must be 4, 5 or 6, got {n_lumbar}")
    wedge = dict(wedge_fracture or {})
    for lvl, frac in wedge.items():
        if lvl not in LEVEL_IDS or not 0 <= float(frac) <= 0.8:
            raise InputError(f"wedge_fracture needs a level of {tuple(LEVEL_IDS)} and a fraction in [0, 0.8], "
                             f"got {lvl!r}: {frac}")
    if not 2.0 <= disc_height_mm <= 15.0:
        raise InputError(f"disc_height_mm must lie in [2, 15] mm, got {disc_height_mm}")
    truth = draw_level_truth(seed, level_truth)
    affine = np.diag([*vox, 1.0])
    affine[:3, 3] = -(np.asarray(shape) - 1) / 2 * vox  # world origin at the volume centre
    grids = np.meshgrid(*[(np.arange(n) - (n - 1) / 2) * v for n, v in zip(shape, vox, strict=True)],
                        indexing="ij", sparse=True)
    x, y, z = grids
    anatomy = {"n_lumbar": n_lumbar, "scoliosis_mm": float(scoliosis_mm), "wedge": wedge,
               "disc_height_mm": float(disc_height_mm)}
    tissues, levels = _draw_anatomy(x, y, z, lordosis_mm, fov, **anatomy)

    maps: dict[str, np.ndarray] = {}
    for name in MAP_NAMES:
        lut = np.zeros(max(TISSUES.values()) + 1)
        for tissue, code in TISSUES.items():
            value = TISSUE_PARAMETERS.loc[tissue, name]
            lut[code] = 0.0 if np.isnan(value) else value
        maps[name] = lut[tissues]
    marrow = tissues == TISSUES["marrow"]
    zz = np.broadcast_to(z, shape)
    for _, row in truth.iterrows():
        sel = marrow & (levels == row["label"])
        for name in ("pdff_percent", "r2star_hz", "t1w_signal", "d_mm2_s", "dstar_mm2_s", "f"):
            maps[name][sel] = row[name]
        if heterogeneity_percent and sel.any():
            dz = zz[sel] - zz[sel].mean()
            ramp = heterogeneity_percent * dz / max(np.abs(dz).max(), 1e-9)
            maps["pdff_percent"][sel] += ramp - ramp.mean()
            maps["t1w_signal"][sel] = marrow_t1w_signal(maps["pdff_percent"][sel])
    # marrow of T12 and S1 (partial levels) gets the L1 / L5 values
    for partial, neighbour in (("T12", "L1"), ("S1", "L5")):
        sel = marrow & (levels == LEVEL_IDS[partial])
        if not sel.any():
            continue
        row = truth.set_index("level").loc[neighbour]
        for name in ("pdff_percent", "r2star_hz", "t1w_signal", "d_mm2_s", "dstar_mm2_s", "f"):
            maps[name][sel] = row[name]

    if degenerated_discs:
        disc = tissues == TISSUES["disc"]
        maps["pd"][disc] = 0.45
        maps["t1w_signal"][disc] = 150.0
        maps["r2star_hz"][disc] = 45.0
    units = {"pd": "fraction", "pdff_percent": "percent", "r2star_hz": "Hz", "t1w_signal": "a.u.",
             "d_mm2_s": "mm2/s", "dstar_mm2_s": "mm2/s", "f": "fraction"}
    return SpinePhantom(
        tissues=Image(tissues.astype(np.uint8), affine, {"LabelConvention": "osteomri-tissues"}),
        levels=Image(levels.astype(np.int16), affine, {"LabelConvention": "spineps-instance"}),
        maps={k: Image(v.astype(np.float64), affine, {"Units": units[k]}) for k, v in maps.items()},
        truth=truth,
        seed=seed,
        mid_sagittal_index=(shape[0] - 1) // 2,
        geometry={"fov_mm": fov.tolist(), "lordosis_mm": lordosis_mm,
                  **({} if anatomy == _DEFAULT_ANATOMY else {**anatomy, "degenerated_discs": degenerated_discs})},
    )


# --- anatomy ------------------------------------------------------------------------------------------
BODY_HEIGHT_MM = 25.0
DISC_HEIGHT_MM = 9.0
BODY_AP_SEMI_MM = 16.0
BODY_LR_SEMI_MM = 20.0
CORTEX_MM = 1.6
ENDPLATE_MM = 1.8
CANAL_AP_SEMI_MM = 8.0
CANAL_LR_SEMI_MM = 10.0
CORD_RADIUS_MM = 4.0
BODY_Y_MM = 25.0  # anterior position of the body centres (at T12 and S1)


def level_centres_mm(n_lumbar: int = 5, disc_height_mm: float = DISC_HEIGHT_MM) -> dict[str, float]:
    """Superior–inferior centre of each vertebral body (the middle level at 0 mm: L3 with 5 lumbar)."""
    pitch = BODY_HEIGHT_MM + disc_height_mm
    order = ("S1", *[f"L{i}" for i in range(n_lumbar, 0, -1)], "T12")
    mid = (len(order) - 1) // 2
    return {lvl: (i - mid) * pitch for i, lvl in enumerate(order)}


def crop_si(phantom: SpinePhantom, keep_mm: tuple[float, float]) -> SpinePhantom:
    """The phantom cut to the superior–inferior world range ``keep_mm = (lo, hi)`` (a field-of-view cut-off).

    Every image keeps its world geometry (the affine's origin moves with the crop)."""
    z = phantom.affine[2, 3] + phantom.affine[2, 2] * np.arange(phantom.shape[2])
    keep = np.flatnonzero((z >= keep_mm[0]) & (z <= keep_mm[1]))
    if keep.size < 4:
        raise InputError(f"crop {keep_mm} mm keeps fewer than 4 slices of the phantom")
    aff = phantom.affine.copy()
    aff[:3, 3] = aff[:3, 3] + aff[:3, 2] * keep[0]

    def cut(im: Image) -> Image:
        return Image(np.ascontiguousarray(im.data[:, :, keep[0]:keep[-1] + 1]), aff.copy(), dict(im.meta))

    return SpinePhantom(cut(phantom.tissues), cut(phantom.levels), {k: cut(v) for k, v in phantom.maps.items()},
                        phantom.truth, phantom.seed, phantom.mid_sagittal_index,
                        {**phantom.geometry, "crop_si_mm": list(keep_mm)})


_DEFAULT_ANATOMY = {"n_lumbar": 5, "scoliosis_mm": 0.0, "wedge": {}, "disc_height_mm": DISC_HEIGHT_MM}


def _draw_anatomy(x, y, z, lordosis_mm: float, fov: np.ndarray, n_lumbar: int = 5, scoliosis_mm: float = 0.0,
                  wedge: dict | None = None, disc_height_mm: float = DISC_HEIGHT_MM
                  ) -> tuple[np.ndarray, np.ndarray]:
    shape = (x.shape[0], y.shape[1], z.shape[2])
    tissues = np.zeros(shape, dtype=np.uint8)
    levels = np.zeros(shape, dtype=np.int16)
    T = TISSUES
    centres = level_centres_mm(n_lumbar, disc_height_mm)
    wedge = wedge or {}
    z_span = centres["T12"]
    yc = BODY_Y_MM + lordosis_mm * (1.0 - (z / z_span) ** 2)  # body centre AP position along z (1,1,nz)
    half_y = fov[1] / 2
    skin_post, skin_ant = -half_y + 8.0, half_y - 6.0

    # soft tissues: everything between the skins; subcutaneous fat layers; paraspinal muscle posteriorly
    inside = (y > skin_post) & (y < skin_ant) & np.ones_like(x, dtype=bool) & np.ones_like(z, dtype=bool)
    tissues[inside] = T["soft_tissue"]
    tissues[inside & (y >= yc - 30.0)] = T["soft_tissue"]
    tissues[inside & (y < yc - 30.0)] = T["muscle"]
    tissues[inside & ((y < skin_post + 14.0) | (y > skin_ant - 12.0))] = T["subcutaneous_fat"]

    if scoliosis_mm:
        x = x - scoliosis_mm * (1.0 - (z / z_span) ** 2)  # the spine's midline moves laterally along z
    # spinal canal with CSF and cord (conus at the L1/L2 disc)
    canal_y = yc - BODY_AP_SEMI_MM - CANAL_AP_SEMI_MM - 1.0
    canal = ((y - canal_y) / CANAL_AP_SEMI_MM) ** 2 + (x / CANAL_LR_SEMI_MM) ** 2 <= 1.0
    tissues[canal] = T["csf"]
    conus_z = (centres["L1"] + centres["L2"]) / 2
    cord = ((y - canal_y) ** 2 + x**2 <= CORD_RADIUS_MM**2) & (z > conus_z)
    tissues[cord] = T["cord"]

    for level, zc in centres.items():
        lid = LEVEL_IDS[level]
        dz = z - zc
        r_ax = np.sqrt(((y - yc) / BODY_AP_SEMI_MM) ** 2 + (x / BODY_LR_SEMI_MM) ** 2)  # 1 on the body outline
        if level in wedge:  # anterior height reduced linearly from the posterior wall (y grows anteriorly)
            frac = np.clip((y - (yc - BODY_AP_SEMI_MM)) / (2 * BODY_AP_SEMI_MM), 0, 1)
            half_h = BODY_HEIGHT_MM / 2 * (1.0 - float(wedge[level]) * frac)
            body = (r_ax <= 1.0) & (np.abs(dz) <= half_h)
        else:
            body = (r_ax <= 1.0) & (np.abs(dz) <= BODY_HEIGHT_MM / 2)
        # cortex: outer shell of thickness CORTEX_MM (in the axial plane)
        inner = r_ax <= 1.0 - CORTEX_MM / BODY_AP_SEMI_MM
        endplate = body & (np.abs(dz) > BODY_HEIGHT_MM / 2 - ENDPLATE_MM)
        # basivertebral vein: posterior midline channel at mid-height, a third of the body depth
        vein = (body & inner & (np.abs(x) <= 3.0) & (np.abs(dz) <= 2.0)
                & (y < yc - BODY_AP_SEMI_MM + 2 * BODY_AP_SEMI_MM / 3))
        tissues[body] = T["cortex"]
        tissues[body & inner] = T["marrow"]
        tissues[endplate] = T["endplate"]
        tissues[vein] = T["basivertebral_vein"]
        levels[body] = lid
        # posterior elements: pedicles, lamina and spinous process, over the middle of the body height
        pe_z = np.abs(dz) <= BODY_HEIGHT_MM / 2 - 2.0
        canal_back = canal_y - CANAL_AP_SEMI_MM
        pedicle = pe_z & (np.abs(x) > CANAL_LR_SEMI_MM) & (np.abs(x) <= CANAL_LR_SEMI_MM + 5.0) \
            & (y >= canal_back) & (y < yc - BODY_AP_SEMI_MM + 1.0)
        lamina = pe_z & (np.abs(x) <= CANAL_LR_SEMI_MM + 5.0) & (y < canal_back) & (y >= canal_back - 6.0) \
            & ~canal
        spinous = pe_z & (np.abs(x) <= 4.0) & (y < canal_back - 6.0) & (y >= canal_back - 30.0)
        post = (pedicle | lamina | spinous) & ~body
        tissues[post] = T["posterior_elements"]
        levels[post] = lid
        # disc below this vertebra (none below S1 inside the field of view)
        if level != "S1":
            disc = (r_ax <= 1.0) & (dz < -BODY_HEIGHT_MM / 2) & (dz >= -BODY_HEIGHT_MM / 2 - disc_height_mm)
            tissues[disc] = T["disc"]
            levels[disc] = 100 + lid
    return tissues, levels
