"""One entry point for every image input: NIfTI file, DICOM series folder, or toolbox ``.mat`` file."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.io.nifti import is_nifti, load_complex_pair, load_nifti

PathOrImage = str | os.PathLike | Image


def load_image(source: PathOrImage, *, series_uid: str | Sequence[str] | None = None) -> Image:
    """Load ``source`` by its kind; an :class:`Image` is returned unchanged.

    ``series_uid`` (DICOM only): the series to read from a folder holding several (a list pools them, e.g. a
    magnitude and a phase series).

    - ``*.nii`` / ``*.nii.gz``: NIfTI with its JSON sidecar; a BIDS ``part-mag`` (or ``part-real``) file whose
      ``part-phase`` (``part-imag``) sibling exists is combined with it into complex data;
    - ``*.mat``: ISMRM fat–water toolbox or Bydder format (:mod:`osteomri.io.matlab`);
    - a folder (or ``*.dcm``): DICOM series (:mod:`osteomri.io.dicom`).
    """
    if isinstance(source, Image):
        return source
    path = Path(source)
    if not path.exists():
        raise InputError(f"input not found: {path}")
    if is_nifti(path):
        partner = complex_partner(path)
        if partner is not None:
            kind = "magnitude_phase" if "_part-mag" in path.name else "real_imaginary"
            return load_complex_pair(path, partner, kind=kind)
        return _with_bvalues(load_nifti(path), path)
    if path.suffix.lower() == ".mat":
        from osteomri.io.matlab import load_toolbox_mat

        return load_toolbox_mat(path)
    if is_dicom_source(path):
        from osteomri.io.dicom import load_dicom_series

        return load_dicom_series(path, series_uid=series_uid)
    raise InputError(f"unsupported input {path.name}: expected .nii/.nii.gz, .mat or a DICOM folder")


def is_dicom_source(source: object) -> bool:
    """True for a path that :func:`load_image` reads as a DICOM series: a folder, ``*.dcm``, ``*.ima`` or a
    file without suffix."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    path = Path(source)
    return path.is_dir() or path.suffix.lower() in (".dcm", ".ima", "")


_BIDS_PARTS = {"_part-mag": "_part-phase", "_part-real": "_part-imag"}


def complex_partner(path: Path) -> Path | None:
    """The BIDS ``part-phase``/``part-imag`` sibling of a ``part-mag``/``part-real`` NIfTI, if it exists."""
    for first, second in _BIDS_PARTS.items():
        if first in path.name:
            partner = path.with_name(path.name.replace(first, second))
            return partner if partner.exists() else None
    return None


def _with_bvalues(image: Image, path: Path) -> Image:
    """A 4-D NIfTI with a ``.bval`` file beside it (BIDS/FSL) gets its b-values in ``meta['bvalues']`` (s/mm^2;
    read by :func:`osteomri.io.bvals.find_bvals`), unless its sidecar already gives them; see
    :attr:`Image.bvalues_s_mm2`."""
    from osteomri.io.bvals import SIDECAR_BVALUE_KEYS, read_bvals
    from osteomri.io.nifti import NIFTI_SUFFIXES

    if image.data.ndim != 4 or any(image.meta.get(k) is not None for k in SIDECAR_BVALUE_KEYS):
        return image
    stem = next(path.name[: -len(s)] for s in NIFTI_SUFFIXES if path.name.endswith(s))
    sibling = path.with_name(stem + ".bval")
    if not sibling.exists():
        return image  # not a DWI, or its b-values are given elsewhere (--bvals)
    bvals = read_bvals(sibling)  # a malformed .bval is an InputError naming it
    if bvals.size == image.data.shape[-1]:  # else left to the caller (an explicit --bvals may apply instead)
        image.meta["bvalues"] = bvals.tolist()
    return image
