"""The exam pipeline on the phantom: stage log, outputs on disk, provenance, failures reported."""

import json

import numpy as np
import pandas as pd
import pytest

from osteomri.errors import InputError
from osteomri.io import Image, load_nifti, save_nifti
from osteomri.phantom import make_spine_phantom, synthesize_t1w
from osteomri.pipeline import ExamSpec, run_exam
from osteomri.pipeline.stages import STAGES


@pytest.fixture(scope="module")
def phantom():
    return make_spine_phantom(shape=(8, 96, 128), voxel_size_mm=(4.0, 2.2, 2.25), seed=5)


def test_exam_id_is_validated():
    with pytest.raises(InputError, match="exam_id"):
        ExamSpec("patient 1")
    assert ExamSpec("sub-01_ses-02").relative_dir().as_posix() == "sub-01/ses-02"


def test_vendor_maps_exam_writes_outputs(tmp_path, phantom):
    pdff = save_nifti(phantom.maps["pdff_percent"], tmp_path / "in" / "ff.nii.gz", sidecar={"Units": "percent"})
    r2 = save_nifti(phantom.maps["r2star_hz"], tmp_path / "in" / "r2.nii.gz", sidecar={"Units": "Hz"})
    spec = ExamSpec("sub-07_ses-1", pdff=pdff, r2star=r2, clinical={"age": 61})
    result = run_exam(spec, out_dir=tmp_path / "out")
    assert result.ok, result.errors()
    folder = tmp_path / "out" / "sub-07" / "ses-1"
    back = load_nifti(folder / "sub-07_ses-1_pdff.nii.gz")
    np.testing.assert_allclose(back.data, phantom.maps["pdff_percent"].data, atol=1e-4)
    side = json.loads((folder / "sub-07_ses-1_pdff.json").read_text())
    assert side["Units"] == "%"
    hashes = {i["name"] for i in side["Provenance"]["inputs"]}
    assert {"ff.nii.gz", "r2.nii.gz"} <= hashes
    exam = json.loads((folder / "sub-07_ses-1_exam.json").read_text())
    assert exam["ok"] and exam["clinical"] == {"age": 61}
    stages = pd.read_csv(folder / "sub-07_ses-1_stages.tsv", sep="\t")
    assert stages.set_index("stage").loc["vendor_maps", "status"] == "done"
    assert (folder / "report.html").stat().st_size > 1000


def test_fraction_pdff_without_units_is_refused(tmp_path, phantom):
    frac = Image(phantom.maps["pdff_percent"].data / 100, phantom.affine)
    result = run_exam(ExamSpec("sub-02", pdff=frac))
    assert not result.ok
    assert "looks like" in result.errors()[0] or "[0, 1]" in result.errors()[0]


def test_failures_are_logged_and_other_stages_go_on(tmp_path, phantom):
    nan_t1w = Image(np.full(phantom.shape, np.nan), phantom.affine)
    spec = ExamSpec("sub-03", t1w=nan_t1w, pdff=phantom.maps["pdff_percent"].with_data(
        phantom.maps["pdff_percent"].data, Units="percent"))
    result = run_exam(spec)
    status = result.stage_table().set_index("stage")["status"]
    assert status["t1w"] == "failed" and "NaN-only" in result.errors()[0]
    assert status["vendor_maps"] == "done"


def test_missing_input_file_is_a_stage_failure(tmp_path):
    result = run_exam(ExamSpec("sub-04", t1w=tmp_path / "nope.nii.gz"))
    assert not result.ok and "input not found" in result.errors()[0]


def test_no_inputs_is_reported():
    result = run_exam(ExamSpec("sub-05"))
    assert not result.ok and "no input" in result.errors()[0]


def test_a_stage_whose_module_is_missing_fails_loudly(monkeypatch, phantom):
    import osteomri.pipeline.exam as exam_mod
    from osteomri.pipeline.stages import Stage

    def run(spec, ctx):
        import osteomri.does_not_exist  # noqa: F401

    fake = Stage("future", lambda s: True, ("osteomri.does_not_exist",), run)
    monkeypatch.setattr(exam_mod, "STAGES", (*STAGES, fake))
    result = exam_mod.run_exam(ExamSpec("sub-06", t1w=synthesize_t1w(phantom)))
    rec = result.stage_table().set_index("stage").loc["future"]
    assert rec["status"] == "failed" and "does_not_exist" in rec["message"]
    assert not result.ok


def test_vendor_dicom_pdff_series_enters_the_pipeline(tmp_path):
    """A GE IDEAL-IQ fat-fraction series (stored x10) becomes a percent map on disk."""
    import dicom_factory as fac
    ff = np.random.default_rng(4).uniform(5, 60, (7, 6, 3))
    ff[0] = 95.0
    spec = fac.SeriesSpec(manufacturer="GE MEDICAL SYSTEMS", description="FatFrac: IDEAL IQ",
                          image_type={"": ["DERIVED", "PRIMARY", "OTHER"]})
    fac.write_classic_series(tmp_path / "dcm", {"": np.round(ff * 10)}, fac.Geometry(), spec)
    result = run_exam(ExamSpec("sub-08", pdff=tmp_path / "dcm"), out_dir=tmp_path / "out")
    assert result.ok, result.errors()
    back = load_nifti(tmp_path / "out" / "sub-08" / "sub-08_pdff.nii.gz")
    np.testing.assert_allclose(back.data, ff, atol=0.05 + 1e-5)


def test_ivim_stage_fits_only_signal_voxels_and_recovers_marrow(tmp_path, phantom):
    from osteomri.phantom import synthesize_dwi

    b = (0, 10, 20, 50, 100, 200, 400, 600, 800)
    dwi = synthesize_dwi(phantom, b, snr=400, seed=1)
    result = run_exam(ExamSpec("sub-10", dwi=dwi, bvals=list(b)), out_dir=tmp_path)
    assert result.ok, result.errors()
    d = result.maps["d_mm2_s"].data
    assert np.isnan(d[phantom.tissues.data == 0]).all(), "air is not fitted"
    truth = phantom.truth.set_index("level").loc["L3"]
    l3 = phantom.level_mask("L3")
    assert np.nanmedian(d[l3]) == pytest.approx(truth["d_mm2_s"], rel=0.05)
    assert np.nanmedian(result.maps["f"].data[l3]) == pytest.approx(truth["f"], abs=0.02)
    assert (tmp_path / "sub-10" / "sub-10_perfusionfraction.nii.gz").exists()


def test_output_names_for_posterior_sd_maps():
    import osteomri.pipeline.stages  # noqa: F401 - registers the models' maps
    from osteomri.models.registry import map_spec

    assert map_spec("f_sd").suffix == "desc-sd_perfusionfraction"
    assert (map_spec("pdff_percent").suffix, map_spec("pdff_percent").units) == ("pdff", "%")
    assert map_spec("r2star_hz").units == "1/s"


def test_screening_stage_uses_the_l1_l5_mean():
    from osteomri.pipeline.spec import ExamResult
    from osteomri.pipeline.stages import ExamContext, run_screening
    from osteomri.stats.screening import PUBLISHED_CUTOFFS

    levels = ["L1", "L2", "L3", "L4", "L5", "T12"]
    ff = [50.0, 55.0, 60.0, 62.0, 58.0, 99.0]  # T12 must not count: L1-L5 mean 57.0 > 56.09
    table = pd.DataFrame({"exam": "sub-1", "level": levels * 2, "map": ["pdff_percent"] * 6 + ["r2star_hz"] * 6,
                          "mean": ff + [150.0] * 6})
    spec = ExamSpec("sub-1", pdff="x")
    ctx = ExamContext(spec=spec, result=ExamResult("sub-1", vertebrae=table), images={})
    message = run_screening(spec, ctx)
    screen = ctx.result.scores["osteoporosis_screen"].set_index("marker")
    assert screen.loc["pdff_percent", "value"] == pytest.approx(57.0)
    assert bool(screen.loc["pdff_percent", "positive"]) and not bool(screen.loc["r2star_hz", "positive"])
    assert screen.loc["pdff_percent", "cutoff"] == PUBLISHED_CUTOFFS["pdff_percent"].cutoff
    assert "extrapolated" in screen.loc["pdff_percent", "applicability"]  # field strength unknown
    assert "pdff_percent positive" in message
    ctx.result.vertebrae = table[table["level"] == "T12"]
    with pytest.raises(InputError, match="no PDFF or R2"):
        run_screening(spec, ctx)


def test_measure_stage_writes_table_and_roi_overlays(tmp_path, phantom):
    pdff = phantom.maps["pdff_percent"].with_data(phantom.maps["pdff_percent"].data, Units="percent")
    result = run_exam(ExamSpec("sub-11", pdff=pdff, labels=phantom.levels), out_dir=tmp_path)
    assert result.ok, result.errors()
    table = pd.read_csv(tmp_path / "sub-11" / "sub-11_vertebrae.tsv", sep="\t")
    truth = phantom.truth.set_index("level")["pdff_percent"]
    got = table[table["map"] == "pdff_percent"].set_index("level")["mean"]
    np.testing.assert_allclose(got[truth.index], truth, atol=0.2)  # the tolerance, on the true map
    png = tmp_path / "sub-11" / "sub-11_qc.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Regions of interest" in (tmp_path / "sub-11" / "report.html").read_text()


def test_stage_after_a_failed_prerequisite_is_skipped_not_failed(tmp_path, phantom):
    bad = tmp_path / "bad_pdff.nii.gz"
    bad.write_bytes(b"\x1f\x8b broken gzip")
    result = run_exam(ExamSpec("sub-12", pdff=bad, labels=phantom.levels))
    status = result.stage_table().set_index("stage")
    assert status.loc["vendor_maps", "status"] == "failed"
    assert status.loc["measure", "status"] == "skipped" and "did not succeed" in status.loc["measure", "message"]
    assert status.loc["screening", "status"] == "skipped"
    assert len(result.errors()) == 1 and str(tmp_path) not in result.errors()[0], "no input folders in messages"
