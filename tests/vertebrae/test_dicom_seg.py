"""Reader ROIs as DICOM SEG (highdicom): segment labels name the levels; geometry from the SEG itself."""

from __future__ import annotations

from pathlib import Path

import dicom_factory
import numpy as np
import pydicom
import pytest

from osteomri.errors import UnknownLabelError
from osteomri.io.dicom import load_dicom_series
from osteomri.vertebrae.labels import LEVEL_CODES, resample_labels
from osteomri.vertebrae.rois import load_reader_roi

hd = pytest.importorskip("highdicom")


def _write_seg(tmp_path: Path, labels: list[str]) -> tuple[Path, Path, np.ndarray]:
    from pydicom.sr.codedict import codes

    vol = np.random.default_rng(0).integers(0, 1000, size=(20, 16, 6)).astype(np.int16)
    geometry = dicom_factory.Geometry()
    paths = dicom_factory.write_classic_series(tmp_path / "src", {"": vol}, geometry)
    sources = sorted((pydicom.dcmread(p) for p in paths),
                     key=lambda d: float(np.dot(np.asarray(d.ImagePositionPatient, float), geometry.normal)))
    for d in sources:  # patient/study module attributes a SEG copies from its sources
        d.PatientID, d.PatientName, d.PatientBirthDate, d.PatientSex = "p1", "Doe^John", "", "O"
        d.StudyID, d.StudyDate, d.StudyTime, d.AccessionNumber, d.ReferringPhysicianName = "1", "20240101", "000000", \
            "", ""
    mask = np.zeros((len(sources), 16, 20), np.uint8)  # frames (slices), rows, columns
    mask[1:3, 4:8, 5:10] = 1
    mask[3:5, 8:12, 10:15] = 2
    descriptions = [hd.seg.SegmentDescription(
        segment_number=i + 1, segment_label=label, segmented_property_category=codes.SCT.Tissue,
        segmented_property_type=codes.SCT.Tissue, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
        for i, label in enumerate(labels)]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=mask, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=descriptions, series_instance_uid=hd.UID(), series_number=2,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="osteomri tests", manufacturer_model_name="t",
        software_versions="0", device_serial_number="1")
    seg.save_as(tmp_path / "reader.dcm")
    return tmp_path / "reader.dcm", tmp_path / "src", np.transpose(mask, (2, 1, 0))  # -> (column, row, slice)


def test_dicom_seg_reader_roi_lands_on_the_source_grid(tmp_path):
    seg_path, src, expected = _write_seg(tmp_path, ["L2", "L3 ROI"])
    source = load_dicom_series(src)
    roi = load_reader_roi(seg_path)
    on_grid = np.asarray(resample_labels(roi, source).data)
    assert np.array_equal(on_grid == LEVEL_CODES["L2"], expected == 1)
    assert np.array_equal(on_grid == LEVEL_CODES["L3"], expected == 2)


def test_dicom_seg_with_unnamed_segments_is_refused(tmp_path):
    seg_path, _, _ = _write_seg(tmp_path, ["L2", "vertebra"])
    with pytest.raises(UnknownLabelError, match="does not name a vertebral level"):
        load_reader_roi(seg_path)
