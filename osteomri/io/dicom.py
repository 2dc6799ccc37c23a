"""DICOM series (classic single-frame and enhanced multi-frame MR) into :class:`~osteomri.io.image.Image`.

What the reader does, once, so that no other layer thinks about DICOM:

* **Grouping**: files are grouped by ``SeriesInstanceUID``. A folder holding several series needs an explicit
  ``series_uid`` (one UID, or several to pool, e.g. a Siemens magnitude series with its separate phase
  series); the error lists the series found (:func:`list_dicom_series` shows them as a table).
* **Frames**: every 2-D frame is described by its position, orientation, pixel spacing, echo time, echo number,
  complex component and rescale. Classic files give one frame each; enhanced multi-frame files
  (``PerFrameFunctionalGroupsSequence`` / ``SharedFunctionalGroupsSequence``) give one per frame, read from
  ``PlanePositionSequence``, ``PlaneOrientationSequence``, ``PixelMeasuresSequence``, ``MREchoSequence``
  (``EffectiveEchoTime``), ``PixelValueTransformationSequence`` and ``MRImageFrameTypeSequence``
  (``FrameType`` / ``ComplexImageComponent``).
* **Sorting**: by position along the slice normal (cross product of the two ``ImageOrientationPatient``
  cosines) and by echo time (``EchoNumbers`` when no echo time is given and only one echo is implied).
* **Values**: ``RescaleSlope``/``RescaleIntercept`` are applied per frame. Complex components are recognised
  from the enhanced ``ComplexImageComponent``, the GE private tag (0043,102F) (0 magnitude, 1 phase, 2 real,
  3 imaginary), or ``ImageType`` values (``M``/``P``/``R``/``I``, ``MAGNITUDE``/``PHASE``/``REAL``/
  ``IMAGINARY``, Philips ``M_FFE``/``P_FFE``...). Magnitude+phase or real+imaginary become complex data.
* **Phase scaling** (after rescale): values within ±pi are radians; Siemens phase (stored 0..4095 with
  slope 2, intercept -4096, i.e. -4096..4094) is mapped with ``pi/4096``; GE and Philips phase in
  milliradians (±3142, Philips documents intercept -3142) is divided by 1000; other ranges use the
  Siemens rule. The rule used is recorded in ``meta["PhaseScaling"]``.
* **Geometry**: the affine is voxel -> world in **RAS+ mm** (NIfTI convention). DICOM patient coordinates
  are LPS, so the first two rows of the LPS affine are negated. Array axis 0 runs along the DICOM row
  direction (column index, spacing ``PixelSpacing[1]``), axis 1 along the column direction (row index,
  spacing ``PixelSpacing[0]``), axis 2 along the slice normal, axis 3 (when more than one echo) over echoes
  in increasing echo time.
* **Metadata**: acquisition parameters only, BIDS names in SI units (``EchoTime`` s, ``RepetitionTime`` s,
  ``InversionTime`` s, ``MagneticFieldStrength`` T, ``FlipAngle`` deg, ``ImagingFrequency`` MHz). No patient,
  institution, operator or date tags and no UIDs are ever copied.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from osteomri.errors import InputError, MetadataError
from osteomri.io.image import Image

__all__ = ["load_dicom_series", "list_dicom_series", "COMPLEX_MODES"]

COMPLEX_MODES = ("auto", "complex", "magnitude", "phase")

#: Component codes: "M" magnitude, "P" phase, "R" real, "I" imaginary, "" plain intensity (treated as magnitude).
_COMPONENT_NAMES = {"M": "magnitude", "P": "phase", "R": "real", "I": "imaginary", "": "magnitude"}
_ENHANCED_COMPONENT = {"MAGNITUDE": "M", "PHASE": "P", "REAL": "R", "IMAGINARY": "I", "MIXED": ""}
_GE_COMPONENT = {0: "M", 1: "P", 2: "R", 3: "I"}
_IMAGE_TYPE_COMPONENT = {
    "P": "P", "PHASE": "P", "R": "R", "REAL": "R", "I": "I", "IMAGINARY": "I", "M": "M", "MAGNITUDE": "M",
}

_ORIENTATION_TOL = 1e-4  # direction cosines
_POSITION_TOL_MM = 1e-2  # two frames closer than this along the normal share a slice
_SPACING_REL_TOL = 1e-2  # relative tolerance on slice gaps and pixel spacing

# Acquisition tags copied into ``meta``: DICOM keyword -> (BIDS name, scale to SI).
_META_TAGS: dict[str, tuple[str, float | None]] = {
    "Manufacturer": ("Manufacturer", None),
    "ManufacturerModelName": ("ManufacturersModelName", None),
    "SoftwareVersions": ("SoftwareVersions", None),
    "MagneticFieldStrength": ("MagneticFieldStrength", 1.0),
    "ImagingFrequency": ("ImagingFrequency", 1.0),
    "RepetitionTime": ("RepetitionTime", 1e-3),
    "InversionTime": ("InversionTime", 1e-3),
    "FlipAngle": ("FlipAngle", 1.0),
    "SeriesDescription": ("SeriesDescription", None),
    "ProtocolName": ("ProtocolName", None),
    "SeriesNumber": ("SeriesNumber", None),
    "Modality": ("Modality", None),
    "BodyPartExamined": ("BodyPartExamined", None),
    "ScanningSequence": ("ScanningSequence", None),
    "SequenceVariant": ("SequenceVariant", None),
    "ScanOptions": ("ScanOptions", None),
    "SequenceName": ("SequenceName", None),
    "MRAcquisitionType": ("MRAcquisitionType", None),
    "SliceThickness": ("SliceThickness", 1.0),
    "SpacingBetweenSlices": ("SpacingBetweenSlices", 1.0),
    "PixelBandwidth": ("PixelBandwidth", 1.0),
    "ImageType": ("ImageType", None),
    "ImagedNucleus": ("ImagedNucleus", None),
    "ReceiveCoilName": ("ReceiveCoilName", None),
}


# ----------------------------------------------------------------------------------------------------------
# Scanning files
# ----------------------------------------------------------------------------------------------------------
@dataclass
class _Header:
    """One DICOM file's header (read without pixel data)."""

    path: Path
    ds: Dataset

    @property
    def series_uid(self) -> str:
        return str(self.ds.get("SeriesInstanceUID", "") or "")

    @property
    def is_image(self) -> bool:
        return "Rows" in self.ds and "Columns" in self.ds


def _candidate_files(path: str | os.PathLike | Sequence[str | os.PathLike]) -> tuple[list[Path], bool, str]:
    """Files to scan, whether they were named explicitly (strict: unreadable is an error), and a label."""
    if isinstance(path, (str, os.PathLike)):
        p = Path(path)
        if p.is_dir():
            files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
            if not files:
                raise InputError(f"DICOM folder is empty: {p}")
            return files, False, str(p)
        if p.is_file():
            return [p], True, str(p)
        raise InputError(f"DICOM file or folder not found: {p}")
    files = [Path(f) for f in path]
    if not files:
        raise InputError("empty list of DICOM files")
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise InputError(f"DICOM file not found: {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else ""))
    return files, True, f"{len(files)} files"


def _scan(path: str | os.PathLike | Sequence[str | os.PathLike]) -> tuple[list[_Header], str]:
    """Read every candidate header; skip non-DICOM files in folders, fail on them when named explicitly."""
    files, strict, label = _candidate_files(path)
    headers: list[_Header] = []
    skipped: list[str] = []
    for f in files:
        try:
            ds = pydicom.dcmread(f, stop_before_pixels=True)
        except (InvalidDicomError, OSError, ValueError, EOFError, TypeError, KeyError, AttributeError) as exc:
            reason = f"{f.name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
            if strict:
                raise InputError(f"unreadable DICOM file {reason}") from exc
            skipped.append(reason)
            continue
        headers.append(_Header(f, ds))
    if not headers:
        example = f"; e.g. {skipped[0]}" if skipped else ""
        raise InputError(f"no readable DICOM files in {label} ({len(files)} files checked{example})")
    return headers, label


def _group(headers: Iterable[_Header]) -> dict[str, list[_Header]]:
    groups: dict[str, list[_Header]] = {}
    for h in headers:
        groups.setdefault(h.series_uid, []).append(h)
    return groups


# ----------------------------------------------------------------------------------------------------------
# Frames
# ----------------------------------------------------------------------------------------------------------
@dataclass
class _Frame:
    """One 2-D frame: where it is, what it measures and how to scale it."""

    header: _Header
    frame_index: int | None  # index into a multi-frame file, None for single-frame files
    position: np.ndarray  # ImagePositionPatient, LPS mm
    orientation: np.ndarray  # ImageOrientationPatient (6 direction cosines)
    spacing: np.ndarray  # PixelSpacing (row spacing, column spacing) mm
    rows: int
    columns: int
    echo_time_ms: float | None
    echo_number: int | None
    component: str
    slope: float
    intercept: float
    frame_type: list[str] = field(default_factory=list)


def _first_item(ds: Dataset | None, keyword: str) -> Dataset | None:
    if ds is None:
        return None
    seq = ds.get(keyword)
    return seq[0] if seq else None


def _functional(per: Dataset | None, shared: Dataset | None, seq_keyword: str) -> Dataset | None:
    """A functional-group macro item: per-frame first, then shared."""
    item = _first_item(per, seq_keyword)
    return item if item is not None else _first_item(shared, seq_keyword)


def _float_or_none(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _tokens(values: Any) -> list[str]:
    if values is None or values == "":
        return []
    if isinstance(values, str):
        values = values.split("\\")
    return [str(v).strip().upper() for v in values]


def _component_from_image_type(tokens: Sequence[str]) -> str:
    """Complex component from ``ImageType`` values (P/R/I before M, Philips ``P_FFE`` style prefixes too)."""
    found = set()
    for tok in tokens:
        for cand in (tok, tok.split("_")[0] if "_" in tok else None):
            if cand in _IMAGE_TYPE_COMPONENT:
                found.add(_IMAGE_TYPE_COMPONENT[cand])
    for code in ("P", "R", "I", "M"):
        if code in found:
            return code
    return ""


def _ge_component(ds: Dataset) -> str | None:
    try:
        elem = ds.get_private_item(0x0043, 0x2F, "GEMS_PARM_01")
    except (KeyError, ValueError):
        elem = ds.get((0x0043, 0x102F))
    if elem is None:
        return None
    value = elem.value
    if isinstance(value, bytes):  # implicit VR / UN: signed short little endian
        value = int.from_bytes(value[:2], "little", signed=True) if len(value) >= 2 else None
    try:
        return _GE_COMPONENT.get(int(value))
    except (TypeError, ValueError):
        return None


def _required(value: Any, what: str, header: _Header, n: int) -> np.ndarray:
    if value is None or len(value) != n:
        raise MetadataError(f"missing or malformed {what} in DICOM file {header.path.name}")
    arr = np.asarray([float(v) for v in value], dtype=float)
    if not np.all(np.isfinite(arr)):
        raise MetadataError(f"non-finite {what} in DICOM file {header.path.name}")
    return arr


def _frames_of(header: _Header) -> list[_Frame]:
    """The frames of one file (classic: one; enhanced: one per PerFrameFunctionalGroupsSequence item)."""
    ds = header.ds
    rows, cols = int(ds.Rows), int(ds.Columns)
    if "PerFrameFunctionalGroupsSequence" in ds:
        shared = _first_item(ds, "SharedFunctionalGroupsSequence")
        per_frame = ds.PerFrameFunctionalGroupsSequence
        n_frames = int(ds.get("NumberOfFrames", len(per_frame)) or len(per_frame))
        if len(per_frame) != n_frames:
            raise MetadataError(
                f"{header.path.name}: NumberOfFrames is {n_frames} but PerFrameFunctionalGroupsSequence has "
                f"{len(per_frame)} items"
            )
        top_slope = _float_or_none(ds.get("RescaleSlope"))
        top_inter = _float_or_none(ds.get("RescaleIntercept"))
        top_te = _float_or_none(ds.get("EchoTime"))
        top_type = _tokens(ds.get("ImageType"))
        frames = []
        for i, per in enumerate(per_frame):
            pos = _functional(per, shared, "PlanePositionSequence")
            ori = _functional(per, shared, "PlaneOrientationSequence")
            pix = _functional(per, shared, "PixelMeasuresSequence")
            echo = _functional(per, shared, "MREchoSequence")
            pvt = _functional(per, shared, "PixelValueTransformationSequence")
            ftype = _functional(per, shared, "MRImageFrameTypeSequence")
            te = _float_or_none(echo.get("EffectiveEchoTime")) if echo is not None else None
            frame_type = _tokens(ftype.get("FrameType")) if ftype is not None else top_type
            comp_value = str(ftype.get("ComplexImageComponent", "") or "").upper() if ftype is not None else ""
            component = _ENHANCED_COMPONENT.get(comp_value)
            if component is None:
                component = _component_from_image_type(frame_type)
            slope = _float_or_none(pvt.get("RescaleSlope")) if pvt is not None else None
            inter = _float_or_none(pvt.get("RescaleIntercept")) if pvt is not None else None
            frames.append(
                _Frame(
                    header=header,
                    frame_index=i,
                    position=_required(pos.get("ImagePositionPatient") if pos else None,
                                       f"ImagePositionPatient (frame {i + 1})", header, 3),
                    orientation=_required(ori.get("ImageOrientationPatient") if ori else None,
                                          f"ImageOrientationPatient (frame {i + 1})", header, 6),
                    spacing=_required(pix.get("PixelSpacing") if pix else None,
                                      f"PixelSpacing (frame {i + 1})", header, 2),
                    rows=rows,
                    columns=cols,
                    echo_time_ms=te if te is not None else top_te,
                    echo_number=None,
                    component=component,
                    slope=slope if slope is not None else (top_slope if top_slope is not None else 1.0),
                    intercept=inter if inter is not None else (top_inter if top_inter is not None else 0.0),
                    frame_type=frame_type,
                )
            )
        return frames
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        raise MetadataError(
            f"{header.path.name}: multi-frame file without PerFrameFunctionalGroupsSequence (no per-frame geometry)"
        )
    image_type = _tokens(ds.get("ImageType"))
    if "MOSAIC" in image_type:
        raise InputError(f"{header.path.name}: Siemens mosaic images (several slices tiled in one frame) are not "
                         "supported; convert the series to NIfTI (e.g. with dcm2niix) and load that")
    ge = _ge_component(ds)
    echo_numbers = ds.get("EchoNumbers")
    if isinstance(echo_numbers, pydicom.multival.MultiValue):
        echo_numbers = echo_numbers[0] if len(echo_numbers) else None
    slope = _float_or_none(ds.get("RescaleSlope"))
    inter = _float_or_none(ds.get("RescaleIntercept"))
    return [
        _Frame(
            header=header,
            frame_index=None,
            position=_required(ds.get("ImagePositionPatient"), "ImagePositionPatient", header, 3),
            orientation=_required(ds.get("ImageOrientationPatient"), "ImageOrientationPatient", header, 6),
            spacing=_required(ds.get("PixelSpacing"), "PixelSpacing", header, 2),
            rows=rows,
            columns=cols,
            echo_time_ms=_float_or_none(ds.get("EchoTime")),
            echo_number=int(echo_numbers) if echo_numbers not in (None, "") else None,
            component=ge if ge is not None else _component_from_image_type(image_type),
            slope=slope if slope is not None else 1.0,
            intercept=inter if inter is not None else 0.0,
            frame_type=image_type,
        )
    ]


# ----------------------------------------------------------------------------------------------------------
# Pixel data
# ----------------------------------------------------------------------------------------------------------
def _read_pixels(frames: list[_Frame]) -> np.ndarray:
    """Stored values of every frame, rescaled, as float64 array [n_frames, rows, columns]."""
    out = np.empty((len(frames), frames[0].rows, frames[0].columns), dtype=np.float64)
    by_file: dict[Path, list[int]] = {}
    for n, fr in enumerate(frames):
        by_file.setdefault(fr.header.path, []).append(n)
    for path, idx in by_file.items():
        try:
            ds = pydicom.dcmread(path)
        except Exception as exc:  # truncated files raise several types
            raise InputError(f"unreadable DICOM file {path.name}: {exc}") from exc
        if "PixelData" not in ds and "FloatPixelData" not in ds and "DoubleFloatPixelData" not in ds:
            raise InputError(f"DICOM file {path.name} has no pixel data (no image frames)")
        if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
            raise InputError(f"DICOM file {path.name} is a colour image; only greyscale MR images are supported")
        try:
            arr = np.asarray(ds.pixel_array)
        except Exception as exc:  # missing decoder, truncated pixel data, ...
            raise InputError(f"cannot decode the pixel data of DICOM file {path.name}: {exc}") from exc
        if arr.ndim == 2:
            arr = arr[np.newaxis]
        for n in idx:
            fi = frames[n].frame_index or 0
            if fi >= arr.shape[0]:
                raise InputError(f"DICOM file {path.name} has {arr.shape[0]} frames, frame {fi + 1} requested")
            out[n] = arr[fi]
    slopes = np.array([f.slope for f in frames])[:, None, None]
    inters = np.array([f.intercept for f in frames])[:, None, None]
    return out * slopes + inters


def phase_to_radians(phase: np.ndarray, manufacturer: str = "") -> tuple[np.ndarray, str]:
    """Map rescaled DICOM phase values onto radians; returns the values and the rule used.

    * ``|phase| <= pi`` (+0.1 % margin): already radians.
    * GE or Philips and ``|phase| <= 1000 pi`` (+0.1 %): milliradians, divided by 1000.
    * otherwise (Siemens: stored 0..4095, slope 2, intercept -4096 -> -4096..4094): times ``pi / 4096``.
    """
    phase = np.asarray(phase, dtype=np.float64)
    finite = np.abs(phase[np.isfinite(phase)])
    if finite.size == 0:
        raise InputError("phase frames have no finite values")
    peak = float(finite.max())
    vendor = manufacturer.upper()
    if peak <= np.pi * 1.001:
        return phase, "radians as stored"
    if ("GE" in vendor.split() or "PHILIPS" in vendor or vendor.startswith("GE")) and peak <= 1000 * np.pi * 1.001:
        return phase / 1000.0, "milliradians / 1000 (GE/Philips)"
    if peak > 4096 * 1.001:
        raise InputError(f"phase values up to {peak:g} exceed every known vendor phase range (+-pi, +-1000 pi, +-4096)")
    return phase * (np.pi / 4096.0), "x pi/4096 (Siemens -4096..4095)"


# ----------------------------------------------------------------------------------------------------------
# Assembly
# ----------------------------------------------------------------------------------------------------------
@dataclass
class _Layout:
    """Where each frame goes: slice index, echo index; plus the geometry."""

    slice_idx: np.ndarray
    echo_idx: np.ndarray
    n_slices: int
    echo_times_ms: list[float | None]
    echo_numbers: list[int | None]
    affine_ras: np.ndarray


def _check_geometry(frames: list[_Frame]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Common orientation (6,), pixel spacing (2,) and slice normal (3,), or a clear error."""
    sizes = {(f.rows, f.columns) for f in frames}
    if len(sizes) > 1:
        raise InputError(f"inconsistent image size (Rows x Columns) in series: {sorted(sizes)}")
    ori = np.stack([f.orientation for f in frames])
    if np.abs(ori - ori[0]).max() > _ORIENTATION_TOL:
        worst = int(np.abs(ori - ori[0]).max(axis=1).argmax())
        raise InputError(
            "inconsistent ImageOrientationPatient in series: "
            f"{np.round(ori[0], 4).tolist()} ({frames[0].header.path.name}) vs "
            f"{np.round(ori[worst], 4).tolist()} ({frames[worst].header.path.name})"
        )
    spacing = np.stack([f.spacing for f in frames])
    if np.abs(spacing - spacing[0]).max() > _SPACING_REL_TOL * spacing[0].min():
        raise InputError(f"inconsistent PixelSpacing in series: {sorted({tuple(s) for s in spacing.tolist()})}")
    if np.any(spacing[0] <= 0):
        raise MetadataError(f"PixelSpacing must be positive, got {spacing[0].tolist()}")
    row_dir, col_dir = ori[0, :3], ori[0, 3:]
    normal = np.cross(row_dir, col_dir)
    norm = np.linalg.norm(normal)
    if norm < 0.5:
        raise MetadataError(f"ImageOrientationPatient {ori[0].tolist()} does not hold two orthogonal unit vectors")
    return ori[0], spacing[0], normal / norm


def _layout(frames: list[_Frame]) -> _Layout:
    orientation, spacing, normal = _check_geometry(frames)
    row_dir, col_dir = orientation[:3], orientation[3:]
    positions = np.stack([f.position for f in frames])
    dist = positions @ normal

    # Slices: cluster distances along the normal.
    order = np.argsort(dist, kind="stable")
    gaps = np.diff(dist[order])
    new_slice = np.concatenate([[True], gaps > _POSITION_TOL_MM])
    cluster_sorted = np.cumsum(new_slice) - 1
    slice_idx = np.empty(len(frames), dtype=int)
    slice_idx[order] = cluster_sorted
    n_slices = int(cluster_sorted[-1]) + 1
    slice_dist = np.bincount(slice_idx, weights=dist) / np.bincount(slice_idx)

    # Frames must lie on one line along the normal (same in-plane offset).
    in_plane = positions - np.outer(dist, normal)
    if np.abs(in_plane - in_plane[0]).max() > 0.01 + 1e-3 * np.abs(spacing).max():
        raise InputError("inconsistent slice positions: frames are shifted in-plane, not stacked along the slice "
                         "normal (several stacks or a localizer in one series?)")

    # Echoes: by echo time when every frame has one, else by echo number.
    te = [f.echo_time_ms for f in frames]
    en = [f.echo_number for f in frames]
    per_slice_comp: dict[tuple[int, str], int] = {}
    for k, f in zip(slice_idx, frames, strict=True):
        per_slice_comp[(int(k), f.component)] = per_slice_comp.get((int(k), f.component), 0) + 1
    multi = max(per_slice_comp.values()) > 1
    if all(t is not None for t in te):
        keys = np.round(np.array(te, dtype=float), 6)
        uniq = np.unique(keys)
        echo_idx = np.searchsorted(uniq, keys)
        echo_times: list[float | None] = uniq.tolist()
        numbers_per_echo = [sorted({en[i] for i in np.flatnonzero(echo_idx == e) if en[i] is not None})
                            for e in range(len(uniq))]
        echo_numbers = [n[0] if len(n) == 1 else None for n in numbers_per_echo]
    elif multi and all(n is not None for n in en):
        missing = sum(t is None for t in te)
        raise MetadataError(
            f"missing EchoTime in {missing} of {len(frames)} frames of a multi-echo series "
            f"(echo numbers {sorted(set(en))}); echo times are needed to order and use the echoes"
        )
    elif multi:
        raise MetadataError(
            f"missing EchoTime: {max(per_slice_comp.values())} frames share one slice position and no echo time "
            "or echo number separates them"
        )
    else:
        echo_idx = np.zeros(len(frames), dtype=int)
        echo_times = [None]
        echo_numbers = [en[0] if len(set(en)) == 1 else None]

    # Slice spacing from the slice positions; uniform within tolerance.
    if n_slices > 1:
        steps = np.diff(slice_dist)
        mean_step = (slice_dist[-1] - slice_dist[0]) / (n_slices - 1)
        if np.abs(steps - mean_step).max() > max(_SPACING_REL_TOL * mean_step, 1e-3):
            raise InputError(
                f"inconsistent slice spacing: gaps between {steps.min():.4g} and {steps.max():.4g} mm "
                f"across {n_slices} slice positions (missing or duplicated slice?)"
            )
        slice_vec = normal * mean_step
    else:
        ds0 = frames[0].header.ds
        pix = _first_item(_first_item(ds0, "SharedFunctionalGroupsSequence"), "PixelMeasuresSequence")
        thickness = None
        for src in (pix, ds0):
            if src is not None:
                thickness = thickness or _float_or_none(src.get("SpacingBetweenSlices"))
                thickness = thickness or _float_or_none(src.get("SliceThickness"))
        slice_vec = normal * (thickness if thickness and thickness > 0 else 1.0)

    origin = positions[slice_idx == 0].mean(axis=0)  # centre of voxel (0, 0, 0), LPS
    lps = np.eye(4)
    lps[:3, 0] = row_dir * spacing[1]
    lps[:3, 1] = col_dir * spacing[0]
    lps[:3, 2] = slice_vec
    lps[:3, 3] = origin
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps
    return _Layout(slice_idx, echo_idx, n_slices, echo_times, echo_numbers, affine)


def _check_unique(frames_idx: np.ndarray, layout: _Layout, n_echoes: int, label: str,
                  frames: list[_Frame]) -> np.ndarray:
    """Frames per (slice, echo) cell; error naming the files when a cell holds two frames."""
    cell = layout.slice_idx[frames_idx] * n_echoes + layout.echo_idx[frames_idx]
    counts = np.bincount(cell, minlength=layout.n_slices * n_echoes)
    if counts.max() > 1:
        dup = int(np.flatnonzero(counts > 1)[0])
        names = [frames[i].header.path.name for i in frames_idx[cell == dup]][:3]
        raise InputError(
            f"duplicate {label} frames at slice {dup // n_echoes + 1} echo {dup % n_echoes + 1} "
            f"({', '.join(names)})"
        )
    return counts


def _place(values: np.ndarray, frames_idx: np.ndarray, layout: _Layout, n_echoes: int, label: str,
           frames: list[_Frame]) -> np.ndarray:
    """Scatter frames [n, rows, cols] into a volume [cols, rows, slices, echoes]; every cell exactly once."""
    k = layout.slice_idx[frames_idx]
    e = layout.echo_idx[frames_idx]
    expected = layout.n_slices * n_echoes
    counts = _check_unique(frames_idx, layout, n_echoes, label, frames)
    if counts.min() == 0:
        raise InputError(
            f"incomplete series: {len(frames_idx)} {label} frames for {layout.n_slices} slice positions x "
            f"{n_echoes} echoes = {expected} expected"
        )
    rows, cols = values.shape[1:]
    vol = np.empty((cols, rows, layout.n_slices, n_echoes), dtype=values.dtype)
    vol[:, :, k, e] = np.transpose(values[frames_idx], (2, 1, 0))
    return vol


def _combine(frames: list[_Frame], values: np.ndarray, layout: _Layout, complex_mode: str,
             manufacturer: str) -> tuple[np.ndarray, dict[str, Any]]:
    comps = np.array([f.component for f in frames])
    present = {c for c in comps.tolist()}
    n_echoes = len(layout.echo_times_ms)
    extra: dict[str, Any] = {}
    mag_idx = np.flatnonzero((comps == "M") | (comps == ""))
    pha_idx = np.flatnonzero(comps == "P")
    re_idx = np.flatnonzero(comps == "R")
    im_idx = np.flatnonzero(comps == "I")
    for idx, label in ((mag_idx, "magnitude"), (pha_idx, "phase"), (re_idx, "real"), (im_idx, "imaginary")):
        if idx.size:
            _check_unique(idx, layout, n_echoes, label, frames)
    if (mag_idx.size and pha_idx.size) and mag_idx.size != pha_idx.size:
        raise InputError(f"magnitude/phase counts differ: {mag_idx.size} magnitude vs {pha_idx.size} phase frames")
    if (re_idx.size or im_idx.size) and re_idx.size != im_idx.size:
        raise InputError(f"real/imaginary counts differ: {re_idx.size} real vs {im_idx.size} imaginary frames")

    def vol(idx: np.ndarray, label: str) -> np.ndarray:
        return _place(values, idx, layout, n_echoes, label, frames)

    def phase_vol() -> np.ndarray:
        rad, rule = phase_to_radians(vol(pha_idx, "phase"), manufacturer)
        extra["PhaseScaling"] = rule
        return rad

    names = ", ".join(sorted(_COMPONENT_NAMES[c] for c in present))
    has_mp = mag_idx.size > 0 and pha_idx.size > 0
    has_ri = re_idx.size > 0 and im_idx.size > 0
    if complex_mode in ("auto", "complex") and (has_mp or has_ri):
        if has_mp and has_ri:
            raise InputError("series holds both magnitude/phase and real/imaginary frames; load one pair "
                             "(complex_mode='magnitude' or 'phase' for a single component)")
        if has_mp:
            data = vol(mag_idx, "magnitude") * np.exp(1j * phase_vol())
            extra["ComplexSource"] = "magnitude_phase"
        else:
            data = vol(re_idx, "real") + 1j * vol(im_idx, "imaginary")
            extra["ComplexSource"] = "real_imaginary"
        return data.astype(np.complex64), extra
    if complex_mode == "complex":
        raise InputError(f"complex_mode='complex' needs magnitude+phase or real+imaginary frames; found: {names}")
    if complex_mode == "phase":
        if pha_idx.size:
            data = phase_vol()
        elif has_ri:
            data = np.angle(vol(re_idx, "real") + 1j * vol(im_idx, "imaginary"))
        else:
            raise InputError(f"complex_mode='phase' needs phase or real+imaginary frames; found: {names}")
        extra["Units"] = "rad"
        return data.astype(np.float32), extra
    if complex_mode == "magnitude":
        if mag_idx.size:
            return vol(mag_idx, "magnitude").astype(np.float32), extra
        if has_ri:
            return np.abs(vol(re_idx, "real") + 1j * vol(im_idx, "imaginary")).astype(np.float32), extra
        raise InputError(f"complex_mode='magnitude' needs magnitude or real+imaginary frames; found: {names}")
    # auto without a pair: a single component
    if len(present) > 1:
        raise InputError(f"series mixes {names} frames that do not form a magnitude/phase or real/imaginary pair")
    only = present.pop()
    if only == "P":
        data = phase_vol()
        extra["Units"] = "rad"
        return data.astype(np.float32), extra
    return vol(np.arange(len(frames)), _COMPONENT_NAMES[only]).astype(np.float32), extra


def _acquisition_meta(ds: Dataset) -> dict[str, Any]:
    """Acquisition parameters of one header in BIDS names and SI units; never identifiers."""
    meta: dict[str, Any] = {}
    shared = _first_item(ds, "SharedFunctionalGroupsSequence")
    timing = _first_item(shared, "MRTimingAndRelatedParametersSequence")
    for keyword, (name, scale) in _META_TAGS.items():
        value = ds.get(keyword)
        if (value is None or value == "") and timing is not None:
            value = timing.get(keyword)
        if value is None or value == "":
            continue
        if scale is not None:
            num = _float_or_none(value)
            if num is None:
                continue
            meta[name] = num * scale
        elif isinstance(value, pydicom.multival.MultiValue):
            meta[name] = [str(v) for v in value]
        elif keyword == "SeriesNumber":
            try:
                meta[name] = int(value)
            except (TypeError, ValueError):
                continue
        else:
            meta[name] = str(value)
    return meta


# ----------------------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------------------
def _series_summary(uid: str, headers: list[_Header]) -> str:
    ds = headers[0].ds
    return f"{uid or '<no SeriesInstanceUID>'} (#{ds.get('SeriesNumber', '?')} '{ds.get('SeriesDescription', '')}', " \
           f"{len(headers)} files)"


def _signature(headers: list[_Header]) -> tuple | None:
    """(components, frame grid, echo times) of a series, or None when its frames cannot be read."""
    try:
        frames = [fr for h in headers for fr in _frames_of(h)]
    except (MetadataError, InputError):
        return None
    comps = frozenset(_COMPONENT_NAMES[f.component] for f in frames)
    grid = sorted((tuple(np.round(f.position, 2)), f.echo_time_ms) for f in frames)
    first = frames[0]
    return comps, (first.rows, first.columns, tuple(np.round(first.orientation, 4)),
                   tuple(np.round(first.spacing, 4))), tuple(grid)


def _magnitude_phase_pair(groups: dict[str, list[_Header]]) -> list[str] | None:
    """The two UIDs of a magnitude-only and a phase-only series of the same frames (positions, echo times,
    matrix, orientation, spacing): what Siemens writes for one complex multi-echo acquisition. Else None."""
    if len(groups) != 2:
        return None
    sigs = {uid: _signature(h) for uid, h in groups.items()}
    if any(v is None for v in sigs.values()):
        return None
    by_comp = {next(iter(sig[0])): uid for uid, sig in sigs.items() if len(sig[0]) == 1}
    if set(by_comp) != {"magnitude", "phase"}:
        return None
    mag, pha = sigs[by_comp["magnitude"]], sigs[by_comp["phase"]]
    return [by_comp["magnitude"], by_comp["phase"]] if mag[1:] == pha[1:] else None


def _select(groups: dict[str, list[_Header]], series_uid: str | Sequence[str] | None, label: str) -> list[_Header]:
    if series_uid is None:
        if len(groups) > 1 and (pair := _magnitude_phase_pair(groups)) is not None:
            return [h for u in pair for h in groups[u]]
        if len(groups) > 1:
            listing = "; ".join(_series_summary(u, h) for u, h in groups.items())
            raise InputError(f"{len(groups)} DICOM series in {label}; choose one with series_uid: {listing}")
        return next(iter(groups.values()))
    wanted = [series_uid] if isinstance(series_uid, str) else list(series_uid)
    missing = [u for u in wanted if u not in groups]
    if missing:
        listing = "; ".join(_series_summary(u, h) for u, h in groups.items())
        raise InputError(f"series {', '.join(missing)} not found in {label}; available: {listing}")
    return [h for u in wanted for h in groups[u]]


def _read_series(
    path: str | os.PathLike | Sequence[str | os.PathLike], series_uid: str | Sequence[str] | None
) -> tuple[list[_Header], list[_Frame], str]:
    """The chosen series' image headers and frames."""
    headers, label = _scan(path)
    images = [h for h in headers if h.is_image]
    if not images:
        raise InputError(f"no image frames in {label}: {len(headers)} DICOM files, none with pixel data (Rows/Columns)")
    chosen = _select(_group(images), series_uid, label)
    frames = [fr for h in chosen for fr in _frames_of(h)]
    if not frames:
        raise InputError(f"no image frames in {label}")
    return chosen, frames, label


def load_dicom_series(
    path: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    series_uid: str | Sequence[str] | None = None,
    complex_mode: str = "auto",
) -> Image:
    """Read one DICOM series (a folder, one file or a list of files) into an :class:`Image`.

    Parameters
    ----------
    path:
        A folder (searched recursively; non-DICOM files are skipped), one file, or a list of files.
    series_uid:
        The ``SeriesInstanceUID`` to load when the files hold several series; a list of UIDs pools their frames
        (e.g. a magnitude series and its phase series). Without it, a folder holding exactly a magnitude-only
        and a phase-only series of the same frames (Siemens) is read as one complex series.
    complex_mode:
        ``"auto"``: complex data when magnitude+phase or real+imaginary frames are present, else the single
        component (phase in radians); ``"complex"``: require a pair; ``"magnitude"``: magnitude (or |real + i
        imaginary|); ``"phase"``: phase in radians.

    Returns
    -------
    Image
        ``data`` of shape (x, y, slices) for one echo, (x, y, slices, echoes) for several, echoes ordered by
        increasing echo time; float32, or complex64 for complex data. ``affine`` in RAS+ mm. ``meta`` with
        ``EchoTime`` (s: a float for one echo, a list for several), ``EchoNumbers``, ``MagneticFieldStrength``
        (T), ``RepetitionTime`` (s), ``FlipAngle`` (deg), ``Manufacturer``, ``ImageType``, ... and, for
        phase, ``PhaseScaling`` (the rule used to get radians).

    Raises
    ------
    InputError
        Missing path, unreadable or non-image DICOM, several series without a choice, inconsistent orientation,
        pixel spacing or slice spacing, incomplete or duplicated frames, mismatched component counts.
    MetadataError
        Missing geometry tags, or missing ``EchoTime`` in a multi-echo series.
    """
    if complex_mode not in COMPLEX_MODES:
        raise InputError(f"unknown complex_mode {complex_mode!r}; use one of {', '.join(COMPLEX_MODES)}")
    chosen, frames, _label = _read_series(path, series_uid)
    layout = _layout(frames)
    values = _read_pixels(frames)
    meta = _acquisition_meta(chosen[0].ds)
    data, extra = _combine(frames, values, layout, complex_mode, str(meta.get("Manufacturer", "")))
    if data.shape[-1] == 1:
        data = data[..., 0]
    tes = layout.echo_times_ms
    if all(t is not None for t in tes):
        te_s = [float(t) * 1e-3 for t in tes]
        meta["EchoTime"] = te_s[0] if len(te_s) == 1 else te_s
    if any(n is not None for n in layout.echo_numbers) and len(layout.echo_numbers) > 1:
        meta["EchoNumbers"] = layout.echo_numbers
    comps = sorted({_COMPONENT_NAMES[f.component] for f in frames})
    meta["ComplexComponents"] = comps
    if "ImageType" not in meta and frames[0].frame_type:
        meta["ImageType"] = list(frames[0].frame_type)
    meta.update(extra)
    meta.update(_real_world_units(chosen[0].ds))
    return Image(data, layout.affine_ras, meta)


def _real_world_units(ds: Dataset) -> dict[str, Any]:
    """``Units`` (UCUM code) and ``Quantity`` (code meaning) of a Parametric Map's identity Real World Value
    Mapping (as osteomri writes them), so that a map read back keeps its unit."""
    shared = _first_item(ds, "SharedFunctionalGroupsSequence")
    per = ds.get("PerFrameFunctionalGroupsSequence")
    for holder in (shared, per[0] if per else None):
        item = _first_item(holder, "RealWorldValueMappingSequence")
        if item is None:
            continue
        if float(item.get("RealWorldValueSlope", 1.0)) != 1.0 or float(item.get("RealWorldValueIntercept", 0.0)):
            continue
        out: dict[str, Any] = {}
        unit = _first_item(item, "MeasurementUnitsCodeSequence")
        if unit is not None:
            out["Units"] = str(unit.get("CodeValue", ""))
        quantity = _first_item(item, "QuantityDefinitionSequence")
        concept = _first_item(quantity, "ConceptCodeSequence") if quantity is not None else None
        if concept is not None:
            out["Quantity"] = str(concept.get("CodeMeaning", ""))
        return out
    return {}


def list_dicom_series(path: str | os.PathLike | Sequence[str | os.PathLike]):
    """One row per DICOM series found: what it is, never whom it is of.

    Columns: ``uid`` (SeriesInstanceUID, needed to choose a series), ``series_number``, ``description``,
    ``modality``, ``manufacturer``, ``n_files``, ``n_frames``, ``n_echoes`` (distinct echo times),
    ``image_types`` (distinct ImageType/FrameType values, ``;``-separated), ``components`` (magnitude, phase,
    real, imaginary). Files without pixel data are ignored. Sorted by series number.
    """
    import pandas as pd

    headers, _label = _scan(path)
    rows = []
    for uid, hs in _group(h for h in headers if h.is_image).items():
        ds = hs[0].ds
        frames: list[_Frame] = []
        for h in hs:
            try:
                frames.extend(_frames_of(h))
            except MetadataError:
                continue
        tes = {round(f.echo_time_ms, 6) for f in frames if f.echo_time_ms is not None}
        types = sorted({"\\".join(f.frame_type) for f in frames if f.frame_type})
        try:
            number = int(ds.get("SeriesNumber"))
        except (TypeError, ValueError):
            number = None
        rows.append(
            {
                "uid": uid,
                "series_number": number,
                "description": str(ds.get("SeriesDescription", "") or ""),
                "modality": str(ds.get("Modality", "") or ""),
                "manufacturer": str(ds.get("Manufacturer", "") or ""),
                "n_files": len(hs),
                "n_frames": sum(int(h.ds.get("NumberOfFrames", 1) or 1) for h in hs),
                "n_echoes": max(len(tes), 1),
                "image_types": ";".join(types),
                "components": ",".join(sorted({_COMPONENT_NAMES[f.component] for f in frames})),
            }
        )
    columns = ["uid", "series_number", "description", "modality", "manufacturer", "n_files", "n_frames",
               "n_echoes", "image_types", "components"]
    df = pd.DataFrame(rows, columns=columns)
    return df.sort_values("series_number", na_position="last", kind="stable").reset_index(drop=True)
