"""Paired comparison of models on the same patients' out-of-fold predictions (DeLong et al. 1988).

The baseline is the seed study's combined marker: logistic regression on L1–L4 PDFF and R2*
(:data:`BASELINE_FEATURES`), evaluated by the same nested CV as the other models, so that every model is
compared with it on out-of-fold predictions of the same patients (:func:`osteomri.stats.delong_test`).
"""

from __future__ import annotations

import pandas as pd

from osteomri.errors import InputError
from osteomri.learn.cv import CVResult, nested_cv
from osteomri.stats import delong_test

BASELINE_FEATURES = ("pdff_percent", "r2star_hz")


def baseline_cv(X: pd.DataFrame, y, columns: tuple[str, ...] = BASELINE_FEATURES, **kwargs) -> CVResult:
    """Nested CV of the logistic PDFF + R2* baseline (``kwargs`` as :func:`nested_cv`, without model/select_k)."""
    missing = [c for c in columns if c not in X.columns]
    if missing:
        raise InputError(f"baseline column(s) {missing} not in the features; available: {list(X.columns)[:10]}")
    return nested_cv(X[list(columns)], y, model="logistic", **kwargs)


def compare_to_baseline(results: dict[str, CVResult], baseline: CVResult) -> pd.DataFrame:
    """Paired DeLong test of each model's out-of-fold AUC against the baseline's (same patients, same order)."""
    rows = []
    for name, res in results.items():
        a, b = res.oof_predictions, baseline.oof_predictions
        if not a.index.equals(b.index) or not (a["y"].to_numpy() == b["y"].to_numpy()).all():
            raise InputError(f"model {name!r} and the baseline were not evaluated on the same patients")
        t = delong_test(a["y"], a["probability"], b["probability"], direction_a="<", direction_b="<",
                        names=(name, "baseline"))
        rows.append({"model": name, "auc": t.auc_a, "baseline_auc": t.auc_b, "diff": t.diff,
                     "diff_ci_low": t.diff_ci_low, "diff_ci_high": t.diff_ci_high, "p_value": t.p_value})
    return pd.DataFrame(rows)
