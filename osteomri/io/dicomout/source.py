"""The source series a DICOM result points at: its headers, frame of reference and voxel grid.

A result is only written when the source is spatially consistent — one series (or several pooled series,
e.g. magnitude + phase), one study, one non-empty ``FrameOfReferenceUID``, one orientation, uniform slice
spacing (as :func:`osteomri.io.dicom.load_dicom_series` checks) — and when the map lies exactly on the source
grid. Anything else is one :class:`~osteomri.errors.InputError` line; an object that points at the wrong
images is never written.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from pydicom.dataset import Dataset

from osteomri.errors import InputError
from osteomri.io.dicom import _layout, _read_series
from osteomri.io.image import Image

_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
# Type 2 patient/study attributes the result IODs copy from the source; empty when the source lacks them.
_TYPE2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime", "StudyID",
          "AccessionNumber", "ReferringPhysicianName")


@dataclass
class DicomSource:
    """One source series: ``datasets`` (headers, no pixels), its RAS+ mm ``affine`` and ``shape`` (x, y, z)."""

    label: str
    datasets: list[Dataset]
    affine_ras: np.ndarray
    shape: tuple[int, int, int]
    pseudonymized: bool = False
    paths: list = field(default_factory=list)  # the source files (for a de-identified copy of the images)

    @property
    def frame_of_reference_uid(self) -> str:
        return str(self.datasets[0].FrameOfReferenceUID)

    @property
    def study_uid(self) -> str:
        return str(self.datasets[0].StudyInstanceUID)

    @property
    def series_uids(self) -> list[str]:
        return sorted({str(d.SeriesInstanceUID) for d in self.datasets})

    @property
    def affine_lps(self) -> np.ndarray:
        return _LPS @ self.affine_ras

    def check_grid(self, image: Image, what: str) -> None:
        """Raise unless ``image`` lies on this source's voxel grid (shape and affine within 1 µm)."""
        if tuple(image.spatial_shape) != tuple(self.shape) or not np.allclose(image.affine, self.affine_ras,
                                                                              atol=1e-3):
            raise InputError(f"{what} is not on the voxel grid of the {self.label} DICOM series (shape "
                             f"{tuple(image.spatial_shape)} vs {tuple(self.shape)}); a DICOM object referencing "
                             "that series would point at the wrong images")

    def geometry(self) -> tuple[list[np.ndarray], list[float], list[float], float]:
        """Per-slice ImagePositionPatient (LPS), ImageOrientationPatient, PixelSpacing (row, column), slice gap."""
        a = self.affine_lps
        row_dir = a[:3, 0] / np.linalg.norm(a[:3, 0])
        col_dir = a[:3, 1] / np.linalg.norm(a[:3, 1])
        positions = [(a @ np.array([0.0, 0.0, k, 1.0]))[:3] for k in range(self.shape[2])]
        spacing = [float(np.linalg.norm(a[:3, 1])), float(np.linalg.norm(a[:3, 0]))]
        return positions, [*map(float, row_dir), *map(float, col_dir)], spacing, float(np.linalg.norm(a[:3, 2]))

    def with_pseudonyms(self, pseudonymizer) -> DicomSource:
        """This source with de-identified headers (:class:`~osteomri.io.dicomout.identity.Pseudonymizer`)."""
        return DicomSource(self.label, pseudonymizer.anonymize_all(self.datasets), self.affine_ras.copy(),
                           self.shape, pseudonymized=True, paths=list(self.paths))


def frames_of(data: np.ndarray) -> np.ndarray:
    """Volume (x, y, z) -> DICOM frames (z, rows, columns)."""
    return np.ascontiguousarray(np.transpose(np.asarray(data), (2, 1, 0)))


def read_source(path: str | os.PathLike | Sequence[str | os.PathLike], label: str = "source",
                series_uid: str | Sequence[str] | None = None) -> DicomSource:
    """Headers and grid of the DICOM series at ``path``; a clear error when it is not spatially consistent."""
    chosen, frames, where = _read_series(path, series_uid)
    missing_for = [h.path.name for h in chosen if not str(h.ds.get("FrameOfReferenceUID", "") or "").strip()]
    if missing_for:
        raise InputError(f"{label} DICOM series has no FrameOfReferenceUID (e.g. {missing_for[0]}): results "
                         "cannot be registered to its images")
    for keyword, what in (("FrameOfReferenceUID", "frames of reference"), ("StudyInstanceUID", "studies")):
        values = {str(h.ds.get(keyword, "") or "") for h in chosen}
        if len(values) > 1 or "" in values:
            raise InputError(f"{label} DICOM series mixes {len(values)} {what} ({where}): choose one spatially "
                             "consistent series")
    layout = _layout(frames)
    rows, cols = frames[0].rows, frames[0].columns
    datasets = []
    for h in chosen:
        ds = copy.deepcopy(h.ds)
        for keyword in _TYPE2:
            if keyword not in ds:
                setattr(ds, keyword, "")
        _share_frame_geometry(ds)
        datasets.append(ds)
    return DicomSource(label, datasets, layout.affine_ras.copy(), (cols, rows, layout.n_slices),
                       paths=[h.path for h in chosen])


def _share_frame_geometry(ds: Dataset) -> None:
    """Enhanced multi-frame sources (e.g. Philips) may keep pixel measures and orientation per frame only;
    highdicom looks for them in the shared functional groups. The orientation and pixel spacing were checked
    to be common to all frames (:func:`~osteomri.io.dicom._layout`), so frame 1's are shared here (in the
    in-memory header used as a template, never in a file)."""
    per = ds.get("PerFrameFunctionalGroupsSequence")
    if not per:
        return
    from pydicom.sequence import Sequence as DicomSequence

    if "SharedFunctionalGroupsSequence" not in ds or not ds.SharedFunctionalGroupsSequence:
        ds.SharedFunctionalGroupsSequence = DicomSequence([Dataset()])
    shared = ds.SharedFunctionalGroupsSequence[0]
    for keyword in ("PixelMeasuresSequence", "PlaneOrientationSequence"):
        if keyword not in shared and keyword in per[0]:
            setattr(shared, keyword, copy.deepcopy(per[0][keyword].value))
