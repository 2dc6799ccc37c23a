"""DICOM results on a real vendor header: nibabel's Philips Enhanced MR file (176 frames, pixel measures and
orientation per frame) as the source of a Parametric Map and a SEG."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest

from osteomri.io import load_image
from osteomri.io.dicomout import Segment, load_dicom_seg, read_source, write_parametric_map, write_segmentation
from osteomri.models.registry import MapSpec

pytest.importorskip("highdicom")
pytestmark = pytest.mark.slow  # a 256 x 256 x 176 float map (46 MB)


@pytest.fixture(scope="module")
def philips(tmp_path_factory) -> Path:
    import nibabel

    src = Path(nibabel.__file__).parent / "nicom" / "tests" / "data" / "philips_mprage.dcm.gz"
    if not src.exists():
        pytest.skip("nibabel's philips_mprage.dcm.gz test file is not installed")
    dst = tmp_path_factory.mktemp("philips") / "philips_mprage.dcm"
    with gzip.open(src) as fin, open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout)
    return dst


def test_parametric_map_and_seg_on_a_real_philips_enhanced_source(philips, tmp_path, dciodvfy):
    image = load_image(philips)
    source = read_source(philips, "t1w")
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
    src = pydicom.dcmread(philips, stop_before_pixels=True)
    for path in (pm, seg):
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        assert ds.FrameOfReferenceUID == src.FrameOfReferenceUID
        assert ds.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0].ReferencedSOPInstanceUID == \
            src.SOPInstanceUID
