"""Figures without pyplot's global state: ``plt.subplots`` / ``plt.close`` / ``plt.cm`` look-alikes built on
:class:`matplotlib.figure.Figure` (the object-oriented API).

Importing osteomri never selects a matplotlib backend (no ``matplotlib.use`` at import time), and figures made
here are never registered with pyplot, so they work in any thread and in headless workers; ``Figure.savefig``
renders with the Agg canvas.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from matplotlib import cm
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_FIGURE_KWARGS = ("dpi", "layout", "constrained_layout", "tight_layout", "facecolor")


def subplots(nrows: int = 1, ncols: int = 1, *, figsize: tuple[float, float] | None = None,
             **kwargs: Any) -> tuple[Figure, Any]:
    """``pyplot.subplots`` without pyplot: a new :class:`Figure` (figure keywords such as ``layout``, ``dpi``)
    and its axes (the other keywords)."""
    fig = Figure(figsize=figsize, **{k: kwargs.pop(k) for k in _FIGURE_KWARGS if k in kwargs})
    FigureCanvasAgg(fig)  # an Agg canvas of its own (renderer for layout, savefig); no global backend chosen
    return fig, fig.subplots(nrows, ncols, **kwargs)


def close(fig: Figure) -> None:
    """Nothing to release: the figure is not registered with pyplot (kept for call-site symmetry)."""


plt = SimpleNamespace(subplots=subplots, close=close, cm=cm, Figure=Figure, Axes=Axes)
