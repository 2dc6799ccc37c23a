"""Issue 13: realistic mistakes through the CLI give one line naming the fault and a non-zero exit, never a
plausible number with exit code 0."""

from __future__ import annotations

import numpy as np
import pytest

from osteomri.cli.main import main
from osteomri.io import Image, save_nifti


def _one_line_error(argv, capsys) -> str:
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc != 0 and "Traceback" not in err, err
    return " ".join(err.split())


@pytest.fixture
def truncated(tmp_path):
    rng = np.random.default_rng(1)
    full = save_nifti(Image(rng.random((12, 12, 8), dtype=np.float32), np.eye(4), {}), tmp_path / "full.nii.gz")
    data = full.read_bytes()
    bad = tmp_path / "t.nii.gz"
    bad.write_bytes(data[: len(data) // 2])
    return bad


@pytest.mark.parametrize("debug", [False, True])
def test_truncated_nifti_named_by_measure(tmp_path, truncated, capsys, debug):
    argv = ["measure", "--map", f"pdff={truncated}", "--out", str(tmp_path / "m")]
    if debug:  # --debug shows the traceback of the InputError, never a bare "Aborted."
        from osteomri.errors import InputError

        with pytest.raises(InputError, match="t.nii.gz is truncated or corrupt"):
            main(["--debug", *argv])
        return
    msg = _one_line_error(argv, capsys)
    assert msg.startswith("error: t.nii.gz is truncated or corrupt") and "Aborted" not in msg


def test_truncated_nifti_named_by_exam(tmp_path, truncated, capsys):
    msg = _one_line_error(["exam", "--out", str(tmp_path / "o"), "--t1w", str(truncated)], capsys)
    assert "error: t1w: t.nii.gz is truncated or corrupt" in msg and "EOFError: Compressed" not in msg.split(
        "corrupt")[0]


# --- item 3: misregistered labels; item 8: no output folder after a refusal -------------------------------
@pytest.fixture(scope="module")
def vendor_exam(tmp_path_factory):
    """The phantom's true PDFF and R2* as vendor maps, its labels, and the labels shifted 30 mm anterior."""
    from osteomri.phantom import make_spine_phantom
    from osteomri.vertebrae import phantom_labels

    folder = tmp_path_factory.mktemp("vendor")
    ph = make_spine_phantom(shape=(8, 96, 128), voxel_size_mm=(4.0, 2.2, 2.25), seed=2)
    paths = {"pdff": save_nifti(ph.maps["pdff_percent"], folder / "pdff.nii.gz", sidecar={"Units": "percent"}),
             "r2star": save_nifti(ph.maps["r2star_hz"], folder / "r2star.nii.gz", sidecar={"Units": "Hz"}),
             "nan": save_nifti(Image(np.full(ph.shape, np.nan, np.float32), ph.affine), folder / "nan.nii.gz")}
    lab = phantom_labels(ph, "spineps")
    paths["labels"] = save_nifti(lab, folder / "seg.nii.gz", dtype=np.int16)
    shifted = lab.affine.copy()
    shifted[1, 3] += 30.0
    paths["shifted"] = save_nifti(Image(np.asarray(lab.data), shifted), folder / "seg_shift.nii.gz", dtype=np.int16)
    return paths


def _exam(paths, labels, out, *extra):
    return ["exam", "--out", str(out), "--pdff", str(paths["pdff"]), "--r2star", str(paths["r2star"]),
            "--labels", str(paths[labels]), *extra]


def _scores(out):
    import json

    path = out / "sub-01" / "sub-01_scores.json"  # written only when there are scores
    return json.loads(path.read_text()) if path.exists() else {}


def test_aligned_labels_give_a_screening_estimate(vendor_exam, tmp_path, capsys):
    assert main(_exam(vendor_exam, "labels", tmp_path)) == 0
    assert "osteoporosis_screen" in _scores(tmp_path)


def test_labels_shifted_30mm_are_refused_by_exam(vendor_exam, tmp_path, capsys):
    msg = _one_line_error(_exam(vendor_exam, "shifted", tmp_path), capsys)
    assert "error: measure: the label map is not on the image's grid" in msg and "30.0 mm" in msg
    assert "--resample-labels" in msg
    assert "osteoporosis_screen" not in _scores(tmp_path)


def test_resampled_shifted_labels_are_said_and_the_screening_withheld(vendor_exam, tmp_path, capsys):
    msg = _one_line_error(_exam(vendor_exam, "shifted", tmp_path, "--resample-labels"), capsys)
    assert "screening estimate withheld: PDFF L1 3%" in msg and "below 10%" in msg
    import pandas as pd

    stages = pd.read_csv(tmp_path / "sub-01" / "sub-01_stages.tsv", sep="\t").set_index("stage")
    assert "label map resampled onto the image's grid" in stages.loc["measure", "message"]
    assert stages.loc["screening", "status"] == "failed"
    assert "osteoporosis_screen" not in _scores(tmp_path)


@pytest.mark.parametrize("labels, extra, message", [
    ("shifted", [], "not on the image's grid"),
    ("labels", ["--preset", "total_mr"], "no sacrum in view"),
    ("labels", ["--t1w", "t1w.nii.gz"], "not found"),
])
def test_measure_refusals_leave_no_output_folder(vendor_exam, tmp_path, capsys, labels, extra, message):
    out = tmp_path / "m"
    msg = _one_line_error(["measure", "--map", f"pdff={vendor_exam['pdff']}", "--labels", str(vendor_exam[labels]),
                           "--out", str(out), *extra], capsys)
    assert message in msg
    assert not out.exists()


def test_measure_of_an_all_nan_map_is_an_error_without_outputs(vendor_exam, tmp_path, capsys):
    out = tmp_path / "m"
    msg = _one_line_error(["measure", "--map", f"pdff={vendor_exam['nan']}", "--labels", str(vendor_exam["labels"]),
                           "--out", str(out)], capsys)
    assert msg == "error: map pdff has no finite values (NaN-only data)"
    assert not out.exists()


def test_exam_of_an_all_nan_map_is_an_error(vendor_exam, tmp_path, capsys):
    msg = _one_line_error(["exam", "--out", str(tmp_path), "--pdff", str(vendor_exam["nan"]), "--labels",
                           str(vendor_exam["labels"])], capsys)
    assert "pdff map has no finite values" in msg


# --- item 4: a wrong preset on real labels; item 8: a truncated vertebra ------------------------------------
def test_total_mr_labels_with_the_ct_preset_are_refused(shared_data, tmp_path, capsys):
    root = shared_data("spine") / "totalsegmentator_example_mr"
    out = tmp_path / "m"
    msg = _one_line_error(["measure", "--map", f"t1w={root / 'example_mr_sm.nii.gz'}", "--labels",
                           str(root / "example_seg_mr.nii.gz"), "--preset", "totalsegmentator", "--out", str(out)],
                          capsys)
    assert "do not form a column of vertebrae" in msg and "'L2' is 499 cm³" in msg and "--preset total_mr" in msg
    assert not out.exists()


def test_truncated_vertebra_is_warned_on_the_command_line(shared_data, tmp_path, capsys):
    root = shared_data("spine") / "tptbox_sample_mri"
    rc = main(["measure", "--map", f"t2w={root / 'sub-mri_label-6_T2w.nii.gz'}", "--labels",
               str(root / "sub-mri_seg-vert_label-6_msk.nii.gz"), "--levels", "C5,C6,C7", "--out", str(tmp_path)])
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 0
    assert "warning: C5: empty ROI for t2w (the vertebra is cut by the field of view)" in err
    assert "warning: C7 is cut by the field of view" in err


def test_measure_with_resampled_shifted_labels_warns_twice_in_words(vendor_exam, tmp_path, capsys):
    """Resampling asked for: the numbers are written, but the command says what was done and what they read."""
    rc = main(["measure", "--map", f"pdff={vendor_exam['pdff']}", "--labels", str(vendor_exam["shifted"]),
               "--resample-labels", "--out", str(tmp_path), "--no-qc"])
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 0
    assert err.count("warning: label map resampled onto the image's grid") == 1
    assert "warning: the lumbar ROIs do not read like adult vertebral marrow: PDFF L1 3%" in err
