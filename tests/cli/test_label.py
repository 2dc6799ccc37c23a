"""``osteomri label``: outputs on disk, one clear line when the count is ambiguous or a backend is missing."""

from __future__ import annotations

import json

import numpy as np

from osteomri.cli.main import main
from osteomri.io import load_nifti, save_nifti
from osteomri.phantom.spine import LEVEL_IDS, make_spine_phantom


def _water_file(tmp_path):
    ph = make_spine_phantom(shape=(10, 96, 128), voxel_size_mm=(4.0, 2.2, 2.25), seed=1)
    water = ph.maps["pd"].with_data(ph.maps["pd"].data * (1 - ph.maps["pdff_percent"].data / 100))
    return ph, save_nifti(water, tmp_path / "sub-01_water.nii.gz")


def test_label_writes_mask_sidecar_and_qc(tmp_path):
    ph, path = _water_file(tmp_path)
    rc = main(["label", str(path), "--out", str(tmp_path / "out"), "--contrast", "water", "--lowest-level", "L5"])
    assert rc == 0
    mask = load_nifti(tmp_path / "out" / "sub-01_water_seg-vert_msk.nii.gz")
    assert np.allclose(mask.affine, ph.affine) and mask.data.shape == ph.shape
    l3 = ph.level_mask("L3", ("marrow",))
    assert np.mean(np.asarray(mask.data)[l3] == LEVEL_IDS["L3"]) > 0.9  # L3's marrow carries L3
    side = json.loads((tmp_path / "out" / "sub-01_water_seg-vert_msk.json").read_text())
    assert set(side["VertebraLabelling"]["confidence"]) == {"L1", "L2", "L3", "L4", "L5"}
    assert side["Provenance"]["inputs"][0]["name"] == "sub-01_water.nii.gz"
    assert (tmp_path / "out" / "sub-01_water_seg-vert_qc.png").read_bytes()[:4] == b"\x89PNG"


def test_ambiguous_count_is_one_line_and_no_output(tmp_path, capsys):
    _, path = _water_file(tmp_path)  # the phantom's sacrum has no sacral slope: the count is ambiguous
    rc = main(["label", str(path), "--out", str(tmp_path / "out"), "--contrast", "water"])
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 2 and "--lowest-level" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_missing_segmenter_is_one_line(tmp_path, capsys):
    _, path = _water_file(tmp_path)
    rc = main(["label", str(path), "--out", str(tmp_path / "out"), "--segmenter", "spineps"])
    err = " ".join(capsys.readouterr().err.split())
    assert rc == 2 and "spineps" in err and "Traceback" not in err
