"""Quality-control entries in the reports: which are flags (a raised flag is a problem) and which are metrics.

An exam's ``qc`` dict mixes both: ``waterfat_swap_suspected`` (a flag), ``screening_withheld`` (a flag set by
the plausibility guard), ``waterfat_n_fitted_voxels`` (a count), ``waterfat_precession_clockwise`` (a
convention). Only flags are counted as "flagged"; a metric is summarised, never counted because it is
non-zero. A name is a flag when it ends in one of :data:`FLAG_SUFFIXES`; a flag is raised by ``True``, a
non-zero number or a non-empty warning text (``"true"``, ``"warn"``, ``"fail"``...).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from osteomri.report.format import sig

#: name endings that mark a QC entry as a problem flag
FLAG_SUFFIXES = ("_suspected", "_withheld", "_warning", "_warnings", "_failed", "_failure", "_implausible",
                 "_refused", "_truncated", "_flag", "_flagged")

_STAGES = {"waterfat": "Water–fat", "ivim": "IVIM", "t1w": "T1w", "measure": "Measurement", "vbq": "VBQ",
           "screening": "Screening", "labels": "Labels", "ute": "UTE", "mrs": "MRS"}

#: human names of known QC entries (without the stage prefix)
QC_LABELS = {
    "n_fitted_voxels": "fitted voxels", "n_search_voxels": "field-map search voxels",
    "magnitude_only": "magnitude-only fit", "precession_clockwise": "precession convention clockwise",
    "noise_variance_relative": "relative noise variance",
    "smoothing_kept_fraction": "field-map smoothing, kept fraction",
    "grid_label_jumps": "field-map grid label jumps", "median_relative_residual": "median relative residual",
    "fieldmap_jump_fraction": "field-map jump fraction", "swap_suspected": "water–fat swap suspected",
    "withheld": "withheld (implausible marrow values)", "noise_sd": "noise SD",
}

_RAISED_TEXT = {"true", "yes", "warn", "warning", "fail", "failed", "1", "1.0"}
_CLEAR_TEXT = {"false", "no", "ok", "pass", "passed", "0", "0.0", "", "none", "nan"}


def is_flag(name: str) -> bool:
    """Whether QC entry ``name`` (with or without a ``qc_`` prefix) is a problem flag."""
    return str(name).lower().endswith(FLAG_SUFFIXES)


def flag_raised(value: Any) -> bool | None:
    """``True``/``False`` for a flag's value; ``None`` when missing (not reported)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    text = str(value).strip().lower()
    if text in _CLEAR_TEXT:
        return False if text not in ("none", "nan") else None
    return True if text in _RAISED_TEXT else bool(text)  # any other text is a warning message


def qc_label(name: str) -> str:
    """``waterfat_swap_suspected`` → ``Water–fat: water–fat swap suspected``."""
    key = str(name)[3:] if str(name).startswith("qc_") else str(name)
    stage, _, rest = key.partition("_")
    if stage in _STAGES and rest:
        text = QC_LABELS.get(rest, QC_LABELS.get(rest.split("_")[-1], rest.replace("_", " ")))
        return f"{_STAGES[stage]}: {text}"
    return QC_LABELS.get(key, key.replace("_", " ")).capitalize()


def qc_value(value: Any) -> str:
    """A QC value for display: booleans as yes/no, numbers to 3 significant figures, dicts summarised."""
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {qc_value(v)}" for k, v in value.items()
                         if not isinstance(v, (dict, list)))
    if isinstance(value, (list, tuple)):
        return ", ".join(qc_value(v) for v in value)
    return sig(value) if value is not None else "–"


def exam_qc_tables(qc: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(flags, metrics) of one exam: ``Check`` / ``Flag raised`` and ``Metric`` / ``Value``."""
    flags = [(qc_label(k), "yes" if flag_raised(v) else ("not reported" if flag_raised(v) is None else "no"))
             for k, v in qc.items() if is_flag(k)]
    metrics = [(qc_label(k), qc_value(v)) for k, v in qc.items() if not is_flag(k)]
    return (pd.DataFrame(flags, columns=["Check", "Flag raised"]),
            pd.DataFrame(metrics, columns=["Metric", "Value"]))


def cohort_qc_tables(patients: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(flags, metrics) over a cohort's ``qc_*`` columns.

    Flags: exams flagged (raised) and exams reporting it; a "failed stage" row counts exams with an error
    record (``n_errors`` > 0). Metrics: numbers as median (min–max) and booleans as "n of N yes"; a metric is
    never counted as a flag.
    """
    flag_rows, metric_rows = [], []
    if "n_errors" in patients.columns:
        errors = pd.to_numeric(patients["n_errors"], errors="coerce").dropna()
        flag_rows.append(("Any stage failed", int((errors > 0).sum()), len(errors)))
    for col in (c for c in patients.columns if str(c).startswith("qc_")):
        values = patients[col]
        if is_flag(col):
            raised = [flag_raised(v) for v in values]
            reported = [r for r in raised if r is not None]
            flag_rows.append((qc_label(col), sum(reported), len(reported)))
            continue
        present = values.dropna()
        if present.empty:
            continue
        as_bool = [flag_raised(v) for v in present] if present.map(
            lambda v: isinstance(v, bool) or str(v).lower() in ("true", "false")).all() else None
        if as_bool is not None:
            summary = f"{sum(bool(b) for b in as_bool)} of {len(as_bool)} yes"
        else:
            numbers = pd.to_numeric(present, errors="coerce").dropna()
            if numbers.empty:
                continue
            if (numbers == numbers.round()).all():  # counts (read back as floats where some are missing)
                numbers = numbers.round().astype("int64")
            median = numbers.median()
            median = int(median) if float(median).is_integer() else median
            summary = f"{sig(median)} ({sig(numbers.min())}–{sig(numbers.max())})"
        metric_rows.append((qc_label(col), summary, len(present)))
    return (pd.DataFrame(flag_rows, columns=["QC flag", "Exams flagged", "Exams reporting"]),
            pd.DataFrame(metric_rows, columns=["QC metric", "Median (range) or count", "Exams reporting"]))
