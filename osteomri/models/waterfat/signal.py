"""Forward signal equation of multi-echo gradient echo with water, multi-peak fat, R2* and B0.

    S(t_n) = [W + F * sum_p a_p exp(i 2 pi f_p t_n)] * exp(i 2 pi psi t_n) * exp(-R2* t_n)

(Yu et al., MRM 2008;60:1122; Hernando et al., MRM 2010;63:79), with ``f_p`` the fat peak frequencies
relative to water (negative for CH2 in this "precession clockwise" convention of the ISMRM toolbox),
``psi`` the B0 off-resonance (Hz), and ``W``, ``F`` complex amplitudes sharing one phase at TE = 0.
Data acquired with the opposite convention (``PrecessionIsClockwise = -1`` in the toolbox format) is
conjugated before use.
"""

from __future__ import annotations

import numpy as np

from osteomri.errors import InputError
from osteomri.models.waterfat.spectrum import FatSpectrum, get_fat_spectrum


def validate_echo_times(te_s: np.ndarray | list[float], min_echoes: int = 2) -> np.ndarray:
    """Echo times as a 1-D float array in seconds; reject ms-looking values, NaN, duplicates."""
    te = np.atleast_1d(np.asarray(te_s, dtype=float))
    if te.ndim != 1 or te.size < min_echoes:
        raise InputError(f"need at least {min_echoes} echo times, got {te.size}")
    if not np.all(np.isfinite(te)) or np.any(te < 0):
        raise InputError(f"echo times must be finite and >= 0 s, got {te.tolist()}")
    if te.max() > 0.5:
        raise InputError(f"echo times look like milliseconds ({te.max():g}); give them in seconds")
    if np.unique(te).size != te.size:
        raise InputError(f"echo times must be distinct, got {te.tolist()}")
    return te


def fat_basis(te_s: np.ndarray, field_strength_t: float, spectrum: str | FatSpectrum = "ren_marrow") -> np.ndarray:
    """Complex fat signal per unit fat amplitude at each echo: ``sum_p a_p exp(i 2 pi f_p t)``, shape [n_te]."""
    spec = get_fat_spectrum(spectrum)
    te = np.asarray(te_s, dtype=float)
    freqs = spec.frequencies_hz(field_strength_t)
    return np.exp(2j * np.pi * np.outer(te, freqs)) @ spec.amplitudes


def multiecho_signal(
    water: np.ndarray,
    fat: np.ndarray,
    r2star_hz: np.ndarray,
    fieldmap_hz: np.ndarray,
    te_s: np.ndarray,
    field_strength_t: float,
    spectrum: str | FatSpectrum = "ren_marrow",
    phase_rad: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Noise-free complex signal, shape ``water.shape + (n_te,)``.

    ``water`` and ``fat`` are real (non-negative) proton-density amplitudes; ``phase_rad`` is the common
    initial phase; ``r2star_hz`` in 1/s; ``fieldmap_hz`` in Hz; ``te_s`` in seconds.
    """
    te = validate_echo_times(te_s, min_echoes=1)
    water, fat, r2, psi, phi = np.broadcast_arrays(
        np.asarray(water, float), np.asarray(fat, float), np.asarray(r2star_hz, float),
        np.asarray(fieldmap_hz, float), np.asarray(phase_rad, float),
    )
    cfat = fat_basis(te, field_strength_t, spectrum)
    decay = np.exp((-r2[..., None] + 2j * np.pi * psi[..., None]) * te + 1j * phi[..., None])
    return (water[..., None] + fat[..., None] * cfat) * decay
