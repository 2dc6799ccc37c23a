"""Per-vertebra radiomics on the digital spine phantom: known intensities, known noise, invariants, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from osteomri.cli.main import main
from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.io.nifti import save_nifti
from osteomri.phantom import make_spine_phantom
from osteomri.radiomics import extract_features, resolve_settings
from osteomri.radiomics.vertebrae import vertebra_features, wide_features
from osteomri.vertebrae import measure_vertebrae

SIGMA = 4.0


@pytest.fixture(scope="module")
def phantom():
    return make_spine_phantom(shape=(12, 96, 128), voxel_size_mm=(4.0, 2.0, 2.25), seed=7)


@pytest.fixture(scope="module")
def noisy(phantom):
    rng = np.random.default_rng(3)
    pdff = phantom.maps["pdff_percent"]
    return {"pdff_percent": pdff,
            "pdff_noisy": Image(pdff.data + rng.normal(0.0, SIGMA, pdff.data.shape), pdff.affine)}


@pytest.fixture(scope="module")
def long(phantom, noisy):
    return vertebra_features(noisy, phantom.levels, "spineps", roi="body", exam="sub-01",
                             settings={"discretisation": "fixed_bin_size", "bin_width": 1.0})


def _value(long, level, map_name, tag):
    sel = long[(long["level"] == level) & (long["map"] == map_name) & (long["ibsi_tag"] == tag)]
    assert len(sel) == 1, (level, map_name, tag)
    return float(sel["value"].iloc[0])


def test_mean_and_variance_are_the_known_truth(phantom, long):
    truth = phantom.truth.set_index("level")
    for level in ("L1", "L2", "L3", "L4", "L5"):
        assert _value(long, level, "pdff_percent", "stat_mean") == pytest.approx(truth.loc[level, "pdff_percent"])
        assert _value(long, level, "pdff_percent", "stat_var") == pytest.approx(0.0, abs=1e-9)
        # noise of known SD: variance within its sampling error (~1000 voxels: SE of s^2 ~ 4.5 %)
        assert _value(long, level, "pdff_noisy", "stat_var") == pytest.approx(SIGMA**2, rel=0.15)
        # white noise has no texture structure: GLCM correlation near 0 (homogeneous map: 1 bin, undefined)
        assert abs(_value(long, level, "pdff_noisy", "cm_corr_3D_avg")) < 0.1


def test_roi_matches_the_measurement_layer(phantom, noisy, long):
    stats = measure_vertebrae({"pdff_noisy": noisy["pdff_noisy"]}, phantom.levels, "spineps", roi="body")
    for _, row in stats.iterrows():
        assert _value(long, row["level"], "pdff_noisy", "stat_mean") == pytest.approx(row["mean"], rel=1e-9)
        assert _value(long, row["level"], "mask", "morph_vol_approx") == pytest.approx(row["volume_mm3"])


def test_table_layout_and_wide(long):
    assert list(long.columns) == ["exam", "level", "roi", "map", "ibsi_tag", "feature", "value"]
    assert set(long["map"]) == {"mask", "pdff_percent", "pdff_noisy"}
    assert long.loc[long["map"] == "mask", "feature"].str.startswith("shape_").all()
    wide = wide_features(long)
    assert len(wide) == 5 and "pdff_noisy__cm_contrast_3D_avg" in wide.columns
    per_exam = wide_features(long, by="exam", levels="L1-L4")
    assert len(per_exam) == 1
    expected = wide.set_index("level").loc[["L1", "L2", "L3", "L4"], "pdff_noisy__stat_mean"].mean()
    assert per_exam["pdff_noisy__stat_mean"].iloc[0] == pytest.approx(expected)
    prov = long.attrs["provenance"]
    assert prov["settings"]["pdff_noisy"]["bin_width"] == 1.0 and prov["library"] == "pyradiomics-bhklab"


def test_nan_voxels_are_left_out(phantom):
    pdff = phantom.maps["pdff_percent"]
    mask = phantom.level_mask("L3")
    data = pdff.data.copy()
    idx = np.argwhere(mask)[:10]
    data[tuple(idx.T)] = np.nan
    t = extract_features(Image(data, pdff.affine), mask).set_index("ibsi_tag")
    assert t.loc["stat_mean", "value"] == pytest.approx(phantom.truth.set_index("level").loc["L3", "pdff_percent"])
    assert t.attrs["provenance"]["n_voxels_finite"] == int(mask.sum()) - 10


@pytest.mark.parametrize("settings, message", [
    ("nope", "unknown radiomics preset"),
    ({"bins": 1}, "bins must be at least 2"),
    ({"discretisation": "fixed_bin_size"}, "needs bin_width"),
    ({"intensity_range": (5, 1)}, "low < high"),
    ({"colour": 1}, "unknown radiomics setting"),
])
def test_bad_settings(settings, message):
    with pytest.raises(InputError, match=message):
        resolve_settings(settings)


def test_empty_roi_is_refused(phantom):
    with pytest.raises(InputError, match="finite voxel"):
        extract_features(phantom.maps["pdff_percent"], np.zeros(phantom.shape, bool))


def test_cli_writes_tables_and_refuses_bad_input(phantom, noisy, tmp_path, capsys):
    pdff = save_nifti(noisy["pdff_noisy"], tmp_path / "pdff.nii.gz")
    labels = save_nifti(phantom.levels, tmp_path / "seg.nii.gz", dtype=np.int16)
    out = tmp_path / "out"
    rc = main(["radiomics", "--map", f"pdff={pdff}", "--labels", str(labels), "--preset", "spineps",
               "--roi", "paper", "--exam-id", "sub-01", "--settings", '{"bins": 16}', "--out", str(out)])
    assert rc == 0
    long = pd.read_csv(out / "sub-01_radiomics.tsv", sep="\t")
    assert set(long["map"]) == {"mask", "pdff_percent"} and set(long["roi"]) == {"paper"}
    wide = pd.read_csv(out / "sub-01_radiomics_wide.tsv", sep="\t")
    assert len(wide) == 5
    per_exam = pd.read_csv(out / "sub-01_radiomics_exam.tsv", sep="\t")
    assert len(per_exam) == 1 and per_exam["levels"].iloc[0] == "L1,L2,L3,L4,L5"  # the default level set
    assert per_exam["pdff_percent__stat_mean"].iloc[0] == pytest.approx(
        wide.set_index("level").loc[["L1", "L2", "L3", "L4", "L5"], "pdff_percent__stat_mean"].mean(), rel=1e-6)
    import json

    prov = json.loads((out / "sub-01_radiomics.json").read_text())["Provenance"]
    assert prov["parameters"]["settings_argument"] == '{"bins": 16}'
    assert prov["parameters"]["settings"]["pdff_percent"]["bins"] == 16
    assert prov["parameters"]["pyradiomics_parameters"]["pdff_percent"]["binCount"] == 16
    assert {i["name"] for i in prov["inputs"]} == {"pdff.nii.gz", "seg.nii.gz"}
    capsys.readouterr()
    rc = main(["radiomics", "--map", f"pdff={tmp_path / 'missing.nii.gz'}", "--labels", str(labels),
               "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert rc == 2 and "missing.nii.gz" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()
    rc = main(["radiomics", "--map", f"pdff={pdff}", "--labels", str(labels), "--settings", "bogus",
               "--out", str(tmp_path / "bad")])
    assert rc == 2 and "unknown radiomics preset" in capsys.readouterr().err
