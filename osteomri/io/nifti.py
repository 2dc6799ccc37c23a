"""NIfTI images with BIDS-style JSON sidecars.

Complex multi-echo data can be stored as one complex NIfTI, or as a magnitude + phase pair, or as a
real + imaginary pair (:func:`load_complex_pair`). Sidecar keys follow BIDS names in SI units
(``EchoTime`` in seconds, ``MagneticFieldStrength`` in tesla, ...).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.io.provenance import atomic_path, to_jsonable, write_json_atomic

NIFTI_SUFFIXES = (".nii.gz", ".nii")


def sidecar_path(nifti_path: str | os.PathLike) -> Path:
    """``x.nii.gz`` -> ``x.json`` (BIDS sidecar)."""
    p = Path(nifti_path)
    name = p.name
    for suf in NIFTI_SUFFIXES:
        if name.endswith(suf):
            return p.with_name(name[: -len(suf)] + ".json")
    raise InputError(f"not a NIfTI file name (.nii or .nii.gz): {p}")


def is_nifti(path: str | os.PathLike) -> bool:
    return str(path).endswith(NIFTI_SUFFIXES)


def load_nifti(path: str | os.PathLike, sidecar: str | os.PathLike | None = None) -> Image:
    """Read a NIfTI file (and its JSON sidecar if present) into an :class:`Image`.

    Scaling (scl_slope/scl_inter) is applied; complex NIfTI stays complex.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"file not found: {path}")
    try:
        img = nib.load(str(path))
        # nibabel reads the voxels lazily: a truncated .nii.gz fails here (EOFError, zlib.error, OSError), not
        # at nib.load; an EOFError left to the CLI would read "Aborted." (click's meaning of EOF on stdin)
        if np.issubdtype(img.get_data_dtype(), np.complexfloating):
            data = np.asanyarray(img.dataobj)
        else:
            data = img.get_fdata(dtype=np.float32) if _is_scaled_or_float(img) else np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel/gzip/zlib raise several types for truncated or corrupt files
        detail = str(exc).replace(str(path), path.name)
        raise InputError(f"{path.name} is truncated or corrupt ({type(exc).__name__}: {detail})") from exc
    meta: dict[str, Any] = {}
    sc = Path(sidecar) if sidecar else sidecar_path(path)
    if sc.exists():
        try:
            meta = json.loads(sc.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"sidecar {sc.name} is not valid JSON: {exc}") from exc
    return Image(np.asarray(data), img.affine, meta)


def _is_scaled_or_float(img: nib.Nifti1Image) -> bool:
    slope, inter = img.header.get_slope_inter()
    scaled = slope not in (None, 1.0) or inter not in (None, 0.0)
    return scaled or np.issubdtype(img.get_data_dtype(), np.floating)


def load_complex_pair(
    first: str | os.PathLike, second: str | os.PathLike, kind: str = "magnitude_phase"
) -> Image:
    """Combine two NIfTI files into complex data.

    ``kind="magnitude_phase"``: phase in radians, or in vendor integer units which are rescaled from
    their observed range onto [-pi, pi) when the values exceed 2*pi (e.g. Siemens -4096..4095).
    ``kind="real_imaginary"``: real and imaginary parts.
    """
    a, b = load_nifti(first), load_nifti(second)
    if a.data.shape != b.data.shape:
        raise InputError(f"shape mismatch: {Path(first).name} {a.data.shape} vs {Path(second).name} {b.data.shape}")
    if kind == "magnitude_phase":
        data = a.data.astype(np.float64) * np.exp(1j * phase_to_radians(b.data))
    elif kind == "real_imaginary":
        data = a.data.astype(np.float64) + 1j * b.data.astype(np.float64)
    else:
        raise InputError(f"unknown complex pair kind {kind!r}; use 'magnitude_phase' or 'real_imaginary'")
    return Image(data.astype(np.complex64), a.affine, {**b.meta, **a.meta})


def phase_to_radians(phase: np.ndarray, vendor_range: tuple[float, float] | None = None) -> np.ndarray:
    """Map stored phase values onto radians.

    Values already within [-pi, pi] (+ a rounding margin) are returned as float. Otherwise they are
    treated as integers spanning ``vendor_range`` (default: Siemens' -4096..4096) and mapped linearly
    onto [-pi, pi).
    """
    phase = np.asarray(phase, dtype=np.float64)
    finite = phase[np.isfinite(phase)]
    if finite.size == 0:
        raise InputError("phase image has no finite values")
    if np.abs(finite).max() <= np.pi + 1e-3:
        return phase
    lo, hi = vendor_range if vendor_range else ((-4096.0, 4096.0) if finite.min() < 0 else (0.0, 4096.0))
    return (phase - lo) / (hi - lo) * 2 * np.pi - np.pi


def save_nifti(
    image: Image,
    path: str | os.PathLike,
    *,
    sidecar: dict[str, Any] | None = None,
    dtype: np.dtype | type | None = None,
) -> Path:
    """Write ``image`` as NIfTI plus a JSON sidecar (``image.meta`` updated with ``sidecar``), atomically.

    ``sidecar`` typically holds ``Units``, ``Description`` and a ``Provenance`` block
    (:func:`osteomri.io.provenance.provenance`).
    """
    path = Path(path)
    if not is_nifti(path):
        raise InputError(f"output name must end with .nii or .nii.gz: {path}")
    data = np.asarray(image.data)
    if dtype is not None:
        data = data.astype(dtype)
    elif data.dtype == np.float64:
        data = data.astype(np.float32)
    elif data.dtype == np.complex128:
        data = data.astype(np.complex64)
    elif data.dtype == bool:
        data = data.astype(np.uint8)
    nimg = nib.Nifti1Image(data, image.affine)
    nimg.header.set_xyzt_units("mm", "sec")
    with atomic_path(path) as tmp:
        nib.save(nimg, str(tmp))
    meta = {**to_jsonable(image.meta), **to_jsonable(sidecar or {})}
    write_json_atomic(sidecar_path(path), meta)
    return path
