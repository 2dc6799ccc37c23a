"""The model card as a self-contained HTML page, from the card dict written by :mod:`osteomri.learn.card`.

Sections: data summary, out-of-fold performance with 95 % CIs (and the paired DeLong comparison with the
PDFF + R2* baseline), ROC curve, calibration plot, decision curve, permutation importance, features with
units and training ranges, intended use, provenance. Reads a plain dict (no import of :mod:`osteomri.learn`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from osteomri.report.html import HtmlReport  # noqa: E402

MAX_FEATURE_ROWS = 40


def _ci(v: float, lo: float, hi: float) -> str:
    return f"{v:.3g} ({lo:.3g}–{hi:.3g})"


def _performance_table(perf: dict[str, Any]) -> pd.DataFrame:
    rows = [
        ("AUC (DeLong 95 % CI)", _ci(perf["auc"], perf["auc_ci_low"], perf["auc_ci_high"])),
        (f"Sensitivity at p ≥ {perf['threshold']:.3g} (95 % CI)",
         _ci(perf["sensitivity"], perf["sensitivity_ci_low"], perf["sensitivity_ci_high"])),
        (f"Specificity at p ≥ {perf['threshold']:.3g} (95 % CI)",
         _ci(perf["specificity"], perf["specificity_ci_low"], perf["specificity_ci_high"])),
        ("Calibration slope (ideal 1)", f"{perf['calibration_slope']:.3g}"),
        ("Calibration intercept (ideal 0)", f"{perf['calibration_intercept']:.3g}"),
        ("Brier score (lower is better)", f"{perf['brier']:.3g}"),
        ("TP / FP / TN / FN", f"{perf['tp']} / {perf['fp']} / {perf['tn']} / {perf['fn']}"),
    ]
    return pd.DataFrame(rows, columns=["Out-of-fold measure", "Value"])


def _roc_fig(card: dict[str, Any]) -> plt.Figure:
    perf = card["performance"]["out_of_fold"]
    fpr, tpr = np.asarray(card["roc_curve"]["fpr"]), np.asarray(card["roc_curve"]["tpr"])
    order = np.lexsort((tpr, fpr))
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot(fpr[order], tpr[order], lw=1.8,
            label=f"AUC {_ci(perf['auc'], perf['auc_ci_low'], perf['auc_ci_high'])}")
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 − specificity", ylabel="Sensitivity", title="ROC (out of fold)")
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def _calibration_fig(card: dict[str, Any]) -> plt.Figure:
    bins = pd.DataFrame(card["calibration_bins"])
    perf = card["performance"]["out_of_fold"]
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1, label="ideal")
    ax.plot(bins["predicted"], bins["observed"], "o-", lw=1.5,
            label=f"slope {perf['calibration_slope']:.3g}, intercept {perf['calibration_intercept']:.3g}")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="Predicted probability", ylabel="Observed frequency",
           title="Calibration (deciles, out of fold)")
    ax.set_aspect("equal")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig


def _decision_fig(card: dict[str, Any]) -> plt.Figure:
    dc = pd.DataFrame(card["decision_curve"])
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.plot(dc["threshold"], dc["net_benefit"], lw=1.8, label="model")
    ax.plot(dc["threshold"], dc["treat_all"], lw=1.2, ls="--", label="treat all")
    ax.axhline(0.0, color="0.4", lw=1.0, label="treat none")
    prev = card["target"]["prevalence"]
    ax.set(xlim=(0, 1), ylim=(-0.05, max(prev, 0.05) * 1.1), xlabel="Threshold probability",
           ylabel="Net benefit", title="Decision curve (out of fold)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _importance_fig(card: dict[str, Any], top: int = 15) -> plt.Figure | None:
    imp = pd.DataFrame(card["importance"])
    if imp.empty:
        return None
    imp = imp.head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(6.4, 0.3 * len(imp) + 1.0))
    ax.barh(imp["feature"], imp["importance_auc"], xerr=imp["importance_sd"].fillna(0.0), color="#4a7ab0")
    ax.axvline(0.0, color="0.4", lw=0.8)
    ax.set(xlabel="Decrease of AUC when permuted (mean ± SD over outer folds)", title="Permutation importance")
    ax.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    return fig


def write_model_card_html(card: dict[str, Any], path: str | os.PathLike,
                          provenance: dict[str, Any] | None = None) -> Path:
    """Render ``card`` to a self-contained HTML file at ``path``."""
    model, target = card["model"], card["target"]
    rep = HtmlReport(f"Model card: {model['name']} for {target['name']}")
    s = model["settings"]
    rep.paragraph(f"{card['intended_use']}")
    rep.heading("Data")
    rep.table(pd.DataFrame([
        ("Patients", f"{target['n']}"),
        ("Positive (target)", f"{target['n_positive']} ({100 * target['prevalence']:.3g} %)"),
        ("Target definition", target["definition"]), ("Features", f"{len(card['features'])}"),
        ("Validation", f"nested CV: {s['n_outer']} outer × {s['n_inner']} inner folds, {s['n_repeats']} repeat(s), "
                       f"random_state {s['random_state']}"),
        ("Class imbalance / calibration", f"class weights {s['class_weight']}; {s['calibration']}"),
        ("Feature selection", "none" if s["select_k"] is None else f"{s['select_k']} best (ANOVA F), inner loop"),
    ], columns=["Item", "Value"]))
    rep.heading("Performance (out of fold)")
    rep.table(_performance_table(card["performance"]["out_of_fold"]))
    cmp = card["performance"].get("baseline_comparison")
    if cmp:
        rep.table(pd.DataFrame([{
            "Model AUC": cmp["auc"], "Baseline AUC": cmp["baseline_auc"], "Difference": cmp["diff"],
            "Difference 95 % CI low": cmp["diff_ci_low"], "Difference 95 % CI high": cmp["diff_ci_high"],
            "p (paired DeLong)": cmp["p_value"]}]), caption=f"Comparison with the baseline: {cmp['baseline']}")
    rep.figure(_roc_fig(card), caption="ROC curve of the out-of-fold predicted probabilities.")
    rep.figure(_calibration_fig(card), caption="Observed frequency of the target per decile of predicted "
               "probability.")
    rep.figure(_decision_fig(card), caption="Net benefit (Vickers & Elkin 2006) against treating all or none.")
    fig = _importance_fig(card)
    if fig is not None:
        rep.figure(fig, caption="Permutation importance on the outer test folds (top 15).")
    rep.heading("Features")
    feats = pd.DataFrame(card["features"]).rename(columns={
        "name": "Feature", "unit": "Unit", "mean": "Mean", "sd": "SD", "min": "Min", "max": "Max",
        "n_missing": "Missing (n)"})
    if len(feats) > MAX_FEATURE_ROWS:
        rep.paragraph(f"First {MAX_FEATURE_ROWS} of {len(feats)} features (all in model_card.json).", "note")
    rep.table(feats.head(MAX_FEATURE_ROWS), caption="Training data: feature, unit and distribution")
    if provenance:
        rep.provenance(provenance)
    return rep.write(path)
