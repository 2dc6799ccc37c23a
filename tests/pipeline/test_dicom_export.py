"""``--dicom-out`` on the phantom exam written as DICOM: every object valid, round trips exact, SR = TSV,
pseudonymised export leaks no basic-profile value and is stable under one key."""

from __future__ import annotations

from pathlib import Path

import dicom_factory
import numpy as np
import pandas as pd
import pydicom
import pytest

from osteomri.io import load_image, load_nifti, save_nifti
from osteomri.phantom import make_spine_phantom, synthesize_megre, synthesize_t1w
from osteomri.pipeline import ExamSpec, run_exam

pytest.importorskip("highdicom")
pytestmark = pytest.mark.slow  # one water-fat exam (~35 s on one core) shared by the module

IDENTITY = {  # identifying attributes a hospital series carries (all in the PS3.15 basic profile)
    "PatientName": "Doe^Jane^Q", "PatientID": "MRN-4711-X", "PatientBirthDate": "19581203",
    "PatientSex": "F", "PatientAge": "067Y", "StudyDate": "20250314", "StudyTime": "101530",
    "SeriesDate": "20250314", "AcquisitionDate": "20250314", "ContentDate": "20250314",
    "AccessionNumber": "ACC99887766", "StudyID": "ST7711", "ReferringPhysicianName": "House^Gregory",
    "InstitutionName": "St Elsewhere Hospital", "InstitutionAddress": "1 Main Street, Springfield",
    "StationName": "MRSCAN7", "OperatorsName": "Tech^Tina", "PerformingPhysicianName": "Grey^Meredith",
    "DeviceSerialNumber": "SN-123456", "OtherPatientIDs": "OLD-55", "PatientAddress": "2 Side Road",
    "RequestingPhysician": "Kildare^James",
}


def _identify(ds, *_):
    for keyword, value in IDENTITY.items():
        setattr(ds, keyword, value)


def _sagittal(image):
    """The phantom (x L-R, y A-P, z S-I) as a sagittal stack: frames in the A-P x S-I plane, slices along L-R."""
    data = np.moveaxis(np.asarray(image.data), 0, 2)
    affine = image.affine.copy()
    affine[:, :3] = image.affine[:, [1, 2, 0]]
    return data, affine


@pytest.fixture(scope="module")
def exam(tmp_path_factory):
    """Run the phantom exam from DICOM MEGRE + T1w (one study, one frame of reference) with --dicom-out."""
    root = tmp_path_factory.mktemp("dicomexam")
    ph = make_spine_phantom(shape=(6, 64, 96), voxel_size_mm=(5.0, 3.3, 3.0), seed=5)
    megre, _ = synthesize_megre(ph, snr=60, seed=5)
    study, frame = pydicom.uid.generate_uid(), pydicom.uid.generate_uid()
    data, affine = _sagittal(megre)
    te_ms = [t * 1e3 for t in megre.meta["EchoTime"]]
    spec = dicom_factory.SeriesSpec(echo_times_ms=te_ms, manufacturer="GE MEDICAL SYSTEMS", description="MEGRE",
                                    study_uid=study, frame_uid=frame, repetition_time_ms=7.4, flip_angle_deg=4.0)
    dicom_factory.write_image_series(root / "megre", data, affine, spec, edit=_identify)
    t1, t1_affine = _sagittal(synthesize_t1w(ph, seed=5))
    dicom_factory.write_image_series(root / "t1w", t1, t1_affine, dicom_factory.SeriesSpec(
        description="T1w", study_uid=study, frame_uid=frame), edit=_identify)
    labels = save_nifti(ph.levels, root / "labels.nii.gz", dtype=np.int16)
    spec = ExamSpec("sub-dcm", megre=str(root / "megre"), t1w=str(root / "t1w"), labels=labels)
    result = run_exam(spec, out_dir=root / "out", dicom_out=root / "dicom")
    return root, spec, result


def _files(root: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted((root / "dicom" / "sub-dcm").glob("*.dcm"))}


def test_export_stage_and_every_object_valid(exam, dciodvfy):
    root, _, result = exam
    status = result.stage_table().set_index("stage")
    assert status.loc["dicom_export", "status"] == "done", result.errors()
    files = _files(root)
    assert {"sub-dcm_pdff_pmap.dcm", "sub-dcm_r2star_pmap.dcm", "sub-dcm_fieldmap_pmap.dcm", "sub-dcm_sr.dcm",
            "sub-dcm_seg-megre.dcm", "sub-dcm_qc_sc.dcm"} <= set(files)
    assert "sub-dcm_T1w_pmap.dcm" not in files  # the T1w input is not re-exported
    import highdicom as hd

    for name, path in files.items():
        assert dciodvfy(path) == [], name
        if "_seg-" in name:
            assert len(hd.seg.segread(path).SegmentSequence) >= 10  # L1-L5 vertebrae and ROIs
        elif name.endswith("_sr.dcm"):
            groups = hd.sr.srread(path).content.get_volumetric_roi_measurement_groups()
            table = result.vertebrae
            assert len(groups) == len(table[table["map"].isin(["pdff_percent", "r2star_hz"])])
        else:
            assert hd.imread(path).SOPInstanceUID == pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID


def test_pdff_round_trip_equals_nifti_and_source_geometry(exam):
    root, _, _ = exam
    back = load_image(_files(root)["sub-dcm_pdff_pmap.dcm"])
    nifti = load_nifti(root / "out" / "sub-dcm" / "sub-dcm_pdff.nii.gz")
    assert np.array_equal(back.data, np.asarray(nifti.data, np.float32), equal_nan=True)
    np.testing.assert_allclose(back.affine, load_image(root / "megre").affine, atol=1e-6)


def test_segments_equal_label_map_and_rois(exam):
    from osteomri.io.dicomout import load_dicom_seg
    from osteomri.vertebrae.labels import resolve_labels
    from osteomri.vertebrae.measure import rois_for

    root, spec, result = exam
    grid = result.maps["pdff_percent"]
    seg = load_dicom_seg(_files(root)["sub-dcm_seg-megre.dcm"], reference=grid)
    vl = resolve_labels(load_image(spec.labels), "spineps", reference=grid)
    rois = rois_for(grid, load_image(spec.labels), "spineps", "paper")
    by_label = {label: seg.masks[n] for n, label in seg.labels.items()}
    assert {f"{lv} vertebra" for lv in ("L1", "L2", "L3", "L4", "L5")} <= set(by_label)
    for level in rois.levels:
        assert np.array_equal(by_label[f"{level} vertebra"], vl.vertebra(level))
        assert np.array_equal(by_label[f"{level} ROI"], rois.masks[level])


def test_every_number_in_the_sr_equals_the_tsv(exam):
    from osteomri.io.dicomout.sr import read_measurement_report

    root, _, result = exam
    files = _files(root)
    sr = read_measurement_report(files["sub-dcm_sr.dcm"])
    tsv = pd.read_csv(root / "out" / "sub-dcm" / "sub-dcm_vertebrae.tsv", sep="\t")
    pm_uids = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID: n for n, p in files.items()
               if n.endswith("_pmap.dcm")}
    suffix = {"pdff_percent": "pdff", "r2star_hz": "r2star"}
    derivations = {"Mean": "mean", "Median": "median", "Standard Deviation": "sd", "": "n_voxels"}
    checked = 0
    for row in sr[sr.group.str.match(r"^(L|T|S)\d+ ")].itertuples():
        level, map_suffix = row.group.split()
        name = {v: k for k, v in suffix.items()}[map_suffix]
        stat = derivations[row.derivation]
        expected = tsv[(tsv["level"] == level) & (tsv["map"] == name)][stat].item()
        assert row.value == pytest.approx(expected, rel=5e-6, abs=0), (row.group, stat)  # TSV: 6 significant
        table = result.vertebrae
        exact = table[(table["level"] == level) & (table["map"] == name)][stat].item()
        assert row.value == pytest.approx(exact, rel=1e-12)
        assert pm_uids[row.source_sop] == f"sub-dcm_{map_suffix}_pmap.dcm"  # references its own map
        checked += 1
    measured = tsv[tsv["map"].isin(suffix)]
    assert checked == 4 * len(measured) - int(measured["sd"].isna().sum()) and checked >= 40
    assert sr[sr["group"] == "VBQ"]["value"].tolist() == [pytest.approx(result.scores["vbq"].value, rel=1e-12)]
    screen = result.scores["osteoporosis_screen"].set_index("marker")
    for marker in screen.index:
        got = sr[sr["group"] == f"screening {marker}"].set_index("quantity")["value"]
        assert got["POSTTEST"] == pytest.approx(screen.loc[marker, "posttest_probability"], rel=1e-12)
        assert got["LR"] == pytest.approx(screen.loc[marker, "likelihood_ratio"], rel=1e-12)


def _values(ds) -> list[tuple[int, str]]:
    out = []
    for elem in ds.iterall():
        if elem.VR not in ("SQ", "OB", "OW", "OF", "OD", "UN") and elem.value not in (None, ""):
            out.append((int(elem.tag), str(elem.value)))
    return out


def test_pseudonymised_export_leaks_nothing_and_is_stable(exam, tmp_path, dciodvfy):
    from osteomri.io.dicomout.identity import basic_profile
    from osteomri.pipeline.dicom_export import export_exam_dicom

    root, spec, result = exam
    key = "cohort-secret-key-1"
    first = export_exam_dicom(result, spec, tmp_path / "a", anonymize_key=key)
    second = export_exam_dicom(result, spec, tmp_path / "b", anonymize_key=key)
    other = export_exam_dicom(result, spec, tmp_path / "c", anonymize_key="another-key-22")
    profile = basic_profile()
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for d in ("megre", "t1w") for p in (root / d).iterdir()]
    secret = {(tag, v) for ds in sources for tag, v in _values(ds) if tag in profile}
    secret_text = {v for _, v in secret if len(v) >= 6}
    assert len(secret) > 40
    copies = [p for kind, folder in first.items() if kind.startswith("source_") for p in sorted(folder.iterdir())]
    assert len(copies) == len(list((root / "megre").iterdir()))  # the MEGRE images, de-identified
    objects = {k: p for k, p in first.items() if not k.startswith("source_")}
    for kind, path in [*objects.items(), *(("source", p) for p in copies)]:
        ds = pydicom.dcmread(path)
        values = _values(ds)
        leaked = [(hex(t), v) for t, v in values if (t, v) in secret]
        assert not leaked, (kind, leaked[:3])
        text = " ".join(v for _, v in values)
        assert not [s for s in secret_text if s in text], kind
        assert ds.PatientIdentityRemoved == "YES"
        if kind != "source":
            assert dciodvfy(path) == [], kind
    # de-identification adds no validation error to the (synthetic, not fully valid) source images
    assert set(dciodvfy(copies[0])) <= set(dciodvfy(next((root / "megre").iterdir())))
    a = {k: pydicom.dcmread(p, stop_before_pixels=True) for k, p in objects.items()}
    b = {k: pydicom.dcmread(p, stop_before_pixels=True) for k, p in second.items() if not k.startswith("source_")}
    c = {k: pydicom.dcmread(p, stop_before_pixels=True) for k, p in other.items() if not k.startswith("source_")}
    for k in a:  # stable pseudonyms and source UIDs under one key; different under another
        for keyword in ("PatientID", "PatientName", "StudyInstanceUID", "FrameOfReferenceUID", "StudyDate",
                        "AccessionNumber"):
            if keyword in a[k]:
                assert a[k].get(keyword) == b[k].get(keyword), (k, keyword)
        assert a[k].PatientID != c[k].PatientID and a[k].StudyInstanceUID != c[k].StudyInstanceUID
    # one pseudonymous study and frame of reference across maps, SEG, SR and capture
    assert len({d.StudyInstanceUID for d in a.values()}) == 1 and len({d.PatientID for d in a.values()}) == 1
    refs = {r.SeriesInstanceUID for k, d in a.items() if "pmap" in k for r in d.ReferencedSeriesSequence}
    seg_refs = {r.SeriesInstanceUID for r in a["seg_megre"].ReferencedSeriesSequence}
    assert refs == seg_refs and len(refs) == 1
    # every source image the PDFF map references is in the export, with the same keyed UIDs
    copied = {pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID for p in copies}
    wanted = {i.ReferencedSOPInstanceUID for r in a["pmap_pdff"].ReferencedSeriesSequence
              for i in r.ReferencedInstanceSequence}
    assert wanted == copied
    assert {pydicom.dcmread(p, stop_before_pixels=True).SeriesInstanceUID for p in copies} == refs
    # dates shifted by one whole number of days, kept in order
    shift = (pd.Timestamp(IDENTITY["StudyDate"]) - pd.Timestamp(a["sr"].StudyDate)).days
    assert 62 <= shift <= 730


@pytest.mark.shared_data
def test_real_multi_echo_acquisition_as_dicom(shared_data, tmp_path, dciodvfy):
    """ISMRM 2012 challenge case 17 (in vivo, 3 echoes, 1.5 T) written as a GE-style magnitude/phase series:
    the exam's DICOM maps are valid and equal to its NIfTI maps."""
    img = load_image(shared_data("fatwater") / "ismrm2012_challenge" / "17.mat")
    te_ms = [t * 1e3 for t in img.echo_times_s]
    spec = dicom_factory.SeriesSpec(echo_times_ms=te_ms, manufacturer="GE MEDICAL SYSTEMS", description="IDEAL",
                                    field_strength=img.field_strength_t)
    affine = np.diag([1.5, 1.5, 6.0, 1.0])
    dicom_factory.write_image_series(tmp_path / "megre", img.data, affine, spec, edit=_identify)
    result = run_exam(ExamSpec("sub-real", megre=str(tmp_path / "megre")), out_dir=tmp_path / "out",
                      dicom_out=tmp_path / "dicom")
    assert result.ok, result.errors()
    files = sorted((tmp_path / "dicom" / "sub-real").glob("*.dcm"))
    assert {p.name for p in files} >= {"sub-real_pdff_pmap.dcm", "sub-real_r2star_pmap.dcm"}
    for path in files:
        assert dciodvfy(path) == [], path.name
    for suffix in ("pdff", "r2star", "fieldmap"):
        back = load_image(tmp_path / "dicom" / "sub-real" / f"sub-real_{suffix}_pmap.dcm")
        nifti = load_nifti(tmp_path / "out" / "sub-real" / f"sub-real_{suffix}.nii.gz")
        assert np.array_equal(back.data, np.asarray(nifti.data, np.float32), equal_nan=True), suffix
        np.testing.assert_allclose(back.affine, load_image(tmp_path / "megre").affine, atol=1e-6)
