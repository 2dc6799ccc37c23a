"""MRS fit figure: each echo's phased spectrum with the fit, and the first echo's components and residual
(what LCModel/jMRUI users expect to see). ppm runs right to left."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np
from matplotlib import colormaps

from osteomri.models.mrs.basis import FAT_PEAK_NAMES, ppm_axis, spectrum
from osteomri.report._mpl import plt

if TYPE_CHECKING:
    from osteomri.models.mrs.model import MrsFit

PPM_RANGE = (0.0, 6.5)


def mrs_fit_png(fit: MrsFit, fids: np.ndarray, index: tuple[int, ...] = (), title: str = "") -> bytes:
    """PNG bytes of :func:`mrs_fit_figure`."""
    fig = mrs_fit_figure(fit, fids, index, title)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def mrs_fit_figure(fit: MrsFit, fids: np.ndarray, index: tuple[int, ...] = (), title: str = "") -> plt.Figure:
    """Figure of the fit of spectrum ``index`` of the grid (``()`` for a single voxel)."""
    model = fit.model
    y = np.asarray(fids)[index]                       # (n_te, N)
    pred = fit.predict()[index]
    comps = {k: v[index] for k, v in fit.components().items()}
    phase = float(fit.theta[index][4])
    derot = np.exp(-1j * phase)
    if fit.qc.get("conjugated"):
        derot = np.conj(derot)
    n = y.shape[-1]
    ax_ppm = ppm_axis(n, model.dwell_time_s, model.spectrometer_mhz, model.reference_ppm)
    if fit.qc.get("conjugated"):
        ax_ppm = ax_ppm[::-1]
    sel = (ax_ppm >= PPM_RANGE[0]) & (ax_ppm <= PPM_RANGE[1])

    def real_spec(x):
        return np.real(spectrum(x * derot))[..., sel]

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12.8, 5.6))
    fig.set_dpi(100)
    data_s, fit_s = real_spec(y), real_spec(pred)
    scale = np.nanmax(np.abs(data_s[0])) or 1.0
    step = 0.6
    for e in range(y.shape[0]):
        off = -e * step
        a1.plot(ax_ppm[sel], data_s[e] / scale + off, color="0.35", lw=0.8, label="data" if e == 0 else None)
        a1.plot(ax_ppm[sel], fit_s[e] / scale + off, color="crimson", lw=1.0, label="fit" if e == 0 else None)
        a1.text(PPM_RANGE[1] - 0.05, off + 0.08, f"TE {1000 * model.te_s[e]:.0f} ms", fontsize=8)
    a1.set_title("each echo: data and fit (real part, phased)")
    a2.plot(ax_ppm[sel], data_s[0] / scale, color="0.35", lw=0.8, label="data")
    a2.plot(ax_ppm[sel], fit_s[0] / scale, color="crimson", lw=1.0, label="fit")
    a2.plot(ax_ppm[sel], real_spec(comps["water"][0]) / scale, color="tab:blue", lw=0.9, label="water")
    cmap = colormaps["tab10"]
    for k, name in enumerate(FAT_PEAK_NAMES):
        key = f"fat_{k}"
        if key in comps:
            a2.plot(ax_ppm[sel], real_spec(comps[key][0]) / scale, lw=0.7, color=cmap((k + 1) % 10),
                    label=f"fat {name} ppm")
    resid = (data_s[0] - fit_s[0]) / scale
    a2.plot(ax_ppm[sel], resid - 0.35, color="0.2", lw=0.6, label="residual (offset)")
    a2.set_title("first echo: components and residual")
    vals = {k: float(np.asarray(v)[index]) for k, v in fit.values.items()}
    sds = {k: float(np.asarray(v)[index]) for k, v in fit.sd.items()}
    text = (f"PDFF {vals['mrs_pdff_percent']:.3g} ± {sds['mrs_pdff_percent_sd']:.2g} %   "
            f"water T2 {vals['water_t2_ms']:.3g} ± {sds['water_t2_ms_sd']:.2g} ms   "
            f"fat T2 {vals['fat_t2_ms']:.3g} ± {sds['fat_t2_ms_sd']:.2g} ms   ndb {vals['ndb']:.3g} ± "
            f"{sds['ndb_sd']:.2g}   SNR {vals['mrs_snr']:.3g}")
    for a in (a1, a2):
        a.set_xlim(PPM_RANGE[1], PPM_RANGE[0])
        a.set_xlabel("chemical shift (ppm)")
        a.set_yticks([])
    a1.legend(loc="upper left", fontsize=8)
    a2.legend(loc="upper left", fontsize=7, ncol=2)
    fig.suptitle((title + "\n" if title else "") + text, fontsize=10)
    fig.tight_layout()
    return fig
