"""DICOM series reader: real pydicom/nibabel-shipped MR files and series written by ``dicom_factory``.

Expectations are computed from the DICOM tags or from the factory's known truth, never from the reader.
"""

from __future__ import annotations

import json
from pathlib import Path

import dicom_factory as fac
import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from osteomri.errors import InputError, MetadataError
from osteomri.io.dicom import list_dicom_series, load_dicom_series

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
IDENTIFIERS = ("Synthetic^Phantom", "SYNTH-001", "19700101", "Nowhere Hospital")


def _independent_affine(iop, ipp_first, pixel_spacing, slice_vec) -> np.ndarray:
    iop = np.asarray(iop, float)
    a = np.eye(4)
    a[:3, 0] = iop[:3] * float(pixel_spacing[1])
    a[:3, 1] = iop[3:] * float(pixel_spacing[0])
    a[:3, 2] = slice_vec
    a[:3, 3] = np.asarray(ipp_first, float)
    return LPS_TO_RAS @ a


def _no_identifiers(meta: dict) -> None:
    text = json.dumps(meta, default=str)
    for ident in IDENTIFIERS:
        assert ident not in text
    for key in ("PatientName", "PatientID", "PatientBirthDate", "InstitutionName", "SeriesInstanceUID"):
        assert key not in meta


# ------------------------------------------------------------------------------------------------------
# Real files shipped with pydicom and nibabel
# ------------------------------------------------------------------------------------------------------
MR_SMALL_VARIANTS = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm", "MR_small_implicit.dcm",
                     "MR_small_expb.dcm"]


@pytest.mark.parametrize("name", MR_SMALL_VARIANTS)
def test_pydicom_mr_small_shape_affine_values(name):
    path = get_testdata_file(name, download=False)
    ds = pydicom.dcmread(path)
    img = load_dicom_series(path)
    assert img.data.shape == (ds.Columns, ds.Rows, 1)
    np.testing.assert_array_equal(img.data[:, :, 0], ds.pixel_array.T.astype(np.float32))
    iop = np.array(ds.ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    expected = _independent_affine(iop, ds.ImagePositionPatient, ds.PixelSpacing, normal * float(ds.SliceThickness))
    np.testing.assert_allclose(img.affine, expected, atol=1e-6)
    assert img.meta["EchoTime"] == pytest.approx(float(ds.EchoTime) / 1000)
    assert img.meta["RepetitionTime"] == pytest.approx(float(ds.RepetitionTime) / 1000)
    assert img.meta["Manufacturer"] == ds.Manufacturer
    meta_text = json.dumps(img.meta, default=str)
    assert str(ds.PatientName) not in meta_text and str(ds.PatientID) not in meta_text
    assert "InstitutionName" not in img.meta and "PatientName" not in img.meta


def test_pydicom_mr_small_rescale_applied(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm", download=False))
    raw = ds.pixel_array.astype(float)
    ds.RescaleSlope, ds.RescaleIntercept = 2.5, -10
    ds.save_as(tmp_path / "rescaled.dcm")
    img = load_dicom_series(tmp_path / "rescaled.dcm")
    np.testing.assert_allclose(img.data[:, :, 0], raw.T * 2.5 - 10, rtol=1e-6)


def test_pydicom_truncated_file_message():
    with pytest.raises(InputError, match="MR_truncated.dcm"):
        load_dicom_series(get_testdata_file("MR_truncated.dcm", download=False))


def test_enhanced_multiframe_philips_real_file(philips_enhanced):
    ds = pydicom.dcmread(philips_enhanced)
    img = load_dicom_series(philips_enhanced)
    per = ds.PerFrameFunctionalGroupsSequence
    shared = ds.SharedFunctionalGroupsSequence[0]
    n = int(ds.NumberOfFrames)
    assert img.data.shape == (ds.Columns, ds.Rows, n)

    def fg(item, kw):
        return item[kw][0] if kw in item else shared[kw][0]

    iop = np.array(fg(per[0], "PlaneOrientationSequence").ImageOrientationPatient, float)
    normal = np.cross(iop[:3], iop[3:])
    ipp = np.array([fg(f, "PlanePositionSequence").ImagePositionPatient for f in per], float)
    order = np.argsort(ipp @ normal)
    spacing = fg(per[0], "PixelMeasuresSequence").PixelSpacing
    slice_vec = (ipp[order[-1]] - ipp[order[0]]) / (n - 1)
    expected = _independent_affine(iop, ipp[order[0]], spacing, slice_vec)
    np.testing.assert_allclose(img.affine, expected, atol=1e-4)
    # per-frame Pixel Value Transformation applied, frames placed by position along the normal
    pixels = ds.pixel_array
    for slot in (0, n // 2, n - 1):
        f = order[slot]
        pvt = fg(per[f], "PixelValueTransformationSequence")
        want = pixels[f].astype(float) * float(pvt.RescaleSlope) + float(pvt.RescaleIntercept)
        np.testing.assert_allclose(img.data[:, :, slot], want.T, rtol=1e-5)
    te = float(fg(per[0], "MREchoSequence").EffectiveEchoTime)
    assert img.meta["EchoTime"] == pytest.approx(te / 1000)
    assert img.meta["MagneticFieldStrength"] == pytest.approx(float(ds.MagneticFieldStrength))


def test_pydicom_enhanced_mr_sample_if_cached():
    """pydicom's enhanced multi-frame MR sample is a download-only file; used when already cached locally."""
    path = get_testdata_file("emri_small.dcm", download=False)
    if path is None:
        pytest.skip("emri_small.dcm is not shipped in the pydicom wheel and is not cached (no download in tests)")
    ds = pydicom.dcmread(path)
    img = load_dicom_series(path)
    assert img.data.shape[:2] == (ds.Columns, ds.Rows)
    assert np.prod(img.data.shape[2:]) == int(ds.NumberOfFrames)


# ------------------------------------------------------------------------------------------------------
# Synthetic multi-echo series written by the tests
# ------------------------------------------------------------------------------------------------------
TE_MS = [1.2, 2.4, 3.6, 4.8]
SHAPE = (6, 5, 4)


def _siemens_phase_stored(phase: np.ndarray) -> np.ndarray:
    """Siemens stores phase as 0..4095 with slope 2, intercept -4096: value = phase * 4096 / pi."""
    return np.mod(np.round(phase / np.pi * 2048) + 2048, 4096)


@pytest.fixture
def signal():
    return fac.multi_echo_signal(SHAPE, np.array(TE_MS) * 1e-3, seed=3)


def _check_complex(img, truth, geometry, atol_phase=2 * np.pi / 4096):
    assert img.data.shape == (*SHAPE, len(TE_MS))
    assert np.iscomplexobj(img.data)
    np.testing.assert_allclose(img.meta["EchoTime"], np.array(TE_MS) * 1e-3, rtol=1e-9)
    np.testing.assert_allclose(np.abs(img.data), np.round(np.abs(truth)), atol=1e-3 * np.abs(truth).max())
    dphi = np.angle(img.data * np.conj(truth))
    assert np.abs(dphi).max() <= atol_phase
    np.testing.assert_allclose(img.affine, fac.expected_affine_ras(geometry), atol=1e-5)
    _no_identifiers(img.meta)


def test_siemens_magnitude_phase_multiecho_shuffled(tmp_path, signal):
    geom = fac.oblique_geometry(25.0)
    spec = fac.SeriesSpec(echo_times_ms=TE_MS, slope={"M": 1.0, "P": 2.0}, intercept={"M": 0.0, "P": -4096.0},
                          seed=11)
    vols = {"P": _siemens_phase_stored(np.angle(signal)), "M": np.round(np.abs(signal))}
    files = fac.write_classic_series(tmp_path, vols, geom, spec)
    assert len(files) == 2 * np.prod(SHAPE[2:]) * len(TE_MS)
    img = load_dicom_series(tmp_path)
    _check_complex(img, signal, geom)
    assert "4096" in img.meta["PhaseScaling"]
    assert img.meta["MagneticFieldStrength"] == 3.0
    assert img.meta["RepetitionTime"] == pytest.approx(0.012)
    assert img.meta["EchoNumbers"] == [1, 2, 3, 4]
    # the same files given as a reversed list give the same image
    again = load_dicom_series(sorted(files, reverse=True))
    np.testing.assert_array_equal(again.data, img.data)


def test_ge_private_tag_phase_in_milliradians(tmp_path, signal):
    spec = fac.SeriesSpec(echo_times_ms=TE_MS, manufacturer="GE MEDICAL SYSTEMS", signed=True, ge_private=True)
    vols = {"M": np.round(np.abs(signal)), "P": np.round(np.angle(signal) * 1000)}
    fac.write_classic_series(tmp_path, vols, fac.Geometry(), spec)
    img = load_dicom_series(tmp_path)
    _check_complex(img, signal, fac.Geometry(), atol_phase=0.5e-3 + 1e-9)
    assert "1000" in img.meta["PhaseScaling"]


def test_real_imaginary_series(tmp_path, signal):
    spec = fac.SeriesSpec(echo_times_ms=TE_MS, manufacturer="Philips Medical Systems",
                          image_type={"R": ["ORIGINAL", "PRIMARY", "R_FFE", "R", "FFE"],
                                      "I": ["ORIGINAL", "PRIMARY", "I_FFE", "I", "FFE"]},
                          intercept=-2048.0)
    re, im = np.round(signal.real), np.round(signal.imag)
    fac.write_classic_series(tmp_path, {"R": re + 2048, "I": im + 2048}, fac.Geometry(), spec)
    img = load_dicom_series(tmp_path)
    assert img.data.shape == (*SHAPE, len(TE_MS))
    np.testing.assert_allclose(img.data, re + 1j * im, atol=1e-3)
    assert img.meta["ComplexSource"] == "real_imaginary"
    mag = load_dicom_series(tmp_path, complex_mode="magnitude")
    np.testing.assert_allclose(mag.data, np.abs(re + 1j * im), rtol=1e-5)
    pha = load_dicom_series(tmp_path, complex_mode="phase")
    np.testing.assert_allclose(pha.data, np.angle(re + 1j * im), atol=1e-5)
    assert pha.meta["Units"] == "rad"


def test_enhanced_multiframe_magnitude_phase_per_frame_rescale(tmp_path, signal):
    geom = fac.oblique_geometry(-15.0, pixel_spacing=(1.5, 0.9), slice_spacing=4.0)
    vols = {"M": np.round(np.abs(signal) / 2), "P": np.round(np.angle(signal) * 1000)}
    n_frames = 2 * SHAPE[2] * len(TE_MS)
    # magnitude frames first in write order: slope 2 for magnitude, 1 for phase (rescale is per frame)
    slopes = np.where(np.arange(n_frames) < n_frames // 2, 2.0, 1.0)
    spec = fac.SeriesSpec(echo_times_ms=TE_MS, manufacturer="Philips Medical Systems", signed=True, seed=5)
    path = fac.write_enhanced_series(tmp_path / "enh.dcm", vols, geom, spec, frame_slopes=slopes)
    img = load_dicom_series(path)
    assert img.data.shape == (*SHAPE, len(TE_MS))
    np.testing.assert_allclose(np.abs(img.data), 2 * np.round(np.abs(signal) / 2), atol=1e-3)
    assert np.abs(np.angle(img.data * np.conj(signal))).max() <= 0.5e-3 + 1e-9
    np.testing.assert_allclose(img.meta["EchoTime"], np.array(TE_MS) * 1e-3)
    np.testing.assert_allclose(img.affine, fac.expected_affine_ras(geom), atol=1e-5)
    assert img.meta["RepetitionTime"] == pytest.approx(0.012)
    assert img.meta["FlipAngle"] == pytest.approx(5.0)


def test_single_echo_magnitude_volume(tmp_path):
    vol = np.arange(np.prod(SHAPE)).reshape(SHAPE)
    spec = fac.SeriesSpec(echo_times_ms=[4.6], slope=0.5, intercept=3.0)
    fac.write_classic_series(tmp_path, {"M": vol}, fac.Geometry(), spec)
    img = load_dicom_series(tmp_path)
    assert img.data.shape == SHAPE and img.data.dtype == np.float32
    np.testing.assert_allclose(img.data, vol * 0.5 + 3.0)
    assert img.meta["EchoTime"] == pytest.approx(4.6e-3)
    np.testing.assert_allclose(img.echo_times_s, [4.6e-3])


def test_separate_magnitude_and_phase_series_pooled(tmp_path, signal):
    spec_m = fac.SeriesSpec(echo_times_ms=TE_MS, description="gre mag")
    spec_p = fac.SeriesSpec(echo_times_ms=TE_MS, description="gre phase", slope=2.0, intercept=-4096.0)
    fac.write_classic_series(tmp_path / "m", {"M": np.round(np.abs(signal))}, fac.Geometry(), spec_m)
    fac.write_classic_series(tmp_path / "p", {"P": _siemens_phase_stored(np.angle(signal))}, fac.Geometry(), spec_p)
    _check_complex(load_dicom_series(tmp_path), signal, fac.Geometry())  # the pair is recognised (issue 13 item 9)
    phase_only = load_dicom_series(tmp_path, series_uid=spec_p.series_uid)
    assert not np.iscomplexobj(phase_only.data) and phase_only.meta["Units"] == "rad"
    img = load_dicom_series(tmp_path, series_uid=[spec_m.series_uid, spec_p.series_uid])
    _check_complex(img, signal, fac.Geometry())
    with pytest.raises(InputError, match="series 1.2.3.4 not found"):
        load_dicom_series(tmp_path, series_uid="1.2.3.4")
    # a third series: no guessing, the choice is the user's
    spec_o = fac.SeriesSpec(echo_times_ms=TE_MS, description="other")
    fac.write_classic_series(tmp_path / "o", {"M": np.round(np.abs(signal))}, fac.Geometry(), spec_o)
    with pytest.raises(InputError, match=r"3 DICOM series .*choose one with series_uid") as err:
        load_dicom_series(tmp_path)
    assert spec_m.series_uid in str(err.value) and spec_p.series_uid in str(err.value)


def test_magnitude_and_phase_series_of_different_frames_are_not_paired(tmp_path, signal):
    spec_m = fac.SeriesSpec(echo_times_ms=TE_MS, description="gre mag")
    spec_p = fac.SeriesSpec(echo_times_ms=[t + 1.0 for t in TE_MS], description="other phase", slope=2.0,
                            intercept=-4096.0)
    fac.write_classic_series(tmp_path / "m", {"M": np.round(np.abs(signal))}, fac.Geometry(), spec_m)
    fac.write_classic_series(tmp_path / "p", {"P": _siemens_phase_stored(np.angle(signal))}, fac.Geometry(), spec_p)
    with pytest.raises(InputError, match=r"2 DICOM series .*choose one with series_uid"):
        load_dicom_series(tmp_path)


def test_list_dicom_series(tmp_path, signal):
    spec_a = fac.SeriesSpec(echo_times_ms=TE_MS, description="me-gre")
    fac.write_classic_series(tmp_path / "a", {"M": np.round(np.abs(signal)),
                                              "P": _siemens_phase_stored(np.angle(signal))}, fac.Geometry(), spec_a)
    spec_b = fac.SeriesSpec(echo_times_ms=[10.0], description="t1w")
    fac.write_classic_series(tmp_path / "b", {"": np.ones(SHAPE)}, fac.Geometry(), spec_b)
    (tmp_path / "notes.txt").write_text("not dicom")
    df = list_dicom_series(tmp_path)
    assert len(df) == 2
    row = df.set_index("uid").loc[spec_a.series_uid]
    assert row["n_files"] == 2 * SHAPE[2] * len(TE_MS)
    assert row["n_echoes"] == len(TE_MS)
    assert row["components"] == "magnitude,phase"
    assert row["description"] == "me-gre"
    assert df.set_index("uid").loc[spec_b.series_uid, "n_echoes"] == 1
    text = df.to_csv()
    for ident in IDENTIFIERS:
        assert ident not in text


# ------------------------------------------------------------------------------------------------------
# Bad inputs, each with its message
# ------------------------------------------------------------------------------------------------------
def _write_me(tmp_path, signal, edit=None, spec=None, vols=None):
    spec = spec or fac.SeriesSpec(echo_times_ms=TE_MS, slope={"P": 2.0}, intercept={"P": -4096.0})
    vols = vols or {"M": np.round(np.abs(signal)), "P": _siemens_phase_stored(np.angle(signal))}
    return fac.write_classic_series(tmp_path, vols, fac.Geometry(), spec, edit=edit)


def test_missing_folder(tmp_path):
    with pytest.raises(InputError, match="DICOM file or folder not found"):
        load_dicom_series(tmp_path / "nope")


def test_empty_folder(tmp_path):
    with pytest.raises(InputError, match="DICOM folder is empty"):
        load_dicom_series(tmp_path)


def test_folder_without_dicom(tmp_path):
    (tmp_path / "a.txt").write_text("hello")
    with pytest.raises(InputError, match=r"no readable DICOM files in .* \(1 files checked"):
        load_dicom_series(tmp_path)


def test_unreadable_named_file(tmp_path):
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(b"\x00" * 10)
    with pytest.raises(InputError, match="unreadable DICOM file bad.dcm"):
        load_dicom_series(bad)
    with pytest.raises(InputError, match="DICOM file not found"):
        load_dicom_series([tmp_path / "missing.dcm"])


def test_no_image_frames(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("MR_small.dcm", download=False))
    for kw in ("PixelData", "Rows", "Columns"):
        delattr(ds, kw)
    ds.save_as(tmp_path / "noimage.dcm")
    with pytest.raises(InputError, match="no image frames"):
        load_dicom_series(tmp_path)


def test_inconsistent_orientation(tmp_path, signal):
    def edit(ds, comp, k, e):
        if k == 2 and e == 0 and comp == "M":
            ds.ImageOrientationPatient = [1, 0, 0, 0, 0.9950042, 0.0998334]

    _write_me(tmp_path, signal, edit)
    with pytest.raises(InputError, match="inconsistent ImageOrientationPatient"):
        load_dicom_series(tmp_path)


def test_inconsistent_pixel_spacing(tmp_path, signal):
    def edit(ds, comp, k, e):
        if k == 1 and comp == "P":
            ds.PixelSpacing = [0.8, 1.3]

    _write_me(tmp_path, signal, edit)
    with pytest.raises(InputError, match="inconsistent PixelSpacing"):
        load_dicom_series(tmp_path)


def test_inconsistent_slice_spacing(tmp_path):
    vol = np.ones((4, 4, 5))
    geom = fac.Geometry()

    def edit(ds, comp, k, e):
        if k == 4:  # last slice moved further away: one gap larger than the others
            ds.ImagePositionPatient = [*ds.ImagePositionPatient[:2], float(geom.position(4)[2]) + 2.0]

    fac.write_classic_series(tmp_path, {"M": vol}, geom, fac.SeriesSpec(echo_times_ms=[5.0]), edit=edit)
    with pytest.raises(InputError, match="inconsistent slice spacing"):
        load_dicom_series(tmp_path)


def test_missing_echo_time(tmp_path, signal):
    spec = fac.SeriesSpec(echo_times_ms=TE_MS, write_echo_time=False, slope={"P": 2.0}, intercept={"P": -4096.0})
    _write_me(tmp_path, signal, spec=spec)
    with pytest.raises(MetadataError, match="missing EchoTime"):
        load_dicom_series(tmp_path)


def test_mismatched_magnitude_phase_counts(tmp_path, signal):
    files = _write_me(tmp_path, signal)
    phase_files = [f for f in files if "P" in pydicom.dcmread(f, stop_before_pixels=True).ImageType]
    phase_files[0].unlink()
    n = SHAPE[2] * len(TE_MS)
    with pytest.raises(InputError, match=rf"magnitude/phase counts differ: {n} magnitude vs {n - 1} phase frames"):
        load_dicom_series(tmp_path)


def test_duplicate_frame(tmp_path, signal):
    files = _write_me(tmp_path, signal)
    ds = pydicom.dcmread(files[0])
    ds.SOPInstanceUID = pydicom.uid.generate_uid()
    ds.save_as(tmp_path / "copy.dcm")
    with pytest.raises(InputError, match="duplicate"):
        load_dicom_series(tmp_path)


def test_missing_image_position(tmp_path):
    fac.write_classic_series(tmp_path, {"M": np.ones((3, 3, 2))}, fac.Geometry(), fac.SeriesSpec(),
                             edit=lambda ds, c, k, e: delattr(ds, "ImagePositionPatient"))
    with pytest.raises(MetadataError, match="missing or malformed ImagePositionPatient"):
        load_dicom_series(tmp_path)


def test_complex_mode_errors(tmp_path):
    fac.write_classic_series(tmp_path, {"M": np.ones((3, 3, 2))}, fac.Geometry(), fac.SeriesSpec())
    with pytest.raises(InputError, match="unknown complex_mode 'polar'"):
        load_dicom_series(tmp_path, complex_mode="polar")
    with pytest.raises(InputError, match="complex_mode='complex' needs magnitude\\+phase or real\\+imaginary"):
        load_dicom_series(tmp_path, complex_mode="complex")
    with pytest.raises(InputError, match="complex_mode='phase' needs phase"):
        load_dicom_series(tmp_path, complex_mode="phase")


def test_echoes_sorted_by_echo_time(tmp_path, signal):
    """Echoes written in decreasing TE come back in increasing TE, data reordered with them."""
    te_desc = TE_MS[::-1]
    spec = fac.SeriesSpec(echo_times_ms=te_desc, slope={"P": 2.0}, intercept={"P": -4096.0})
    rev = signal[..., ::-1]
    fac.write_classic_series(tmp_path, {"M": np.round(np.abs(rev)), "P": _siemens_phase_stored(np.angle(rev))},
                             fac.Geometry(), spec)
    img = load_dicom_series(tmp_path)
    np.testing.assert_allclose(img.echo_times_s, np.array(TE_MS) * 1e-3)
    np.testing.assert_allclose(np.abs(img.data), np.round(np.abs(signal)), atol=1e-2)
    assert img.meta["EchoNumbers"] == [4, 3, 2, 1]


def test_phase_out_of_every_vendor_range(tmp_path, signal):
    spec = fac.SeriesSpec(echo_times_ms=TE_MS, manufacturer="ACME")
    fac.write_classic_series(tmp_path, {"M": np.round(np.abs(signal)), "P": np.full(signal.shape, 9000)},
                             fac.Geometry(), spec)
    with pytest.raises(InputError, match="exceed every known vendor phase range"):
        load_dicom_series(tmp_path)


def test_siemens_mosaic_rejected_with_message():
    import nibabel

    path = Path(nibabel.__file__).parent / "nicom" / "tests" / "data" / "0.dcm"
    if not path.exists():
        pytest.skip("nibabel's Siemens mosaic test file is not installed")
    with pytest.raises(InputError, match="Siemens mosaic images .* are not supported"):
        load_dicom_series(path)
