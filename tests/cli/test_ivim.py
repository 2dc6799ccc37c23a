"""``osteomri ivim`` end to end on a small synthetic DWI."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from osteomri.cli.main import main
from osteomri.io import Image, save_nifti
from osteomri.ivim import ivim_signal

B = np.array([0, 10, 20, 50, 100, 200, 400, 600, 800, 1000.0])
AFFINE = np.diag([1.5, 1.5, 4.0, 1.0])


def _dwi(tmp_path, shape=(6, 5, 3), sidecar=None, write_bval=True):
    rng = np.random.default_rng(0)
    f = np.full(shape, 0.145)
    f[:3] = 0.3
    data = ivim_signal(B, 800.0, f, 0.43e-3, 0.05) + rng.normal(0, 2.0, shape + (B.size,))
    data[0, 0, 0] = 0.0  # background voxel
    path = tmp_path / "sub-01_dwi.nii.gz"
    save_nifti(Image(data.astype(np.float32), AFFINE), path, sidecar=sidecar or {})
    if write_bval:
        (tmp_path / "sub-01_dwi.bval").write_text(" ".join(f"{b:g}" for b in B) + "\n")
    return path, f


def test_ivim_cli_writes_maps_with_sidecars(tmp_path, capsys):
    dwi, f_true = _dwi(tmp_path)
    out = tmp_path / "out"
    rc = main(["ivim", str(dwi), "--bvals", str(tmp_path / "sub-01_dwi.bval"), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    out = out / "sub-01"  # the exam pipeline's layout: OUT/sub-XX/sub-XX_<suffix>.nii.gz
    for suffix in ("S0", "perfusionfraction", "D", "Dstar", "desc-ivim_residual"):
        assert (out / f"sub-01_{suffix}.nii.gz").exists(), suffix
    img = nib.load(out / "sub-01_perfusionfraction.nii.gz")
    f = np.asarray(img.dataobj)
    np.testing.assert_allclose(img.affine, AFFINE)
    assert np.isnan(f[0, 0, 0])
    assert abs(np.nanmedian(f[3:]) - 0.145) < 0.02 and abs(np.nanmedian(f[:3]) - 0.3) < 0.02
    d = np.asarray(nib.load(out / "sub-01_D.nii.gz").dataobj)
    assert abs(np.nanmedian(d) - 0.43e-3) < 0.03e-3
    side = json.loads((out / "sub-01_D.json").read_text())
    assert side["Units"] == "mm2/s" and side["ModelParameters"]["method"] == "full"
    assert side["Provenance"]["inputs"][0]["name"] == "sub-01_dwi.nii.gz"
    assert side["ModelParameters"]["bounds"]["f"] == [0.0, 1.0]
    assert "bvalues" not in side
    assert "voxels fitted" in captured.out


def test_ivim_cli_mask_method_bounds_and_sidecar_bvalues(tmp_path, capsys):
    dwi, _ = _dwi(tmp_path, sidecar={"bvalues": B.tolist()}, write_bval=False)
    mask = np.zeros((6, 5, 3), np.uint8)
    mask[2:5, 1:4, 1] = 1
    save_nifti(Image(mask, AFFINE), tmp_path / "mask.nii.gz")
    out = tmp_path / "out"
    rc = main(["ivim", str(dwi), "--out", str(out), "--method", "segmented", "--mask", str(tmp_path / "mask.nii.gz"),
               "--bound", "f=0.2,0.25"])
    assert rc == 0, capsys.readouterr().err
    f = np.asarray(nib.load(out / "sub-01" / "sub-01_perfusionfraction.nii.gz").dataobj)
    assert np.isfinite(f).sum() == 9 and np.isnan(f[mask == 0]).all()
    assert np.nanmin(f) >= 0.2 - 1e-6 and np.nanmax(f) <= 0.25 + 1e-6
    side = json.loads((out / "sub-01" / "sub-01_perfusionfraction.json").read_text())
    assert side["ModelParameters"]["method"] == "segmented"
    assert side["ModelParameters"]["bvalues_s_mm2"] == B.tolist()  # from the DWI's sidecar


def test_ivim_cli_bayesian_writes_sd_maps(tmp_path, capsys):
    dwi, _ = _dwi(tmp_path, shape=(3, 2, 1))
    out = tmp_path / "out"
    assert main(["ivim", str(dwi), "--out", str(out), "--method", "bayesian"]) == 0, capsys.readouterr().err
    assert (out / "sub-01" / "sub-01_desc-sd_D.nii.gz").exists()
    assert json.loads((out / "sub-01" / "sub-01_desc-sd_D.json").read_text())["Units"] == "mm2/s"


@pytest.mark.parametrize(
    ("extra", "bval_text", "message"),
    [
        ([], "0 10 20 50 100 200 400 600 800", "9 b-values .*for a DWI with 10 volumes"),
        ([], "0 10 20 50 -100 200 400 600 800 1000", "negative b-value -100"),
        (["--method", "magic"], None, "unknown IVIM method 'magic'"),
        (["--bound", "f=0.5"], None, "--bound takes KEY=LOWER,UPPER"),
        (["--bound", "f=0.5,0.1"], None, "lower 0.5 must be below upper 0.1"),
        (["--mask", "MASK"], None, "not on the DWI grid"),
    ],
)
def test_ivim_cli_bad_input_one_line(tmp_path, capsys, extra, bval_text, message):
    dwi, _ = _dwi(tmp_path)
    if bval_text is not None:
        (tmp_path / "sub-01_dwi.bval").write_text(bval_text + "\n")
    if "MASK" in extra:
        save_nifti(Image(np.ones((4, 4, 3), np.uint8), AFFINE), tmp_path / "m.nii.gz")
        extra = [str(tmp_path / "m.nii.gz") if e == "MASK" else e for e in extra]
    rc = main(["ivim", str(dwi), "--out", str(tmp_path / "out"), *extra])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and err.count("\n") <= 3
    import re

    assert re.search(message, " ".join(err.split())), err


def test_ivim_cli_missing_bvals_and_3d_input(tmp_path, capsys):
    dwi, _ = _dwi(tmp_path, write_bval=False)
    assert main(["ivim", str(dwi), "--out", str(tmp_path / "o")]) == 2
    assert "no b-values for sub-01_dwi.nii.gz" in " ".join(capsys.readouterr().err.split())
    save_nifti(Image(np.ones((4, 4, 3), np.float32), AFFINE), tmp_path / "t1.nii.gz")
    assert main(["ivim", str(tmp_path / "t1.nii.gz"), "--bvals", "x.bval", "--out", str(tmp_path / "o")]) == 2
    assert "expected a 4-D DWI" in " ".join(capsys.readouterr().err.split())
