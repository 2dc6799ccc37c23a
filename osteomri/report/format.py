"""How quantities appear in every report table: human labels with units and three significant figures.

One place for the exam, study and cohort reports:

* :func:`label` — a column/quantity name as a human header with its unit: ``pdff_percent`` → ``PDFF (%)``,
  ``d_mm2_s`` → ``D (mm²/s)``. Map names take their unit and description from the map registry
  (:func:`osteomri.models.registry.map_spec`) when the map is registered; otherwise the unit is read from the
  name's unit suffix (the project's naming rule: ``_percent``, ``_hz``, ``_mm2_s``, ``_ms`` ...). A short
  symbol table (:data:`SYMBOLS`) gives the names clinicians use (PDFF, R2*, D*); :data:`LABELS` the few
  non-map columns of the report tables.
* :func:`sig` — a number to three significant figures in plain decimal notation; :func:`column_scale`
  picks one power-of-ten factor per column (a multiple of 3) when values are too small or large for plain
  decimals, so that ``0.000351`` in mm²/s shows as ``0.351`` under ``D (10⁻³ mm²/s)``: one notation per column,
  never ``6.2e-05``.
* :func:`mean_sd` — ``mean ± SD`` with the SD to the mean's decimal places; :func:`interval` —
  ``estimate (low–high)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

DIGITS = 3
DASH = "–"

#: short clinical symbols of map quantities (units come from the registry or the name's unit suffix)
SYMBOLS: dict[str, str] = {
    "pdff": "PDFF", "r2star": "R2*", "t2star": "T2*", "fieldmap": "Field map", "t1w_signal": "T1w signal",
    "f": "f", "d": "D", "dstar": "D*", "s0": "S0", "mmf": "MMF", "vbq": "VBQ", "bmd": "BMD", "t_score": "T-score",
    "ff": "FF", "adc": "ADC", "t2star_short": "T2* short", "t2star_long": "T2* long", "t2star_fat": "T2* fat",
    "fraction_short": "Bound-water fraction", "fraction_fat": "UTE fat fraction", "ute_s0": "UTE S0",
    "ute_residual": "UTE residual", "t2_macromolecule": "T2 macromolecular", "exchange_rate": "Exchange rate",
    "t2_free_water": "T2 free water", "r1_free_water": "R1 free water", "ute_mt_s0": "UTE-MT S0",
    "ute_mt_residual": "UTE-MT residual", "porosity_index": "Porosity index", "suppression_ratio": "Suppression ratio",
    "t1": "T1", "vfa_m0": "VFA M0",
}

#: non-map columns: name -> (header, unit or None, display factor)
LABELS: dict[str, tuple[str, str | None, float]] = {
    "level": ("Level", None, 1.0), "marker": ("Marker", None, 1.0), "map": ("Map", None, 1.0),
    "value": ("Value", None, 1.0), "cutoff": ("Cut-off", None, 1.0), "rule": ("Positive if", None, 1.0),
    "positive": ("Result", None, 1.0), "likelihood_ratio": ("LR", None, 1.0),
    "pretest_probability": ("Pre-test probability", "%", 100.0),
    "posttest_probability": ("Post-test probability", "%", 100.0),
    "sensitivity": ("Sensitivity", "%", 100.0), "specificity": ("Specificity", "%", 100.0),
    "auc": ("AUC", None, 1.0), "auc_corrected": ("AUC, optimism-corrected", None, 1.0),
    "youden_j": ("Youden J", None, 1.0), "lr_pos": ("LR+", None, 1.0), "lr_neg": ("LR−", None, 1.0),
    "n": ("n", None, 1.0), "n_cases": ("Cases", None, 1.0), "n_controls": ("Controls", None, 1.0),
    "p": ("P", None, 1.0), "p_value": ("P", None, 1.0), "r": ("r", None, 1.0), "method": ("Method", None, 1.0),
    "measured": ("Measured", None, 1.0), "reference": ("Reference", None, 1.0),
    "difference": ("Difference", None, 1.0), "seconds": ("Time", "s", 1.0), "stage": ("Stage", None, 1.0),
    "status": ("Status", None, 1.0), "message": ("Message", None, 1.0), "outcome": ("Outcome", None, 1.0),
    "n_levels": ("Levels", None, 1.0), "n_voxels": ("Voxels", None, 1.0), "volume_mm3": ("Volume", "mm³", 1.0),
    "age": ("Age", "years", 1.0), "bmi": ("BMI", "kg/m²", 1.0), "sex": ("Sex", None, 1.0),
    "field_strength_t": ("Field strength", "T", 1.0), "exam": ("Exam", None, 1.0),
    "who_group": ("WHO group", None, 1.0), "t_score": ("T-score", None, 1.0),
}

# unit suffixes of quantity names (docs/architecture: units in names) -> printed unit; longest first
_SUFFIX_UNITS = (("_mg_cm3", "mg/cm³"), ("_mm2_s", "mm²/s"), ("_percent", "%"), ("_mm3", "mm³"), ("_hz", "Hz"),
                 ("_ms", "ms"), ("_us", "µs"), ("_mm", "mm"), ("_s", "s"), ("_t", "T"))
# UCUM units of the registry -> printed unit
_UCUM = {"1": None, "{a.u.}": "a.u.", "1/s": "s⁻¹", "mm2/s": "mm²/s", "um2/ms": "µm²/ms", "us": "µs",
         "mg/cm3": "mg/cm³", "mm3": "mm³", "Cel": "°C"}
_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _registry_spec(name: str) -> Any:
    try:
        from osteomri.models.registry import map_spec

        return map_spec(name)
    except (ImportError, KeyError):
        return None


def split_name(name: str) -> tuple[str, str | None]:
    """``(symbol, unit)`` of a quantity name: registry first, then :data:`LABELS`, then the unit suffix."""
    name = str(name)
    if name in LABELS:
        return LABELS[name][0], LABELS[name][1]
    if " + " in name:  # a combination of markers (e.g. the logistic combination of Table 2)
        return " + ".join(split_name(part)[0] for part in name.split(" + ")), None
    for tail, word in (("_sd", " SD"), ("_reader1", ", reader 1"), ("_reader2", ", reader 2")):
        if name.endswith(tail) and len(name) > len(tail) and _registry_spec(name) is None:
            symbol, unit = split_name(name[: -len(tail)])
            return symbol + word, unit
    spec = _registry_spec(name)
    base, unit = name, None
    if spec is not None:
        unit = _UCUM.get(spec.units, spec.units)
    for suffix, printed in _SUFFIX_UNITS:
        if name.endswith(suffix) and len(name) > len(suffix):
            base = name[: -len(suffix)]
            unit = unit if spec is not None else printed
            break
    if base in SYMBOLS:
        return SYMBOLS[base], unit
    if name in SYMBOLS:
        return SYMBOLS[name], unit
    if spec is not None and spec.description:
        return spec.description[0].upper() + spec.description[1:], unit
    text = base.replace("_", " ").strip()
    return (text[0].upper() + text[1:] if text else name), unit


def label(name: str, scale_exponent: int = 0) -> str:
    """Human header with unit: ``PDFF (%)``, ``R2* (Hz)``, ``D (10⁻³ mm²/s)`` (values shown × 10³)."""
    symbol, unit = split_name(name)
    factor = f"10{str(scale_exponent).translate(_SUPERSCRIPT)}" if scale_exponent else ""
    inside = " ".join(p for p in (factor, unit) if p)
    if factor and not unit:
        inside = f"×{factor}"
    return f"{symbol} ({inside})" if inside else symbol


def display_factor(name: str) -> float:
    """Factor a column's values are multiplied by for display (proportions shown in %)."""
    return LABELS.get(str(name), ("", None, 1.0))[2]


def _finite(values: Iterable[Any]) -> np.ndarray:
    arr = pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce").to_numpy(dtype=float)
    return arr[np.isfinite(arr)]


def column_scale(values: Iterable[Any]) -> int:
    """Power of ten (a multiple of 3) the column is expressed in, so that its typical magnitude lies in
    [0.01, 10⁵): 0 for ordinary values, −3 for 0.0003-ish (shown as 0.3 with ``10⁻³`` in the header)."""
    finite = np.abs(_finite(values))
    finite = finite[finite > 0]
    if not finite.size:
        return 0
    typical = float(np.median(finite))
    if 1e-2 <= typical < 1e5:
        return 0
    return int(math.floor((math.log10(typical) + 2.0) / 3.0) * 3)


def decimals(x: float, digits: int = DIGITS) -> int:
    """Decimal places that show ``x`` to ``digits`` significant figures (0 for |x| ≥ 10^(digits−1))."""
    if x == 0 or not math.isfinite(x):
        return digits - 1 if x == 0 else 0
    return max(0, digits - 1 - int(math.floor(math.log10(abs(x)))))


def sig(x: Any, digits: int = DIGITS) -> str:
    """A number to ``digits`` significant figures, plain decimals; integers (counts) exactly; NaN as a dash."""
    if x is None or x is pd.NA:
        return DASH
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if not math.isfinite(v):
        return DASH if math.isnan(v) else ("∞" if v > 0 else "−∞")
    if v != 0:  # round to the significant figures first (999.6 -> 1000, not 999.6 with 0 decimals)
        v = float(f"{v:.{digits - 1}e}")
    text = f"{v:.{decimals(v, digits)}f}"
    return "0" if text.strip("-0.") == "" else text.replace("-", "−")


def mean_sd(mean: Any, sd: Any, digits: int = DIGITS) -> str:
    """``mean ± SD``: the mean to ``digits`` significant figures and the SD to the same decimal places."""
    m = float(mean) if mean is not None else math.nan
    if not math.isfinite(m):
        return DASH
    text = sig(m, digits)
    s = float(sd) if sd is not None else math.nan
    if not math.isfinite(s):
        return text
    places = len(text.split(".")[1]) if "." in text else 0
    rounded = round(s, places)
    sd_text = f"{rounded:.{places}f}" if rounded > 0 or s == 0 else sig(s, 1)  # never "± 0" for a non-zero SD
    return f"{text} ± {sd_text}"


def interval(estimate: Any, low: Any, high: Any, digits: int = DIGITS) -> str:
    """``estimate (low–high)``, each to ``digits`` significant figures."""
    if estimate is None or not np.isfinite(float(estimate)):
        return DASH
    return f"{sig(estimate, digits)} ({sig(low, digits)}–{sig(high, digits)})"


_MEAN_SD = re.compile(r"^\s*(-?[0-9.]+(?:e-?\d+)?)\s*±\s*([0-9.]+(?:e-?\d+)?)\s*$")


def reformat_mean_sd(text: Any, digits: int = DIGITS) -> Any:
    """A ``"a ± b"`` string re-printed by :func:`mean_sd` (other values unchanged)."""
    match = _MEAN_SD.match(str(text)) if isinstance(text, str) else None
    return mean_sd(float(match[1]), float(match[2]), digits) if match else text


def humanise(df: pd.DataFrame, *, labels: Mapping[str, str] | None = None, keep: Iterable[str] = (),
             digits: int = DIGITS) -> pd.DataFrame:
    """A display copy of ``df``: numeric columns scaled (:func:`display_factor`, :func:`column_scale`) and
    printed to ``digits`` significant figures, headers by :func:`label` (or ``labels``); ``keep`` names
    columns left as they are. Every cell of the result is text."""
    labels = dict(labels or {})
    keep = set(keep)
    out = {}
    for col in df.columns:
        values = df[col]
        name = str(col)
        if name in keep or not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
            out[labels.get(name, label(name) if name not in keep else name)] = values.map(
                lambda v: DASH if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
            continue
        if pd.api.types.is_bool_dtype(values) or pd.api.types.is_integer_dtype(values):
            out[labels.get(name, label(name))] = values.map(sig)
            continue
        factor = display_factor(name)
        shown = values.astype(float) * factor
        exponent = column_scale(shown)
        shown = shown / 10.0**exponent
        out[labels.get(name, label(name, exponent))] = shown.map(lambda v: sig(v, digits))
    return pd.DataFrame(out, index=df.index)
