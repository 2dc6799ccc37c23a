"""UTE fit figure: for each level, the data of the ROI's median voxel, the model fit and the residual."""

from __future__ import annotations

import numpy as np

from osteomri.report._mpl import plt


def ute_fit_figure(x: np.ndarray, curves: dict[str, tuple[np.ndarray, np.ndarray]], *, x_label: str,
                   title: str = "") -> plt.Figure:
    """``curves``: level -> (measured signal, fitted signal) at ``x`` (echo times in ms, or measurement index).

    Top: data (points) and fit (line) per level; bottom: residual (data − fit) in the same units.
    """
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.0, 6.0), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    for i, (level, (data, fit)) in enumerate(curves.items()):
        color = f"C{i % 10}"
        top.plot(x, data, "o", color=color, ms=4, label=f"{level} data")
        top.plot(x, fit, "-", color=color, lw=1.2, label=f"{level} fit")
        bottom.plot(x, data - fit, "o-", color=color, ms=3, lw=0.8)
    top.set_ylabel("Signal (a.u.)")
    top.legend(ncols=2, fontsize=8, frameon=False)
    if title:
        top.set_title(title)
    bottom.axhline(0.0, color="0.5", lw=0.8)
    bottom.set_ylabel("Residual (a.u.)")
    bottom.set_xlabel(x_label)
    fig.tight_layout()
    return fig
