"""Conventions and the chemically constrained fat basis of marrow MR spectroscopy.

Conventions (NIfTI-MRS, Clarke et al., MRM 2022;88:2358, as its reference implementations -- the
``nifti-mrs`` package and ``spec2nii`` -- store and read it):

* A free-induction decay (FID) is stored so that its spectrum is ``numpy.fft.fftshift(numpy.fft.fft(fid))``
  on the frequency axis ``fftshift(fftfreq(N, dwell))`` (Hz) with ``ppm = reference_ppm + f / spectrometer_mhz``:
  a peak at ``ppm`` rotates as ``exp(+2 pi i f t)`` with ``f = (ppm - reference_ppm) * spectrometer_mhz``.
  At 3 T (127.7 MHz) the methylene peak (1.30 ppm) thus lies 434 Hz from water, on the negative side. (Issue
  17 quotes +434 Hz: that is the complex-conjugate, mirrored, convention. Real vendor files converted by
  spec2nii follow the one above: the Philips phantom's NAA lies at 2.0 ppm with it, at 7.4 ppm mirrored.)
  :class:`~osteomri.models.mrs.model.MrsModel` detects a mirrored dataset from the asymmetric fat pattern
  (``conjugate="auto"``) and reports it.
* The receiver reference (0 Hz) is 4.70 ppm unless the header says otherwise (``reference_ppm``).
* The echo top is at t = 0; ``t_n = n * dwell_time_s``.

Fat: the 9-peak triglyceride spectrum of :func:`osteomri.models.waterfat.spectrum.triglyceride_protons`
(Hamilton et al., NMR Biomed 2011;24:784; the one home of the peak table), its composition tied to the
number of double bonds ``ndb`` by Hamilton's relations for adipose triglycerides (same paper):
``nmidb = 0.093 ndb**2`` and ``CL = 16.8 + 0.25 ndb``.

Fatty-acid fractions from ``ndb`` and ``nmidb`` per triglyceride, taking the polyunsaturated chains as
linoleic (2 double bonds, 1 methylene-interrupted) and the monounsaturated as oleic (Peterson & Mansson,
MRM 2013;69:1542; Berglund et al., MRM 2012;68:1815): ``fpufa = nmidb / 3``, ``fmufa = (ndb - 2 nmidb) / 3``,
``fsfa = 1 - (ndb - nmidb) / 3``. The unsaturation index is the olefinic (5.29 ppm) share of all fat
protons, ``2 ndb / (6 CL + 2 - 2 ndb)`` (the olefinic/total-lipid ratio of Yeung et al., JMRI 2005;22:279).
"""

from __future__ import annotations

import numpy as np

from osteomri.models.waterfat.spectrum import TRIGLYCERIDE_PPM, WATER_PPM, triglyceride_protons

FAT_PPM = np.asarray(TRIGLYCERIDE_PPM, float)
FAT_PEAK_NAMES = ("methyl 0.90", "methylene 1.30", "beta-carboxyl 1.60", "allylic 2.02", "alpha-carboxyl 2.24",
                  "diallylic 2.75", "glycerol 4.20", "glycerol 5.19", "olefinic 5.29")
NMIDB_PER_NDB2 = 0.093        # Hamilton et al. 2011: nmidb = 0.093 ndb^2
CL_INTERCEPT, CL_PER_NDB = 16.8, 0.25  # Hamilton et al. 2011: CL = 16.8 + 0.25 ndb
NDB_BOUNDS = (0.0, 6.0)

_B0 = np.asarray(triglyceride_protons(0.0, 0.0, 0.0), float)
_E_NDB = np.asarray(triglyceride_protons(1.0, 0.0, 0.0), float) - _B0
_E_NMIDB = np.asarray(triglyceride_protons(0.0, 1.0, 0.0), float) - _B0
_E_CL = np.asarray(triglyceride_protons(0.0, 0.0, 1.0), float) - _B0


def hamilton_nmidb(ndb):
    """Methylene-interrupted double bonds per triglyceride from ``ndb`` (Hamilton et al. 2011)."""
    return NMIDB_PER_NDB2 * np.asarray(ndb, float) ** 2


def hamilton_cl(ndb):
    """Mean fatty-acid chain length from ``ndb`` (Hamilton et al. 2011)."""
    return CL_INTERCEPT + CL_PER_NDB * np.asarray(ndb, float)


def fat_protons(ndb) -> np.ndarray:
    """Protons per triglyceride at the 9 peaks, ``[..., 9]``, for ``ndb`` with Hamilton's relations."""
    ndb = np.asarray(ndb, float)[..., None]
    return _B0 + ndb * _E_NDB + hamilton_nmidb(ndb) * _E_NMIDB + hamilton_cl(ndb) * _E_CL


def fat_amplitudes(ndb) -> tuple[np.ndarray, np.ndarray]:
    """Relative fat peak amplitudes (sum 1) ``[..., 9]`` and their derivative with respect to ``ndb``."""
    ndb = np.asarray(ndb, float)
    p = fat_protons(ndb)
    dp = _E_NDB + (2 * NMIDB_PER_NDB2 * ndb)[..., None] * _E_NMIDB + CL_PER_NDB * _E_CL
    total = p.sum(-1, keepdims=True)
    a = p / total
    da = (dp - a * dp.sum(-1, keepdims=True)) / total
    return a, da


def composition(ndb) -> dict[str, np.ndarray]:
    """Composition quantities derived from ``ndb`` and their derivatives ``d/d ndb`` (for the SDs).

    Returns ``{name: (value, derivative)}`` for ``nmidb``, ``cl``, ``unsaturation_index``, ``fpufa``,
    ``fmufa``, ``fsfa`` (see the module docstring for the formulas and references).
    """
    ndb = np.asarray(ndb, float)
    nmidb, dnmidb = hamilton_nmidb(ndb), 2 * NMIDB_PER_NDB2 * ndb
    cl = hamilton_cl(ndb)
    total = 6 * cl + 2 - 2 * ndb
    dtotal = 6 * CL_PER_NDB - 2
    ui = 2 * ndb / total
    dui = (2 * total - 2 * ndb * dtotal) / total**2
    return {
        "nmidb": (nmidb, dnmidb),
        "cl": (cl, np.full_like(ndb, CL_PER_NDB)),
        "unsaturation_index": (ui, dui),
        "fpufa": (nmidb / 3, dnmidb / 3),
        "fmufa": ((ndb - 2 * nmidb) / 3, (1 - 2 * dnmidb) / 3),
        "fsfa": (1 - (ndb - nmidb) / 3, -(1 - dnmidb) / 3),
    }


def peak_frequencies_hz(ppm, spectrometer_mhz: float, reference_ppm: float = WATER_PPM) -> np.ndarray:
    """FID rotation frequency (Hz, numpy-FFT sense; see the module docstring) of peaks at ``ppm``."""
    return (np.asarray(ppm, float) - reference_ppm) * spectrometer_mhz


def ppm_axis(n_points: int, dwell_time_s: float, spectrometer_mhz: float,
             reference_ppm: float = WATER_PPM) -> np.ndarray:
    """The ppm of each point of ``fftshift(fft(fid))`` (increasing; plots reverse it)."""
    f = np.fft.fftshift(np.fft.fftfreq(n_points, dwell_time_s))
    return reference_ppm + f / spectrometer_mhz


def spectrum(fid: np.ndarray) -> np.ndarray:
    """``fftshift(fft(fid))`` along the last axis (the NIfTI-MRS convention)."""
    return np.fft.fftshift(np.fft.fft(fid, axis=-1), axes=-1)
