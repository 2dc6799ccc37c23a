import json
import os

import nibabel as nib
import numpy as np
import pytest

from osteomri.errors import InputError, MetadataError
from osteomri.io import Image, load_complex_pair, load_image, load_nifti, save_nifti, sidecar_path
from osteomri.io.nifti import phase_to_radians
from osteomri.io.provenance import provenance, sha256_file


def _affine():
    a = np.diag([1.5, 1.2, 3.0, 1.0])
    a[:3, 3] = [-10, 20, 5]
    return a


def test_roundtrip_with_sidecar_and_provenance(tmp_path):
    data = np.random.default_rng(0).normal(size=(4, 5, 3, 6)).astype(np.float32)
    te = [1.3e-3 + 0.8e-3 * n for n in range(6)]
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc")
    img = Image(data, _affine(), {"EchoTime": te, "MagneticFieldStrength": 3.0})
    prov = provenance("x", {"k": 1}, [src])
    out = save_nifti(img, tmp_path / "a.nii.gz", sidecar={"Units": "a.u.", "Provenance": prov})
    back = load_nifti(out)
    np.testing.assert_array_equal(back.data, data)
    np.testing.assert_allclose(back.affine, _affine())
    np.testing.assert_allclose(back.echo_times_s, te)
    side = json.loads(sidecar_path(out).read_text())
    assert side["Provenance"]["inputs"][0]["sha256"] == sha256_file(src)
    assert side["Provenance"]["inputs"][0]["name"] == "src.bin"  # no directories (may hold names)
    assert side["Units"] == "a.u." and side["Provenance"]["version"]
    assert not list(tmp_path.glob(".*")), "no temporary files left behind"
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask, "outputs get ordinary permissions, not mkstemp's 0600"


def test_complex_nifti_roundtrip(tmp_path):
    rng = np.random.default_rng(1)
    data = (rng.normal(size=(3, 3, 2, 4)) + 1j * rng.normal(size=(3, 3, 2, 4))).astype(np.complex64)
    back = load_image(save_nifti(Image(data, _affine(), {}), tmp_path / "c.nii"))
    assert np.iscomplexobj(back.data)
    np.testing.assert_allclose(back.data, data, rtol=1e-6)


def test_scaled_integer_nifti_is_rescaled(tmp_path):
    raw = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    nimg = nib.Nifti1Image(raw, _affine())
    nimg.header.set_slope_inter(0.5, 10.0)
    nib.save(nimg, tmp_path / "s.nii.gz")
    np.testing.assert_allclose(load_nifti(tmp_path / "s.nii.gz").data, raw * 0.5 + 10.0)


def test_magnitude_phase_pair_siemens_scaling(tmp_path):
    mag = np.full((2, 2, 1, 3), 2.0, dtype=np.float32)
    phase_rad = np.array([-np.pi / 2, 0.0, np.pi / 2])
    phase_int = np.broadcast_to(np.round(phase_rad / np.pi * 4096), mag.shape).astype(np.int16)
    save_nifti(Image(mag, _affine(), {"EchoTime": [1e-3, 2e-3, 3e-3]}), tmp_path / "m.nii.gz")
    save_nifti(Image(phase_int, _affine(), {}), tmp_path / "p.nii.gz", dtype=np.int16)
    img = load_complex_pair(tmp_path / "m.nii.gz", tmp_path / "p.nii.gz")
    np.testing.assert_allclose(np.angle(img.data[0, 0, 0]), phase_rad, atol=1e-3)
    np.testing.assert_allclose(np.abs(img.data), 2.0, rtol=1e-6)
    assert img.meta["EchoTime"] == [1e-3, 2e-3, 3e-3]


def test_real_imaginary_pair(tmp_path):
    re = np.ones((2, 2, 2), np.float32)
    save_nifti(Image(re, _affine()), tmp_path / "r.nii.gz")
    save_nifti(Image(-2 * re, _affine()), tmp_path / "i.nii.gz")
    img = load_complex_pair(tmp_path / "r.nii.gz", tmp_path / "i.nii.gz", kind="real_imaginary")
    np.testing.assert_allclose(img.data, 1 - 2j)


def test_phase_radians_passthrough():
    ph = np.array([-3.0, 0.0, 3.1])
    np.testing.assert_array_equal(phase_to_radians(ph), ph)


def test_bad_inputs(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        load_nifti(tmp_path / "missing.nii.gz")
    bad = tmp_path / "bad.nii.gz"
    bad.write_bytes(b"not a nifti at all")
    with pytest.raises(InputError, match="bad.nii.gz is truncated or corrupt"):
        load_nifti(bad)
    save_nifti(Image(np.ones((2, 2, 2)), _affine()), tmp_path / "a.nii.gz")
    save_nifti(Image(np.ones((2, 2, 3)), _affine()), tmp_path / "b.nii.gz")
    with pytest.raises(InputError, match="shape mismatch"):
        load_complex_pair(tmp_path / "a.nii.gz", tmp_path / "b.nii.gz")
    with pytest.raises(MetadataError, match="EchoTime"):
        _ = Image(np.ones((2, 2, 2, 3))).echo_times_s
    with pytest.raises(InputError, match="3 echo times given but the image's last axis has 4"):
        _ = Image(np.ones((2, 2, 2, 4)), meta={"EchoTime": [1e-3, 2e-3, 3e-3]}).echo_times_s
    with pytest.raises(InputError, match="unsupported input"):
        (tmp_path / "x.txt").write_text("x")
        load_image(tmp_path / "x.txt")
    (tmp_path / "j.nii.gz").write_bytes((tmp_path / "a.nii.gz").read_bytes())
    (tmp_path / "j.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_nifti(tmp_path / "j.nii.gz")


def test_bids_part_mag_phase_pair_loads_as_complex(tmp_path):
    rng = np.random.default_rng(3)
    z = (rng.normal(size=(3, 3, 2, 4)) + 1j * rng.normal(size=(3, 3, 2, 4))).astype(np.complex64)
    meta = {"EchoTime": [1e-3, 2e-3, 3e-3, 4e-3], "MagneticFieldStrength": 1.5}
    mag = save_nifti(Image(np.abs(z), _affine(), meta), tmp_path / "sub-1_part-mag_MEGRE.nii.gz")
    save_nifti(Image(np.angle(z), _affine(), meta), tmp_path / "sub-1_part-phase_MEGRE.nii.gz")
    img = load_image(mag)
    np.testing.assert_allclose(img.data, z, rtol=1e-5, atol=1e-6)
    assert img.meta["MagneticFieldStrength"] == 1.5
    alone = save_nifti(Image(np.abs(z), _affine(), meta), tmp_path / "sub-2_part-mag_MEGRE.nii.gz")
    assert not np.iscomplexobj(load_image(alone).data)  # no phase sibling: magnitude only


def test_to_jsonable_and_json_writes_handle_what_results_hold(tmp_path):
    import dataclasses
    import json

    import pandas as pd

    from osteomri.io.provenance import to_jsonable, write_json_atomic

    @dataclasses.dataclass
    class Score:
        value: float
        levels: tuple

    obj = {"s": Score(np.float64(3.5), ("L1", "L2")), "nan": float("nan"), "arr": np.array([1.0, np.inf]),
           "table": pd.DataFrame({"a": [1, 2], "b": [0.5, np.nan]}), "path": tmp_path / "x", 7: np.int16(4)}
    plain = to_jsonable(obj)
    assert plain == {"s": {"value": 3.5, "levels": ["L1", "L2"]}, "nan": None, "arr": [1.0, None],
                     "table": [{"a": 1, "b": 0.5}, {"a": 2, "b": None}], "path": str(tmp_path / "x"), "7": 4}
    # JSON has no NaN: the atomic writer must produce strict JSON from such results
    assert json.loads(write_json_atomic(tmp_path / "r.json", obj).read_text()) == plain


def test_write_table_atomic_separator_and_precision(tmp_path):
    import pandas as pd

    from osteomri.io.provenance import write_table_atomic

    df = pd.DataFrame({"level": ["L1"], "mean": [1 / 3]})
    tsv = write_table_atomic(df, tmp_path / "sub" / "t.tsv", "%.6g").read_text()
    csv = write_table_atomic(df, tmp_path / "t.csv").read_text()
    assert tsv == "level\tmean\nL1\t0.333333\n"
    assert csv.splitlines()[1].startswith("L1,0.3333333333333")  # full precision without a float format
