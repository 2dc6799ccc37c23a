"""NIfTI reader on the real labelled spine samples (TPTBox/SPINEPS and TotalSegmentator conventions)."""

import nibabel as nib
import numpy as np
import pytest

from osteomri.io import load_image

pytestmark = pytest.mark.shared_data


def test_tptbox_sample_image_and_masks(shared_data):
    folder = shared_data("spine") / "tptbox_sample_mri"
    img = load_image(folder / "sub-mri_label-6_T2w.nii.gz")
    vert = load_image(folder / "sub-mri_seg-vert_label-6_msk.nii.gz")
    sub = load_image(folder / "sub-mri_seg-subreg_label-6_msk.nii.gz")
    assert img.data.shape == vert.data.shape == sub.data.shape == (68, 52, 67)
    assert nib.aff2axcodes(img.affine) == ("P", "I", "R")
    np.testing.assert_allclose(img.voxel_size_mm, 1.5)
    assert np.issubdtype(vert.data.dtype, np.integer), "label maps stay integer"
    # label values documented in the data README (SPINEPS instance / subregion conventions)
    assert set(np.unique(vert.data)) == {0, 5, 6, 7, 105, 106, 205, 206, 207}
    assert {49, 60, 61, 62, 100} <= set(np.unique(sub.data))
    # the vertebral-body subregion lies inside the instance labels of C5-C7
    body = sub.data == 49
    assert np.isin(vert.data[body], [5, 6, 7, 205, 206, 207]).mean() > 0.95


def test_totalsegmentator_sample(shared_data):
    folder = shared_data("spine") / "totalsegmentator_example_mr"
    img = load_image(folder / "example_mr_sm.nii.gz")
    seg = load_image(folder / "example_seg_mr.nii.gz")
    assert img.data.shape == seg.data.shape == (117, 91, 20)
    assert nib.aff2axcodes(seg.affine) == ("L", "P", "S")
    assert img.data.min() == -47 and img.data.max() == 833  # int16 range stated in the README
    assert {5, 19, 20, 21} <= set(np.unique(seg.data))  # liver, vertebrae, discs, spinal cord
