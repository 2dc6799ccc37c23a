"""Figures shared by the reports: mid-sagittal views of maps, oriented from the affine."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from osteomri.io.image import Image  # noqa: E402

# display range and colour map per map key
MAP_DISPLAY: dict[str, tuple[float | None, float | None, str]] = {
    "pdff_percent": (0.0, 100.0, "magma"),
    "r2star_hz": (0.0, 300.0, "viridis"),
    "fieldmap_hz": (None, None, "coolwarm"),
    "t1w_signal": (None, None, "gray"),
    "f": (0.0, 0.5, "inferno"),
    "d_mm2_s": (0.0, 3e-3, "cividis"),
    "dstar_mm2_s": (0.0, 0.1, "cividis"),
}


def axis_codes(affine: np.ndarray) -> tuple[int, int, int]:
    """For world axes (R, A, S), the array axis most aligned with each."""
    rot = np.abs(np.asarray(affine)[:3, :3])
    lr, ap, si = int(np.argmax(rot[0])), int(np.argmax(rot[1])), int(np.argmax(rot[2]))
    if len({lr, ap, si}) != 3:
        raise ValueError("affine is too oblique to pick a sagittal plane")
    return lr, ap, si


def sagittal_slice(image: Image, index: int | None = None) -> tuple[np.ndarray, int]:
    """A 2-D sagittal slice (rows superior→inferior, columns anterior→posterior) and the slice index used.

    ``index`` is along the left–right array axis; default the middle slice, ``(n - 1) // 2``.
    """
    data = np.asarray(image.data)
    if data.ndim > 3:
        data = data[..., 0]
    lr, ap, si = axis_codes(image.affine)
    index = (data.shape[lr] - 1) // 2 if index is None else index
    sl = np.take(data, index, axis=lr)
    rest = [a for a in range(3) if a != lr]
    sl = sl if rest.index(si) == 0 else sl.T  # rows = SI axis
    if image.affine[2, si] > 0:
        sl = sl[::-1]  # superior on top
    if image.affine[1, ap] > 0:
        sl = sl[:, ::-1]  # anterior on the left
    return np.abs(sl) if np.iscomplexobj(sl) else sl, index


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
        sl, _ = sagittal_slice(maps[key], index)
        vmin, vmax, cmap = MAP_DISPLAY.get(key, (None, None, "gray"))
        if vmin is None and np.isfinite(sl).any():
            vmin, vmax = np.nanpercentile(sl, [1, 99])
        vox = np.sqrt((maps[key].affine[:3, :3] ** 2).sum(axis=0))
        _, ap, si = axis_codes(maps[key].affine)
        im = ax.imshow(sl, cmap=cmap, vmin=vmin, vmax=vmax, aspect=vox[si] / vox[ap], interpolation="nearest")
        ax.set_title(key)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig
