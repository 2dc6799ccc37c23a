"""Unfitted voxels are NaN in every map and never enter a ROI statistic (issue 12)."""

from __future__ import annotations

import numpy as np
import pytest

from osteomri.phantom import make_spine_phantom, synthesize_megre
from osteomri.pipeline import ExamSpec, run_exam
from osteomri.vertebrae import phantom_labels, rois_for


def test_below_threshold_voxels_inside_a_vertebral_roi_do_not_enter_its_mean():
    ph = make_spine_phantom(shape=(8, 96, 128), voxel_size_mm=(4.0, 2.2, 2.25), seed=5)
    labels = phantom_labels(ph, "spineps")
    roi = rois_for(ph.maps["pdff_percent"], labels, "spineps", "paper").masks["L3"]
    megre, _ = synthesize_megre(ph, snr=100, seed=3)
    dead = roi & (np.indices(roi.shape)[2] < np.median(np.nonzero(roi)[2]))  # the caudal half of the L3 ROI
    assert 0.3 < dead.sum() / roi.sum() < 0.7
    data = megre.data.copy()
    data[dead] = 0  # no signal: below the fit threshold (a signal void, a saturation band)
    spec = ExamSpec("sub-01", megre=megre.with_data(data), labels=labels, stages=("waterfat", "measure"))
    result = run_exam(spec)
    assert result.ok, result.errors()
    for name in ("pdff_percent", "r2star_hz"):
        assert np.isnan(result.maps[name].data[dead]).all(), name
    table = result.vertebrae.set_index(["level", "map"])
    truth = ph.truth.set_index("level").loc["L3"]
    row = table.loc[("L3", "pdff_percent")]
    assert row["n_voxels"] == int((roi & ~dead).sum())
    assert row["mean"] == pytest.approx(truth["pdff_percent"], abs=2.0)  # 0 % voxels would halve it
    assert table.loc[("L3", "r2star_hz"), "mean"] == pytest.approx(truth["r2star_hz"], abs=10.0)
