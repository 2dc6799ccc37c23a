"""QC figures: the mid-sagittal slice with each level's ROI outlined and labelled."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from osteomri.io.orientation import reoriented as reorient
from osteomri.phantom import make_spine_phantom
from osteomri.report.figures import qc_figure, qc_panels, save_qc_figures
from osteomri.vertebrae import phantom_labels, rois_for


@pytest.fixture(scope="module")
def phantom():
    return make_spine_phantom(shape=(12, 96, 128), voxel_size_mm=(4.0, 2.0, 2.25), seed=7)


def test_qc_figure_outlines_and_labels_each_level(phantom, tmp_path):
    labels = phantom_labels(phantom, "spineps")
    pdff = phantom.maps["pdff_percent"]
    rois = rois_for(pdff, labels, "spineps", "paper")
    fig = qc_figure(pdff, rois, "pdff_percent")
    ax = fig.axes[0]
    assert sorted(t.get_text() for t in ax.texts) == sorted(rois.levels)
    assert len(ax.collections) >= len(rois.levels)  # one contour set per level
    # the image shown is the mid-sagittal slice, superior up and anterior left
    shown = ax.images[0].get_array()
    expected = np.asarray(pdff.data)[rois.sagittal_index()].T[::-1, ::-1]
    np.testing.assert_array_equal(np.asarray(shown), expected)
    plt.close(fig)
    # the same picture from a P,I,R-stored copy
    perm, flips = (1, 2, 0), (True, True, False)
    pdff2 = reorient(pdff, perm, flips)
    fig2 = qc_figure(pdff2, rois_for(pdff2, reorient(labels, perm, flips), "spineps", "paper"), "pdff_percent")
    np.testing.assert_array_equal(np.asarray(fig2.axes[0].images[0].get_array()), expected)
    plt.close(fig2)
    paths = save_qc_figures({"pdff_percent": pdff, "r2star_hz": phantom.maps["r2star_hz"]}, rois, tmp_path, "sub-01")
    for p in paths.values():
        assert p.exists() and p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    panels = qc_panels({"pdff_percent": pdff, "r2star_hz": phantom.maps["r2star_hz"]},
                       {"pdff_percent": rois, "r2star_hz": rois})
    image_axes = [ax for ax in panels.axes if ax.images and ax.texts]
    assert len(image_axes) == 2 and all(sorted(t.get_text() for t in ax.texts) == sorted(rois.levels)
                                        for ax in image_axes)
    np.testing.assert_array_equal(np.asarray(image_axes[0].images[0].get_array()), expected)
