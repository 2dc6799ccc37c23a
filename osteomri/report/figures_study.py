"""Figures of the study report: ROC curves, scatter vs BMD, box plots by group, Bland–Altman plots."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from osteomri.report._mpl import plt
from osteomri.report.format import label as qlabel
from osteomri.report.format import split_name
from osteomri.stats import BlandAltmanResult, CorrelationResult, RocResult

__all__ = ["roc_figure", "scatter_figure", "box_figure", "bland_altman_figure"]


def roc_figure(rocs: dict[str, RocResult], title: str = "") -> plt.Figure:
    """ROC curves (1 − specificity vs sensitivity) with AUC and 95 % CI in the legend and the Youden point."""
    fig, ax = plt.subplots(figsize=(5.2, 5.0))
    for name, r in rocs.items():
        c = r.curve
        fpr, tpr = 1 - c["specificity"].to_numpy(), c["sensitivity"].to_numpy()
        order = np.lexsort((tpr, fpr))
        (line,) = ax.plot(fpr[order], tpr[order], lw=1.8,
                          label=f"{qlabel(name)}: AUC {r.auc:.3f} ({r.auc_ci_low:.3f}–{r.auc_ci_high:.3f})")
        ax.plot(1 - r.specificity, r.sensitivity, "o", color=line.get_color(), ms=5)
    ax.plot([0, 1], [0, 1], ls="--", color="0.6", lw=1)
    ax.set(xlim=(0, 1), ylim=(0, 1.01), xlabel="1 − specificity", ylabel="sensitivity", title=title)
    ax.set_aspect("equal")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig


def scatter_figure(df: pd.DataFrame, x: str, y: str, corr: CorrelationResult, group: str | None = None) -> plt.Figure:
    """Scatter of ``y`` against ``x`` coloured by group, with the OLS line of ``y`` on ``x`` and the correlation
    ``corr`` (symmetric in x and y, so either order of the pair is fine)."""
    fig, ax = plt.subplots(figsize=(5.2, 4.2))
    if group is not None and group in df:
        for g, sub in df.groupby(group, observed=True, sort=False):
            ax.scatter(sub[x], sub[y], s=14, alpha=0.8, label=str(g))
        ax.legend(fontsize=8, title=qlabel(group), title_fontsize=8)
    else:
        ax.scatter(df[x], df[y], s=14, alpha=0.8)
    ok = df[x].notna() & df[y].notna()
    slope, intercept = np.polyfit(df.loc[ok, x].to_numpy(float), df.loc[ok, y].to_numpy(float), 1)
    xs = np.linspace(df.loc[ok, x].min(), df.loc[ok, x].max(), 50)
    ax.plot(xs, intercept + slope * xs, color="k", lw=1.5)
    ax.text(0.02, 0.97, f"r = {corr.r:.3f} (95% CI {corr.ci_low:.3f} to {corr.ci_high:.3f}), "
            f"P {'< 0.001' if corr.p_value < 0.001 else f'= {corr.p_value:.3f}'}\n"
            f"{split_name(y)[0]} = {intercept:.3g} + {slope:.3g} × {split_name(x)[0]}", transform=ax.transAxes,
            va="top", fontsize=8)
    ax.set(xlabel=qlabel(x), ylabel=qlabel(y))
    fig.tight_layout()
    return fig


def box_figure(df: pd.DataFrame, group: str, variables: Sequence[str], levels: Sequence[str]) -> plt.Figure:
    """Box plots of each variable by group (with the individual points)."""
    fig, axes = plt.subplots(1, len(variables), figsize=(3.6 * len(variables), 3.8), squeeze=False)
    rng = np.random.default_rng(0)  # jitter only
    for ax, var in zip(axes[0], variables, strict=True):
        data = [df.loc[(df[group] == g) & df[var].notna(), var].to_numpy() for g in levels]
        ax.boxplot(data, showfliers=False)
        ax.set_xticks(range(1, len(levels) + 1), [str(g) for g in levels], rotation=20)
        for i, d in enumerate(data, start=1):
            ax.scatter(i + rng.uniform(-0.12, 0.12, d.size), d, s=8, alpha=0.5, color="0.3")
        ax.set(ylabel=qlabel(var), title=split_name(var)[0])
    fig.tight_layout()
    return fig


def bland_altman_figure(ba: BlandAltmanResult, a: str, b: str) -> plt.Figure:
    """Difference against mean with bias, limits of agreement and their CIs (Bland & Altman 1986, 1999)."""
    fig, ax = plt.subplots(figsize=(5.4, 4.0))
    ax.scatter(ba.means, ba.differences, s=14, alpha=0.8)
    for value, ci, label in [(ba.bias, ba.bias_ci, "bias"), (ba.loa_low, ba.loa_low_ci, "LoA"),
                             (ba.loa_high, ba.loa_high_ci, "LoA")]:
        ax.axhline(value, color="k" if label == "bias" else "C3", ls="-" if label == "bias" else "--", lw=1.2)
        ax.axhspan(ci[0], ci[1], color="0.85" if label == "bias" else "#f4cccc", alpha=0.6, lw=0)
        ax.text(1.0, value, f" {label} {value:.2f}", transform=ax.get_yaxis_transform(), va="center", fontsize=8)
    unit = f" ({split_name(a)[1]})" if split_name(a)[1] else ""
    ax.set(xlabel=f"mean of {split_name(a)[0]} and {split_name(b)[0]}{unit}",
           ylabel=f"{split_name(a)[0]} − {split_name(b)[0]}{unit}",
           title=f"bias {ba.bias:.2f}, LoA {ba.loa_low:.2f} to {ba.loa_high:.2f}")
    fig.tight_layout()
    return fig
