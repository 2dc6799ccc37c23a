"""T1-weighted bone-quality scores: VBQ (Ehresman et al. 2020) and M-score (Bandirali et al. 2015).

VBQ — vertebral bone quality score (Ehresman J, Pennington Z, Schilling A, et al. "Novel MRI-based score for
assessment of bone density in operative spine patients", Spine J 2020;20:556–562): on the mid-sagittal
non-contrast T1-weighted image, the median of the L1–L4 trabecular signal intensities divided by the signal
of the CSF at L3. Each level's SI is its ROI mean (:func:`vbq_score` uses the same ROI strategies as the
measurements, ``paper`` by default); the CSF ROI comes from a canal label (minus the cord) or is placed
automatically in the thecal sac just behind the posterior wall of L3. Higher VBQ = fattier marrow = poorer
bone. Cut-off: 3.05 by default (configurable); published thresholds depend on field strength, sequence and
vendor (1.5 T and 3 T values differ), so the field strength is recorded with the result.

M-score (Bandirali M, Di Leo G, Papini GDE, et al. "A new diagnostic score to detect osteoporosis in
patients undergoing lumbar spine MRI", Eur Radiol 2015;25:2951–2959): the signal-to-noise ratio of the
L1–L4 vertebral bodies on T1w (mean ROI SI / SD of the background noise), expressed like a T-score against a
young-adult reference: ``M = (SNR − reference_mean) / reference_sd``. The reference mean and SD are
scanner- and protocol-specific and must be given.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from osteomri.errors import InputError, UnknownLabelError
from osteomri.io.image import Image
from osteomri.io.orientation import voxel_size_mm
from osteomri.vertebrae.geometry import interior
from osteomri.vertebrae.labels import VertebraLabels, resolve_labels
from osteomri.vertebrae.rois import BodyGeometry, RoiSet, _on_slice, body_geometry, place_rois, select_levels

VBQ_LEVELS = ("L1", "L2", "L3", "L4")
VBQ_DEFAULT_CUTOFF = 3.05
_LABEL_OPTIONS = ("subregion", "lowest_level", "vein", "min_component_mm3")


@dataclass
class VBQResult:
    """VBQ = ``numerator`` (median of the L1–L4 ROI mean SI) / ``csf_signal`` (mean SI of the CSF ROI at L3)."""

    value: float
    numerator: float
    csf_signal: float
    cutoff: float
    field_strength_t: float | None
    classification: str
    level_signals: dict[str, float] = field(default_factory=dict)
    csf_n_voxels: int = 0
    csf_source: str = ""
    roi: str = "paper"

    def __float__(self) -> float:
        return float(self.value)


@dataclass
class MScoreResult:
    """M-score = (``snr`` − ``reference_mean``) / ``reference_sd``; ``snr`` = ``signal`` / ``noise_sd``."""

    value: float
    snr: float
    signal: float
    noise_sd: float
    reference_mean: float
    reference_sd: float
    level_signals: dict[str, float] = field(default_factory=dict)
    noise_source: str = ""

    def __float__(self) -> float:
        return float(self.value)


def _image2d(t1w: Image) -> np.ndarray:
    data = np.asarray(t1w.data)
    if data.ndim > 3:
        data = data[..., 0]
    return np.abs(data) if np.iscomplexobj(data) else data.astype(float)


def csf_roi(labels: VertebraLabels, geometry: BodyGeometry, csf: str = "auto",
            offset_mm: tuple[float, float] = (3.0, 9.0), height_fraction: float = 0.6,
            margin_mm: float = 1.0) -> tuple[np.ndarray, str]:
    """The CSF ROI at one level (L3 for VBQ) on that vertebra's mid-sagittal slice.

    ``csf="label"``: canal label minus cord, within the middle ``height_fraction`` of the body height, inset by
    ``margin_mm`` in-plane. ``"auto"`` (placed): the band ``offset_mm`` (near, far) behind the posterior surface of
    the body, same height, outside every labelled vertebra and the cord. ``"auto"`` uses the label when the preset has a
    canal. Raises :class:`InputError` when the ROI is empty.
    """
    frame = geometry.frame
    shape = labels.shape
    plane = _on_slice(np.ones(shape, bool), frame)
    idx = np.argwhere(plane)
    u, v, _ = frame.coords(idx.astype(float), labels.affine)
    u_mid = 0.5 * (geometry.u_lo + geometry.u_hi)
    band = np.abs(u - u_mid) <= 0.5 * height_fraction * geometry.height_mm
    mode = csf
    if csf == "auto":
        mode = "label" if labels.canal is not None else "placed"
    if mode == "label":
        if labels.canal is None:
            raise InputError(f"no spinal canal label in the {labels.preset} label map: cannot take the CSF ROI "
                             "from a label (use csf='auto' to place it behind L3)")
        canal = labels.canal & ~(labels.cord if labels.cord is not None else False)
        canal = _on_slice(canal, frame)
        lr = frame.lr_axis
        sl = [slice(None)] * 3
        sl[lr] = frame.slice_index
        canal2d = interior(canal[tuple(sl)], np.delete(voxel_size_mm(labels.affine), lr), margin_mm)
        canal_in = np.zeros(shape, bool)
        canal_in[tuple(sl)] = canal2d
        keep = band & canal_in[tuple(idx.T)]
        source = "canal label"
    elif mode == "placed":
        near, far = offset_mm
        if not 0 <= near < far:
            raise InputError(f"CSF offset_mm must be (near, far) with 0 <= near < far, got {offset_mm}")
        free = labels.level_map[tuple(idx.T)] == 0
        if labels.cord is not None:
            free &= ~labels.cord[tuple(idx.T)]
        # the posterior surface lies half a voxel (along the AP direction) behind the last body voxel centre
        sp = voxel_size_mm(labels.affine)
        half_voxel = 0.5 * float(np.abs(np.linalg.inv(labels.affine[:3, :3] / sp) @ frame.ap) @ sp)
        wall = geometry.v_post - half_voxel
        keep = band & free & (v <= wall - near) & (v >= wall - far)
        source = f"placed {near:g}-{far:g} mm behind the posterior wall"
    else:
        raise InputError(f"csf must be 'auto', 'label' or 'placed', got {csf!r}")
    mask = np.zeros(shape, bool)
    mask[tuple(idx[keep].T)] = True
    if not mask.any():
        raise InputError(f"the CSF ROI at {frame.level} is empty ({source}); check the canal label or the field "
                         "of view behind the vertebra")
    return mask, source


def vbq_score(
    t1w: Image,
    labels: Image,
    preset: str = "spineps",
    roi: str = "paper",
    cutoff: float = VBQ_DEFAULT_CUTOFF,
    csf: str = "auto",
    csf_level: str = "L3",
    levels: tuple[str, ...] = VBQ_LEVELS,
    csf_offset_mm: tuple[float, float] = (3.0, 9.0),
    **options,
) -> VBQResult:
    """Vertebral bone quality score (Ehresman et al. 2020) of a T1-weighted image.

    ``roi``: the marrow ROI strategy of each level (``paper`` or ``body``; ROI options in ``options``);
    ``csf``: ``auto`` / ``label`` / ``placed`` (see :func:`csf_roi`); ``cutoff``: VBQ above it is classified
    ``"above cut-off (low bone quality)"``. Missing L1–L4 or L3, or an empty CSF ROI, raise errors.
    """
    label_opts = {k: options.pop(k) for k in _LABEL_OPTIONS if k in options}
    vl = resolve_labels(labels, preset, reference=t1w, **label_opts)
    need = list(dict.fromkeys([*levels, csf_level]))
    missing = [lv for lv in need if lv not in vl.levels]
    if missing:
        raise UnknownLabelError(f"VBQ needs level(s) {', '.join(missing)}, missing from the {vl.preset} label map "
                                f"(present: {', '.join(vl.levels) or 'none'})")
    geometry = body_geometry(vl, need)
    rois = place_rois(vl, roi, list(levels), geometry={k: geometry[k] for k in levels}, **options)
    data = _image2d(t1w)
    signals = _level_means(data, rois)
    numerator = float(np.median(list(signals.values())))
    mask, source = csf_roi(vl, geometry[csf_level], csf=csf, offset_mm=csf_offset_mm)
    csf_signal = float(np.mean(data[mask]))
    if not np.isfinite(csf_signal) or csf_signal <= 0:
        raise InputError(f"CSF signal at {csf_level} is {csf_signal}: not a usable denominator")
    value = numerator / csf_signal
    fs = t1w.meta.get("MagneticFieldStrength")
    cls = "above cut-off (low bone quality)" if value > cutoff else "at or below cut-off"
    return VBQResult(float(value), numerator, csf_signal, float(cutoff), None if fs is None else float(fs), cls,
                     signals, int(mask.sum()), source, roi)


def _level_means(data: np.ndarray, rois: RoiSet) -> dict[str, float]:
    out = {}
    for level in rois.levels:
        vals = data[rois.masks[level]]
        vals = vals[np.isfinite(vals)]
        if vals.size == 0:
            raise InputError(f"the {rois.strategy} ROI of {level} is empty")
        out[level] = float(vals.mean())
    return out


def m_score(
    t1w: Image,
    labels: Image,
    reference_mean: float,
    reference_sd: float,
    preset: str = "spineps",
    roi: str = "paper",
    noise_sd: float | None = None,
    background: Image | np.ndarray | None = None,
    levels: tuple[str, ...] | str = VBQ_LEVELS,
    **options,
) -> MScoreResult:
    """M-score (Bandirali et al. 2015): ``(SNR − reference_mean) / reference_sd``.

    SNR = mean of the L1–L4 ROI mean SI / noise SD; the noise SD is given (``noise_sd``, image units) or the
    SD of the image in a ``background`` mask (air, away from ghosts). The young-adult ``reference_mean`` and
    ``reference_sd`` of the SNR must come from the same scanner and protocol.
    """
    if not np.isfinite(reference_sd) or reference_sd <= 0 or not np.isfinite(reference_mean):
        raise InputError(f"reference_mean must be finite and reference_sd positive, got {reference_mean}, "
                         f"{reference_sd}")
    data = _image2d(t1w)
    if noise_sd is None:
        if background is None:
            raise InputError("M-score needs the noise: give noise_sd or a background (air) mask")
        bg = np.asarray(background.data if isinstance(background, Image) else background) > 0
        bg = bg if bg.ndim == 3 else bg[..., 0]
        if bg.shape != data.shape or bg.sum() < 10:
            raise InputError("the background mask must be on the T1w grid and hold at least 10 voxels")
        noise_sd = float(np.std(data[bg], ddof=1))
        source = f"SD of {int(bg.sum())} background voxels"
    else:
        source = "given"
    if not np.isfinite(noise_sd) or noise_sd <= 0:
        raise InputError(f"noise SD must be positive, got {noise_sd}")
    label_opts = {k: options.pop(k) for k in _LABEL_OPTIONS if k in options}
    vl = resolve_labels(labels, preset, reference=t1w, **label_opts)
    lv = select_levels(vl, list(levels) if not isinstance(levels, str) else levels)
    signals = _level_means(data, place_rois(vl, roi, lv, **options))
    signal = float(np.mean(list(signals.values())))
    snr = signal / noise_sd
    return MScoreResult(float((snr - reference_mean) / reference_sd), float(snr), signal, float(noise_sd),
                        float(reference_mean), float(reference_sd), signals, source)
