"""Orientation from the affine, handled once: which array axis is left–right, anterior–posterior,
superior–inferior, voxel sizes, voxel→world coordinates, and sagittal views displayed the radiological way
(superior up, anterior left). Nothing downstream assumes an array axis order.
"""

from __future__ import annotations

import numpy as np

from osteomri.errors import InputError


def anatomical_axes(affine: np.ndarray) -> tuple[int, int, int]:
    """Array axes most aligned with world (R, A, S): ``(lr, ap, si)``; an error if the affine is too oblique."""
    rot = np.abs(np.asarray(affine, dtype=float)[:3, :3])
    lr, ap, si = (int(np.argmax(rot[i])) for i in range(3))
    if len({lr, ap, si}) != 3:
        raise InputError("the image affine is too oblique to identify sagittal slices")
    return lr, ap, si


def lr_axis(affine: np.ndarray) -> int:
    """The array axis most aligned with world left–right: sagittal slices are taken along it."""
    return anatomical_axes(affine)[0]


def voxel_size_mm(affine: np.ndarray) -> np.ndarray:
    """Voxel edge lengths (mm) of the three array axes."""
    return np.sqrt((np.asarray(affine, dtype=float)[:3, :3] ** 2).sum(axis=0))


def voxel_world(indices: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """World coordinates (N, 3) in mm of voxel indices (N, 3)."""
    affine = np.asarray(affine, dtype=float)
    return np.asarray(indices, dtype=float) @ affine[:3, :3].T + affine[:3, 3]


def sagittal_view(array: np.ndarray, affine: np.ndarray, index: int | None = None
                  ) -> tuple[np.ndarray, int, tuple[float, float, float, float]]:
    """Sagittal slice ``index`` (default the middle, ``(n - 1) // 2``) along the LR axis.

    Returns ``(slice, index, extent)``: rows superior→inferior, columns anterior→posterior, and the
    matplotlib ``extent`` in mm ``(0, width, 0, height)``. Extra trailing axes (echoes) use their first entry;
    complex data is shown as magnitude.
    """
    data = np.asarray(array)
    while data.ndim > 3:
        data = data[..., 0]
    lr, ap, si = anatomical_axes(affine)
    index = (data.shape[lr] - 1) // 2 if index is None else int(index)
    sl = np.take(data, index, axis=lr)
    rest = [a for a in range(3) if a != lr]
    sl = sl if rest.index(si) == 0 else sl.T
    if affine[2, si] > 0:
        sl = sl[::-1]
    if affine[1, ap] > 0:
        sl = sl[:, ::-1]
    sp = voxel_size_mm(affine)
    sl = np.abs(sl) if np.iscomplexobj(sl) else sl
    return sl, index, (0.0, sl.shape[1] * sp[ap], 0.0, sl.shape[0] * sp[si])


def reoriented(image, perm: tuple[int, int, int], flips: tuple[bool, bool, bool]):
    """The same volume stored with array axes permuted (new axis i = old axis ``perm[i]``) then flipped.

    The affine is updated so every voxel keeps its world position: a way to test that nothing depends on the
    array's axis order, and to store data as another scanner would.
    """
    from osteomri.io.image import Image

    data = np.transpose(np.asarray(image.data), tuple(perm) + tuple(range(3, np.ndim(image.data))))
    aff = np.asarray(image.affine, dtype=float)
    new = np.eye(4)
    new[:3, :3] = aff[:3, list(perm)]
    new[:3, 3] = aff[:3, 3]
    for i, flip in enumerate(flips):
        if flip:
            n = data.shape[i]
            data = np.flip(data, axis=i)
            new[:3, 3] = new[:3, 3] + new[:3, i] * (n - 1)
            new[:3, i] = -new[:3, i]
    return Image(np.ascontiguousarray(data), new, dict(image.meta))
