"""What every UTE fit shares: per-voxel values of the fitted voxels, scattered into maps on demand."""

from __future__ import annotations

from typing import Any

import numpy as np

from osteomri.models.registry import finalise_maps


class VoxelFit:
    """A fit holding ``_values`` and ``_sds`` (name -> values of the ``mask`` voxels, in mask order).

    ``maps()`` and ``sd`` give the registry's map form (float32, NaN outside the mask); each map is also an
    attribute (``fit.fraction_short``); ``parameters()`` is the model's.
    """

    model: Any
    mask: np.ndarray
    _values: dict[str, np.ndarray]
    _sds: dict[str, np.ndarray]

    def _scatter(self, v: np.ndarray) -> np.ndarray:
        out = np.full(self.mask.shape, np.nan, dtype=np.float32)
        out[self.mask] = v
        return out

    def maps(self) -> dict[str, np.ndarray]:
        """The named maps, float32, NaN outside the mask."""
        return finalise_maps({k: self._scatter(v) for k, v in self._values.items()}, self.mask)

    @property
    def sd(self) -> dict[str, np.ndarray]:
        """Cramér–Rao standard deviations of the maps (``<map>_sd``), float32, NaN outside the mask."""
        return finalise_maps({k: self._scatter(v) for k, v in self._sds.items()}, self.mask)

    def __getattr__(self, name: str) -> np.ndarray:
        values = self.__dict__.get("_values", {})
        if name in values:
            return self._scatter(values[name])
        raise AttributeError(name)

    def parameters(self) -> dict[str, Any]:
        return self.model.parameters()
