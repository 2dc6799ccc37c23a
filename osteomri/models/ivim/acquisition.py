"""b-value scheme of an IVIM acquisition: validation, grouping of repeats, averaging, normalisation.

Conventions (explicit, so results do not depend on how a scanner orders or repeats measurements):

* b-values are in s/mm^2, finite and >= 0.
* Measurements whose b-values agree within ``max(0.5, 0.01 * b)`` s/mm^2 form one group (several
  diffusion directions, or repeats; scanners write e.g. 995/1000/1005 for one nominal b). The group's
  b-value is the mean of its members.
* Each group is averaged with the **geometric mean** (the trace-weighted image for several directions:
  exp(-b * mean diffusivity) for anisotropic diffusion). Where a group holds a value <= 0 in a voxel
  the arithmetic mean is used for that voxel and group instead. ``average="arithmetic"`` uses the
  arithmetic mean throughout (repeats of one direction).
* The averaged signal is divided by the **reference signal**: the averaged signal at the lowest b-value
  (b = 0 in most protocols). Fits run on this normalised signal; ``s0`` bounds are relative to it, and
  the returned ``s0`` and ``residual`` are scaled back to the input signal units.
* A voxel is *valid* when all its measurements are finite and its reference signal is > 0; other
  voxels (background zeros, NaNs) get NaN outputs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from osteomri.errors import InputError
from osteomri.io.bvals import check_bvalues


def validate_bvalues(bvalues_s_mm2: np.ndarray | list[float]) -> np.ndarray:
    """Return b-values as a 1-D float array (a row or column vector is flattened), or raise
    :class:`InputError` (non-finite, negative, empty) — the checks of :func:`osteomri.io.bvals.check_bvalues`."""
    if isinstance(bvalues_s_mm2, np.ndarray) and bvalues_s_mm2.ndim == 2 and 1 in bvalues_s_mm2.shape:
        bvalues_s_mm2 = bvalues_s_mm2.ravel()
    return check_bvalues(bvalues_s_mm2, "IVIM model")


def group_bvalues(b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Group near-equal b-values: returns (unique b-values ascending, group index of each measurement)."""
    order = np.argsort(b, kind="stable")
    labels = np.empty(b.size, dtype=int)
    group = 0
    start = b[order[0]]
    for i in order:
        if b[i] - start > max(0.5, 0.01 * start):
            group += 1
            start = b[i]
        labels[i] = group
    unique = np.array([b[labels == g].mean() for g in range(group + 1)])
    return unique, labels


@dataclass(frozen=True)
class Acquisition:
    """The measurement scheme: raw b-values, their groups and the averaging rule."""

    bvalues_s_mm2: np.ndarray
    unique_s_mm2: np.ndarray
    labels: np.ndarray
    average: str = "geometric"

    @classmethod
    def from_bvalues(cls, bvalues_s_mm2: np.ndarray | list[float], average: str = "geometric") -> Acquisition:
        if average not in ("geometric", "arithmetic"):
            raise InputError(f"unknown averaging {average!r}; use 'geometric' or 'arithmetic'")
        b = validate_bvalues(bvalues_s_mm2)
        unique, labels = group_bvalues(b)
        return cls(b, unique, labels, average)

    @property
    def n_measurements(self) -> int:
        return int(self.bvalues_s_mm2.size)

    @property
    def has_repeats(self) -> bool:
        return self.unique_s_mm2.size < self.bvalues_s_mm2.size

    def check_signal(self, signal: np.ndarray) -> np.ndarray:
        signal = np.asarray(signal)
        if np.iscomplexobj(signal):
            raise InputError("IVIM fits magnitude data; got a complex array (take np.abs first)")
        if signal.ndim == 0 or signal.shape[-1] != self.n_measurements:
            got = signal.shape[-1] if signal.ndim else 0
            raise InputError(
                f"signal has {got} measurements on its last axis (shape {signal.shape}) "
                f"but {self.n_measurements} b-values were given"
            )
        return signal

    def averaged(self, signal: np.ndarray) -> np.ndarray:
        """Average groups of repeated b-values: ``[n_vox, n_measurements] -> [n_vox, n_unique]`` (sorted by b)."""
        y = np.asarray(signal, dtype=float)
        if not self.has_repeats:
            order = np.argsort(self.labels)
            return y[:, order] if np.any(order != np.arange(order.size)) else y
        n_u = self.unique_s_mm2.size
        member = np.zeros((self.n_measurements, n_u))
        member[np.arange(self.n_measurements), self.labels] = 1.0
        weights = member / member.sum(axis=0)
        mean = y @ weights
        if self.average == "arithmetic":
            return mean
        positive = y > 0
        geo = np.exp(np.log(np.where(positive, y, 1.0)) @ weights)
        all_positive = ((~positive).astype(float) @ member) == 0
        return np.where(all_positive, geo, mean)

    def normalised(self, signal: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``[n_vox, n_measurements]`` -> (normalised averaged signal, reference signal, valid mask).

        Invalid voxels (non-finite values, reference <= 0) get reference NaN and are not to be fitted.
        """
        y = np.asarray(signal, dtype=float)
        finite = np.isfinite(y).all(axis=1)
        y = np.where(finite[:, None], y, 0.0)
        avg = self.averaged(y)
        ref = avg[:, 0].copy()
        valid = finite & (ref > 0)
        ref[~valid] = np.nan
        safe = np.where(valid, ref, 1.0)
        return avg / safe[:, None], ref, valid
