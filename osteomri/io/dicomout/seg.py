"""DICOM Segmentation of the vertebrae and the measurement ROIs; and the one reader of DICOM SEG files.

**Binary, not labelmap.** A measurement ROI lies *inside* its vertebra, so the two segments overlap; a
labelmap SEG (one segment per voxel) cannot hold both, a BINARY SEG can. BINARY SEG is also what every
PACS, viewer (OHIF, 3D Slicer, Horos) and validator (dciodvfy) of the last decade knows, whereas the Label Map
Segmentation SOP class (2024) is not yet widely supported.

Segments, for each level present (superior to inferior): ``"<level> vertebra"`` (Anatomical Structure /
the level's SNOMED CT vertebra code) then ``"<level> ROI"`` (Anatomical Structure / Bone marrow, anatomic
region the vertebra). Segment labels start with the level so that a SEG written here is also a valid reader-ROI
file (:func:`osteomri.vertebrae.rois.load_reader_roi`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from osteomri.errors import InputError
from osteomri.io.dicomout import codes
from osteomri.io.dicomout._common import SERIES_NUMBERS, equipment, finish, save
from osteomri.io.dicomout.source import DicomSource, frames_of
from osteomri.io.image import Image

_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])


@dataclass
class Segment:
    """One segment to write: ``label`` (e.g. ``"L3 ROI"``), boolean ``mask`` on the source grid, level, kind."""

    label: str
    mask: np.ndarray
    level: str
    kind: str = "vertebra"  # or "roi"
    description: str = ""


def segmentation(segments: list[Segment], source: DicomSource, *, algorithm: str = "osteomri",
                 series_number: int | None = None):
    """A BINARY ``highdicom.seg.Segmentation`` of ``segments`` (masks on the grid of ``source``)."""
    import highdicom as hd

    if not segments:
        raise InputError("no segment to write")
    descriptions, arrays = [], []
    algo = hd.AlgorithmIdentificationSequence(name=algorithm[:64], family=codes.MORPHOLOGICAL_OPERATIONS,
                                              version=equipment()["software_versions"])
    for number, seg in enumerate(segments, start=1):
        mask = np.asarray(seg.mask, dtype=bool)
        if mask.shape != tuple(source.shape):
            raise InputError(f"segment {seg.label!r} has shape {mask.shape}, the {source.label} series "
                             f"{tuple(source.shape)}")
        vertebra = codes.vertebra(seg.level)
        if seg.kind == "roi":
            prop, regions = codes.BONE_MARROW, [vertebra]
        else:
            prop, regions = vertebra, None
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number, segment_label=seg.label[:64], segmented_property_category=codes.ANATOMICAL_STRUCTURE,
            segmented_property_type=prop, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algo, anatomic_regions=regions,
            tracking_uid=hd.UID(), tracking_id=seg.label[:64]))
        arrays.append(frames_of(mask).astype(np.uint8))
    pixel_array = np.stack(arrays, axis=-1)  # (frames, rows, columns, segments)
    positions, orientation, spacing, gap = source.geometry()
    seg_ds = hd.seg.Segmentation(
        source_images=source.datasets,
        pixel_array=pixel_array,
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions,
        series_instance_uid=hd.UID(),
        series_number=series_number or SERIES_NUMBERS["seg"],
        sop_instance_uid=hd.UID(),
        instance_number=1,
        plane_positions=[hd.PlanePositionSequence("PATIENT", p) for p in positions],
        plane_orientation=hd.PlaneOrientationSequence("PATIENT", orientation),
        pixel_measures=hd.PixelMeasuresSequence(spacing, gap, gap),
        omit_empty_frames=True,
        series_description="osteomri vertebrae and ROIs",
        **equipment(),
    )
    return finish(seg_ds, source)


def write_segmentation(segments: list[Segment], source: DicomSource, target: str | Path, **kwargs) -> Path:
    return save(segmentation(segments, source, **kwargs), Path(target))


# --- reading ----------------------------------------------------------------------------------------------
@dataclass
class SegmentMasks:
    """Segments of a DICOM SEG: ``masks[number]`` boolean arrays on the grid ``affine`` (RAS+ mm),
    ``labels[number]`` the segment labels; ``meta`` holds the SEG's SOP/series UIDs and referenced series."""

    masks: dict[int, np.ndarray]
    labels: dict[int, str]
    affine: np.ndarray
    meta: dict = field(default_factory=dict)

    def image(self, number: int) -> Image:
        return Image(self.masks[number], self.affine.copy(), {"Source": "DICOM SEG", "Segment": self.labels[number]})


def load_dicom_seg(path: str | Path, reference: Image | None = None) -> SegmentMasks:
    """Read a DICOM SEG (binary or fractional; fractional thresholded at 0.5) with highdicom.

    Without ``reference`` the masks are on the SEG's own grid, axes ordered as :func:`load_dicom_series`
    orders them (DICOM row direction, column direction, slice). With ``reference`` (an :class:`Image`, e.g.
    the source series) they are placed on its grid exactly; segment voxels that do not fall on a voxel of the
    reference grid are an error (the SEG belongs to other images).
    """
    import highdicom as hd

    path = Path(path)
    if not path.exists():
        raise InputError(f"DICOM SEG file not found: {path}")
    try:
        seg = hd.seg.segread(str(path))
    except Exception as exc:  # pydicom/highdicom raise several types
        raise InputError(f"cannot read {path.name} as DICOM SEG: {exc}") from exc
    numbers = [int(d.SegmentNumber) for d in seg.SegmentSequence]
    labels = {int(d.SegmentNumber): str(d.SegmentLabel) for d in seg.SegmentSequence}
    try:
        vol = seg.get_volume(segment_numbers=numbers, combine_segments=False)
    except Exception as exc:  # frames that do not form a regular volume, missing geometry
        raise InputError(f"DICOM SEG {path.name}: its frames do not form one volume ({exc})") from exc
    arr = np.asarray(vol.array)
    if arr.ndim == 3:
        arr = arr[..., None]
    affine = _LPS @ np.asarray(vol.affine)[:, [2, 1, 0, 3]]  # (slice, row, col) LPS -> (col, row, slice) RAS
    arr = np.transpose(arr, (2, 1, 0, 3))
    masks = {n: arr[..., i] > (0.5 if arr.dtype.kind == "f" else 0) for i, n in enumerate(numbers)}
    if reference is not None:
        masks = {n: _on_grid(m, affine, reference, path.name) for n, m in masks.items()}
        affine = np.asarray(reference.affine, float).copy()
    meta = {"SOPInstanceUID": str(seg.SOPInstanceUID), "SeriesInstanceUID": str(seg.SeriesInstanceUID),
            "ReferencedSeriesInstanceUIDs": sorted({str(s.SeriesInstanceUID)
                                                   for s in seg.get("ReferencedSeriesSequence", [])})}
    return SegmentMasks(masks, labels, affine, meta)


def _on_grid(mask: np.ndarray, affine: np.ndarray, reference: Image, name: str) -> np.ndarray:
    """Place ``mask`` (grid ``affine``) on the grid of ``reference``; every set voxel must land on a voxel."""
    out = np.zeros(reference.spatial_shape, dtype=bool)
    ijk = np.argwhere(mask)
    if ijk.size == 0:
        return out
    to_ref = np.linalg.solve(np.asarray(reference.affine, float), affine)
    pts = ijk @ to_ref[:3, :3].T + to_ref[:3, 3]
    idx = np.rint(pts).astype(int)
    if np.abs(pts - idx).max() > 1e-3 or (idx < 0).any() or (idx >= np.array(out.shape)).any():
        raise InputError(f"DICOM SEG {name} does not lie on the grid of the reference images")
    out[idx[:, 0], idx[:, 1], idx[:, 2]] = True
    return out
