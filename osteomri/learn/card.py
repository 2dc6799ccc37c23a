"""Train, persist (skops) and apply a classifier with its model card.

:func:`train` runs the nested CV of :mod:`osteomri.learn.cv` (the honest performance), the paired DeLong
comparison with the logistic PDFF + R2* baseline when those columns are present, fits the deployable model
(:func:`~osteomri.learn.cv.fit_final`) and returns it with the model card (a JSON-able dict: data summary,
features with units and training ranges, out-of-fold performance with CIs, ROC points, calibration bins,
decision curve, permutation importance, provenance). :func:`save` writes ``model.skops`` + ``model_card.json``;
:func:`load` reads them back trusting only scikit-learn/NumPy/SciPy types (skops; never pickle);
:func:`predict` refuses a table whose columns or units do not match the card.

Units of a column: a BIDS-style sidecar (``cohort.json``: column → ``{"Units": ...}``) wins; otherwise the
unit of the map registry or the one its name carries (``pdff_percent`` → %, ``r2star_hz`` → 1/s, radiomics
``<map>__<feature>`` → the map's).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from osteomri.errors import InputError
from osteomri.learn.compare import BASELINE_FEATURES, baseline_cv, compare_to_baseline
from osteomri.learn.cv import check_xy, fit_final, nested_cv

CARD_SCHEMA = "osteomri-model-card/1"
MODEL_FILE, CARD_FILE = "model.skops", "model_card.json"
TRUSTED_MODULES = ("sklearn.", "numpy.", "scipy.")
_SUFFIX_UNITS = (("_mm2_s", "mm2/s"), ("_mg_cm3", "mg/cm3"), ("_kg_m2", "kg/m2"), ("_percent", "%"), ("_hz", "Hz"),
                 ("_ms", "ms"), ("_mm3", "mm3"), ("_mm", "mm"), ("_s", "s"), ("_years", "a"))
_KNOWN_UNITS = {"age": "a", "bmi": "kg/m2", "t_score": "1", "vbq": "1"}


def column_unit(name: str, sidecar: dict[str, Any] | None = None) -> str:
    """The unit of column ``name``: the sidecar's ``Units``, else the unit its name carries, else ``""``."""
    if sidecar and isinstance(sidecar.get(name), dict) and sidecar[name].get("Units") is not None:
        return str(sidecar[name]["Units"])
    base = name.split("__", 1)[0]  # radiomics: <map>__<feature> has the map's intensity unit
    if base in _KNOWN_UNITS:
        return _KNOWN_UNITS[base]
    try:
        from osteomri.models.registry import map_spec

        return str(map_spec(base).units)
    except Exception:  # noqa: BLE001 - not a registered map: fall back to the name's suffix
        pass
    for suffix, unit in _SUFFIX_UNITS:
        if base.endswith(suffix):
            return unit
    return ""


def read_cohort(path: str | Path) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A cohort table (TSV/CSV) and its sidecar JSON (same stem, ``.json``; empty if absent)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"cohort table not found: {path}")
    sep = "\t" if path.suffix.lower() in (".tsv", ".txt") else ","
    try:
        table = pd.read_csv(path, sep=sep)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as exc:
        raise InputError(f"{path.name}: cannot read the table ({exc})") from exc
    side = path.with_suffix(".json")
    sidecar = {}
    if side.is_file():
        try:
            sidecar = json.loads(side.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{side.name}: not valid JSON ({exc})") from exc
    return table, sidecar


def resolve_features(table: pd.DataFrame, patterns: list[str]) -> list[str]:
    """Feature columns from names or shell-style patterns (``pdff_percent__*``); each must match something."""
    out: list[str] = []
    for pat in patterns:
        for item in (p.strip() for p in pat.split(",") if p.strip()):
            if any(ch in item for ch in "*?["):
                rx = re.compile("^" + re.escape(item).replace(r"\*", ".*").replace(r"\?", ".") + "$")
                hits = [c for c in table.columns if rx.match(str(c))]
            else:
                hits = [item] if item in table.columns else []
            if not hits:
                raise InputError(f"feature {item!r} is not a column of the cohort table")
            out.extend(h for h in hits if h not in out)
    if not out:
        raise InputError("no feature columns given (--features)")
    return out


def target_vector(table: pd.DataFrame, target: str) -> tuple[np.ndarray, str]:
    """0/1 outcome from column ``target``; ``osteoporosis`` without such a column is derived from
    ``who_group == "osteoporosis"`` or ``t_score <= -2.5`` (WHO 1994). Returns (y, definition)."""
    if target in table.columns:
        col = table[target]
        if col.isna().any():
            raise InputError(f"target column {target!r} has {int(col.isna().sum())} missing value(s)")
        vals = set(pd.unique(col).tolist())
        if vals <= {0, 1}:
            return col.astype(int).to_numpy(), f"column {target} (1 = positive)"
        if col.dtype == object and vals <= {"yes", "no", "true", "false", "True", "False"}:
            return col.astype(str).str.lower().isin(["yes", "true"]).astype(int).to_numpy(), f"column {target}"
        raise InputError(f"target column {target!r} must be 0/1 (got values {sorted(map(str, vals))[:5]})")
    if target == "osteoporosis":
        if "who_group" in table.columns:
            return (table["who_group"].astype(str) == "osteoporosis").astype(int).to_numpy(), \
                "who_group == osteoporosis (WHO: T-score <= -2.5)"
        if "t_score" in table.columns:
            return (table["t_score"] <= -2.5).astype(int).to_numpy(), "t_score <= -2.5 (WHO 1994)"
    raise InputError(f"target {target!r} is not a column of the cohort table (and cannot be derived)")


def _feature_summary(X: pd.DataFrame, sidecar: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": c, "unit": column_unit(c, sidecar), "mean": float(X[c].mean()), "sd": float(X[c].std()),
             "min": float(X[c].min()), "max": float(X[c].max()), "n_missing": int(X[c].isna().sum())}
            for c in X.columns]


def _calibration_bins(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> list[dict[str, float]]:
    """Observed vs predicted risk in deciles of predicted risk (for the calibration plot)."""
    edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, len(edges) - 2)
    return [{"predicted": float(p[idx == b].mean()), "observed": float(y[idx == b].mean()), "n": int((idx == b).sum())}
            for b in range(len(edges) - 1) if (idx == b).any()]


def train(table: pd.DataFrame, *, target: str, features: list[str], model: str = "rf", select_k: int | None = None,
          n_outer: int = 5, n_inner: int = 5, n_repeats: int = 1, random_state: int = 0, threshold: float = 0.5,
          sidecar: dict[str, Any] | None = None, importance_repeats: int = 5):
    """Nested CV + baseline comparison + final fit. Returns (fitted model, card dict, CVResult)."""
    import sklearn

    from osteomri._version import __version__
    from osteomri.stats import roc_analysis

    sidecar = sidecar or {}
    y, definition = target_vector(table, target)
    X, yb = check_xy(table[features], y)
    kw = {"n_outer": n_outer, "n_inner": n_inner, "n_repeats": n_repeats, "random_state": random_state,
          "threshold": threshold}
    res = nested_cv(X, yb, model=model, select_k=select_k, importance=True, importance_repeats=importance_repeats,
                    **kw)
    comparison = None
    if all(c in table.columns for c in BASELINE_FEATURES) and not (model == "logistic" and
                                                                   set(features) == set(BASELINE_FEATURES)):
        base = baseline_cv(table[list(BASELINE_FEATURES)].astype(float), yb, **kw)
        comparison = compare_to_baseline({model: res}, base).iloc[0].to_dict()
        comparison["baseline"] = "logistic regression of " + " + ".join(BASELINE_FEATURES)
    fitted, params = fit_final(X, yb, model=model, select_k=select_k, n_inner=n_inner, random_state=random_state)
    p = res.oof_predictions["probability"].to_numpy()
    roc = roc_analysis(yb, p, direction="<")
    curve = roc.curve
    dc = res.decision_curve
    card = {
        "schema": CARD_SCHEMA,
        "model": {"name": model, "settings": res.settings, "final_parameters": params,
                  "fold_parameters": res.fold_params, "software": {"osteomri": __version__,
                                                                   "scikit-learn": sklearn.__version__}},
        "target": {"name": target, "definition": definition, "n": int(len(yb)), "n_positive": int(yb.sum()),
                   "prevalence": float(yb.mean())},
        "features": _feature_summary(X, sidecar),
        "performance": {"out_of_fold": res.performance, "repeat_aucs": res.repeat_aucs,
                        "baseline_comparison": comparison},
        "roc_curve": {"fpr": (1 - curve["specificity"]).round(5).tolist(),
                      "tpr": curve["sensitivity"].round(5).tolist()},
        "calibration_bins": _calibration_bins(yb, p),
        "decision_curve": dc[dc["threshold"].isin(np.round(np.arange(0.05, 0.96, 0.05), 2))].to_dict("records"),
        "importance": res.importance.to_dict("records") if res.importance is not None else [],
        "intended_use": "Research: estimates of the probability of the target from the listed features, measured "
                        "as in the training data. Not a diagnostic device. Performance is the out-of-fold estimate "
                        "of the whole procedure (nested cross-validation), not an external validation.",
    }
    return fitted, card, res


def _untrusted_ok(types: list[str]) -> list[str]:
    bad = [t for t in types if not t.startswith(TRUSTED_MODULES)]
    if bad:
        raise InputError(f"model file holds types outside scikit-learn/NumPy/SciPy, refusing to load: {bad[:3]}")
    return types


def save(fitted, card: dict[str, Any], out: str | Path) -> list[Path]:
    """Write ``model.skops`` and ``model_card.json`` into ``out`` (atomically)."""
    import skops.io as sio

    from osteomri.io.provenance import atomic_path, write_json_atomic

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with atomic_path(out / MODEL_FILE) as tmp:
        sio.dump(fitted, tmp)
    _untrusted_ok(sio.get_untrusted_types(file=out / MODEL_FILE))
    return [out / MODEL_FILE, write_json_atomic(out / CARD_FILE, card)]


def load(directory: str | Path):
    """(model, card) from a directory written by :func:`save`; only scikit-learn/NumPy/SciPy types are trusted."""
    import skops.io as sio

    d = Path(directory)
    for name in (MODEL_FILE, CARD_FILE):
        if not (d / name).is_file():
            raise InputError(f"{d}: no {name} (not a model directory written by 'osteomri model train')")
    try:
        card = json.loads((d / CARD_FILE).read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{CARD_FILE}: not valid JSON ({exc})") from exc
    if card.get("schema") != CARD_SCHEMA:
        raise InputError(f"{CARD_FILE}: unknown schema {card.get('schema')!r} (expected {CARD_SCHEMA})")
    trusted = _untrusted_ok(sio.get_untrusted_types(file=d / MODEL_FILE))
    return sio.load(d / MODEL_FILE, trusted=trusted), card


def check_inputs(table: pd.DataFrame, card: dict[str, Any], sidecar: dict[str, Any] | None = None) -> pd.DataFrame:
    """The card's feature columns of ``table`` after checking names, units and value ranges; raises
    :class:`InputError` with one line naming the first column at fault."""
    feats = card["features"]
    missing = [f["name"] for f in feats if f["name"] not in table.columns]
    if missing:
        raise InputError(f"column(s) {missing[:5]} required by the model card are missing from the table")
    for f in feats:
        unit = column_unit(f["name"], sidecar)
        if unit != f["unit"]:
            raise InputError(f"column {f['name']!r} is in {unit or 'no stated unit'!r}, the model was trained on "
                             f"{f['unit'] or 'no stated unit'!r}")
        col = table[f["name"]]
        if not pd.api.types.is_numeric_dtype(col):
            raise InputError(f"column {f['name']!r} is not numeric")
        med = col.median()
        span = f["max"] - f["min"]
        if np.isfinite(med) and not (f["min"] - 0.1 * span <= med <= f["max"] + 0.1 * span):
            raise InputError(f"column {f['name']!r}: median {med:.3g} lies far outside the training range "
                             f"{f['min']:.3g}–{f['max']:.3g} {f['unit']} (wrong unit or scale?)")
    return table[[f["name"] for f in feats]].astype(float)


def predict(directory: str | Path, table: pd.DataFrame, sidecar: dict[str, Any] | None = None) -> pd.DataFrame:
    """Probabilities of the positive class for ``table``'s rows (columns checked against the card)."""
    fitted, card = load(directory)
    X = check_inputs(table, card, sidecar)
    p = fitted.predict_proba(X.to_numpy())[:, 1]
    thr = card["performance"]["out_of_fold"]["threshold"]
    out = pd.DataFrame({"probability": p, "positive": (p >= thr).astype(int)}, index=table.index)
    for key in ("exam", "participant_id", "subject"):
        if key in table.columns:
            out.insert(0, key, table[key].to_numpy())
            break
    return out
