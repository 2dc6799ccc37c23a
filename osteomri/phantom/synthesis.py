"""Synthesise MR images from the digital spine phantom with the models' own signal equations.

- :func:`synthesize_megre`: multi-echo complex gradient echo (chemical-shift encoded) with a multi-peak fat
  spectrum, R2* decay, a smooth but strong B0 field with a local gradient, and complex Gaussian noise.
- :func:`synthesize_t1w`: a T1-weighted magnitude image (Rician noise).
- :func:`synthesize_dwi`: fat-suppressed multi-b DWI with the IVIM signal equation (Rician noise).

Noise convention: ``snr`` means the complex noise SD is ``1/snr`` of the signal of a voxel of proton density
1 at TE = 0 (MEGRE), of the L3 marrow signal (T1w), or of a voxel with S0 = 1 (DWI).
"""

from __future__ import annotations

import numpy as np

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.models.ivim.signal import ivim_signal
from osteomri.models.waterfat.signal import multiecho_signal, validate_echo_times
from osteomri.models.waterfat.spectrum import FatSpectrum
from osteomri.phantom.spine import TISSUE_PARAMETERS, SpinePhantom

SEED_PROTOCOL_TE_S = tuple(1.3e-3 + 0.8e-3 * n for n in range(6))  # GE IDEAL-IQ, 3 T, seed study


def smooth_fieldmap_hz(
    phantom: SpinePhantom,
    range_hz: float = 400.0,
    local_gradient_hz: float = 250.0,
    seed: int | None = 0,
) -> np.ndarray:
    """A smooth B0 off-resonance map (Hz) spanning about ``±range_hz`` over the field of view, plus a
    Gaussian bump of ``local_gradient_hz`` (width ~12 mm) anterior to the lumbar bodies (bowel gas)."""
    rng = np.random.default_rng(seed)
    shape = phantom.shape
    vox = np.sqrt((phantom.affine[:3, :3] ** 2).sum(axis=0))
    coords = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    x, y, z = coords
    c = rng.uniform(0.6, 1.0, size=4) * rng.choice([-1, 1], size=4)
    field = c[0] * z + 0.5 * c[1] * y + 0.3 * c[2] * y * z + 0.4 * c[3] * (z**2 - 1 / 3)
    field = field / np.abs(field).max() * range_hz
    if local_gradient_hz:
        ym = (np.arange(shape[1]) - (shape[1] - 1) / 2) * vox[1]
        zm = (np.arange(shape[2]) - (shape[2] - 1) / 2) * vox[2]
        xm = (np.arange(shape[0]) - (shape[0] - 1) / 2) * vox[0]
        r2 = (xm[:, None, None] ** 2 + (ym[None, :, None] - 55.0) ** 2 + (zm[None, None, :] - 20.0) ** 2)
        field = field + local_gradient_hz * np.exp(-r2 / (2 * 12.0**2))
    return field


def synthesize_megre(
    phantom: SpinePhantom,
    te_s: tuple[float, ...] | np.ndarray = SEED_PROTOCOL_TE_S,
    field_strength_t: float = 3.0,
    snr: float = 50.0,
    spectrum: str | FatSpectrum = "ren_marrow",
    fieldmap_hz: np.ndarray | None = None,
    field_range_hz: float = 400.0,
    seed: int | None = 0,
    repetition_time_s: float = 7.4e-3,
    flip_angle_deg: float = 4.0,
) -> tuple[Image, np.ndarray]:
    """Complex multi-echo GRE of the phantom. Returns ``(image, fieldmap_hz)``.

    R2* scales linearly with field strength from the 3 T tissue values (R2* ∝ B0, an approximation).
    The image meta follows the BIDS names (``EchoTime`` in s, ``MagneticFieldStrength`` in T, ...).
    """
    te = validate_echo_times(te_s, min_echoes=2)
    if not np.isfinite(snr) or snr <= 0:
        raise InputError(f"snr must be positive, got {snr}")
    rng = np.random.default_rng(seed)
    if fieldmap_hz is None:
        fieldmap_hz = smooth_fieldmap_hz(phantom, field_range_hz, seed=seed)
    elif np.shape(fieldmap_hz) != phantom.shape:
        raise InputError(f"fieldmap shape {np.shape(fieldmap_hz)} != phantom shape {phantom.shape}")
    pd_ = phantom.maps["pd"].data
    ff = phantom.maps["pdff_percent"].data / 100.0
    r2 = phantom.maps["r2star_hz"].data * (field_strength_t / 3.0)
    # a smooth initial phase (coil/receiver phase), the same for water and fat
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in phantom.shape], indexing="ij")
    phase = 0.8 * y + 0.5 * z + 0.3
    signal = multiecho_signal(pd_ * (1 - ff), pd_ * ff, r2, fieldmap_hz, te, field_strength_t, spectrum, phase)
    noise = rng.normal(scale=1.0 / snr, size=signal.shape) + 1j * rng.normal(scale=1.0 / snr, size=signal.shape)
    meta = {
        "EchoTime": te.tolist(),
        "MagneticFieldStrength": float(field_strength_t),
        "RepetitionTime": float(repetition_time_s),
        "FlipAngle": float(flip_angle_deg),
        "PrecessionIsClockwise": True,
        "Modality": "MR",
        "SeriesDescription": "phantom MEGRE",
        "PhantomSNR": float(snr),
        "PhantomFatSpectrum": spectrum if isinstance(spectrum, str) else spectrum.name,
    }
    return Image((signal + noise).astype(np.complex64), phantom.affine.copy(), meta), fieldmap_hz


def _rician(signal: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    return np.abs(signal + rng.normal(scale=sd, size=signal.shape) + 1j * rng.normal(scale=sd, size=signal.shape))


def synthesize_t1w(phantom: SpinePhantom, snr: float = 40.0, seed: int | None = 0,
                   field_strength_t: float = 3.0) -> Image:
    """T1-weighted magnitude image: the phantom's ``t1w_signal`` map plus Rician noise.

    Noise SD = (L3 marrow signal) / ``snr``.
    """
    if not np.isfinite(snr) or snr <= 0:
        raise InputError(f"snr must be positive, got {snr}")
    rng = np.random.default_rng(seed)
    t1w = phantom.maps["t1w_signal"].data
    sd = float(phantom.truth.set_index("level").loc["L3", "t1w_signal"]) / snr
    meta = {"MagneticFieldStrength": float(field_strength_t), "SeriesDescription": "phantom T1w TSE",
            "PhantomSNR": float(snr), "PhantomCSFSignal": float(TISSUE_PARAMETERS.loc["csf", "t1w_signal"])}
    return Image(_rician(t1w, sd, rng).astype(np.float32), phantom.affine.copy(), meta)


def synthesize_dwi(
    phantom: SpinePhantom,
    bvalues_s_mm2: tuple[float, ...] | np.ndarray = (0, 10, 20, 50, 100, 200, 400, 600, 800),
    snr: float = 100.0,
    seed: int | None = 0,
) -> Image:
    """Fat-suppressed multi-b DWI: S0 = PD·(1 − PDFF) (water only), IVIM decay, Rician noise SD = 1/snr."""
    b = np.asarray(bvalues_s_mm2, dtype=float)
    if b.ndim != 1 or b.size < 4 or np.any(b < 0) or not np.all(np.isfinite(b)):
        raise InputError(f"need at least 4 finite b-values >= 0 s/mm^2, got {b.tolist()}")
    if not np.isfinite(snr) or snr <= 0:
        raise InputError(f"snr must be positive, got {snr}")
    rng = np.random.default_rng(seed)
    m = phantom.maps
    s0 = m["pd"].data * (1 - m["pdff_percent"].data / 100.0)
    signal = ivim_signal(b, s0, m["f"].data, m["d_mm2_s"].data, m["dstar_mm2_s"].data)
    meta = {"bvalues": b.tolist(), "SeriesDescription": "phantom DWI (fat suppressed)", "PhantomSNR": float(snr)}
    return Image(_rician(signal, 1.0 / snr, rng).astype(np.float32), phantom.affine.copy(), meta)
