"""Fixtures of the vertebral-measurement tests: a small phantom (fast on 2 shared cores)."""

from __future__ import annotations

import pytest

from osteomri.phantom import make_spine_phantom

SMALL_SHAPE = (12, 96, 128)
SMALL_VOXEL_MM = (4.0, 2.0, 2.25)


@pytest.fixture(scope="module")
def phantom():
    return make_spine_phantom(shape=SMALL_SHAPE, voxel_size_mm=SMALL_VOXEL_MM, seed=7)


@pytest.fixture(scope="module")
def truth(phantom):
    return phantom.truth.set_index("level")
