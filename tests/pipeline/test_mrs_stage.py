"""The exam pipeline's MRS stage: a multi-TE series fitted, located in its vertebra, beside the imaging PDFF."""

from __future__ import annotations

import json

import numpy as np
import pytest

from osteomri.io import Image, save_nifti
from osteomri.models.mrs import MrsModel
from osteomri.phantom.mrs import simulate_marrow_fids
from osteomri.pipeline.exam import run_exam
from osteomri.pipeline.spec import ExamSpec

pytest.importorskip("nifti_mrs")
TE = [0.011, 0.015, 0.020, 0.025, 0.030]


def _series(folder, position_mm):
    from nifti_mrs.create_nmrs import gen_nifti_mrs

    fids, _ = simulate_marrow_fids(MrsModel(TE, 123.2, 5e-4), 1024, pdff_percent=45, ndb=3, water_t2_ms=25,
                                   fat_t2_ms=60, water_linewidth_hz=25, fat_linewidth_hz=18, snr=150,
                                   rng=np.random.default_rng(1))
    folder.mkdir()
    affine = np.eye(4)
    affine[:3, :3] *= 15.0
    affine[:3, 3] = position_mm
    for i, t in enumerate(TE):
        img = gen_nifti_mrs(fids[0, i].reshape(1, 1, 1, -1).astype(np.complex64), 5e-4, 123.2, affine=affine)
        img.add_hdr_field("EchoTime", t)
        img.save(folder / f"te{i}.nii.gz")


def test_exam_with_mrs_and_labels(tmp_path):
    # a label map with two "vertebrae" (spineps: L3 = 22, L4 = 23) stacked along S, 2 mm voxels
    lab = np.zeros((20, 20, 40), np.int16)
    lab[5:15, 5:15, 2:18] = 23
    lab[5:15, 5:15, 22:38] = 22
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    save_nifti(Image(lab, affine), tmp_path / "labels.nii.gz")
    _series(tmp_path / "mrs", position_mm=(20.0, 20.0, 60.0))  # voxel 10, 10, 30: inside L3
    spec = ExamSpec("sub-01", labels=str(tmp_path / "labels.nii.gz"), options={"mrs": {"spectra": [tmp_path / "mrs"]}})
    result = run_exam(spec, out_dir=tmp_path / "out")
    stages = result.stage_table().set_index("stage")
    assert stages.loc["mrs", "status"] == "done", stages
    assert result.scores["mrs_level"] == "L3"
    assert result.scores["mrs_pdff_percent"] == pytest.approx(45, abs=4 * result.scores["mrs_pdff_percent_sd"])
    scores = json.loads((tmp_path / "out" / "sub-01" / "sub-01_scores.json").read_text())
    assert "water_t2_ms_sd" in scores
    assert (tmp_path / "out" / "sub-01" / "sub-01_mrs.png").exists()
