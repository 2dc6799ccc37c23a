"""``osteomri waterfat`` end to end on a small synthetic NIfTI and on a toolbox .mat file."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.io

from osteomri.cli.main import main
from osteomri.io.image import Image
from osteomri.io.nifti import load_nifti, save_nifti
from osteomri.waterfat import multiecho_signal

TE_S = 1.3e-3 + 0.8e-3 * np.arange(6)


def _volume():
    x = np.linspace(-1, 1, 24)[:, None, None]
    ff = np.clip((x + 1) / 2, 0, 1) * np.ones((24, 20, 2))
    body = np.ones_like(ff, bool)
    body[:2] = body[-2:] = False
    s = multiecho_signal(body * (1 - ff), body * ff, 50.0, 80.0 * x, TE_S, 3.0)
    rng = np.random.default_rng(0)
    return s + (rng.normal(size=s.shape) + 1j * rng.normal(size=s.shape)) / 200, 100 * ff, body


def test_cli_nifti(tmp_path, capsys):
    s, ff, body = _volume()
    aff = np.diag([1.5, 1.5, 5.0, 1.0])
    save_nifti(Image(s.astype(np.complex64), aff), tmp_path / "me.nii.gz",
               sidecar={"EchoTime": TE_S.tolist(), "MagneticFieldStrength": 3.0})
    rc = main(["waterfat", str(tmp_path / "me.nii.gz"), "--out", str(tmp_path / "out")])
    assert rc == 0, capsys.readouterr()
    folder = tmp_path / "out" / "sub-01"  # the exam pipeline's layout and names
    pdff = load_nifti(folder / "sub-01_pdff.nii.gz")
    assert pdff.data.shape == (24, 20, 2)
    np.testing.assert_allclose(pdff.affine, aff)
    assert np.abs(pdff.data[body] - ff[body]).mean() < 1.0
    for name, unit in (("pdff", "%"), ("r2star", "1/s"), ("fieldmap", "Hz"), ("water", "{a.u.}"),
                       ("fat", "{a.u.}"), ("desc-waterfat_residual", "1")):
        side = json.loads((folder / f"sub-01_{name}.json").read_text())
        assert side["Units"] == unit
        assert side["ModelParameters"]["te_s"] == pytest.approx(TE_S.tolist())
        assert side["Provenance"]["inputs"][0]["name"] == "me.nii.gz"
    assert "no swap" in capsys.readouterr().out


def test_cli_mat_and_errors(tmp_path, capsys):
    s, ff, body = _volume()
    scipy.io.savemat(tmp_path / "c.mat", {"imDataParams": {
        "images": s[:, :, :, None, :].astype(np.complex64), "TE": TE_S[None, :], "FieldStrength": 3.0,
        "PrecessionIsClockwise": 1}})
    assert main(["waterfat", str(tmp_path / "c.mat"), "--out", str(tmp_path / "o")]) == 0
    pdff = load_nifti(tmp_path / "o" / "sub-01" / "sub-01_pdff.nii.gz").data
    assert np.abs(pdff[body] - ff[body]).mean() < 1.0
    # missing metadata -> one clear error line, exit code 2
    save_nifti(Image(s.astype(np.complex64), np.eye(4)), tmp_path / "nometa.nii.gz")
    rc = main(["waterfat", str(tmp_path / "nometa.nii.gz"), "--out", str(tmp_path / "x")])
    assert rc == 2
    assert "EchoTime" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--magnitude"])
def test_cli_magnitude(tmp_path, flag):
    s, ff, body = _volume()
    save_nifti(Image(s.astype(np.complex64), np.eye(4)), tmp_path / "me.nii.gz",
               sidecar={"EchoTime": TE_S.tolist(), "MagneticFieldStrength": 3.0})
    assert main(["waterfat", str(tmp_path / "me.nii.gz"), "--out", str(tmp_path / "m"), flag]) == 0
    pdff = load_nifti(tmp_path / "m" / "sub-01" / "sub-01_pdff.nii.gz").data
    assert np.abs(pdff[body] - ff[body]).mean() < 3.0


def test_cli_bipolar(tmp_path, capsys):
    """An even-echo phase ramp along the readout (axis 0 here) biases PDFF unless removed: --bipolar removes it,
    --monopolar does not, and the default (no flag, no polarity in the metadata) detects it from the data."""
    s, ff, body = _volume()
    x = np.arange(s.shape[0]) - (s.shape[0] - 1) / 2
    bad = s.copy()
    bad[..., 1::2] *= np.exp(1j * (0.8 + 0.04 * x))[:, None, None, None]
    save_nifti(Image(bad.astype(np.complex64), np.eye(4)), tmp_path / "bip.nii.gz",
               sidecar={"EchoTime": TE_S.tolist(), "MagneticFieldStrength": 3.0, "PrecessionIsClockwise": True})
    errors = {}
    for name, flags, stored in (("bipolar", ["--bipolar"], True), ("monopolar", ["--monopolar"], False),
                                ("default", [], "auto")):
        out = tmp_path / name
        assert main(["waterfat", str(tmp_path / "bip.nii.gz"), "--out", str(out), *flags]) == 0
        errors[name] = np.abs(load_nifti(out / "sub-01" / "sub-01_pdff.nii.gz").data[body] - ff[body]).mean()
        captured = capsys.readouterr()
        printed = " ".join((captured.out + captured.err).split())  # rich wraps long lines
        assert ("left uncorrected" in printed) == (name == "monopolar")
        assert ("error detected in the data and corrected" in printed) == (name == "default")
        side = json.loads((out / "sub-01" / "sub-01_pdff.json").read_text())
        assert side["ModelParameters"]["bipolar_correction"] == stored
    assert errors["bipolar"] < 1.0 and errors["monopolar"] > 3 * errors["bipolar"], errors
    assert errors["default"] < 1.0, errors
    for name in ("bipolar", "default"):
        side = json.loads((tmp_path / name / "sub-01" / "sub-01_pdff.json").read_text())
        assert side["QC"]["bipolar"]["readout_axis"] == 0


def test_cli_voxel_size(tmp_path, capsys):
    """Inputs without geometry (toolbox .mat): --voxel-size sets it (affine of the outputs, model coupling);
    without it a warning says 1 mm is assumed; a malformed value or one for an input with geometry is refused."""

    s, _, _ = _volume()
    path = tmp_path / "t.mat"
    scipy.io.savemat(path, {"data": s[..., 0, :].astype(np.complex64), "te": TE_S, "Tesla": 3.0})
    assert main(["waterfat", str(path), "--out", str(tmp_path / "a")]) == 0
    assert "1 mm isotropic voxels" in capsys.readouterr().err
    side = json.loads((tmp_path / "a" / "sub-01" / "sub-01_pdff.json").read_text())
    assert side["ModelParameters"]["voxel_size_mm"] is None
    assert main(["waterfat", str(path), "--out", str(tmp_path / "b"), "--voxel-size", "1.5,1.5,5"]) == 0
    capsys.readouterr()
    affine = load_nifti(tmp_path / "b" / "sub-01" / "sub-01_pdff.nii.gz").affine
    np.testing.assert_allclose(np.diag(affine)[:3], [1.5, 1.5, 5])
    side = json.loads((tmp_path / "b" / "sub-01" / "sub-01_pdff.json").read_text())
    assert side["ModelParameters"]["voxel_size_mm"] == [1.5, 1.5, 5.0]
    assert main(["waterfat", str(path), "--out", str(tmp_path / "c"), "--voxel-size", "1.5,x"]) != 0
    assert "--voxel-size must be three positive numbers" in capsys.readouterr().err
    assert not (tmp_path / "c").exists()
    save_nifti(Image(s.astype(np.complex64), np.eye(4)), tmp_path / "me.nii.gz",
               sidecar={"EchoTime": TE_S.tolist(), "MagneticFieldStrength": 3.0})
    assert main(["waterfat", str(tmp_path / "me.nii.gz"), "--out", str(tmp_path / "d"), "--voxel-size", "1,1,1"]) != 0
    assert "records its own" in capsys.readouterr().err
