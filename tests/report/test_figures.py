import nibabel as nib
import numpy as np
import pytest

from osteomri.io import Image
from osteomri.io.orientation import sagittal_view
from osteomri.report.figures import maps_figure

WORLD = {"R": (0, 1), "L": (0, -1), "A": (1, 1), "P": (1, -1), "S": (2, 1), "I": (2, -1)}
SIZE = {0: 5, 1: 7, 2: 9}  # LR, AP, SI extents


@pytest.mark.parametrize("codes", [("R", "A", "S"), ("P", "I", "R"), ("L", "P", "S"), ("A", "S", "L")])
def test_sagittal_slice_puts_superior_up_and_anterior_left(codes):
    affine = np.eye(4)
    affine[:3, :3] = 0
    shape, marker = [], []
    for axis, code in enumerate(codes):
        world, sign = WORLD[code]
        affine[world, axis] = 2.0 * sign
        n = SIZE[world]
        shape.append(n)
        # mid-sagittal (LR middle), most anterior, most superior
        marker.append((n - 1) // 2 if world == 0 else (n - 1 if sign > 0 else 0))
    data = np.zeros(shape)
    data[tuple(marker)] = 1.0
    img = Image(data, affine)
    assert nib.aff2axcodes(img.affine) == codes
    sl, idx, extent = sagittal_view(img.data, img.affine)
    assert sl.shape == (9, 7)  # rows SI, cols AP
    assert sl[0, 0] == 1.0, "anterior-superior corner must be top-left"
    assert idx == 2
    assert extent == (0.0, 14.0, 0.0, 18.0)  # mm: 7 x 2 mm anterior-posterior, 9 x 2 mm superior-inferior


def test_maps_figure_has_one_panel_per_map():
    img = Image(np.random.default_rng(0).random((4, 6, 8)))
    fig = maps_figure({"pdff_percent": img, "r2star_hz": img, "custom": img})
    assert sum(len(ax.images) for ax in fig.axes) == 3
