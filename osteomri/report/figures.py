"""Figures shared by the reports and the CLI: mid-sagittal map panels and ROI overlays (QC figures).

Orientation comes from :func:`osteomri.io.orientation.sagittal_view` (superior up, anterior left, mm axes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.io.orientation import anatomical_axes, sagittal_view, voxel_size_mm
from osteomri.io.provenance import atomic_path
from osteomri.report._mpl import plt
from osteomri.report.format import label

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
        ax.set_title(label(key))
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


#: margins (mm) around the ROIs' bounding box in the QC crop: anterior/posterior, superior/inferior
QC_MARGIN_MM = (35.0, 20.0)
#: height (inches) of one QC panel's image at its tallest, and the widest a panel's image may be
QC_PANEL_HEIGHT_IN, QC_PANEL_MAX_WIDTH_IN = 7.0, 9.0


@dataclass(frozen=True)
class QcCrop:
    """The part of a sagittal slice a QC figure shows: array rows/columns and their extent in mm."""

    rows: slice
    cols: slice
    extent: tuple[float, float, float, float]  # (left, right, bottom, top) in the slice's mm coordinates

    @property
    def size_mm(self) -> tuple[float, float]:
        return self.extent[1] - self.extent[0], self.extent[3] - self.extent[2]


def qc_crop(rois: RoiSet, affine: np.ndarray, index: int, shape: tuple[int, int],
            margin_mm: tuple[float, float] = QC_MARGIN_MM) -> QcCrop:
    """The spine's box on sagittal slice ``index``: the bounding box of the levels' ROIs (on that slice, or
    projected across slices where none crosses it) plus ``margin_mm`` (AP, SI), within the slice."""
    lr, ap, si = anatomical_axes(affine)
    size = voxel_size_mm(affine)
    dx, dy = size[ap], size[si]
    union = np.zeros(shape, dtype=bool)
    for mask in rois.masks.values():
        union |= sagittal_view(mask.astype(float), affine, index)[0] > 0.5
    if not union.any():  # no ROI on this slice: their projection across the LR axis
        for mask in rois.masks.values():
            union |= sagittal_view(np.repeat(mask.any(axis=lr, keepdims=True), mask.shape[lr], axis=lr)
                                   .astype(float), affine, index)[0] > 0.5
    h, w = shape
    if not union.any():
        return QcCrop(slice(0, h), slice(0, w), (0.0, w * dx, 0.0, h * dy))
    rr, cc = np.nonzero(union)
    r0 = max(0, int(rr.min() - np.ceil(margin_mm[1] / dy)))
    r1 = min(h, int(rr.max() + 1 + np.ceil(margin_mm[1] / dy)))
    c0 = max(0, int(cc.min() - np.ceil(margin_mm[0] / dx)))
    c1 = min(w, int(cc.max() + 1 + np.ceil(margin_mm[0] / dx)))
    return QcCrop(slice(r0, r1), slice(c0, c1), (c0 * dx, c1 * dx, (h - r1) * dy, (h - r0) * dy))


def _panel_inches(crop: QcCrop) -> tuple[float, float]:
    """Image size (inches) of one panel: the crop's mm aspect, as tall as allowed, no wider than allowed."""
    width_mm, height_mm = crop.size_mm
    height = QC_PANEL_HEIGHT_IN
    width = height * width_mm / height_mm
    if width > QC_PANEL_MAX_WIDTH_IN:
        width, height = QC_PANEL_MAX_WIDTH_IN, QC_PANEL_MAX_WIDTH_IN * height_mm / width_mm
    return width, height


def qc_figure(map_image: Image, rois: RoiSet, map_name: str = "", title: str | None = None,
              index: int | None = None, vmin: float | None = None, vmax: float | None = None,
              cmap: str | None = None, ax: plt.Axes | None = None) -> plt.Figure:
    """The spine on the mid-sagittal slice of ``map_image``, each level's ROI outlined, labelled beside it.

    The view is cropped to the ROIs' bounding box plus :data:`QC_MARGIN_MM` (:func:`qc_crop`), drawn with
    the voxel size's true aspect (mm axes) and sized from it; level labels sit in the margin on the anterior
    side with a leader line to their ROI, never on the image. ``index``: sagittal slice along the LR array
    axis (default: the median of the levels' mid-sagittal slices). Display range and colour map default by
    ``map_name`` (:data:`MAP_DISPLAY`). ``ax``: draw into this axes (of a larger figure).
    """
    data = np.asarray(map_image.data)
    data = data if data.ndim == 3 else data[..., 0]
    data = np.abs(data) if np.iscomplexobj(data) else data.astype(float)
    if data.shape != next(iter(rois.masks.values())).shape:
        raise InputError(f"map shape {data.shape} differs from the ROI grid")
    index = rois.sagittal_index() if index is None else int(index)
    img, _, extent = sagittal_view(data, map_image.affine, index)
    crop = qc_crop(rois, map_image.affine, index, img.shape)
    view = img[crop.rows, crop.cols]
    lo, hi, cm = _display_range(map_name, view)
    if ax is None:
        width, height = _panel_inches(crop)
        fig, ax = plt.subplots(figsize=(width + 1.6, height + 1.4), layout="constrained")
    else:
        fig = ax.figure
    shown = ax.imshow(view, cmap=cmap or cm, vmin=lo if vmin is None else vmin, vmax=hi if vmax is None else vmax,
                      extent=crop.extent, origin="upper", interpolation="nearest")
    fig.colorbar(shown, ax=ax, orientation="horizontal", fraction=0.04, pad=0.02, aspect=30,
                 label=label(map_name) if map_name else None)
    colours = plt.cm.tab10(np.linspace(0, 1, 10))
    h, w = img.shape
    xs = (np.arange(w) + 0.5) * (extent[1] / w)
    ys = extent[3] - (np.arange(h) + 0.5) * (extent[3] / h)
    placed: list[float] = []
    min_gap = 0.035 * (crop.extent[3] - crop.extent[2])
    for i, level in enumerate(rois.levels):
        m, _, _ = sagittal_view(rois.masks[level].astype(float), map_image.affine, index)
        m = m > 0.5
        if not m.any():
            continue
        colour = colours[i % 10]
        ax.contour(xs[crop.cols], ys[crop.rows], m[crop.rows, crop.cols], levels=[0.5], colors=[colour],
                   linewidths=1.4, origin="upper")
        rr, cc = np.nonzero(m)
        y = float(ys[rr].mean())
        y_text = y if all(abs(y - p) >= min_gap for p in placed) else min(placed, key=lambda p: abs(y - p)) - min_gap
        placed.append(y_text)
        anterior_edge = float(xs[cc].min()) - 0.5 * extent[1] / w
        ax.annotate(level, xy=(anterior_edge, y), xycoords="data", xytext=(-0.03, y_text),
                    textcoords=ax.get_yaxis_transform(), ha="right", va="center", color=colour, fontsize=10,
                    fontweight="bold", annotation_clip=False,
                    arrowprops={"arrowstyle": "-", "color": colour, "lw": 0.8, "shrinkA": 2, "shrinkB": 0})
    ax.set_xlim(crop.extent[0], crop.extent[1])
    ax.set_ylim(crop.extent[2], crop.extent[3])
    ax.yaxis.tick_right()
    ax.yaxis.set_label_position("right")
    ax.set_xlabel("anterior → posterior (mm)")
    ax.set_ylabel("inferior → superior (mm)")
    ax.set_title(title or f"{label(map_name) if map_name else 'map'}: {rois.strategy} ROIs, sagittal slice {index}",
                 fontsize=10)
    return fig


def qc_panels(maps: dict[str, Image], rois: dict[str, RoiSet], max_columns: int = 2) -> plt.Figure:
    """:func:`qc_figure` panels, one per map (each with the ROIs measured on its grid), ``max_columns`` a row
    so that each panel stays large in a report page."""
    names = [n for n in maps if n in rois]
    if not names:
        raise InputError("no map with ROIs to show")
    first = maps[names[0]]
    index = rois[names[0]].sagittal_index()
    shape = sagittal_view(np.zeros(np.shape(first.data)[:3]), first.affine, index)[0].shape
    width, height = _panel_inches(qc_crop(rois[names[0]], first.affine, index, shape))
    cols = min(len(names), max_columns)
    rows = int(np.ceil(len(names) / cols))
    width = min(width, 14.0 / cols)
    fig, axes = plt.subplots(rows, cols, figsize=((width + 1.4) * cols, (height + 1.4) * rows), squeeze=False,
                             layout="constrained")
    for ax in axes.flat[len(names):]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names, strict=False):
        qc_figure(maps[name], rois[name], map_name=name, ax=ax, title=f"{label(name)}: {rois[name].strategy} ROIs")
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
