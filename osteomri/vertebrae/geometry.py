"""Per-vertebra coordinate frames from the affine: no assumption about the array's axis order.

Each vertebra gets a right-handed frame in world (RAS+, mm) coordinates: ``si`` along the local spine axis
(the line through the neighbouring vertebrae's centroids, pointing superior), ``lr`` the world right
direction made orthogonal to it, ``ap = si × lr`` pointing anterior. Voxel positions are expressed as
``u`` (mm along ``si``), ``v`` (mm along ``ap``, anterior positive) and ``w`` (mm along ``lr``) from the
vertebra's centre. The sagittal slices are the array slices along the axis most aligned with world R.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from osteomri.errors import InputError
from osteomri.io.orientation import lr_axis, voxel_world


@dataclass
class VertebraFrame:
    """A vertebra's local frame: centre (world mm), unit axes and its mid-sagittal slice index."""

    level: str
    centre_mm: np.ndarray
    si: np.ndarray
    ap: np.ndarray
    lr: np.ndarray
    slice_index: int
    lr_axis: int

    def coords(self, indices: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(u, v, w) in mm of voxel indices (N, 3): along the spine, anterior, right, from the centre."""
        rel = voxel_world(indices, affine) - self.centre_mm
        return rel @ self.si, rel @ self.ap, rel @ self.lr


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    if n == 0:
        raise InputError("degenerate vertebra frame (coincident centroids)")
    return v / n


def make_frames(centroids_ijk: dict[str, np.ndarray], affine: np.ndarray, order: list[str]) -> dict[str, VertebraFrame]:
    """Frames of the vertebrae in ``order`` (superior → inferior) from their centroids (voxel indices)."""
    affine = np.asarray(affine, dtype=float)
    lr_index = lr_axis(affine)
    world = {lv: voxel_world(np.asarray(c, float)[None], affine)[0] for lv, c in centroids_ijk.items()}
    frames = {}
    for i, level in enumerate(order):
        above = order[i - 1] if i > 0 else None
        below = order[i + 1] if i + 1 < len(order) else None
        if above is not None and below is not None:
            t = world[above] - world[below]
        elif above is not None:
            t = world[above] - world[level]
        elif below is not None:
            t = world[level] - world[below]
        else:
            t = np.array([0.0, 0.0, 1.0])
        si = _unit(t)
        if si[2] < 0:  # superior must point to +S
            si = -si
        r = np.array([1.0, 0.0, 0.0])
        lr = _unit(r - (r @ si) * si)
        ap = np.cross(si, lr)
        frames[level] = VertebraFrame(level, world[level], si, ap, lr,
                                      int(np.rint(centroids_ijk[level][lr_index])), lr_index)
    return frames


def centroid_ijk(mask: np.ndarray) -> np.ndarray:
    """Centroid of a boolean mask in voxel indices."""
    return np.asarray(ndimage.center_of_mass(mask), dtype=float)


def bbox_slices(mask: np.ndarray, pad: int = 1) -> tuple[slice, ...]:
    """Bounding box of ``mask`` padded by ``pad`` voxels (clipped to the array)."""
    idx = np.nonzero(mask)
    return tuple(slice(max(int(i.min()) - pad, 0), min(int(i.max()) + pad + 1, n))
                 for i, n in zip(idx, mask.shape, strict=True))


def inner_distance_mm(mask: np.ndarray, spacing_mm: np.ndarray) -> np.ndarray:
    """Distance (mm) from each voxel centre of ``mask`` to the mask's surface; the array edge counts as outside.

    The surface lies between the last voxel inside and the nearest voxel outside: the Euclidean distance to
    that outside voxel's centre minus half the voxel's extent along the same direction (half a voxel for a
    face neighbour), so oblique distances on anisotropic grids are not overestimated.
    """
    out = np.zeros(mask.shape, dtype=float)
    if not mask.any():
        return out
    spacing = np.asarray(spacing_mm, dtype=float)
    box = bbox_slices(mask, pad=0)
    sub = np.pad(mask[box], 1)
    d, nearest = ndimage.distance_transform_edt(sub, sampling=spacing, return_indices=True)
    delta = (nearest - np.indices(sub.shape)) * spacing.reshape((-1,) + (1,) * sub.ndim)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = 0.5 * (np.abs(delta) * spacing.reshape((-1,) + (1,) * sub.ndim)).sum(axis=0) / np.where(d > 0, d, 1)
    surface = np.where(sub, d - half, 0.0)
    out[box] = surface[tuple(slice(1, -1) for _ in range(mask.ndim))]
    return out


def interior(mask: np.ndarray, spacing_mm: np.ndarray, margin_mm: float) -> np.ndarray:
    """Voxels of ``mask`` at least one voxel (face-connected erosion) and more than ``margin_mm`` from its surface.

    The one-voxel erosion removes the boundary layer whatever the voxel size (partial volume with cortex and
    endplates on thick slices); the surface distance (mm, :func:`inner_distance_mm`) handles anisotropic voxels.
    """
    if not mask.any():
        return mask.copy()
    box = bbox_slices(mask, pad=1)
    eroded = np.zeros_like(mask)
    eroded[box] = ndimage.binary_erosion(mask[box], border_value=0)
    return eroded & (inner_distance_mm(mask, spacing_mm) > margin_mm)
