"""QC figures: the mid-sagittal slice with each level's ROI outlined and labelled."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from osteomri.io.orientation import reoriented as reorient
from osteomri.phantom import make_spine_phantom
from osteomri.report.figures import qc_crop, qc_figure, qc_panels, save_qc_figures
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
    # the image shown is the mid-sagittal slice, superior up and anterior left, cropped to the spine
    shown = ax.images[0].get_array()
    full = np.asarray(pdff.data)[rois.sagittal_index()].T[::-1, ::-1]
    crop = qc_crop(rois, pdff.affine, rois.sagittal_index(), full.shape)
    expected = full[crop.rows, crop.cols]
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


def _check_crop_aspect_and_labels(fig, rois, affine, full_extent_mm):
    """The view is the ROIs' box plus margins (smaller than the field of view), drawn at the voxel size's
    aspect, and every level label lies beside the image (outside it), not on an ROI."""
    from matplotlib.text import Text

    ax = fig.axes[0]
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    left, right, bottom, top = ax.images[0].get_extent()
    width_mm, height_mm = right - left, top - bottom
    assert width_mm < full_extent_mm[0] or height_mm < full_extent_mm[1]
    box = ax.get_window_extent(renderer)
    # 1 mm is as long across as it is up (true aspect from the voxel size)
    assert box.width / width_mm == pytest.approx(box.height / height_mm, rel=0.03)
    for text in ax.texts:
        tb = Text.get_window_extent(text, renderer)  # the words, without the leader line
        assert tb.x1 <= box.x0 + 1, f"label {text.get_text()} overlaps the image"
    # every ROI lies inside the crop
    for level in rois.levels:
        assert level in {t.get_text() for t in ax.texts}
    return box


def test_qc_figure_is_cropped_to_the_spine_with_labels_beside_it(phantom, tmp_path):
    labels = phantom_labels(phantom, "spineps")
    pdff = phantom.maps["pdff_percent"]
    rois = rois_for(pdff, labels, "spineps", "paper")
    fig = qc_figure(pdff, rois, "pdff_percent")
    full = (96 * 2.0, 128 * 2.25)  # AP and SI extent of the field of view (mm)
    _check_crop_aspect_and_labels(fig, rois, pdff.affine, full)
    path = save_qc_figures({"pdff_percent": pdff}, rois, tmp_path, "sub-01")["pdff_percent"]
    w, h = plt.imread(path).shape[1::-1]
    assert h >= 800 and w * h > 1.5 * 462 * 572  # larger than the old 462 x 572 px whole-FOV picture
    plt.close("all")


def test_axial_totalsegmentator_sample_is_not_a_strip(shared_data, tmp_path):
    """An axial acquisition (20 x 3 mm slices): the sagittal view is 60 mm tall; the crop keeps it readable."""
    from osteomri.io import load_image

    root = shared_data("spine") / "totalsegmentator_example_mr"
    img = load_image(root / "example_mr_sm.nii.gz")
    rois = rois_for(img, load_image(root / "example_seg_mr.nii.gz"), "total_mr", "paper", lowest_level="L1",
                    levels="all")
    fig = qc_figure(img, rois, "t1w_signal")
    box = _check_crop_aspect_and_labels(fig, rois, img.affine, (91 * 3.0, 20 * 3.0))
    left, right, bottom, top = fig.axes[0].images[0].get_extent()
    assert right - left <= 0.5 * 91 * 3.0  # cropped to the spine, not the whole 273 mm of the abdomen
    assert box.width / box.height < 2.5  # not a strip
    assert box.height >= 400  # pixels at the saved dpi
    plt.close("all")
