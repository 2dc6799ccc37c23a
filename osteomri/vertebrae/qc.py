"""QC figures: the mid-sagittal slice of a map with each level's ROI outlined and labelled.

:func:`qc_figure` ``(map_image, rois, ...) -> matplotlib Figure`` draws the sagittal slice (anterior left,
superior up, millimetre axes from the affine) through the ROIs, outlines the part of each level's ROI on
that slice and writes the level name beside it. :func:`save_qc_figures` writes one PNG per map.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from osteomri.errors import InputError  # noqa: E402
from osteomri.io.image import Image  # noqa: E402
from osteomri.io.provenance import atomic_path  # noqa: E402
from osteomri.vertebrae.geometry import lr_array_axis, slice_spacing_mm  # noqa: E402
from osteomri.vertebrae.rois import RoiSet  # noqa: E402

DISPLAY = {"pdff_percent": (0.0, 100.0, "magma"), "r2star_hz": (0.0, 300.0, "viridis"),
           "t1w_signal": (None, None, "gray")}


def _sagittal(array: np.ndarray, affine: np.ndarray, index: int) -> tuple[np.ndarray, tuple[float, ...]]:
    """Slice ``index`` along the LR axis, rows superior→inferior, columns anterior→posterior; extent (mm)."""
    rot = np.abs(affine[:3, :3])
    lr = lr_array_axis(affine)
    ap, si = int(np.argmax(rot[1])), int(np.argmax(rot[2]))
    sl = np.take(array, index, axis=lr)
    rest = [a for a in range(3) if a != lr]
    sl = sl if rest.index(si) == 0 else sl.T
    if affine[2, si] > 0:
        sl = sl[::-1]
    if affine[1, ap] > 0:
        sl = sl[:, ::-1]
    sp = slice_spacing_mm(affine)
    return sl, (0.0, sl.shape[1] * sp[ap], 0.0, sl.shape[0] * sp[si])


def qc_figure(map_image: Image, rois: RoiSet, map_name: str = "", title: str | None = None,
              index: int | None = None, vmin: float | None = None, vmax: float | None = None,
              cmap: str | None = None) -> plt.Figure:
    """Mid-sagittal slice of ``map_image`` with each level's ROI outlined and labelled.

    ``index``: sagittal slice along the LR array axis (default: the median of the levels' mid-sagittal
    slices). Display range and colour map default by ``map_name`` (PDFF 0–100 %, R2* 0–300 1/s, ...).
    """
    data = np.asarray(map_image.data)
    data = data if data.ndim == 3 else data[..., 0]
    data = np.abs(data) if np.iscomplexobj(data) else data.astype(float)
    if data.shape != next(iter(rois.masks.values())).shape:
        raise InputError(f"map shape {data.shape} differs from the ROI grid")
    index = rois.sagittal_index() if index is None else int(index)
    lo, hi, cm = DISPLAY.get(map_name, (None, None, "gray"))
    img, extent = _sagittal(data, map_image.affine, index)
    if vmin is None and lo is None:
        finite = img[np.isfinite(img)]
        lo, hi = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
    fig, ax = plt.subplots(figsize=(4.2, 5.2))
    shown = ax.imshow(img, cmap=cmap or cm, vmin=lo if vmin is None else vmin, vmax=hi if vmax is None else vmax,
                      extent=(extent[0], extent[1], extent[2], extent[3]), origin="upper", interpolation="nearest")
    fig.colorbar(shown, ax=ax, fraction=0.046, pad=0.04, label=map_name or None)
    colours = plt.cm.tab10(np.linspace(0, 1, 10))
    h, w = img.shape
    xs = (np.arange(w) + 0.5) * (extent[1] / w)
    ys = extent[3] - (np.arange(h) + 0.5) * (extent[3] / h)
    for i, level in enumerate(rois.levels):
        m, _ = _sagittal(rois.masks[level].astype(float), map_image.affine, index)
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
