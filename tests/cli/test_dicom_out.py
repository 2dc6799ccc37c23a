"""``osteomri exam --dicom-out`` (and ``--anonymize``) from the command line: files, one-line errors, no
identity in what is printed."""

from __future__ import annotations

import dicom_factory as fac
import numpy as np
import pydicom
import pytest

from osteomri.cli.main import main
from osteomri.io import load_image, load_nifti, save_nifti

pytest.importorskip("highdicom")


@pytest.fixture()
def vendor_pdff(tmp_path):
    ff = np.random.default_rng(4).uniform(5, 60, (7, 6, 3))
    spec = fac.SeriesSpec(manufacturer="GE MEDICAL SYSTEMS", description="FatFrac: IDEAL IQ",
                          image_type={"": ["DERIVED", "PRIMARY", "OTHER"]})
    fac.write_classic_series(tmp_path / "dcm", {"": np.round(ff * 10)}, fac.oblique_geometry(), spec)
    return tmp_path / "dcm"


def test_exam_dicom_out_writes_a_parametric_map_equal_to_the_nifti(tmp_path, vendor_pdff, dciodvfy):
    rc = main(["exam", "--no-autolabel", "--exam-id", "sub-01", "--pdff", str(vendor_pdff),
               "--out", str(tmp_path / "out"), "--dicom-out", str(tmp_path / "dicom")])
    assert rc == 0
    pm = tmp_path / "dicom" / "sub-01" / "sub-01_pdff_pmap.dcm"
    assert dciodvfy(pm) == []
    back = load_image(pm)
    nifti = load_nifti(tmp_path / "out" / "sub-01" / "sub-01_pdff.nii.gz")
    assert np.array_equal(back.data, np.asarray(nifti.data, np.float32), equal_nan=True)
    np.testing.assert_allclose(back.affine, load_image(vendor_pdff).affine, atol=1e-6)


def test_anonymize_needs_a_key(tmp_path, vendor_pdff, capsys, monkeypatch):
    monkeypatch.delenv("OSTEOMRI_ANON_KEY", raising=False)
    rc = main(["exam", "--no-autolabel", "--pdff", str(vendor_pdff), "--out", str(tmp_path / "o"), "--dicom-out",
               str(tmp_path / "d"), "--anonymize"])
    err = capsys.readouterr().err
    assert rc == 2 and "key" in err and err.strip().count("\n") == 0
    assert not (tmp_path / "d").exists()


def test_anonymized_export_from_the_cli(tmp_path, vendor_pdff, capsys):
    key = tmp_path / "key.txt"
    key.write_text("a-long-cohort-secret\n")
    rc = main(["exam", "--no-autolabel", "--exam-id", "sub-02", "--pdff", str(vendor_pdff),
               "--out", str(tmp_path / "o"), "--dicom-out", str(tmp_path / "d"), "--anonymize",
               "--anon-key-file", str(key)])
    printed = capsys.readouterr()
    assert rc == 0
    ds = pydicom.dcmread(tmp_path / "d" / "sub-02" / "sub-02_pdff_pmap.dcm")
    src = pydicom.dcmread(next(vendor_pdff.iterdir()), stop_before_pixels=True)
    assert ds.PatientIdentityRemoved == "YES"
    for value in (src.PatientID, str(src.PatientName), src.InstitutionName, src.StudyInstanceUID,
                  src.FrameOfReferenceUID, src.SeriesInstanceUID):
        assert value not in str(ds) and value not in printed.out + printed.err
    assert "a-long-cohort-secret" not in (tmp_path / "o" / "sub-02" / "sub-02_exam.json").read_text()


def test_dicom_out_without_dicom_inputs_fails_clearly(tmp_path, capsys):
    from osteomri.io import Image

    ff = Image(np.random.default_rng(0).uniform(5, 60, (6, 5, 4)).astype(np.float32), np.eye(4))
    img = save_nifti(ff, tmp_path / "ff.nii.gz", sidecar={"Units": "percent"})
    rc = main(["exam", "--no-autolabel", "--pdff", str(img), "--out", str(tmp_path / "o"),
               "--dicom-out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert rc == 1 and "read from DICOM" in err
    assert not list((tmp_path / "d").rglob("*.dcm"))


def test_waterfat_dicom_out(tmp_path, dciodvfy):
    te_ms = [1.2, 2.2, 3.2, 4.2]
    sig = fac.multi_echo_signal((12, 10, 3), [t * 1e-3 for t in te_ms], seed=2)
    spec = fac.SeriesSpec(echo_times_ms=te_ms, manufacturer="GE MEDICAL SYSTEMS")
    fac.write_image_series(tmp_path / "megre", sig, np.diag([1.2, 1.2, 4.0, 1.0]), spec)
    rc = main(["waterfat", str(tmp_path / "megre"), "--out", str(tmp_path / "wf"), "--dicom-out",
               str(tmp_path / "d")])
    assert rc == 0
    for suffix in ("pdff", "r2star", "fieldmap"):
        pm = tmp_path / "d" / "sub-01" / f"sub-01_{suffix}_pmap.dcm"
        assert dciodvfy(pm) == []
        back = load_image(pm)
        nifti = load_nifti(tmp_path / "wf" / "sub-01" / f"sub-01_{suffix}.nii.gz")
        assert np.array_equal(back.data, np.asarray(nifti.data, np.float32), equal_nan=True)


def test_ivim_dicom_out(tmp_path, dciodvfy):
    """The thin ivim command writes Parametric Maps of its maps referencing the DWI series (issue 16)."""
    from osteomri.models.ivim import ivim_signal

    b = np.array([0.0, 20.0, 50.0, 100.0, 200.0, 400.0, 600.0, 800.0])
    f = np.linspace(0.05, 0.25, 10)[:, None, None] * np.ones((10, 8, 3))
    sig = ivim_signal(b, 1000.0, f, 0.5e-3, 0.03)
    # the factory groups volumes by echo time: distinct dummy echo times keep the b-value volumes apart
    spec = fac.SeriesSpec(echo_times_ms=[60.0 + i for i in range(b.size)], description="synthetic DWI")
    fac.write_image_series(tmp_path / "dwi", sig, np.diag([1.5, 1.5, 4.0, 1.0]), spec)
    (tmp_path / "dwi.bval").write_text(" ".join(f"{v:g}" for v in b))
    rc = main(["ivim", str(tmp_path / "dwi"), "--bvals", str(tmp_path / "dwi.bval"), "--out", str(tmp_path / "iv"),
               "--dicom-out", str(tmp_path / "d")])
    assert rc == 0
    for suffix in ("D", "perfusionfraction"):
        pm = tmp_path / "d" / "sub-01" / f"sub-01_{suffix}_pmap.dcm"
        assert dciodvfy(pm) == []
        nifti = load_nifti(tmp_path / "iv" / "sub-01" / f"sub-01_{suffix}.nii.gz")
        assert np.array_equal(load_image(pm).data, np.asarray(nifti.data, np.float32), equal_nan=True)


def test_cohort_dicom_out_consistent_pseudonyms(tmp_path, vendor_pdff):
    """run_cohort passes --dicom-out to every exam; one key gives each patient the same pseudonym in a rerun."""
    from osteomri.pipeline.cohort import run_cohort
    from osteomri.pipeline.spec import ExamSpec

    key = b"one key for the whole cohort"
    for run in ("a", "b"):
        result = run_cohort([ExamSpec("sub-07", pdff=vendor_pdff)], tmp_path / f"out{run}", workers=1, report=False,
                            dicom_out=tmp_path / f"dcm{run}", anonymize_key=key)
        assert result.counts["with_errors"] == 0
    a = pydicom.dcmread(tmp_path / "dcma" / "sub-07" / "sub-07_pdff_pmap.dcm")
    b = pydicom.dcmread(tmp_path / "dcmb" / "sub-07" / "sub-07_pdff_pmap.dcm")
    assert a.PatientID == b.PatientID and a.StudyInstanceUID == b.StudyInstanceUID
    assert "synthetic" not in str(a.PatientName).lower()
