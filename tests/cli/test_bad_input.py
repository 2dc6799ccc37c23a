"""Issue 2's list of bad inputs, through the CLI: one clear line on stderr, a non-zero exit, no traceback."""

import re

import numpy as np
import pytest

from osteomri.cli.main import main
from osteomri.io import Image, save_nifti
from osteomri.phantom import make_spine_phantom

TE_S = [1.3e-3 + 0.8e-3 * n for n in range(6)]


def _run(argv, capsys):
    rc = main(argv)
    err = capsys.readouterr().err
    flat = " ".join(err.split())
    assert rc != 0 and "Traceback" not in err, err
    assert len([line for line in err.splitlines() if line.strip()]) <= 3, err
    return flat


def _megre(tmp_path, data, meta):
    return save_nifti(Image(data, np.eye(4), meta), tmp_path / "megre.nii.gz")


def test_missing_input_file(tmp_path, capsys):
    msg = _run(["waterfat", str(tmp_path / "nope.nii.gz"), "--out", str(tmp_path / "o")], capsys)
    assert "nope.nii.gz" in msg and re.search("not found|does not exist", msg)


def test_unreadable_dicom(tmp_path, capsys):
    folder = tmp_path / "dicom"
    folder.mkdir()
    (folder / "IM0001.dcm").write_bytes(b"DICM" + b"\x00" * 64)  # not a DICOM dataset
    msg = _run(["waterfat", str(folder), "--out", str(tmp_path / "o")], capsys)
    assert re.search(r"DICOM", msg, re.I)


def test_wrong_echo_count(tmp_path, capsys):
    data = np.ones((4, 4, 2, 6), np.complex64)
    path = _megre(tmp_path, data, {"EchoTime": TE_S[:4], "MagneticFieldStrength": 3.0})
    msg = _run(["waterfat", str(path), "--out", str(tmp_path / "o")], capsys)
    assert "4 echo times given but the image's last axis has 6" in msg


def test_nan_only_data(tmp_path, capsys):
    data = np.full((4, 4, 2, 6), np.nan, np.complex64)
    path = _megre(tmp_path, data, {"EchoTime": TE_S, "MagneticFieldStrength": 3.0})
    msg = _run(["waterfat", str(path), "--out", str(tmp_path / "o")], capsys)
    assert re.search(r"NaN|finite", msg)


def test_shape_mismatch_between_map_and_labels(tmp_path, capsys):
    ph = make_spine_phantom(shape=(8, 96, 128), voxel_size_mm=(4.0, 2.2, 2.25), seed=1)
    pdff = save_nifti(ph.maps["pdff_percent"], tmp_path / "pdff.nii.gz", sidecar={"Units": "percent"})
    far = ph.levels.affine.copy()
    far[:3, 3] += 5000.0  # a label map somewhere else entirely
    labels = save_nifti(Image(ph.levels.data[:, :64], far), tmp_path / "labels.nii.gz", dtype=np.int16)
    msg = _run(["measure", "--map", f"pdff={pdff}", "--labels", str(labels), "--out", str(tmp_path / "o")], capsys)
    assert re.search(r"overlap|grid", msg)


def test_unknown_label_preset(tmp_path, capsys):
    ph = make_spine_phantom(shape=(8, 96, 128), voxel_size_mm=(4.0, 2.2, 2.25), seed=1)
    pdff = save_nifti(ph.maps["pdff_percent"], tmp_path / "pdff.nii.gz", sidecar={"Units": "percent"})
    labels = save_nifti(ph.levels, tmp_path / "labels.nii.gz", dtype=np.int16)
    msg = _run(["measure", "--map", f"pdff={pdff}", "--labels", str(labels), "--preset", "nnunet-spine",
                "--out", str(tmp_path / "o")], capsys)
    assert "unknown label preset" in msg and "nnunet-spine" in msg


@pytest.mark.parametrize("debug", [True])
def test_debug_shows_the_traceback(tmp_path, debug):
    with pytest.raises(Exception, match="nope.nii.gz"):
        main(["--debug", "waterfat", str(tmp_path / "nope.nii.gz"), "--out", str(tmp_path / "o")])
