"""Readers for MATLAB ``.mat`` multi-echo data used by open water–fat tools.

Two layouts are understood:

* the ISMRM fat–water toolbox struct ``imDataParams`` (Hernando et al.; ISMRM 2012 challenge):
  ``images`` [x, y, z, coil, echo] complex, ``TE`` (s), ``FieldStrength`` (T), ``PrecessionIsClockwise``
  (+1 / -1) and optionally ``mask`` [x, y, z];
* the flat layout of Bydder's PRESCO code (``marcsous/pdff``): ``data`` [x, y, (z,) echo] complex,
  ``te`` (s), ``Tesla`` (T), optionally ``tr`` (ms) and ``fa`` (deg).

The returned :class:`~osteomri.io.image.Image` always has 4-D complex data [x, y, z, n_echo] and metadata
in SI units with BIDS names (``EchoTime`` list in s, ``MagneticFieldStrength`` T, ``RepetitionTime`` s,
``FlipAngle`` deg) plus ``PrecessionIsClockwise`` (bool). Data is returned *as stored*: a consumer that
models fat at negative frequency with exp(+i 2 pi f t) conjugates it when ``PrecessionIsClockwise`` is False.
The files store no geometry; the affine is the identity (1 mm voxels, marked ``meta["VoxelSizeAssumed"]``) unless
``voxel_size_mm`` is given.
Multi-coil toolbox data is combined by a phase-preserving sum (coils are expected to be combined already).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from osteomri.errors import InputError, InputWarning, MetadataError
from osteomri.io.image import Image


def _loadmat(path: str | os.PathLike) -> dict[str, Any]:
    import scipy.io

    path = Path(path)
    if not path.exists():
        raise InputError(f"file not found: {path}")
    try:
        return scipy.io.loadmat(str(path))
    except NotImplementedError as exc:  # MATLAB v7.3 (HDF5)
        raise InputError(f"{path.name}: MATLAB v7.3 (HDF5) files are not supported; save with -v7") from exc
    except Exception as exc:  # scipy raises several types for corrupt files
        raise InputError(f"cannot read MATLAB file {path.name}: {exc}") from exc


def _scalar(value: Any, name: str, path: Path) -> float:
    arr = np.asarray(value, dtype=float).ravel()
    if arr.size != 1 or not np.isfinite(arr[0]):
        raise MetadataError(f"{path.name}: {name} must be one finite number, got {arr.tolist()}")
    return float(arr[0])


def _echo_times(value: Any, n_echo: int, path: Path) -> list[float]:
    te = np.asarray(value, dtype=float).ravel()
    if te.size != n_echo:
        raise MetadataError(f"{path.name}: {te.size} echo times but the data has {n_echo} echoes")
    if te.max() > 0.5:  # stored in ms by some writers
        raise MetadataError(f"{path.name}: echo times look like milliseconds ({te.max():g}); expected seconds")
    return te.tolist()


def _affine(voxel_size_mm: tuple[float, float, float] | None) -> np.ndarray:
    aff = np.eye(4)
    if voxel_size_mm is not None:
        aff[:3, :3] = np.diag(np.asarray(voxel_size_mm, dtype=float))
    return aff


def load_toolbox_mat(path: str | os.PathLike, voxel_size_mm: tuple[float, float, float] | None = None) -> Image:
    """Read a multi-echo ``.mat`` file (toolbox ``imDataParams`` or Bydder ``data/te/Tesla``) as an Image.

    Returns complex data [x, y, z, n_echo] with meta ``EchoTime`` (list, s), ``MagneticFieldStrength`` (T),
    ``PrecessionIsClockwise`` (bool) and, when stored, ``RepetitionTime`` (s) and ``FlipAngle`` (deg).
    """
    path = Path(path)
    mat = _loadmat(path)
    meta: dict[str, Any] = {"SourceFormat": ""}
    if "imDataParams" in mat:
        try:
            p = mat["imDataParams"][0, 0]
            names = p.dtype.names or ()
        except (IndexError, TypeError, AttributeError) as exc:
            raise InputError(f"{path.name}: imDataParams is not a MATLAB struct") from exc
        for key in ("images", "TE", "FieldStrength"):
            if key not in names:
                raise MetadataError(f"{path.name}: imDataParams has no field {key!r} (fields: {', '.join(names)})")
        images = np.asarray(p["images"])
        if images.ndim == 5:
            images = images.sum(axis=3) if images.shape[3] > 1 else images[:, :, :, 0, :]
        elif images.ndim == 4:
            pass
        elif images.ndim == 3:
            images = images[:, :, None, :]
        else:
            raise InputError(f"{path.name}: images must be [x, y, z, coil, echo], got shape {images.shape}")
        te = _echo_times(p["TE"], images.shape[-1], path)
        b0 = _scalar(p["FieldStrength"], "FieldStrength", path)
        clockwise = True
        if "PrecessionIsClockwise" in names and np.asarray(p["PrecessionIsClockwise"]).size:
            clockwise = _scalar(p["PrecessionIsClockwise"], "PrecessionIsClockwise", path) > 0
        meta["SourceFormat"] = "ismrm_toolbox_imDataParams"
    elif "data" in mat:
        images = np.asarray(mat["data"])
        if images.ndim == 3:
            images = images[:, :, None, :]
        elif images.ndim != 4:
            raise InputError(f"{path.name}: data must be [x, y, (z,) echo], got shape {images.shape}")
        for key in ("te", "Tesla"):
            if key not in mat:
                raise MetadataError(f"{path.name}: missing variable {key!r} next to 'data'")
        te = _echo_times(mat["te"], images.shape[-1], path)
        b0 = _scalar(mat["Tesla"], "Tesla", path)
        clockwise = True  # Bydder's fat_basis: fat at negative frequency with exp(+i 2 pi f t)
        meta["PrecessionIsClockwiseAssumed"] = True  # not stored in the file: consumers may auto-detect
        if "tr" in mat:
            tr = _scalar(mat["tr"], "tr", path)
            meta["RepetitionTime"] = tr / 1000.0 if tr > 1.0 else tr  # stored in ms
        if "fa" in mat:
            meta["FlipAngle"] = _scalar(mat["fa"], "fa", path)
        meta["SourceFormat"] = "bydder_presco"
    else:
        keys = [k for k in mat if not k.startswith("__")]
        raise InputError(f"{path.name}: neither 'imDataParams' nor 'data' found (variables: {', '.join(keys)})")
    if b0 <= 0:
        raise MetadataError(f"{path.name}: field strength must be positive, got {b0}")
    if not np.iscomplexobj(images):
        images = images.astype(np.float32)
    meta.update({"EchoTime": te, "MagneticFieldStrength": b0, "PrecessionIsClockwise": bool(clockwise)})
    if voxel_size_mm is None:
        meta["VoxelSizeAssumed"] = True
        warnings.warn(f"{path.name} stores no geometry: 1 mm isotropic voxels and an identity orientation are "
                      "assumed (the field-map smoothness and any ROI in mm depend on it)", InputWarning, stacklevel=2)
    return Image(images, _affine(voxel_size_mm), meta)


def load_toolbox_mask(path: str | os.PathLike) -> np.ndarray | None:
    """The boolean ``imDataParams.mask`` [x, y, z] of a toolbox file, or None when the file has none."""
    path = Path(path)
    mat = _loadmat(path)
    if "imDataParams" not in mat:
        return None
    p = mat["imDataParams"][0, 0]
    if "mask" not in (p.dtype.names or ()) or np.asarray(p["mask"]).size == 0:
        return None
    mask = np.asarray(p["mask"]).astype(bool)
    return mask[:, :, None] if mask.ndim == 2 else mask
