"""Every map is the same file with the same sidecar from every entry point (waterfat, ivim, exam), and a
non-default water-fat run is reproduced exactly from its sidecar's parameters (issue 12)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from osteomri.cli.main import main
from osteomri.io import Image, load_image, load_nifti, save_nifti
from osteomri.models.ivim import ivim_signal
from osteomri.models.registry import map_spec, registered_maps
from osteomri.models.waterfat import WaterFatModel, multiecho_signal

TE_S = 1.3e-3 + 0.8e-3 * np.arange(6)
B = np.array([0, 10, 20, 50, 100, 200, 400, 600, 800, 1000.0])
AFFINE = np.diag([1.5, 1.5, 5.0, 1.0])


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("entry")
    rng = np.random.default_rng(0)
    x = np.linspace(-1, 1, 16)[:, None, None] * np.ones((16, 12, 2))
    body = np.abs(x) < 0.9
    s = multiecho_signal(body * (1 - (x + 1) / 2), body * (x + 1) / 2, 50.0, 60.0 * x, TE_S, 3.0)
    s = s + (rng.normal(size=s.shape) + 1j * rng.normal(size=s.shape)) / 200
    megre = save_nifti(Image(s.astype(np.complex64), AFFINE), folder / "sub-02_MEGRE.nii.gz",
                       sidecar={"EchoTime": TE_S.tolist(), "MagneticFieldStrength": 3.0, "PrecessionIsClockwise": True})
    dwi = ivim_signal(B, 800.0, 0.1 + 0.1 * (x > 0), 0.5e-3, 0.04) + rng.normal(0, 2.0, x.shape + (B.size,))
    dwi[~body] = rng.normal(0, 2.0, (int((~body).sum()), B.size))  # air: noise only
    dwi_path = save_nifti(Image(dwi.astype(np.float32), AFFINE), folder / "sub-02_dwi.nii.gz")
    (folder / "sub-02_dwi.bval").write_text(" ".join(f"{b:g}" for b in B) + "\n")
    return folder, megre, dwi_path, body


def _maps(folder):
    return {p.name: p for p in sorted(folder.glob("sub-02_*.nii.gz"))}


def test_each_map_is_the_same_file_and_sidecar_from_every_entry_point(inputs, tmp_path):
    folder, megre, dwi, body = inputs
    assert main(["waterfat", str(megre), "-o", str(tmp_path / "wf")]) == 0
    assert main(["ivim", str(dwi), "-o", str(tmp_path / "iv")]) == 0
    assert main(["exam", "--no-autolabel", "--exam-id", "sub-02", "--megre", str(megre), "--dwi", str(dwi), "--bvals",
                 str(folder / "sub-02_dwi.bval"), "--out", str(tmp_path / "ex")]) == 0
    single = {**_maps(tmp_path / "wf" / "sub-02"), **_maps(tmp_path / "iv" / "sub-02")}
    exam = _maps(tmp_path / "ex" / "sub-02")
    expected = {f"sub-02_{s.suffix}.nii.gz" for m in ("waterfat", "ivim") for s in registered_maps(m).values()}
    assert set(single) == set(exam) == expected
    for name, path in single.items():
        a, b = load_nifti(path), load_nifti(exam[name])
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
        side_a = json.loads(path.with_name(name.replace(".nii.gz", ".json")).read_text())
        side_b = json.loads(exam[name].with_name(name.replace(".nii.gz", ".json")).read_text())
        for key in ("Units", "Description", "ModelParameters", "QC"):
            assert side_a[key] == side_b[key], (name, key)
    r2 = json.loads((tmp_path / "ex" / "sub-02" / "sub-02_r2star.json").read_text())
    assert r2["Units"] == map_spec("r2star_hz").units == "1/s"
    d = json.loads((tmp_path / "iv" / "sub-02" / "sub-02_D.json").read_text())
    assert d["Units"] == "mm2/s"
    f = load_nifti(tmp_path / "iv" / "sub-02" / "sub-02_perfusionfraction.nii.gz").data
    assert np.isnan(f[~body]).all() and np.isfinite(f[body]).mean() > 0.95  # air is not fitted by default


def test_a_non_default_waterfat_run_is_reproduced_from_its_sidecar(inputs, tmp_path):
    _, megre, _, _ = inputs
    args = ["--regularisation", "30", "--fat-spectrum", "hamilton_liver", "--bipolar", "--precession", "auto"]
    assert main(["waterfat", str(megre), "-o", str(tmp_path), *args]) == 0
    side = json.loads((tmp_path / "sub-02" / "sub-02_pdff.json").read_text())
    params = side["ModelParameters"]
    assert params["regularisation"] == 30 and params["fat_spectrum"]["name"] == "hamilton_liver"
    assert params["bipolar_correction"] is True and params["precession_clockwise"] == "auto"
    maps = WaterFatModel(**params).fit(load_image(megre).data).maps()
    for name, spec in registered_maps("waterfat").items():
        written = load_nifti(tmp_path / "sub-02" / f"sub-02_{spec.suffix}.nii.gz").data
        np.testing.assert_array_equal(written, maps[name], err_msg=name)
    default = WaterFatModel(TE_S, 3.0).fit(load_image(megre).data).maps()["pdff_percent"]
    assert not np.array_equal(default, maps["pdff_percent"], equal_nan=True)  # the options did change the run
