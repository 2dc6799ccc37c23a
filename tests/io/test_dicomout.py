"""DICOM results: Parametric Map and SEG round trips on a multi-echo source series, validator, refusals."""

from __future__ import annotations

from pathlib import Path

import dicom_factory
import numpy as np
import pydicom
import pytest

from osteomri.errors import InputError
from osteomri.io import load_image
from osteomri.io.dicomout import Segment, load_dicom_seg, read_source, write_parametric_map, write_segmentation
from osteomri.models.registry import MapSpec

pytest.importorskip("highdicom")

SHAPE = (14, 12, 6)
TE_MS = [1.2, 2.4, 3.6]
PDFF = MapSpec("test_pdff_percent", "%", "proton-density fat fraction", "pdff", "test")


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory) -> Path:
    """An oblique multi-echo magnitude+phase classic series (the reader's hard case)."""
    folder = tmp_path_factory.mktemp("megre")
    sig = dicom_factory.multi_echo_signal(SHAPE, [t * 1e-3 for t in TE_MS])
    vols = {"M": np.round(np.abs(sig)), "P": np.round(np.angle(sig) * 1000)}
    dicom_factory.write_classic_series(folder, vols, dicom_factory.oblique_geometry(25.0),
                                       dicom_factory.SeriesSpec(echo_times_ms=TE_MS, signed=True))
    return folder


def _map(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = (rng.random(SHAPE) * 100).astype(np.float32)
    data[:3] = np.nan  # outside the fitted mask
    return data


def test_parametric_map_round_trip_equals_the_map_and_the_source_geometry(source_dir, tmp_path, dciodvfy):
    source_image = load_image(source_dir)
    data = _map()
    path = write_parametric_map(source_image.with_data(data), PDFF, read_source(source_dir, "megre"),
                                tmp_path / "pdff.dcm")
    assert dciodvfy(path) == []
    back = load_image(path)  # osteomri reads its own Parametric Map
    assert back.data.dtype == np.float32
    assert np.array_equal(back.data, data, equal_nan=True)  # bit-exact, NaN where no value
    np.testing.assert_allclose(back.affine, source_image.affine, atol=1e-6)
    assert back.meta["Units"] == "%" and back.meta["Quantity"] == "Fat fraction"
    ds = pydicom.dcmread(path)
    src = pydicom.dcmread(next(source_dir.iterdir()))
    assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID and ds.StudyInstanceUID == src.StudyInstanceUID
    assert ds.SeriesInstanceUID != src.SeriesInstanceUID
    assert ds.ReferencedSeriesSequence[0].SeriesInstanceUID == src.SeriesInstanceUID
    assert ds.PatientID == src.PatientID and ds.PatientName == src.PatientName
    rwvm = ds.SharedFunctionalGroupsSequence[0].RealWorldValueMappingSequence[0]
    assert rwvm.MeasurementUnitsCodeSequence[0].CodingSchemeDesignator == "UCUM"
    assert rwvm.QuantityDefinitionSequence[0].ConceptCodeSequence[0].CodeValue == "129100"


def test_map_off_the_source_grid_is_refused(source_dir, tmp_path):
    image = load_image(source_dir)
    shifted = image.with_data(_map())
    shifted.affine[:3, 3] += 2.0
    with pytest.raises(InputError, match="not on the voxel grid"):
        write_parametric_map(shifted, PDFF, read_source(source_dir), tmp_path / "x.dcm")
    assert not (tmp_path / "x.dcm").exists()


def test_source_without_frame_of_reference_is_one_clear_error(tmp_path):
    vol = {"": np.ones((6, 5, 3))}
    dicom_factory.write_classic_series(tmp_path / "s", vol, edit=lambda ds, *a: delattr(ds, "FrameOfReferenceUID"))
    with pytest.raises(InputError, match="no FrameOfReferenceUID"):
        read_source(tmp_path / "s", "megre")


def test_pooled_series_with_two_frames_of_reference_is_refused(tmp_path):
    a = dicom_factory.SeriesSpec(echo_times_ms=[2.0])
    b = dicom_factory.SeriesSpec(echo_times_ms=[2.0])
    dicom_factory.write_classic_series(tmp_path / "s", {"M": np.ones((6, 5, 3))}, spec=a)
    dicom_factory.write_classic_series(tmp_path / "s", {"P": np.ones((6, 5, 3))}, spec=b)
    with pytest.raises(InputError, match="frames of reference"):
        read_source(tmp_path / "s", "megre", series_uid=[a.series_uid, b.series_uid])


def test_segmentation_round_trip_overlapping_segments(source_dir, tmp_path, dciodvfy):
    image = load_image(source_dir)
    body = np.zeros(SHAPE, bool)
    body[3:11, 2:9, 1:5] = True
    roi = np.zeros(SHAPE, bool)
    roi[5:9, 4:7, 2:4] = True  # inside the body: the segments overlap
    other = np.zeros(SHAPE, bool)
    other[0:2, 0:2, 5] = True
    segments = [Segment("L3 vertebra", body, "L3"), Segment("L3 ROI", roi, "L3", "roi"),
                Segment("L4 vertebra", other, "L4")]
    path = write_segmentation(segments, read_source(source_dir), tmp_path / "seg.dcm")
    assert dciodvfy(path) == []
    back = load_dicom_seg(path, reference=image)
    assert back.labels == {1: "L3 vertebra", 2: "L3 ROI", 3: "L4 vertebra"}
    for number, seg in enumerate(segments, start=1):
        assert np.array_equal(back.masks[number], seg.mask)
    ds = pydicom.dcmread(path)
    assert ds.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue == "36470004"  # L3 vertebra
    assert ds.SegmentSequence[2].SegmentedPropertyTypeCodeSequence[0].CodeValue == "11994002"  # L4 vertebra
    assert ds.SegmentSequence[1].SegmentedPropertyTypeCodeSequence[0].CodeValue == "14016003"  # bone marrow
    # the reader-ROI path of the measurement layer reads the same file: the ROI segment, on the source grid
    from osteomri.vertebrae.labels import LEVEL_CODES, resample_labels
    from osteomri.vertebrae.rois import load_reader_roi

    on_grid = np.asarray(resample_labels(load_reader_roi(path), image).data)
    assert np.array_equal(on_grid == LEVEL_CODES["L3"], roi)
    assert not (on_grid == LEVEL_CODES["L4"]).any()  # vertebra segments are not reader ROIs


def test_seg_of_other_images_is_refused_on_a_reference_grid(source_dir, tmp_path):
    image = load_image(source_dir)
    mask = np.zeros(SHAPE, bool)
    mask[4:6, 4:6, 2] = True
    path = write_segmentation([Segment("L2 ROI", mask, "L2", "roi")], read_source(source_dir), tmp_path / "s.dcm")
    moved = image.with_data(np.zeros(SHAPE))
    moved.affine[:3, 3] += 0.37
    with pytest.raises(InputError, match="does not lie on the grid"):
        load_dicom_seg(path, reference=moved)


def test_measurement_report_numbers_and_references(source_dir, tmp_path, dciodvfy):
    import pandas as pd

    from osteomri.io.dicomout.pmap import parametric_map
    from osteomri.io.dicomout.seg import segmentation
    from osteomri.io.dicomout.sr import MeasuredMap, read_measurement_report, write_measurement_report

    image = load_image(source_dir)
    source = read_source(source_dir, "megre")
    pm = parametric_map(image.with_data(_map()), PDFF, source)
    masks = {lv: np.zeros(SHAPE, bool) for lv in ("L3", "L4")}
    masks["L3"][4:8, 3:6, 1:3] = True
    masks["L4"][8:12, 3:6, 3:5] = True
    seg = segmentation([Segment(f"{lv} ROI", m, lv, "roi") for lv, m in masks.items()], source)
    table = pd.DataFrame({"level": ["L3", "L4"], "map": ["test_pdff_percent"] * 2, "n_voxels": [24, 1],
                          "mean": [12.3456789012345, 40.5], "median": [11.0, 40.5], "sd": [3.21, np.nan]})
    screening = pd.DataFrame({"marker": ["test_pdff_percent"], "value": [26.4], "likelihood_ratio": [2.5],
                              "posttest_probability": [0.61]})
    measured = {"test_pdff_percent": MeasuredMap(PDFF, pm, seg, {"L3": 1, "L4": 2}, source.series_uids[0])}
    path = write_measurement_report(tmp_path / "sr.dcm", table, measured, source, vbq=3.14, screening=screening)
    assert dciodvfy(path) == []
    back = read_measurement_report(path)
    l3 = back[back.group == "L3 pdff"]
    assert set(l3.segment) == {1.0} and set(l3.source_sop) == {pm.SOPInstanceUID}
    got = {(r.derivation, r.quantity): r.value for r in l3.itertuples()}
    assert got[("Mean", "129100")] == pytest.approx(12.3456789012345, rel=1e-12)
    assert got[("Median", "129100")] == 11.0 and got[("Standard Deviation", "129100")] == 3.21
    assert got[("", "VOXELS")] == 24
    l4 = back[back.group == "L4 pdff"]
    assert set(l4.segment) == {2.0} and "Standard Deviation" not in set(l4.derivation)  # NaN SD left out
    assert back[back.group == "VBQ"].value.tolist() == [3.14]
    scr = back[back.group == "screening test_pdff_percent"].set_index("quantity").value
    assert scr["MARKERVAL"] == 26.4 and scr["LR"] == 2.5 and scr["POSTTEST"] == 0.61


def test_pseudonymizer_basic_profile_actions():
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as DicomSequence

    from osteomri.io.dicomout.identity import Pseudonymizer, basic_profile

    ds = Dataset()
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Doe^John", "MRN-1", "19600229"
    ds.StudyDate, ds.StudyTime, ds.AcquisitionDateTime = "20240301", "235959", "20240301120000"
    ds.InstitutionName, ds.OperatorsName, ds.AccessionNumber = "General Hospital", "Tech^A", "A123"
    ds.SOPInstanceUID, ds.StudyInstanceUID = "1.2.3.4.5", "1.2.3.4"
    ds.EchoTime, ds.Modality = 2.3, "MR"
    ref = Dataset()
    ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.4", "1.2.3.4.5"
    ds.ReferencedImageSequence = DicomSequence([ref])  # X/Z/U*: removed
    series = Dataset()
    series.SeriesInstanceUID = "1.2.3.4.6"
    series.ReferencedInstanceSequence = DicomSequence([ref])
    ds.ReferencedSeriesSequence = DicomSequence([series])  # not in the profile: its UIDs are mapped
    ds.add_new(0x00291010, "LO", "private vendor text")
    key = Pseudonymizer("a-secret-key")
    out = key.anonymize(ds)
    assert len(basic_profile()) > 500  # PS3.15 Table E.1-1
    assert out.PatientID == Pseudonymizer("a-secret-key").anonymize(ds).PatientID != "MRN-1"
    assert out.PatientID != Pseudonymizer("other-secret").anonymize(ds).PatientID
    assert str(out.PatientName) != "Doe^John" and "InstitutionName" not in out and "OperatorsName" not in out
    assert out.SOPInstanceUID.startswith("2.25.") and out.SOPInstanceUID != ds.SOPInstanceUID
    assert "ReferencedImageSequence" not in out
    item = out.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
    assert item.ReferencedSOPInstanceUID == out.SOPInstanceUID  # one mapping for every occurrence of a UID
    assert item.ReferencedSOPClassUID == ref.ReferencedSOPClassUID  # not identifying: kept
    shift = key.date_shift_days
    assert 62 <= shift <= 730
    import datetime as dt

    assert dt.date(2024, 3, 1) - dt.datetime.strptime(out.StudyDate, "%Y%m%d").date() == dt.timedelta(days=shift)
    assert "AcquisitionDateTime" not in out and len(out.StudyTime) == 6 and out.StudyTime != "235959"
    assert out.EchoTime == 2.3 and out.Modality == "MR"  # acquisition parameters kept
    assert (0x0029, 0x1010) not in out and out.PatientIdentityRemoved == "YES"
    assert ds.PatientID == "MRN-1"  # the input is not modified
