"""A canonical working grid for vertebra detection: array axes (superior→inferior, anterior→posterior, left–right),
about 1 mm in the sagittal plane, read from the affine; and the way back to the image's own grid.

Only axis permutations and flips are undone (the affine's obliquity is ignored for detection: a sagittal
acquisition tilted by a few degrees stays a sagittal acquisition). Resampling is linear for intensities and
nearest-neighbour for labels (``scipy.ndimage.zoom``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.io.orientation import anatomical_axes, voxel_size_mm

IN_PLANE_MM = 1.0  # working pixel size in the sagittal plane


@dataclass
class SpineGrid:
    """The canonical volume ``data[s, a, l]`` and how it maps to the source image."""

    data: np.ndarray  # float32, (SI, AP, LR): s grows inferiorly, a grows posteriorly
    spacing_mm: np.ndarray  # (3,) working voxel size
    perm: tuple[int, int, int]  # source axes of (s, a, l)
    flips: tuple[bool, bool, bool]  # flips applied after the permutation
    source_shape: tuple[int, int, int]  # permuted, flipped source shape before zoom

    def to_source(self, labels: np.ndarray) -> np.ndarray:
        """A label array of the working grid back onto the source image's grid (nearest neighbour)."""
        out = labels
        if out.shape != self.source_shape:
            factors = np.asarray(self.source_shape) / np.asarray(out.shape)
            out = ndimage.zoom(out, factors, order=0, grid_mode=True, mode="nearest")
            out = _fit_shape(out, self.source_shape)
        for axis, flip in enumerate(self.flips):
            if flip:
                out = np.flip(out, axis)
        return np.ascontiguousarray(np.transpose(out, np.argsort(self.perm)))


def _fit_shape(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    pad = [(0, max(0, t - s)) for s, t in zip(arr.shape, shape, strict=True)]
    arr = np.pad(arr, pad, mode="edge")
    return arr[tuple(slice(0, t) for t in shape)]


def spine_grid(image: Image) -> SpineGrid:
    """Reorient (and resample in-plane to :data:`IN_PLANE_MM`) an image for detection.

    4-D data (echoes, b-values) use the magnitude of their first volume. Raises :class:`InputError` on
    images that are not 3-D volumes with at least 16 voxels along superior–inferior and anterior–posterior.
    """
    data = np.asarray(image.data)
    if data.ndim < 3:
        raise InputError(f"vertebra labelling needs a 3-D volume, got shape {data.shape}")
    while data.ndim > 3:
        data = data[..., 0]
    data = np.abs(data) if np.iscomplexobj(data) else data
    data = np.nan_to_num(data.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    if not np.any(data):
        raise InputError("the image is empty (all zero or NaN): nothing to label")
    lr, ap, si = anatomical_axes(image.affine)
    perm = (si, ap, lr)
    arr = np.transpose(data, perm)
    flips = (bool(image.affine[2, si] > 0), bool(image.affine[1, ap] > 0), False)
    for axis, flip in enumerate(flips):
        if flip:
            arr = np.flip(arr, axis)
    vox = voxel_size_mm(image.affine)[list(perm)]
    if arr.shape[0] * vox[0] < 60 or arr.shape[1] * vox[1] < 40:
        raise InputError(f"field of view {arr.shape[0] * vox[0]:.0f} mm (SI) x {arr.shape[1] * vox[1]:.0f} mm (AP)"
                         " is too small to hold lumbar vertebrae")
    source_shape = arr.shape
    target = np.array([IN_PLANE_MM, IN_PLANE_MM, max(IN_PLANE_MM, vox[2])])
    factors = vox / target
    if np.any(np.abs(factors - 1) > 0.02):
        arr = ndimage.zoom(arr, factors, order=1, grid_mode=True, mode="nearest")
        spacing = vox * np.asarray(source_shape) / np.asarray(arr.shape)
    else:
        spacing = vox
    return SpineGrid(np.ascontiguousarray(arr, dtype=np.float32), np.asarray(spacing, float), perm, flips,
                     tuple(int(s) for s in source_shape))
