"""Vendor parametric maps from DICOM: proton-density fat fraction (PDFF) and R2* in physical units.

Recognised series (by ``ImageType``/``FrameType`` values first, then ``SeriesDescription``):

* **GE IDEAL-IQ**: fat-fraction series (descriptions such as ``FatFrac``, ``FAT FRACTION``) and R2* series
  (``R2*``, ``R2STAR``).
* **Siemens q-Dixon / LiverLab**: fat-fraction series (``FF``, ``FatFraction``, ``FAT_FRACTION``, ``PDFF``)
  and R2* series (``R2STAR``, ``R2*``).
* **Philips mDixon-Quant**: fat-fraction series or frames (``FF``, ``FAT_FRACTION`` in ``FrameType``, as in
  enhanced multi-frame files that also hold water and fat frames) and R2* series.

Scaling rules, applied in this order (the one used is written to ``meta["ScalingRule"]``):

1. ``RescaleSlope``/``RescaleIntercept`` (per frame) are always applied first, as for any DICOM image.
2. A ``RealWorldValueMappingSequence`` whose ``MeasurementUnitsCodeSequence`` is ``%`` (PDFF) or ``Hz``,
   ``/s``, ``s-1`` or ``1/s`` (R2*) overrides step 1: its slope/intercept map the *stored* values.
3. Otherwise PDFF is brought to percent from its observed range: the 99.9th percentile of finite values
   > 150 means per-mille storage (0..1000 for 0..100 %; divided by 10) — the form GE IDEAL-IQ uses in some
   software versions and that Siemens Dixon fat-fraction maps are commonly reported in; <= 1.5 means a
   fraction (multiplied by 100); anything else is taken as percent. R2* is taken as s^-1 (= Hz) as stored.
4. ``scale=`` given by the caller replaces steps 2-3 (values after rescale times ``scale``) for sites whose
   software is known to differ.

Uncertainty: the vendors do not publish these storage conventions in one public document; the per-mille
factor and the R2* units above come from user reports and converter documentation, and vary with software
release. The range rule in step 3 protects against a factor-of-10 (or 100) error on typical spine images
(fat-containing tissue always present in the field of view) but cannot tell, e.g., a per-mille map of a
fat-free phantom from a percent map. Check ``ScalingRule`` and pass ``scale`` when the site's convention is
known. R2* maps are not range-checked at all.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np
from pydicom.dataset import Dataset

from osteomri.errors import InputError
from osteomri.io.dicom import _acquisition_meta, _first_item, _Frame, _layout, _read_pixels, _read_series, _tokens
from osteomri.io.image import Image

__all__ = ["load_vendor_map", "identify_vendor_map", "QUANTITIES"]

#: quantity -> (meta["Quantity"], meta["Units"])
QUANTITIES = {"pdff": ("pdff_percent", "percent"), "r2star": ("r2star_hz", "Hz")}

_TYPE_TOKENS = {
    "pdff": {"FF", "FAT_FRACTION", "FATFRACTION", "FAT FRACTION", "PDFF", "FATFRAC"},
    "r2star": {"R2STAR", "R2_STAR", "R2*", "R2S", "R2STAR_MAP"},
}
_DESCRIPTION_PATTERNS = {
    "pdff": re.compile(r"FAT[\s_\-]*FRAC|PDFF|(?:^|[^A-Z0-9])FF(?:$|[^A-Z0-9])|FAT\s*%", re.IGNORECASE),
    "r2star": re.compile(r"R2\s*\*|R2[\s_\-]*STAR|(?:^|[^A-Z0-9])R2S(?:$|[^A-Z0-9])", re.IGNORECASE),
}
_UNIT_CODES = {"pdff": {"%", "PERCENT"}, "r2star": {"HZ", "/S", "S-1", "1/S", "{S}-1"}}
_PRODUCTS = {"GE": "GE IDEAL-IQ", "SIEMENS": "Siemens q-Dixon/LiverLab", "PHILIPS": "Philips mDixon-Quant"}


def _vendor(manufacturer: str) -> str:
    m = manufacturer.upper()
    if m.startswith("GE") or "GENERAL ELECTRIC" in m:
        return "GE"
    if "SIEMENS" in m:
        return "SIEMENS"
    if "PHILIPS" in m:
        return "PHILIPS"
    return ""


def _match_tokens(tokens: Sequence[str]) -> set[str]:
    return {q for q, names in _TYPE_TOKENS.items() if any(t in names for t in tokens)}


def identify_vendor_map(ds: Dataset, frame_types: Sequence[Sequence[str]] = ()) -> tuple[str | None, str]:
    """(quantity or None, reason): what a series header says it is.

    ``ImageType`` / per-frame ``FrameType`` values decide first, then ``SeriesDescription``.
    """
    tokens = _tokens(ds.get("ImageType")) + [t for ft in frame_types for t in ft]
    by_type = _match_tokens(tokens)
    if len(by_type) == 1:
        q = by_type.pop()
        return q, f"ImageType/FrameType value for {q}"
    description = str(ds.get("SeriesDescription", "") or "")
    by_desc = {q for q, pat in _DESCRIPTION_PATTERNS.items() if pat.search(description)}
    if len(by_desc) == 1:
        q = by_desc.pop()
        return q, f"SeriesDescription {description!r}"
    image_type = "\\".join(_tokens(ds.get("ImageType")))
    return None, f"SeriesDescription {description!r}, ImageType {image_type!r}"


def _real_world_mapping(ds: Dataset, quantity: str) -> tuple[float, float, str] | None:
    """(slope, intercept, unit) of a Real World Value Mapping in the units of ``quantity``, if the file has one."""
    shared = _first_item(ds, "SharedFunctionalGroupsSequence")
    holders = [ds]
    if shared is not None:
        holders.append(shared)
    per = ds.get("PerFrameFunctionalGroupsSequence")
    if per:
        holders.append(per[0])
    for holder in holders:
        for item in holder.get("RealWorldValueMappingSequence", []) or []:
            unit_item = _first_item(item, "MeasurementUnitsCodeSequence")
            unit = str(unit_item.get("CodeValue", "")) if unit_item is not None else ""
            if unit.strip().upper() in _UNIT_CODES[quantity]:
                slope = float(item.get("RealWorldValueSlope", 1.0))
                inter = float(item.get("RealWorldValueIntercept", 0.0))
                return slope, inter, unit
    return None


def _pdff_rule(values: np.ndarray) -> tuple[float, str]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        raise InputError("fat-fraction map has no finite values")
    p999 = float(np.percentile(finite, 99.9))
    if p999 > 150.0:
        return 0.1, f"per mille -> percent (/10): 99.9th percentile {p999:.4g} > 150"
    if 0.0 < p999 <= 1.5:
        return 100.0, f"fraction -> percent (x100): 99.9th percentile {p999:.4g} <= 1.5"
    return 1.0, f"percent as stored: 99.9th percentile {p999:.4g}"


def load_vendor_map(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    series_uid: str | None = None,
    quantity: str | None = None,
    scale: float | None = None,
) -> Image:
    """Read a vendor PDFF (percent) or R2* (Hz) map series into an :class:`Image`.

    Parameters
    ----------
    path:
        Folder, file or list of files (as :func:`osteomri.io.dicom.load_dicom_series`).
    series_uid:
        Which series when several are present.
    quantity:
        ``"pdff"`` or ``"r2star"`` to force the quantity when the header does not identify it.
    scale:
        Factor from rescaled stored values to physical units, overriding the rules in the module docstring.

    Returns
    -------
    Image
        3-D float32 map; ``meta["Quantity"]`` (``pdff_percent`` / ``r2star_hz``), ``meta["Units"]``
        (``percent`` / ``Hz``), ``meta["VendorMap"]`` (product), ``meta["ScalingRule"]`` and
        ``meta["Identification"]`` (which header value decided), plus the acquisition metadata.
    """
    if quantity is not None and quantity not in QUANTITIES:
        raise InputError(f"unknown vendor map quantity {quantity!r}; use one of {', '.join(QUANTITIES)}")
    chosen, frames, label = _read_series(path, series_uid)
    ds = chosen[0].ds
    frame_types = sorted({tuple(f.frame_type) for f in frames})
    if quantity is None:
        quantity, reason = identify_vendor_map(ds, [] if len(frame_types) > 1 else frame_types)
        if quantity is None and len(frame_types) > 1:
            found = {q for ft in frame_types for q in _match_tokens(ft)}
            quantity, reason = (found.pop(), "FrameType of some frames") if len(found) == 1 else (None, reason)
        if quantity is None:
            raise InputError(
                f"{label}: not a recognised vendor fat-fraction or R2* map ({reason}); "
                "pass quantity='pdff' or quantity='r2star' to read it anyway"
            )
    else:
        reason = "quantity given by the caller"
    frames = _frames_for(frames, quantity)
    layout = _layout(frames)
    values = _read_pixels(frames)
    if layout.echo_idx.max() > 0:
        raise InputError(f"{label}: a {quantity} map should have one frame per slice, found several echo times")
    vol = np.empty((values.shape[2], values.shape[1], layout.n_slices))
    vol[:, :, layout.slice_idx] = np.transpose(values, (2, 1, 0))
    if len(frames) != layout.n_slices:
        raise InputError(f"{label}: {len(frames)} map frames for {layout.n_slices} slice positions (duplicates?)")

    if scale is not None:
        vol = vol * float(scale)
        rule = f"user scale x{scale:g} after rescale slope/intercept"
    else:
        rwvm = _real_world_mapping(ds, quantity)
        if rwvm is not None:
            slope, inter, unit = rwvm
            stored = _stored(frames, layout, values)
            vol = stored * slope + inter
            rule = f"RealWorldValueMapping ({unit}): stored x {slope:g} + {inter:g}"
        elif quantity == "pdff":
            factor, rule = _pdff_rule(vol)
            vol = vol * factor
        else:
            rule = "R2* as stored after rescale (s^-1 = Hz)"
    name, units = QUANTITIES[quantity]
    meta = _acquisition_meta(ds)
    vendor = _vendor(str(meta.get("Manufacturer", "")))
    meta.update(
        {
            "Quantity": name,
            "Units": units,
            "VendorMap": _PRODUCTS.get(vendor, "unknown vendor"),
            "ScalingRule": rule,
            "Identification": reason,
        }
    )
    return Image(vol.astype(np.float32), layout.affine_ras, meta)


def _frames_for(frames: list[_Frame], quantity: str) -> list[_Frame]:
    """Keep the frames of the map when one series mixes several frame types (e.g. Philips water/fat/FF)."""
    if len({tuple(f.frame_type) for f in frames}) <= 1:
        return frames
    keep = [f for f in frames if quantity in _match_tokens(f.frame_type)]
    return keep or frames


def _stored(frames: list[_Frame], layout, values: np.ndarray) -> np.ndarray:
    """Stored pixel values (rescale undone) on the volume grid."""
    shape = values.shape
    slopes = np.array([f.slope for f in frames])[:, None, None]
    inters = np.array([f.intercept for f in frames])[:, None, None]
    raw = (values - inters) / slopes
    vol = np.empty((shape[2], shape[1], layout.n_slices))
    vol[:, :, layout.slice_idx] = np.transpose(raw, (2, 1, 0))
    return vol
