"""IBSI-tagged radiomics features of one image in one mask, computed by PyRadiomics.

:func:`extract_features` ``(image, mask, *, settings="default") -> DataFrame`` with columns ``ibsi_tag``
(the IBSI tag, e.g. ``stat_mean``, ``cm_contrast_3D_avg``, ``morph_volume``; empty where the feature has no
IBSI definition), ``feature`` (PyRadiomics ``class_Name``) and ``value`` (the IBSI definition: see
:data:`osteomri.radiomics.ibsi.CONVERSIONS`). ``DataFrame.attrs["provenance"]`` records the library and its
version, the settings, the PyRadiomics parameters derived from them and the voxel counts.

Settings (a preset name or a dict of these keys; a dict is laid over ``"default"``):

``discretisation``
    ``"fixed_bin_number"`` (FBN, ``bins`` bins spanning the ROI's intensity range) or ``"fixed_bin_size"``
    (FBS, ``bin_width`` in the map's own units, e.g. 2 % PDFF or 10 Hz R2*). IBSI recommends FBS for
    calibrated quantities and FBN for arbitrary units (Zwanenburg et al. 2020).
``resample_mm``
    ``None`` (native grid) or the voxel size (x, y, z mm) to resample to (B-spline image, nearest mask).
``intensity_range``
    ``None`` or ``(low, high)`` in the map's units: voxels outside are removed from the ROI (IBSI
    re-segmentation).
``distance``
    Chebyshev neighbourhood distance of GLCM/NGLDM/NGTDM (voxels). ``ngldm_alpha``: NGLDM coarseness α.
``families``
    Which of ``shape, firstorder, glcm, glrlm, glszm, gldm, ngtdm`` to compute.

Presets: ``"default"`` (FBN 32, native grid, no range, distance 1, α 0, all families) and
``"ibsi_digital_phantom"`` (the IBSI rules for the digital phantom: FBS 1, native grid, distance 1, α 0).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.radiomics.ibsi import CONVERSIONS, ibsi_tags

FAMILY_NAMES = ("shape", "firstorder", "glcm", "glrlm", "glszm", "gldm", "ngtdm")
FEATURE_COLUMNS = ("ibsi_tag", "feature", "value")

PRESETS: dict[str, dict[str, Any]] = {
    "default": {"discretisation": "fixed_bin_number", "bins": 32, "bin_width": None, "resample_mm": None,
                "intensity_range": None, "distance": 1, "ngldm_alpha": 0, "families": list(FAMILY_NAMES)},
    "ibsi_digital_phantom": {"discretisation": "fixed_bin_size", "bins": None, "bin_width": 1.0,
                             "resample_mm": None, "intensity_range": None, "distance": 1, "ngldm_alpha": 0,
                             "families": list(FAMILY_NAMES)},
}


def resolve_settings(settings: str | dict[str, Any] = "default") -> dict[str, Any]:
    """A complete settings dict from a preset name or a partial dict (laid over ``"default"``, or over
    ``settings["preset"]``). Raises :class:`InputError` on unknown names, keys or values."""
    if isinstance(settings, str):
        if settings not in PRESETS:
            raise InputError(f"unknown radiomics preset {settings!r}; choose from {', '.join(PRESETS)}")
        return {**PRESETS[settings], "preset": settings}
    if not isinstance(settings, dict):
        raise InputError(f"radiomics settings must be a preset name or a dict, got {type(settings).__name__}")
    base_name = settings.get("preset", "default")
    if base_name not in PRESETS:
        raise InputError(f"unknown radiomics preset {base_name!r}; choose from {', '.join(PRESETS)}")
    unknown = sorted(set(settings) - set(PRESETS["default"]) - {"preset"})
    if unknown:
        raise InputError(f"unknown radiomics setting(s) {unknown}; known: {sorted(PRESETS['default'])}")
    out = {**PRESETS[base_name], **settings, "preset": base_name}
    if out["discretisation"] == "fixed_bin_size":
        if out["bin_width"] is None:
            raise InputError("fixed_bin_size discretisation needs bin_width (in the map's units)")
        if float(out["bin_width"]) <= 0:
            raise InputError(f"bin_width must be positive, got {out['bin_width']}")
    elif out["discretisation"] == "fixed_bin_number":
        if out["bins"] is None:
            out["bins"] = 32
        if int(out["bins"]) < 2:
            raise InputError(f"bins must be at least 2, got {out['bins']}")
    else:
        raise InputError(f"unknown discretisation {out['discretisation']!r}; use fixed_bin_number or "
                         "fixed_bin_size")
    bad = sorted(set(out["families"]) - set(FAMILY_NAMES))
    if bad or not out["families"]:
        raise InputError(f"unknown feature famil(ies) {bad}; choose from {', '.join(FAMILY_NAMES)}")
    if out["intensity_range"] is not None:
        lo, hi = (float(v) for v in out["intensity_range"])
        if not lo < hi:
            raise InputError(f"intensity_range must be (low, high) with low < high, got {out['intensity_range']}")
        out["intensity_range"] = [lo, hi]
    if out["resample_mm"] is not None:
        r = [float(v) for v in np.broadcast_to(np.asarray(out["resample_mm"], float), (3,))]
        if min(r) <= 0:
            raise InputError(f"resample_mm must be positive, got {out['resample_mm']}")
        out["resample_mm"] = r
    if int(out["distance"]) < 1:
        raise InputError(f"distance must be >= 1 voxel, got {out['distance']}")
    return out


def pyradiomics_parameters(settings: dict[str, Any]) -> dict[str, Any]:
    """The PyRadiomics extractor parameters that implement resolved ``settings``."""
    params: dict[str, Any] = {"distances": [int(settings["distance"])], "gldm_a": int(settings["ngldm_alpha"]),
                              "force2D": False, "label": 1, "minimumROIDimensions": 1, "minimumROISize": 2,
                              "additionalInfo": False, "voxelArrayShift": 0, "preCrop": True}
    if settings["discretisation"] == "fixed_bin_size":
        params["binWidth"] = float(settings["bin_width"])
    else:
        params["binCount"] = int(settings["bins"])
    if settings["resample_mm"] is not None:
        params["resampledPixelSpacing"] = list(settings["resample_mm"])
        params["interpolator"] = "sitkBSpline"
    if settings["intensity_range"] is not None:
        params["resegmentRange"] = list(settings["intensity_range"])
        params["resegmentMode"] = "absolute"
    return params


def _sitk_image(array: np.ndarray, affine: np.ndarray):
    """A SimpleITK image of ``array`` (axes x, y, z) with the geometry of the RAS+ ``affine`` (LPS inside ITK)."""
    import SimpleITK as sitk

    img = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array, (2, 1, 0))))
    lin = affine[:3, :3]
    spacing = np.linalg.norm(lin, axis=0)
    flip = np.diag([-1.0, -1.0, 1.0])  # RAS -> LPS
    img.SetSpacing([float(s) for s in spacing])
    img.SetOrigin([float(v) for v in flip @ affine[:3, 3]])
    img.SetDirection([float(v) for v in (flip @ (lin / spacing)).ravel()])
    return img


def _library_version() -> str:
    import radiomics

    return str(radiomics.__version__)


def _extractor(params: dict[str, Any], families: list[str]):
    import radiomics
    from radiomics.featureextractor import RadiomicsFeatureExtractor

    radiomics.setVerbosity(logging.ERROR)
    ex = RadiomicsFeatureExtractor(**params)
    ex.disableAllFeatures()
    ex.enableFeaturesByName(**{f: list(_enabled(f)) for f in families})
    return ex


#: PyRadiomics features left out: no IBSI definition and costly (MCC needs an eigen-decomposition per
#: direction; ≈ 20 % of the texture time).
SKIPPED = {"glcm": ("MCC",)}


def _enabled(family: str) -> tuple[str, ...]:
    """Non-deprecated PyRadiomics feature names of ``family`` minus :data:`SKIPPED`."""
    from radiomics import getFeatureClasses

    names = getFeatureClasses()[family].getFeatureNames()
    return tuple(n for n, deprecated in names.items() if not deprecated and n not in SKIPPED.get(family, ()))


def _as_arrays(image: Image | np.ndarray, mask: Image | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if isinstance(image, Image):
        data, affine = np.asarray(image.data), image.affine
    else:
        data, affine = np.asarray(image), np.eye(4)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise InputError(f"radiomics needs a 3-D image, got shape {data.shape}")
    if np.iscomplexobj(data):
        data = np.abs(data)
    m = np.asarray(mask.data if isinstance(mask, Image) else mask)
    if m.ndim == 4 and m.shape[3] == 1:
        m = m[..., 0]
    if m.shape != data.shape:
        raise InputError(f"mask shape {m.shape} differs from the image shape {data.shape}")
    return data.astype(np.float64), m.astype(bool), affine


def _crop(data: np.ndarray, roi: np.ndarray, finite: np.ndarray, affine: np.ndarray, pad: int):
    """Crop to the ROI's bounding box plus ``pad`` voxels (the affine follows), so the library's per-call
    mask checks touch only the ROI's neighbourhood."""
    idx = np.argwhere(roi)
    lo = np.maximum(idx.min(axis=0) - pad, 0)
    hi = np.minimum(idx.max(axis=0) + pad + 1, roi.shape)
    sl = tuple(slice(int(a), int(b)) for a, b in zip(lo, hi, strict=True))
    shifted = affine.copy()
    shifted[:3, 3] = affine[:3, :3] @ lo + affine[:3, 3]
    return data[sl], roi[sl], finite[sl], shifted


def extract_features(image: Image | np.ndarray, mask: Image | np.ndarray, *,
                     settings: str | dict[str, Any] = "default") -> pd.DataFrame:
    """IBSI-tagged radiomics features of ``image`` inside ``mask`` (see the module docstring for settings).

    Non-finite voxels (NaN outside a fit's mask) are removed from the ROI for the intensity and texture
    families; shape uses the whole ROI. Raises :class:`InputError` when the ROI has fewer than 2 finite voxels.
    """
    s = resolve_settings(settings)
    data, roi, affine = _as_arrays(image, mask)
    finite = roi & np.isfinite(data)
    if int(finite.sum()) < 2:
        raise InputError(f"radiomics ROI has {int(finite.sum())} finite voxel(s); need at least 2")
    data, roi, finite, affine = _crop(data, roi, finite, affine, pad=int(s["distance"]) + 1)
    params = pyradiomics_parameters(s)
    fam = list(s["families"])
    rows: list[tuple[str, str, float]] = []
    values = np.where(finite, data, 0.0)
    jobs = []
    if "shape" in fam:
        jobs.append((["shape"], roi))
    texture = [f for f in fam if f != "shape"]
    if texture:
        jobs.append((texture, finite))
    for families, m in jobs:
        ex = _extractor(params, families)
        try:
            result = ex.execute(_sitk_image(values, affine), _sitk_image(m.astype(np.uint8), affine))
        except (ValueError, RuntimeError, IndexError) as exc:
            raise InputError(f"radiomics feature extraction failed: {exc}") from exc
        rows.extend(_rows(result))
    table = pd.DataFrame(rows, columns=list(FEATURE_COLUMNS))
    table.attrs["provenance"] = {
        "library": "pyradiomics-bhklab", "library_version": _library_version(), "settings": s,
        "pyradiomics_parameters": params, "n_voxels_roi": int(roi.sum()), "n_voxels_finite": int(finite.sum()),
        "voxel_size_mm": [float(v) for v in np.linalg.norm(affine[:3, :3], axis=0)],
        "conversions": {k: v[1] for k, v in CONVERSIONS.items()},
    }
    return table


def _rows(result: dict) -> list[tuple[str, str, float]]:
    rows = []
    for key, raw in result.items():
        if key.startswith("diagnostics"):
            continue
        _, family, name = key.split("_", 2)
        tags = ibsi_tags(family, name)
        tag = tags[0] if tags else ""
        value = float(raw)
        stem = tag.removesuffix("_3D_avg").removesuffix("_3D")
        if stem in CONVERSIONS:
            value = CONVERSIONS[stem][0](value)
        rows.append((tag, f"{family}_{name}", value))
    return rows
