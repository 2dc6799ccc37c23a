"""Multi-coil and multi-average spectroscopy data: coil combination, frequency-and-phase alignment.

* Coil combination: each coil weighted by the complex conjugate of its (average-mean) first FID points over
  its noise variance -- phase-aligned, SNR-weighted combination (Hall et al., NeuroImage 2014;86:35; Brown,
  MRM 2004;52:1207). Noise variance from the last eighth of each FID.
* Alignment of averages (spectral registration, Near et al., MRM 2015;73:44): every average is shifted in
  frequency and phase onto the mean of all averages, over the first ~0.2 s of the FID; the shift is found on a
  0.1 Hz grid by zero-padded FFT cross-correlation, the phase in closed form.
"""

from __future__ import annotations

import numpy as np


def combine_coils(data: np.ndarray) -> tuple[np.ndarray, str]:
    """Combine coils on the last axis of ``data`` [..., n_points, (other,) n_coils] -> without that axis.

    ``data`` has the points axis at position 3 (NIfTI-MRS order) with possibly further axes before the coil
    axis; weights come from the first 4 points of each coil's FID averaged over those further axes."""
    first = data[:, :, :, :4].mean(axis=3)                    # (x, y, z, [other...,] n_coils)
    while first.ndim > 4:
        first = first.mean(axis=3)
    tail = data[:, :, :, -max(data.shape[3] // 8, 4):]
    noise = tail.reshape(tail.shape[:3] + (-1, data.shape[-1])).var(axis=3)
    w = first.conj() / np.maximum(noise, 1e-30)
    w = w / np.maximum(np.sqrt((np.abs(w) ** 2).sum(-1, keepdims=True)), 1e-30)
    shape = w.shape[:3] + (1,) * (data.ndim - 4) + w.shape[3:]
    combined = (data * w.reshape(shape)).sum(-1)
    return combined, f"coils combined ({data.shape[-1]}, SNR-weighted, phase-aligned)"


def align_averages(data: np.ndarray, dwell_time_s: float, max_shift_hz: float = 20.0,
                   window_s: float = 0.2) -> tuple[np.ndarray, str]:
    """Align the averages on the last axis of ``data`` [..., n_points(axis 3), ..., n_avg] in frequency and
    phase onto their mean (see the module docstring); returns the aligned array (same shape)."""
    moved = np.moveaxis(data, 3, -2)                              # (..., n_points, n_avg)
    n = moved.shape[-2]
    n_win = int(min(n, max(32, round(window_s / dwell_time_s))))
    t = np.arange(n) * dwell_time_s
    ref = moved[..., :n_win, :].mean(-1)                          # (..., n_win)
    prod = ref.conj()[..., :, None] * moved[..., :n_win, :]       # (..., n_win, n_avg)
    m = int(2 ** np.ceil(np.log2(max(n_win * 8, 1.0 / (0.1 * dwell_time_s)))))
    spec = np.fft.fft(prod, n=m, axis=-2)                         # sum_n p_n exp(-2 pi i f t_n)
    freqs = np.fft.fftfreq(m, dwell_time_s)
    keep = np.abs(freqs) <= max_shift_hz
    idx = np.argmax(np.abs(spec[..., keep, :]), axis=-2)          # (..., n_avg)
    shift = freqs[keep][idx]                                      # average ~ ref * exp(2 pi i shift t + i phi)
    corr = np.take_along_axis(spec[..., keep, :], idx[..., None, :], axis=-2)[..., 0, :]
    phase = np.angle(corr)
    fix = np.exp(-2j * np.pi * shift[..., None, :] * t[:, None] - 1j * phase[..., None, :])
    aligned = np.moveaxis(moved * fix, -2, 3)
    return aligned, (f"{data.shape[-1]} averages frequency-and-phase aligned (spectral registration; "
                     f"max |shift| {np.abs(shift).max():.2f} Hz)")


def eddy_current_correct(fids: np.ndarray, water_reference: np.ndarray) -> tuple[np.ndarray, str]:
    """Remove the time-dependent phase that eddy currents impose, as measured on an unsuppressed water
    reference of the same voxel (Klose, MRM 1990;14:26): ``fid * exp(-i (phase_ref(t) - phase_ref(0)))``.

    ``fids`` [..., n_te, n_points]; ``water_reference`` [..., n_points] or the same shape as ``fids`` (one
    reference per echo). The reference's zero-order phase is kept out of the correction (the fit has its own)."""
    ref = np.asarray(water_reference)
    if ref.shape != fids.shape:
        ref = ref[..., None, :] if ref.shape == fids.shape[:-2] + fids.shape[-1:] else None
    if ref is None or ref.shape[-1] != fids.shape[-1]:
        from osteomri.errors import InputError

        raise InputError(f"water reference of shape {np.shape(water_reference)} does not match the FIDs "
                         f"{fids.shape}")
    phase = np.unwrap(np.angle(ref), axis=-1)
    return fids * np.exp(-1j * (phase - phase[..., :1])), "eddy-current corrected (Klose 1990) from a water reference"
