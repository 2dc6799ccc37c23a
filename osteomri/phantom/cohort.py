"""Synthetic clinical cohorts that follow the seed study's Table 1 (lumbar PDFF and R2* in osteoporosis).

:func:`synthetic_clinical_cohort` draws patients in the three WHO groups (normal, osteopenia,
osteoporosis) whose sizes and means ± SD of age, BMI, BMD (mg/cm³), PDFF (%) and R2* (Hz) follow
:data:`SEED_STUDY_TABLE1`, with plausible within-group correlations (older → lower BMD, lower BMD →
more marrow fat, lower R2*), a DXA T-score inside each group's WHO range, and optionally two readers per
marker with known offsets for agreement analyses. :func:`cohort_level_table` expands a cohort into the
per-vertebra long table the measurement layer writes, with level deviations that average to zero over
L1–L5 so that the per-patient mean of L1–L5 (the default level set) equals the patient value exactly.

Depends on numpy and pandas only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from osteomri.errors import InputError

__all__ = ["SEED_STUDY_TABLE1", "COHORT_VARIABLES", "synthetic_clinical_cohort", "cohort_level_table"]

#: Seed study Table 1: group -> n and (mean, SD) per variable (120 patients).
SEED_STUDY_TABLE1: dict[str, dict[str, Any]] = {
    "normal": {"n": 30, "age": (36.93, 9.25), "bmi": (23.17, 1.94), "bmd_mg_cm3": (148.95, 15.68),
               "pdff_percent": (40.82, 8.35), "r2star_hz": (152.36, 12.61)},
    "osteopenia": {"n": 41, "age": (50.34, 12.56), "bmi": (21.05, 1.36), "bmd_mg_cm3": (91.56, 10.84),
                   "pdff_percent": (52.90, 6.66), "r2star_hz": (144.90, 11.50)},
    "osteoporosis": {"n": 49, "age": (67.24, 8.23), "bmi": (20.06, 1.57), "bmd_mg_cm3": (61.47, 20.56),
                     "pdff_percent": (61.65, 6.28), "r2star_hz": (132.23, 9.68)},
}
COHORT_VARIABLES = ("age", "bmi", "bmd_mg_cm3", "pdff_percent", "r2star_hz")
_GROUPS = tuple(SEED_STUDY_TABLE1)

# Within-group correlations (order of COHORT_VARIABLES): plausible, modest; positive definite.
_CORR = np.array([
    #  age   bmi   bmd   pdff  r2*
    [1.00, 0.10, -0.30, 0.30, -0.20],
    [0.10, 1.00, 0.10, 0.05, 0.00],
    [-0.30, 0.10, 1.00, -0.40, 0.30],
    [0.30, 0.05, -0.40, 1.00, -0.25],
    [-0.20, 0.00, 0.30, -0.25, 1.00],
])
_BOUNDS = {"age": (18.0, 100.0), "bmi": (14.0, 45.0), "bmd_mg_cm3": (5.0, 300.0), "pdff_percent": (1.0, 99.0),
           "r2star_hz": (40.0, 400.0)}
# DXA T-score inside each WHO class (WHO 1994): centre, spread per SD of BMD, closed bounds after rounding.
_TSCORE = {"normal": (0.0, 0.6, -1.0, 3.0), "osteopenia": (-1.75, 0.35, -2.4, -1.1),
           "osteoporosis": (-3.1, 0.4, -5.0, -2.5)}
DEFAULT_READER_OFFSETS = {"pdff_percent": 1.0, "r2star_hz": 3.0}
DEFAULT_READER_SD = {"pdff_percent": 1.5, "r2star_hz": 4.0}


def synthetic_clinical_cohort(
    n_per_group: Sequence[int] = (30, 41, 49),
    random_state: int | np.random.Generator | None = None,
    *,
    match_moments: bool = False,
    female_fraction: float = 0.5,
    readers: bool = True,
    reader_offsets: dict[str, float] | None = None,
    reader_sd: dict[str, float] | None = None,
) -> pd.DataFrame:
    """Draw a synthetic cohort following :data:`SEED_STUDY_TABLE1`.

    Parameters
    ----------
    n_per_group
        Patients in the normal, osteopenia and osteoporosis groups (the seed study: 30, 41, 49).
    random_state
        Seed or Generator; the same seed gives the same cohort.
    match_moments
        If true, each group's sample mean and SD equal the published values exactly (the draws are
        standardised within the group before scaling); otherwise they are random around them.
    female_fraction
        Probability of a patient being female.
    readers
        Add ``<marker>_reader1`` and ``<marker>_reader2`` for PDFF and R2*: reader 1 measures the true value
        plus N(0, ``reader_sd``); reader 2 adds a systematic offset ``reader_offsets`` (defaults: PDFF
        +1.0 %, R2* +3.0 Hz; SD 1.5 % and 4.0 Hz). The offsets are in ``attrs["reader_offsets"]``.

    Returns
    -------
    DataFrame with ``exam`` (``sub-001``…), ``who_group`` (ordered categorical), ``t_score``, ``sex``, and
    ``age`` (years), ``bmi`` (kg/m²), ``bmd_mg_cm3``, ``pdff_percent``, ``r2star_hz`` and reader columns.
    """
    sizes = [int(n) for n in n_per_group]
    if len(sizes) != 3 or min(sizes) < (3 if match_moments else 1):
        raise InputError(f"n_per_group must be three positive group sizes (normal, osteopenia, osteoporosis), "
                         f"at least 3 each with match_moments; got {tuple(n_per_group)}")
    if not 0.0 <= female_fraction <= 1.0:
        raise InputError(f"female_fraction must lie in [0, 1], got {female_fraction}")
    offsets = {**DEFAULT_READER_OFFSETS, **(reader_offsets or {})}
    noise = {**DEFAULT_READER_SD, **(reader_sd or {})}
    rng = np.random.default_rng(random_state)
    chol = np.linalg.cholesky(_CORR)
    frames = []
    for group, n in zip(_GROUPS, sizes, strict=True):
        spec = SEED_STUDY_TABLE1[group]
        means = np.array([spec[v][0] for v in COHORT_VARIABLES])
        sds = np.array([spec[v][1] for v in COHORT_VARIABLES])
        lo = np.array([_BOUNDS[v][0] for v in COHORT_VARIABLES])
        hi = np.array([_BOUNDS[v][1] for v in COHORT_VARIABLES])
        z = rng.standard_normal((n, len(COHORT_VARIABLES))) @ chol.T
        for _attempt in range(1000):  # redraw the (rare) physically impossible patients
            zz = (z - z.mean(axis=0)) / z.std(axis=0, ddof=1) if match_moments else z
            values = means + zz * sds
            bad = ~np.all((values >= lo) & (values <= hi), axis=1)
            if not bad.any():
                break
            z[bad] = rng.standard_normal((int(bad.sum()), len(COHORT_VARIABLES))) @ chol.T
        else:  # pragma: no cover - needs absurd group sizes
            raise InputError(f"could not draw a plausible {group} group of {n} patients")
        z = zz
        frame = pd.DataFrame(values, columns=list(COHORT_VARIABLES))
        centre, spread, t_lo, t_hi = _TSCORE[group]
        frame["t_score"] = np.clip(np.round(centre + spread * z[:, 2], 1), t_lo, t_hi)
        frame["who_group"] = group
        frame["sex"] = np.where(rng.random(n) < female_fraction, "F", "M")
        frames.append(frame)
    cohort = pd.concat(frames, ignore_index=True)
    cohort.insert(0, "exam", [f"sub-{i + 1:03d}" for i in range(len(cohort))])
    cohort["who_group"] = pd.Categorical(cohort["who_group"], categories=list(_GROUPS), ordered=True)
    cohort["age"] = cohort["age"].round(0) if not match_moments else cohort["age"]
    if readers:
        for marker in ("pdff_percent", "r2star_hz"):
            truth = cohort[marker].to_numpy()
            cohort[f"{marker}_reader1"] = truth + rng.normal(0.0, noise[marker], truth.size)
            cohort[f"{marker}_reader2"] = truth + offsets[marker] + rng.normal(0.0, noise[marker], truth.size)
    cohort = cohort[["exam", "who_group", "t_score", "sex", *COHORT_VARIABLES,
                     *[c for c in cohort.columns if c.endswith(("_reader1", "_reader2"))]]]
    cohort.attrs["reader_offsets"] = offsets if readers else {}
    cohort.attrs["reader_sd"] = noise if readers else {}
    return cohort


def cohort_level_table(
    cohort: pd.DataFrame,
    maps: Sequence[str] = ("pdff_percent", "r2star_hz"),
    *,
    levels: Sequence[str] = ("L1", "L2", "L3", "L4", "L5"),
    level_sd: dict[str, float] | None = None,
    roi: str = "body",
    random_state: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Per-vertebra long table (``exam, level, map, roi, n_voxels, volume_mm3, mean, median, sd``) whose
    L1–L5 mean (the default level set of the measurement layer) equals each patient's value in ``cohort``
    exactly (level deviations are centred over the lumbar levels present). ``level_sd`` sets the spread
    between levels (default: PDFF 3 %, R2* 6 Hz)."""
    missing = [c for c in ("exam", *maps) if c not in cohort.columns]
    if missing:
        raise InputError(f"unknown column(s) {missing} in cohort; available: {list(cohort.columns)}")
    spread = {"pdff_percent": 3.0, "r2star_hz": 6.0, **(level_sd or {})}
    rng = np.random.default_rng(random_state)
    levels = list(levels)
    core = [lv for lv in levels if lv in ("L1", "L2", "L3", "L4", "L5")]
    rows = []
    for m in maps:
        dev = rng.normal(0.0, spread.get(m, 1.0), (len(cohort), len(levels)))
        if core:
            idx = [levels.index(lv) for lv in core]
            dev[:, idx] -= dev[:, idx].mean(axis=1, keepdims=True)
        vals = cohort[m].to_numpy(float)[:, None] + dev
        n_vox = rng.integers(800, 2000, vals.shape)
        for i, exam in enumerate(cohort["exam"]):
            for j, lv in enumerate(levels):
                rows.append((exam, lv, m, roi, int(n_vox[i, j]), float(n_vox[i, j]) * 1.5, vals[i, j], vals[i, j],
                             spread.get(m, 1.0)))
    return pd.DataFrame(rows, columns=["exam", "level", "map", "roi", "n_voxels", "volume_mm3", "mean", "median",
                                       "sd"])
