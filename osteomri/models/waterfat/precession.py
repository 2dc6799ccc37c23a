"""The precession (sign) convention of complex multi-echo data, checked against the data.

Stored data may follow either sign convention: fat at negative frequency with an exp(+i 2 pi f t) model
("clockwise", ISMRM toolbox ``PrecessionIsClockwise = 1``) or its conjugate. Under the wrong convention the
fat spectrum's phase evolution cannot be fitted, so fat-containing voxels keep a large VARPRO residual
(Hernando et al., MRM 2008;59:571) and are read as water. The brightest voxels are fitted under both
conventions and their summed relative residuals compared:

* a convention not recorded (``"auto"``): the lower residual wins, ties (no fat) keep the data as stored;
* a stated convention is followed unless the other fits far better (its residual below ``override_ratio``
  times the stated one's): then the data's convention is used and a warning says so.
"""

from __future__ import annotations

import warnings

import numpy as np

from osteomri.models.waterfat.varpro import residual_curves


def bright_voxels(flat: np.ndarray, n_voxels: int = 4000) -> np.ndarray:
    """Flat indices of about ``n_voxels`` (evenly strided) among the voxels whose echo energy exceeds 0.1 of
    the largest, brightest first (``flat`` [v, n_echoes])."""
    energy = (np.abs(flat) ** 2).sum(axis=1)
    order = np.argsort(energy)[::-1]
    bright = order[: max(1, np.count_nonzero(energy > 0.1 * energy[order[0]]))]
    return bright[:: max(1, bright.size // n_voxels)]


def relative_residual(sig: np.ndarray, weights: np.ndarray, n_r2: int) -> float:
    """Sum over voxels of the best (over the field-map × R2* grid) VARPRO residual relative to the voxel's
    echo energy (``sig`` [v, n_echoes]; ``weights`` from :func:`.varpro.projection_weights`)."""
    energy = np.maximum((np.abs(sig) ** 2).sum(axis=1), 1e-30)
    return float((residual_curves(sig, weights, n_r2) / energy[:, None]).min(axis=1).sum())


def choose_precession(stated: bool | str, residual_as_is: float, residual_conjugate: float, *,
                      override_ratio: float = 0.5, tie_ratio: float = 1.1) -> tuple[bool, dict]:
    """The convention to use (True = data as stored) and a QC record.

    ``stated``: True / False as recorded or given, or ``"auto"``. ``residual_as_is`` and
    ``residual_conjugate``: :func:`relative_residual` of the bright voxels as stored and conjugated.
    ``"auto"`` keeps the data as stored unless that residual exceeds ``tie_ratio`` times the other; a stated
    convention is overridden (with a :class:`UserWarning`) only when the other's residual is below
    ``override_ratio`` times its own.
    """
    as_is = residual_as_is <= tie_ratio * residual_conjugate
    info: dict = {"stated": stated, "residual_as_is": residual_as_is, "residual_conjugate": residual_conjugate}
    if stated == "auto":
        info["source"] = "data"
        return as_is, info
    stated = bool(stated)
    own, other = (residual_as_is, residual_conjugate) if stated else (residual_conjugate, residual_as_is)
    if other < override_ratio * own:
        warnings.warn(f"the stated precession convention (clockwise={stated}) does not fit the data: the other "
                      f"fits far better (relative residual {other:.3g} vs {own:.3g}); using clockwise="
                      f"{not stated}", UserWarning, stacklevel=3)
        info["source"] = "data (stated convention overridden)"
        return not stated, info
    info["source"] = "stated"
    return stated, info


def check_precession(flat: np.ndarray, stated: bool | str, weights: np.ndarray, n_r2: int,
                     pick: np.ndarray | None = None, **options) -> tuple[bool, dict]:
    """:func:`choose_precession` on the bright voxels (``pick``, default :func:`bright_voxels`) of ``flat``."""
    sig = flat[bright_voxels(flat) if pick is None else pick]
    return choose_precession(stated, relative_residual(sig, weights, n_r2),
                             relative_residual(np.conj(sig), weights, n_r2), **options)
