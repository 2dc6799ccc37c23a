"""Fixtures of the vertebral-measurement tests: a small phantom (fast on 2 shared cores)."""

from __future__ import annotations

import numpy as np
import pytest

from osteomri.io.image import Image
from osteomri.phantom import make_spine_phantom

SMALL_SHAPE = (12, 96, 128)
SMALL_VOXEL_MM = (4.0, 2.0, 2.25)


@pytest.fixture(scope="module")
def phantom():
    return make_spine_phantom(shape=SMALL_SHAPE, voxel_size_mm=SMALL_VOXEL_MM, seed=7)


@pytest.fixture(scope="module")
def truth(phantom):
    return phantom.truth.set_index("level")


def reorient(image: Image, perm: tuple[int, int, int], flips: tuple[bool, bool, bool]) -> Image:
    """The same volume stored with array axes permuted (new axis i = old axis perm[i]) and flipped; the
    affine is updated so every voxel keeps its world position."""
    data = np.transpose(np.asarray(image.data), perm)
    aff = image.affine.copy()
    cols = aff[:, list(perm)]
    new = np.eye(4)
    new[:3, :3] = cols[:3]
    new[:3, 3] = aff[:3, 3]
    for i, flip in enumerate(flips):
        if flip:
            n = data.shape[i]
            data = np.flip(data, axis=i)
            new[:3, 3] = new[:3, 3] + new[:3, i] * (n - 1)
            new[:3, i] = -new[:3, i]
    return Image(np.ascontiguousarray(data), new, dict(image.meta))
