"""Diffusion b-values and gradient directions: FSL-style ``.bval``/``.bvec`` files and JSON sidecars.

* ``.bval`` (FSL, BIDS): b-values in s/mm^2 as whitespace-separated numbers, one per volume, on one line
  (a single column is accepted too).
* ``.bvec`` (FSL, BIDS): 3 rows (x, y, z) with one unit vector per volume (``n x 3`` is transposed);
  zero vectors are allowed where b = 0.
* JSON sidecar: b-values under ``bvalues`` (osteomri's :class:`~osteomri.io.image.Image` metadata name)
  or ``DiffusionBValue`` (one number per volume, or a single number).

All readers raise :class:`~osteomri.errors.InputError` with the file name and the offending entry.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from osteomri.errors import InputError

SIDECAR_BVALUE_KEYS = ("bvalues", "DiffusionBValue")


def _read_table(path: Path) -> list[list[float]]:
    if not path.exists():
        raise InputError(f"b-value/vector file not found: {path}")
    rows = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        tokens = line.replace(",", " ").split()
        if not tokens or tokens[0].startswith("#"):
            continue
        try:
            rows.append([float(t) for t in tokens])
        except ValueError as exc:
            raise InputError(f"{path.name} line {lineno}: not a number in {line.strip()!r}") from exc
    if not rows:
        raise InputError(f"{path.name} holds no numbers")
    return rows


def check_bvalues(values: Any, source: str) -> np.ndarray:
    """Validate b-values (s/mm^2): a finite, non-negative 1-D array; ``source`` names them in errors."""
    try:
        b = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: b-values must be numbers, got {values!r}") from exc
    if b.ndim != 1 or b.size == 0:
        raise InputError(f"{source}: b-values must be a flat list of numbers, got shape {b.shape}")
    bad = np.flatnonzero(~np.isfinite(b))
    if bad.size:
        raise InputError(f"{source}: b-value {bad[0] + 1} is not finite ({b[bad[0]]})")
    neg = np.flatnonzero(b < 0)
    if neg.size:
        raise InputError(f"{source}: negative b-value {b[neg[0]]:g} (entry {neg[0] + 1}); b-values must be >= 0")
    return b


def read_bvals(path: str | os.PathLike) -> np.ndarray:
    """Read an FSL/BIDS ``.bval`` file -> 1-D array of b-values in s/mm^2."""
    path = Path(path)
    rows = _read_table(path)
    if len(rows) == 1:
        values = rows[0]
    elif all(len(r) == 1 for r in rows):
        values = [r[0] for r in rows]
    else:
        raise InputError(
            f"{path.name}: expected one row (or one column) of b-values, got {len(rows)} rows of "
            f"{sorted({len(r) for r in rows})} numbers (is this a .bvec file?)"
        )
    return check_bvalues(values, path.name)


def read_bvecs(path: str | os.PathLike, atol: float = 0.05) -> np.ndarray:
    """Read an FSL/BIDS ``.bvec`` file -> ``[3, n]`` array of unit vectors (zero vectors kept)."""
    path = Path(path)
    rows = _read_table(path)
    if len({len(r) for r in rows}) != 1:
        raise InputError(f"{path.name}: rows of unequal length {[len(r) for r in rows]}")
    vec = np.array(rows, dtype=float)
    if vec.shape[0] != 3 and vec.shape[1] == 3:
        vec = vec.T
    if vec.shape[0] != 3:
        raise InputError(f"{path.name}: expected 3 rows (x, y, z) of gradient directions, got shape {vec.shape}")
    if not np.isfinite(vec).all():
        raise InputError(f"{path.name}: non-finite gradient direction")
    norm = np.linalg.norm(vec, axis=0)
    bad = np.flatnonzero((norm > atol) & (np.abs(norm - 1.0) > atol))
    if bad.size:
        raise InputError(f"{path.name}: direction {bad[0] + 1} has length {norm[bad[0]]:.3f}, not 1 (or 0)")
    return vec


def bvals_from_sidecar(sidecar: Mapping[str, Any] | str | os.PathLike) -> np.ndarray:
    """b-values from a JSON sidecar (a mapping or a ``.json`` path) under ``bvalues`` or ``DiffusionBValue``."""
    name = "sidecar"
    if not isinstance(sidecar, Mapping):
        path = Path(sidecar)
        name = path.name
        if not path.exists():
            raise InputError(f"sidecar not found: {path}")
        try:
            sidecar = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{name} is not valid JSON: {exc}") from exc
        if not isinstance(sidecar, Mapping):
            raise InputError(f"{name} must hold a JSON object")
    for key in SIDECAR_BVALUE_KEYS:
        if sidecar.get(key) is not None:
            return check_bvalues(sidecar[key], f"{name} '{key}'")
    raise InputError(f"{name} has no b-values (keys tried: {', '.join(SIDECAR_BVALUE_KEYS)})")


def load_bvals(path: str | os.PathLike) -> np.ndarray:
    """b-values from a ``.json`` sidecar or else an FSL-style ``.bval`` file."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return bvals_from_sidecar(path)
    return read_bvals(path)


def find_bvals(
    image_path: str | os.PathLike,
    bvals: str | os.PathLike | None = None,
    meta: Mapping[str, Any] | None = None,
) -> tuple[np.ndarray, str]:
    """b-values for a diffusion image and where they came from.

    Order: the explicit ``bvals`` file (``.bval`` or ``.json``); the ``.bval`` file beside the image
    (``dwi.nii.gz`` -> ``dwi.bval``); the image's sidecar metadata ``meta``.
    """
    if bvals is not None:
        return load_bvals(bvals), Path(bvals).name
    image_path = Path(image_path)
    stem = image_path.name
    for suffix in (".nii.gz", ".nii"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    sibling = image_path.with_name(stem + ".bval")
    if sibling.exists():
        return read_bvals(sibling), sibling.name
    if meta and any(meta.get(k) is not None for k in SIDECAR_BVALUE_KEYS):
        return bvals_from_sidecar(meta), f"{stem}.json"
    raise InputError(
        f"no b-values for {image_path.name}: give --bvals FILE (FSL .bval or JSON sidecar with 'bvalues'), "
        f"or put {stem}.bval beside the image"
    )


def resolve_bvalues(bvals: Any, image: Any = None) -> np.ndarray:
    """b-values for a diffusion :class:`~osteomri.io.image.Image` from whatever the caller has.

    ``bvals`` may be a path (``.bval`` or ``.json``), a sequence of numbers, or ``None`` (then the image's
    metadata ``bvalues``/``DiffusionBValue`` are used). When the image is 4-D, the count must match its
    last axis.
    """
    if bvals is None:
        meta = getattr(image, "meta", None) or {}
        if not any(meta.get(k) is not None for k in SIDECAR_BVALUE_KEYS):
            raise InputError("no b-values: give a .bval file or a sidecar with 'bvalues' for the DWI")
        b = bvals_from_sidecar(meta)
    elif isinstance(bvals, (str, os.PathLike)):
        b = load_bvals(bvals)
    else:
        b = check_bvalues(bvals, "b-values")
    data = getattr(image, "data", None)
    if data is not None and np.ndim(data) >= 4 and np.shape(data)[-1] != b.size:
        raise InputError(f"{b.size} b-values for a DWI with {np.shape(data)[-1]} volumes (shape {np.shape(data)})")
    return b
