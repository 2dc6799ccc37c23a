"""Parameter bounds of the IVIM fit, with defaults chosen for vertebral bone marrow.

Keys and units:

======================  ============  ===========================================================
key                     default       meaning
======================  ============  ===========================================================
``s0``                  [0.5, 1.5]    S0 **relative** to the reference signal (mean signal at the
                                      lowest b-value, normally b = 0); dimensionless
``f``                   [0, 1]        perfusion fraction (marrow f reaches 0.2-0.5, so never capped
                                      at 0.2 as some tools do)
``d_mm2_s``             [0, 5e-3]     tissue diffusion coefficient D, mm^2/s (free water at 37 C is
                                      3.0e-3; marrow 0.2-0.8e-3)
``dstar_mm2_s``         [5e-3, 0.3]   pseudo-diffusion coefficient D*, mm^2/s (marrow 0.01-0.1);
                                      its lower bound equals D's upper bound so the two compartments
                                      cannot swap
======================  ============  ===========================================================

The defaults follow the OSIPI TF2.4 collection's ranges (S0 [0.7, 1.3], f [0, 1], D [0, 0.005],
D* [0.005, 0.2]) with a wider S0 (the lowest b-value may be > 0) and D* up to 0.3 mm^2/s (fast marrow
pseudo-diffusion). Every method returns values inside these bounds, exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from osteomri.errors import InputError

PARAMS = ("s0", "f", "d_mm2_s", "dstar_mm2_s")

DEFAULT_BOUNDS: dict[str, tuple[float, float]] = {
    "s0": (0.5, 1.5),
    "f": (0.0, 1.0),
    "d_mm2_s": (0.0, 5.0e-3),
    "dstar_mm2_s": (5.0e-3, 0.3),
}

_ALIASES = {
    "s0": "s0", "S0": "s0",
    "f": "f",
    "d": "d_mm2_s", "D": "d_mm2_s", "d_mm2_s": "d_mm2_s",
    "dstar": "dstar_mm2_s", "Dstar": "dstar_mm2_s", "Dp": "dstar_mm2_s", "dp": "dstar_mm2_s",
    "dstar_mm2_s": "dstar_mm2_s",
}


@dataclass(frozen=True)
class IvimBounds:
    """Validated lower and upper bounds, arrays ordered as :data:`PARAMS`."""

    lower: np.ndarray
    upper: np.ndarray

    def as_dict(self) -> dict[str, list[float]]:
        return {k: [float(lo), float(hi)] for k, lo, hi in zip(PARAMS, self.lower, self.upper, strict=True)}

    def __getitem__(self, key: str) -> tuple[float, float]:
        i = PARAMS.index(_ALIASES.get(key, key))
        return float(self.lower[i]), float(self.upper[i])


def make_bounds(bounds: Mapping[str, tuple[float, float]] | IvimBounds | None = None) -> IvimBounds:
    """Merge user ``bounds`` (a mapping ``{"f": (0, 0.7), ...}``, partial allowed) with :data:`DEFAULT_BOUNDS`.

    Accepted keys: ``s0``, ``f``, ``d_mm2_s`` (alias ``d``, ``D``), ``dstar_mm2_s`` (alias ``dstar``, ``Dp``).
    Raises :class:`~osteomri.errors.InputError` on unknown keys, non-finite values, ``lower >= upper``,
    ``f`` outside [0, 1], or negative ``s0``, ``D`` or ``D*``.
    """
    if isinstance(bounds, IvimBounds):
        return bounds
    merged = dict(DEFAULT_BOUNDS)
    for key, value in (bounds or {}).items():
        name = _ALIASES.get(key)
        if name is None:
            raise InputError(f"unknown IVIM bound {key!r}; use one of {', '.join(PARAMS)}")
        try:
            lo, hi = (float(v) for v in value)
        except (TypeError, ValueError) as exc:
            raise InputError(f"bound {key!r} must be a pair (lower, upper) of numbers, got {value!r}") from exc
        merged[name] = (lo, hi)
    for name, (lo, hi) in merged.items():
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise InputError(f"bound {name} must be finite, got [{lo}, {hi}]")
        if lo >= hi:
            raise InputError(f"bound {name}: lower {lo} must be below upper {hi}")
        if lo < 0:
            raise InputError(f"bound {name}: lower {lo} must not be negative")
    if merged["f"][1] > 1:
        raise InputError(f"bound f: upper {merged['f'][1]} exceeds 1 (f is a fraction)")
    lower = np.array([merged[k][0] for k in PARAMS])
    upper = np.array([merged[k][1] for k in PARAMS])
    return IvimBounds(lower, upper)
