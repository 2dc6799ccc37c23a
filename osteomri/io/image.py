"""The :class:`Image` that travels between layers: array + affine + acquisition metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from osteomri.errors import InputError, MetadataError

# Metadata keys follow BIDS names and SI units (seconds, tesla, degrees, s/mm^2).
KNOWN_META_UNITS = {
    "EchoTime": "s (list for multi-echo)",
    "MagneticFieldStrength": "T",
    "RepetitionTime": "s",
    "FlipAngle": "deg",
    "bvalues": "s/mm^2",
    "PrecessionIsClockwise": "bool (fat at negative frequency with exp(+i 2 pi f t) when True)",
    "ImagingFrequency": "MHz",
    "Units": "free text unit of the voxel values, e.g. 'percent', 'Hz'",
}


@dataclass
class Image:
    """An image volume with its geometry and acquisition metadata.

    Attributes
    ----------
    data:
        Voxel array, spatial axes first (x, y, z), then any measurement axis (echoes, b-values).
        May be complex.
    affine:
        4x4 voxel-to-world matrix, RAS+ millimetres (NIfTI convention).
    meta:
        Acquisition parameters with BIDS names in SI units, e.g. ``EchoTime`` (list of seconds),
        ``MagneticFieldStrength`` (T), ``RepetitionTime`` (s), ``FlipAngle`` (deg), ``bvalues``
        (s/mm^2). See :data:`KNOWN_META_UNITS`.
    """

    data: np.ndarray
    affine: np.ndarray = field(default_factory=lambda: np.eye(4))
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = np.asarray(self.data)
        self.affine = np.asarray(self.affine, dtype=float)
        if self.affine.shape != (4, 4):
            raise InputError(f"affine must be 4x4, got shape {self.affine.shape}")
        if self.data.ndim < 2:
            raise InputError(f"image data must have at least 2 dimensions, got shape {self.data.shape}")

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """Shape of the first three (spatial) axes."""
        return tuple(self.data.shape[:3])

    @property
    def voxel_size_mm(self) -> np.ndarray:
        """Voxel edge lengths in millimetres, from the affine."""
        from osteomri.io.orientation import voxel_size_mm

        return voxel_size_mm(self.affine)

    @property
    def is_complex(self) -> bool:
        return np.iscomplexobj(self.data)

    def require(self, *keys: str) -> None:
        """Raise :class:`MetadataError` naming every key in ``keys`` missing from ``meta``."""
        missing = [k for k in keys if self.meta.get(k) is None]
        if missing:
            raise MetadataError(f"missing acquisition metadata: {', '.join(missing)}")

    @property
    def echo_times_s(self) -> np.ndarray:
        """Echo times in seconds (``meta['EchoTime']``), validated against the last data axis."""
        self.require("EchoTime")
        te = np.atleast_1d(np.asarray(self.meta["EchoTime"], dtype=float))
        if te.size > 1 and (self.data.ndim < 4 or self.data.shape[-1] != te.size):
            raise InputError(
                f"{te.size} echo times given but the image's last axis has "
                f"{self.data.shape[-1] if self.data.ndim >= 4 else 1} entries (shape {self.data.shape})"
            )
        return te

    @property
    def bvalues_s_mm2(self) -> np.ndarray:
        """Diffusion b-values in s/mm^2 (``meta['bvalues']`` or BIDS ``DiffusionBValue``), validated against the
        last data axis. :func:`~osteomri.io.loader.load_image` fills them from the ``.bval`` file beside a
        NIfTI (or its sidecar); :mod:`osteomri.io.bvals` is their one reader."""
        from osteomri.io.bvals import SIDECAR_BVALUE_KEYS, resolve_bvalues

        if not any(self.meta.get(k) is not None for k in SIDECAR_BVALUE_KEYS):
            raise MetadataError("missing acquisition metadata: bvalues (no .bval file beside the image and no "
                                "'bvalues'/'DiffusionBValue' in its sidecar)")
        return resolve_bvalues(None, self)

    @property
    def field_strength_t(self) -> float:
        self.require("MagneticFieldStrength")
        return float(self.meta["MagneticFieldStrength"])

    def with_data(self, data: np.ndarray, **meta_updates: Any) -> Image:
        """A new image on the same grid with other voxel data (and optionally updated metadata)."""
        data = np.asarray(data)
        if data.shape[:3] != self.spatial_shape:
            raise InputError(f"data shape {data.shape} does not match the grid {self.spatial_shape}")
        return Image(data, self.affine.copy(), {**self.meta, **meta_updates})


def same_grid(a: Image, b: Image, atol_mm: float = 1e-3) -> bool:
    """True when both images share spatial shape and affine (within ``atol_mm``)."""
    return a.spatial_shape == b.spatial_shape and np.allclose(a.affine, b.affine, atol=atol_mm)
