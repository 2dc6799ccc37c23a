"""Input checks shared by the statistics functions: binary outcomes, missing values, constant markers.

Every function that drops observations reports how many it dropped (never silently): the count is stored
on the result and a :class:`MissingDataWarning` is emitted. With ``nan_policy="raise"`` missing values are
refused with an :class:`~osteomri.errors.InputError` instead.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from osteomri.errors import InputError

NAN_POLICIES = ("omit", "raise")


class MissingDataWarning(UserWarning):
    """Observations with missing values were dropped from an analysis (the count is in the message)."""


def check_nan_policy(nan_policy: str) -> None:
    if nan_policy not in NAN_POLICIES:
        raise InputError(f"nan_policy must be one of {NAN_POLICIES}, got {nan_policy!r}")


def as_float(values: Any, name: str) -> np.ndarray:
    """A 1-D float array; non-numeric entries are refused with the column name in the message."""
    if isinstance(values, pd.Series | pd.Index):
        values = values.to_numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.dtype.kind in "biuf":
        return arr.astype(float, copy=False)
    try:
        return pd.to_numeric(pd.Series(arr), errors="raise").to_numpy(dtype=float)
    except (ValueError, TypeError) as exc:
        raise InputError(f"{name} must be numeric: {exc}") from None


def drop_missing(columns: dict[str, np.ndarray], nan_policy: str, what: str) -> tuple[dict[str, np.ndarray], int]:
    """Drop rows where any column is missing. Returns the kept columns and the number dropped."""
    check_nan_policy(nan_policy)
    lengths = {k: len(v) for k, v in columns.items()}
    if len(set(lengths.values())) > 1:
        raise InputError(f"{what}: inputs differ in length: {lengths}")
    bad = np.zeros(next(iter(lengths.values())), dtype=bool)
    per_col = {}
    for name, arr in columns.items():
        m = pd.isna(arr) if arr.dtype == object else (np.isnan(arr) if arr.dtype.kind == "f" else
                                                       np.zeros(len(arr), bool))
        m = np.asarray(m, dtype=bool)
        per_col[name] = int(m.sum())
        bad |= m
    n_bad = int(bad.sum())
    if n_bad:
        detail = ", ".join(f"{k}: {v}" for k, v in per_col.items() if v)
        if nan_policy == "raise":
            raise InputError(f"{what}: {n_bad} observation(s) with missing values ({detail}); "
                             "drop them first or pass nan_policy='omit'")
        warnings.warn(f"{what}: dropped {n_bad} observation(s) with missing values ({detail})",
                      MissingDataWarning, stacklevel=3)
        columns = {k: v[~bad] for k, v in columns.items()}
    return columns, n_bad


@dataclass(frozen=True)
class BinaryOutcome:
    """Cases/controls split of an outcome vector."""

    is_case: np.ndarray  # bool
    positive: Any
    negative: Any


def binary_outcome(outcome: Any, positive: Any = None, name: str = "outcome") -> BinaryOutcome:
    """Split an outcome (bool, 0/1, or two labels) into cases and controls.

    ``positive=None`` picks ``True``/``1`` for boolean and 0/1 outcomes, and otherwise the second of the
    two sorted labels (as R's factor levels: the first level is the control, e.g. "Good" < "Poor").
    A ``positive`` label with more than two outcome levels makes every other level a control.
    Missing outcome values must be removed before (see :func:`drop_missing`).
    """
    arr = np.asarray(outcome.to_numpy() if isinstance(outcome, pd.Series) else outcome)
    if arr.ndim != 1:
        raise InputError(f"{name} must be one-dimensional, got shape {arr.shape}")
    levels = pd.unique(pd.Series(arr))
    try:
        levels = sorted(levels)
    except TypeError:
        levels = sorted(levels, key=str)
    if positive is None:
        if len(levels) < 2:
            raise InputError(_single_class_msg(name, arr, levels))
        if len(levels) > 2:
            raise InputError(f"{name} has {len(levels)} levels {list(levels)[:10]}; "
                             "ROC analysis needs two, or name the positive level (positive=...)")
        if arr.dtype == bool or set(levels) <= {0, 1}:
            positive = levels[-1]
        else:
            positive = levels[1]
    elif positive not in set(levels):
        raise InputError(f"positive level {positive!r} does not occur in {name} (levels: {list(levels)})")
    is_case = arr == positive
    if is_case.all() or not is_case.any():
        raise InputError(_single_class_msg(name, arr, levels))
    negatives = [lv for lv in levels if lv != positive]
    return BinaryOutcome(is_case=np.asarray(is_case, dtype=bool), positive=positive,
                         negative=negatives[0] if len(negatives) == 1 else tuple(negatives))


def _single_class_msg(name: str, arr: np.ndarray, levels: Sequence[Any]) -> str:
    if len(levels) == 0:
        return f"{name} is empty (no observations left); ROC analysis needs cases and controls"
    counts = pd.Series(arr).value_counts().to_dict()
    return (f"{name} has a single class {counts}; ROC analysis needs both cases and controls "
            "(at least one of each)")


def check_not_constant(values: np.ndarray, name: str) -> None:
    if values.size and np.all(values == values[0]):
        raise InputError(f"{name} is constant (every value = {values[0]:g}); it cannot discriminate or "
                         "correlate — check the column")


def require_columns(df: pd.DataFrame, columns: Sequence[str], what: str = "table") -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise InputError(f"unknown column(s) {missing} in {what}; available: {list(df.columns)}")


def require_numeric(df: pd.DataFrame, columns: Sequence[str], what: str = "table",
                    id_columns: Sequence[str] = ("exam",), max_shown: int = 5) -> None:
    """Refuse text in numeric columns and columns without any number, naming the cells at fault.

    Text cells are named by the row's id columns (``exam sub-006``; the 1-based data row where the table has
    none) with the offending value: ``column 'pdff_percent' of cohort table is not numeric: exam sub-006 has
    'n/a', exam sub-018 has '55,2'``. Empty cells are missing values (handled by ``nan_policy``), not
    errors; a column where every cell is empty raises ``column 'x' has no numeric values``.
    """
    ids = [c for c in id_columns if c in df.columns]
    for col in dict.fromkeys(columns):
        values = df[col]
        if isinstance(values, pd.DataFrame):
            raise InputError(f"column {col!r} occurs {values.shape[1]} times in {what}; rename the duplicates")
        numeric = pd.to_numeric(values, errors="coerce") if values.dtype.kind not in "biuf" else values
        bad = numeric.isna() & values.notna() & (values.astype(str).str.strip() != "")
        if values.dtype.kind not in "biufc" and bad.any():
            cells = [f"{_row_name(df, i, ids)} has {values.loc[i]!r}" for i in bad[bad].index[:max_shown]]
            more = f" (and {int(bad.sum()) - max_shown} more)" if bad.sum() > max_shown else ""
            raise InputError(f"column {col!r} of {what} is not numeric: {', '.join(cells)}{more}")
        if not np.isfinite(numeric.to_numpy(dtype=float, na_value=np.nan)).any():
            raise InputError(f"column {col!r} of {what} has no numeric values "
                             f"({len(values)} row(s), all empty or not finite)")


def _row_name(df: pd.DataFrame, index: Any, ids: Sequence[str]) -> str:
    if ids:
        return " ".join(f"{c} {df.at[index, c]}" for c in ids)
    return f"row {df.index.get_loc(index) + 1}"
