"""Is what was measured in the lumbar ROIs adult vertebral marrow? Checked before any screening estimate.

A label map shifted onto soft tissue, a wrong preset or a swapped water–fat fit gives per-level numbers that
look like numbers. Before PDFF/R2* are turned into a likelihood ratio and a post-test probability, each
screened level must read like adult lumbar marrow:

- **PDFF ≥ 10 %** (:data:`MIN_MARROW_PDFF_PERCENT`). Healthy adults in their twenties have the lowest
  vertebral marrow PDFF: L1–L4 27.2 ± 6.0 % (women) and 32.0 ± 8.0 % (men) at 3 T chemical-shift-encoded MRI
  (Baum T et al., Front Endocrinol 2018;9:141); 10 % is about 3 SD below the lowest group mean. Muscle, disc,
  CSF and vessels read 0–5 %.
- **R2* ≥ 30 s⁻¹ × (B0 / 1.5 T)** (:data:`MIN_MARROW_R2STAR_HZ_AT_1P5T`). Trabecular marrow R2* is raised by
  the trabeculae' susceptibility: at 1.5 T L3–L5 R2* was 64.8 s⁻¹ in controls and 53.4 s⁻¹ in osteoporosis
  (SE 1.2, n = 59; SD ≈ 9.5 s⁻¹; Wehrli FW et al., Radiology 1995;196:631), and the seed study's 3 T cut-off
  is 138 s⁻¹. Soft tissue without bone reads ~20–40 s⁻¹ at 3 T. The bound scales linearly with B0
  (susceptibility-driven R2*, Yablonskiy & Haacke, MRM 1994;32:749); with the field strength unknown the
  1.5 T bound (the lowest) is used.

:func:`implausible_marrow` lists what fails; the pipeline withholds the screening estimate and says why.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np

MIN_MARROW_PDFF_PERCENT = 10.0
MIN_MARROW_R2STAR_HZ_AT_1P5T = 30.0


class ImplausibleMarrowWarning(UserWarning):
    """Lumbar ROIs whose PDFF/R2* do not read like adult vertebral marrow (misregistered labels, wrong preset?)."""


def min_marrow_r2star_hz(field_strength_t: float | None) -> float:
    """Lower bound of adult vertebral marrow R2* (1/s) at ``field_strength_t`` (T); the 1.5 T bound if unknown
    or below 1.5 T."""
    if field_strength_t is None or not np.isfinite(field_strength_t):
        return MIN_MARROW_R2STAR_HZ_AT_1P5T
    return MIN_MARROW_R2STAR_HZ_AT_1P5T * max(float(field_strength_t), 1.5) / 1.5


def implausible_marrow(level_means: Mapping[str, Mapping[str, float]],
                       field_strength_t: float | None = None) -> list[str]:
    """Reasons (one per failing marker) why the per-level means do not read like adult lumbar marrow.

    ``level_means``: marker (``pdff_percent``, ``r2star_hz``) → level → mean in the ROI. Levels with a NaN mean
    (empty ROI) are named too. An empty list means plausible.
    """
    bounds = {"pdff_percent": (MIN_MARROW_PDFF_PERCENT, "%", "PDFF"),
              "r2star_hz": (min_marrow_r2star_hz(field_strength_t), " 1/s", "R2*")}
    reasons = []
    for marker, (low, unit, label) in bounds.items():
        values = level_means.get(marker)
        if not values:
            continue
        bad = {lv: v for lv, v in values.items() if not np.isfinite(v) or v < low}
        if bad:
            shown = ", ".join(f"{lv} {v:.3g}{unit}" if np.isfinite(v) else f"{lv} no value" for lv, v in bad.items())
            reasons.append(f"{label} {shown} below {low:.3g}{unit}, the lowest adult lumbar marrow reads")
    return reasons


def warn_if_implausible(table, field_strength_t: float | None = None) -> list[str]:
    """Warn (:class:`ImplausibleMarrowWarning`) when the lumbar levels of a tidy long table (``level``, ``map``,
    ``mean``) fail :func:`implausible_marrow`; returns the reasons."""
    from osteomri.vertebrae.labels import LUMBAR

    rows = table[table["level"].isin(LUMBAR)]
    means = {m: dict(zip(g["level"], g["mean"], strict=False)) for m, g in rows.groupby("map")}
    reasons = implausible_marrow(means, field_strength_t)
    if reasons:
        warnings.warn("the lumbar ROIs do not read like adult vertebral marrow: " + "; ".join(reasons)
                      + " (labels misregistered or the wrong preset?)", ImplausibleMarrowWarning, stacklevel=3)
    return reasons
