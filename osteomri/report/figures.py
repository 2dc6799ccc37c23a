"""Figures shared by the reports and the CLI: mid-sagittal map panels and ROI overlays (QC figures).

Orientation comes from :func:`osteomri.io.orientation.sagittal_view` (superior up, anterior left, mm axes).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.io.orientation import sagittal_view
from osteomri.io.provenance import atomic_path
from osteomri.report._mpl import plt

if TYPE_CHECKING:
    from osteomri.vertebrae.rois import RoiSet

# display range and colour map per map key (None: 1st–99th percentile)
MAP_DISPLAY: dict[str, tuple[float | None, float | None, str]] = {
    "pdff_percent": (0.0, 100.0, "magma"),
    "r2star_hz": (0.0, 300.0, "viridis"),
    "fieldmap_hz": (None, None, "coolwarm"),
    "t1w_signal": (None, None, "gray"),
    "f": (0.0, 0.5, "inferno"),
    "d_mm2_s": (0.0, 3e-3, "cividis"),
    "dstar_mm2_s": (0.0, 0.1, "cividis"),
}


def _display_range(key: str, sl: np.ndarray) -> tuple[float, float, str]:
    vmin, vmax, cmap = MAP_DISPLAY.get(key, (None, None, "gray"))
    if vmin is None:
        finite = sl[np.isfinite(sl)]
        vmin, vmax = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
    return float(vmin), float(vmax), cmap


def maps_figure(maps: dict[str, Image], index: int | None = None) -> plt.Figure:
    """One panel per map: the mid-sagittal slice with a colour bar."""
    keys = [k for k in MAP_DISPLAY if k in maps] + [k for k in maps if k not in MAP_DISPLAY]
    n = max(len(keys), 1)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 4.2 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, key in zip(axes.flat, keys, strict=False):
        sl, _, extent = sagittal_view(maps[key].data, maps[key].affine, index)
        vmin, vmax, cmap = _display_range(key, sl)
        im = ax.imshow(sl, cmap=cmap, vmin=vmin, vmax=vmax, extent=extent, interpolation="nearest")
        ax.set_title(key)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def qc_figure(map_image: Image, rois: RoiSet, map_name: str = "", title: str | None = None,
              index: int | None = None, vmin: float | None = None, vmax: float | None = None,
              cmap: str | None = None, ax: plt.Axes | None = None) -> plt.Figure:
    """Mid-sagittal slice of ``map_image`` with each level's ROI outlined and labelled.

    ``index``: sagittal slice along the LR array axis (default: the median of the levels' mid-sagittal
    slices). Display range and colour map default by ``map_name`` (:data:`MAP_DISPLAY`). ``ax``: draw into
    this axes (of a larger figure) instead of a new figure.
    """
    data = np.asarray(map_image.data)
    data = data if data.ndim == 3 else data[..., 0]
    data = np.abs(data) if np.iscomplexobj(data) else data.astype(float)
    if data.shape != next(iter(rois.masks.values())).shape:
        raise InputError(f"map shape {data.shape} differs from the ROI grid")
    index = rois.sagittal_index() if index is None else int(index)
    img, _, extent = sagittal_view(data, map_image.affine, index)
    lo, hi, cm = _display_range(map_name, img)
    fig, ax = plt.subplots(figsize=(4.2, 5.2)) if ax is None else (ax.figure, ax)
    shown = ax.imshow(img, cmap=cmap or cm, vmin=lo if vmin is None else vmin, vmax=hi if vmax is None else vmax,
                      extent=extent, origin="upper", interpolation="nearest")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label=map_name or None)
    colours = plt.cm.tab10(np.linspace(0, 1, 10))
    h, w = img.shape
    xs = (np.arange(w) + 0.5) * (extent[1] / w)
    ys = extent[3] - (np.arange(h) + 0.5) * (extent[3] / h)
    for i, level in enumerate(rois.levels):
        m, _, _ = sagittal_view(rois.masks[level].astype(float), map_image.affine, index)
        if not m.any():
            continue
        colour = colours[i % 10]
        ax.contour(xs, ys, m, levels=[0.5], colors=[colour], linewidths=1.2, origin="upper")
        rr, cc = np.nonzero(m)
        ax.text(xs[cc].max() + 2.0, ys[rr].mean(), level, color=colour, fontsize=8, va="center", ha="left",
                fontweight="bold")
    ax.set_xlabel("anterior → posterior (mm)")
    ax.set_ylabel("inferior → superior (mm)")
    ax.set_title(title or f"{map_name or 'map'}: {rois.strategy} ROIs, sagittal slice {index}", fontsize=9)
    fig.tight_layout()
    return fig


def qc_panels(maps: dict[str, Image], rois: dict[str, RoiSet]) -> plt.Figure:
    """One row of :func:`qc_figure` panels, one per map (each with the ROIs measured on its grid)."""
    names = [n for n in maps if n in rois]
    if not names:
        raise InputError("no map with ROIs to show")
    fig, axes = plt.subplots(1, len(names), figsize=(4.2 * len(names), 5.2), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        qc_figure(maps[name], rois[name], map_name=name, ax=ax, title=f"{name}: {rois[name].strategy} ROIs")
    return fig


def save_qc_figures(maps: dict[str, Image], rois: RoiSet, folder: str | Path, stem: str = "qc") -> dict[str, Path]:
    """One PNG per map (``<stem>_<map>_qc.png``) written atomically; returns map name → path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, image in maps.items():
        fig = qc_figure(image, rois, map_name=name)
        target = folder / f"{stem}_{name}_qc.png"
        with atomic_path(target, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110)
        plt.close(fig)
        out[name] = target
    return out
