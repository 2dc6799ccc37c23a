"""QC figure of automatic vertebra labels: body outlines and level names on the mid-sagittal slice."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from osteomri.io.image import Image  # noqa: E402
from osteomri.io.orientation import sagittal_view  # noqa: E402
from osteomri.vertebrae.labels import CODE_LEVELS  # noqa: E402


def autolabel_figure(image: Image, labels: Image, title: str = "automatic vertebra labels") -> plt.Figure:
    """Mid-sagittal slice of ``image`` (superior up, anterior left), each labelled body outlined and its level
    written beside it (anterior side)."""
    data = np.asarray(image.data)
    while data.ndim > 3:
        data = data[..., 0]
    sl, index, extent = sagittal_view(np.abs(data) if np.iscomplexobj(data) else data, image.affine)
    lab, _, _ = sagittal_view(np.asarray(labels.data), labels.affine, index)
    h, w = lab.shape
    aspect = (extent[3] / h) / (extent[1] / w)  # mm per row / mm per column
    fig, ax = plt.subplots(figsize=(5, 6), dpi=110)
    finite = sl[np.isfinite(sl)]
    vmax = np.percentile(finite, 99.5) if finite.size else 1.0
    ax.imshow(np.nan_to_num(sl), cmap="gray", aspect=aspect, vmin=0, vmax=vmax)
    for code in np.unique(lab[lab > 0]):
        m = lab == code
        ax.contour(m, levels=[0.5], colors="yellow", linewidths=0.8)
        rows, cols = np.nonzero(m)
        ax.text(max(cols.min() - 4, 1), rows.mean(), CODE_LEVELS.get(int(code), str(int(code))), color="yellow",
                fontsize=9, ha="right", va="center", fontweight="bold",
                bbox={"facecolor": "black", "alpha": 0.6, "pad": 1.0, "edgecolor": "none"})
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    return fig
