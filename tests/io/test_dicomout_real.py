"""DICOM results on a real vendor header: nibabel's Philips Enhanced MR file (176 frames, pixel measures and
orientation per frame) as the source of a Parametric Map and a SEG."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from osteomri.io import load_image
from osteomri.io.dicomout import Segment, load_dicom_seg, read_source, write_parametric_map, write_segmentation
from osteomri.models.registry import MapSpec

pytest.importorskip("highdicom")
pytestmark = pytest.mark.slow  # a 256 x 256 x 176 float map (46 MB)


def test_parametric_map_and_seg_on_a_real_philips_enhanced_source(philips_enhanced, tmp_path, dciodvfy):
    image = load_image(philips_enhanced)
    source = read_source(philips_enhanced, "t1w")
    data = np.random.default_rng(0).uniform(0, 100, image.spatial_shape).astype(np.float32)
    data[:, :, :10] = np.nan
    spec = MapSpec("test_real_pdff_percent", "%", "proton-density fat fraction", "pdff", "test")
    pm = write_parametric_map(image.with_data(data), spec, source, tmp_path / "pm.dcm")
    assert dciodvfy(pm) == []
    back = load_image(pm)
    assert np.array_equal(back.data, data, equal_nan=True)
    np.testing.assert_allclose(back.affine, image.affine, atol=1e-5)
    mask = np.zeros(image.spatial_shape, bool)
    mask[100:140, 90:150, 60:90] = True
    seg = write_segmentation([Segment("L4 ROI", mask, "L4", "roi")], source, tmp_path / "seg.dcm")
    assert dciodvfy(seg) == []
    assert np.array_equal(load_dicom_seg(seg, reference=image).masks[1], mask)
    src = pydicom.dcmread(philips_enhanced, stop_before_pixels=True)
    for path in (pm, seg):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID
        assert ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == \
            src.SOPInstanceUID
