"""Checks the exam pipeline runs between stages, kept out of :mod:`osteomri.pipeline.stages` (small hooks there).

- :func:`labelled_options`: the label options (``resample``) the measure and VBQ stages pass to the
  vertebrae layer (CLI ``--resample-labels`` sets ``options["labels"]["resample"]``).
- :func:`check_screenable`: the per-level PDFF/R2* must read like adult lumbar marrow
  (:func:`osteomri.vertebrae.plausibility.implausible_marrow`) before a screening estimate is given; otherwise the
  estimate is withheld with the reason (an error of the screening stage, and a QC flag).
- :func:`measure_notes`: what the measurement layer warned about (labels resampled, vertebrae cut by the field of
  view, empty ROIs), as one line for the stage log.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pandas as pd

from osteomri.errors import InputError

NOTED_WARNINGS = ("LabelAlignmentWarning", "TruncatedVertebraWarning", "EmptyRoiWarning", "ImplausibleMarrowWarning")


def labelled_options(spec: Any, stage: str) -> dict[str, Any]:
    """The stage's own options plus the exam-wide label options (``spec.options["labels"]``)."""
    return {**dict(spec.options.get("labels", {})), **dict(spec.options.get(stage, {}))}


def with_notes(func: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run ``func()`` and return its result and the messages of the measurement warnings it raised (each
    once, for the stage log); every warning is passed on as well."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = func()
    notes = []
    for w in caught:
        if w.category.__name__ in NOTED_WARNINGS and str(w.message) not in notes:
            notes.append(str(w.message))
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)  # the CLI shows each once, as a line
    return result, notes


def check_screenable(lumbar: pd.DataFrame, field_strength_t: float | None, qc: dict[str, Any]) -> None:
    """Raise :class:`InputError` (screening withheld) when the screened levels do not read like marrow."""
    from osteomri.vertebrae.plausibility import implausible_marrow

    means = {m: dict(zip(g["level"], g["mean"], strict=False)) for m, g in lumbar.groupby("map")
             if m in ("pdff_percent", "r2star_hz")}
    reasons = implausible_marrow(means, field_strength_t)
    if reasons:
        qc["screening_withheld"] = 1
        raise InputError("screening estimate withheld: " + "; ".join(reasons) + " — the ROIs do not read like "
                         "vertebral marrow (labels misregistered, wrong label preset, or a water–fat swap?)")
