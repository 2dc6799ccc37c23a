"""Multi-peak fat spectra for chemical-shift-encoded water–fat imaging.

Chemical shifts are in ppm; the frequency of each fat peak relative to water is
``(ppm_fat - ppm_water) * GYROMAGNETIC_RATIO_HZ_PER_T * 1e-6 * B0`` (negative for the main CH2 peak).

Presets
-------
``ren_marrow``
    9-peak spectrum of human bone-marrow / subcutaneous fat, Ren et al., J Lipid Res 2008;49:2055.
``hamilton_liver``
    9 peaks at the same positions with the in-vivo liver amplitudes of Hamilton et al., NMR Biomed
    2011;24:784.
``ismrm_6peak``
    6-peak spectrum of the ISMRM fat–water toolbox (Hernando/Yu; Yu et al., MRM 2008;60:1122), used by
    the ISMRM 2012 challenge.

Any triglyceride composition: :func:`triglyceride_spectrum` (number of double bonds, methylene-interrupted
double bonds and chain length; Hamilton et al. 2011).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from osteomri.errors import InputError

GYROMAGNETIC_RATIO_HZ_PER_T = 42.577478518e6  # proton gamma-bar, CODATA 2018
WATER_PPM = 4.70


@dataclass(frozen=True)
class FatSpectrum:
    """A fat spectrum: peak chemical shifts (ppm) and relative amplitudes (normalised to sum 1)."""

    name: str
    ppm: tuple[float, ...]
    relative_amplitudes: tuple[float, ...]
    water_ppm: float = WATER_PPM

    def __post_init__(self) -> None:
        ppm = np.asarray(self.ppm, dtype=float)
        amp = np.asarray(self.relative_amplitudes, dtype=float)
        if ppm.ndim != 1 or ppm.size == 0 or ppm.shape != amp.shape:
            raise InputError(
                f"fat spectrum {self.name!r}: need equally long, non-empty ppm and amplitude lists "
                f"(got {ppm.size} and {amp.size})"
            )
        if not (np.all(np.isfinite(ppm)) and np.all(np.isfinite(amp)) and np.all(amp >= 0) and amp.sum() > 0):
            raise InputError(f"fat spectrum {self.name!r}: amplitudes must be finite, >= 0 and not all zero")
        object.__setattr__(self, "relative_amplitudes", tuple((amp / amp.sum()).tolist()))

    def frequencies_hz(self, field_strength_t: float) -> np.ndarray:
        """Peak frequencies relative to water in Hz at ``field_strength_t`` (fat peaks are negative)."""
        if not np.isfinite(field_strength_t) or field_strength_t <= 0:
            raise InputError(f"field strength must be a positive number of tesla, got {field_strength_t}")
        return (np.asarray(self.ppm) - self.water_ppm) * GYROMAGNETIC_RATIO_HZ_PER_T * 1e-6 * field_strength_t

    @property
    def amplitudes(self) -> np.ndarray:
        return np.asarray(self.relative_amplitudes)


_REN_PPM = (0.90, 1.30, 1.60, 2.02, 2.24, 2.75, 4.20, 5.19, 5.29)

FAT_SPECTRA: dict[str, FatSpectrum] = {
    "ren_marrow": FatSpectrum(
        "ren_marrow", _REN_PPM, (0.090, 0.584, 0.060, 0.085, 0.060, 0.015, 0.040, 0.010, 0.057)
    ),
    "hamilton_liver": FatSpectrum(
        "hamilton_liver", _REN_PPM, (0.088, 0.642, 0.058, 0.062, 0.058, 0.006, 0.039, 0.010, 0.037)
    ),
    "ismrm_6peak": FatSpectrum(
        "ismrm_6peak", (0.90, 1.30, 2.10, 2.76, 4.31, 5.30), (0.087, 0.693, 0.128, 0.004, 0.039, 0.048)
    ),
}


def triglyceride_spectrum(ndb: float, nmidb: float, chain_length: float = 17.5,
                          name: str | None = None) -> FatSpectrum:
    """The 9-peak spectrum of a triglyceride of given composition (Hamilton et al., NMR Biomed 2011;24:784).

    Protons per triglyceride at the :data:`_REN_PPM` positions, from its mean fatty-acid chain length ``CL``,
    number of double bonds ``ndb`` and methylene-interrupted double bonds ``nmidb`` (both per triglyceride):
    0.90 ppm CH3 9; 1.30 ppm (CH2)n 6(CL − 4) − 8 ndb + 2 nmidb; 1.60 ppm β-carboxyl 6; 2.02 ppm allylic
    4(ndb − nmidb); 2.24 ppm α-carboxyl 6; 2.75 ppm diallylic 2 nmidb; 4.20 ppm glycerol CH2 4; 5.19 ppm
    glycerol CH 1; 5.29 ppm olefinic 2 ndb (total 6 CL + 2 − 2 ndb protons). Human adipose tissue and marrow
    are close to ndb ≈ 3, nmidb ≈ 1, CL ≈ 17.5.
    """
    values = np.array([ndb, nmidb, chain_length], float)
    if not np.all(np.isfinite(values)) or ndb < 0 or nmidb < 0 or nmidb > ndb:
        raise InputError(f"triglyceride needs 0 <= nmidb <= ndb (finite), got ndb={ndb}, nmidb={nmidb}")
    protons = triglyceride_protons(ndb, nmidb, chain_length)
    if protons[1] < 0:
        raise InputError(f"chain length {chain_length} is too short for {ndb} double bonds (negative CH2 count)")
    return FatSpectrum(name or f"triglyceride_ndb{ndb:g}_nmidb{nmidb:g}_cl{chain_length:g}", _REN_PPM,
                       tuple(float(v) for v in protons))


TRIGLYCERIDE_PPM = _REN_PPM


def triglyceride_protons(ndb, nmidb, chain_length=17.5) -> tuple:
    """Protons per triglyceride at the 9 :data:`TRIGLYCERIDE_PPM` positions (Hamilton et al. 2011; see
    :func:`triglyceride_spectrum`). Linear in ``ndb``, ``nmidb`` and ``chain_length``; these may be numpy
    arrays (each entry then broadcasts). The one home of the triglyceride peak table."""
    return (9 + 0 * ndb, 6 * (chain_length - 4) - 8 * ndb + 2 * nmidb, 6 + 0 * ndb, 4 * (ndb - nmidb),
            6 + 0 * ndb, 2 * nmidb, 4 + 0 * ndb, 1 + 0 * ndb, 2 * ndb)


def get_fat_spectrum(spec: str | FatSpectrum | dict) -> FatSpectrum:
    """A preset name, a :class:`FatSpectrum`, or a dict ``{"ppm": [...], "relative_amplitudes": [...]}``."""
    if isinstance(spec, FatSpectrum):
        return spec
    if isinstance(spec, str):
        try:
            return FAT_SPECTRA[spec]
        except KeyError:
            raise InputError(f"unknown fat spectrum {spec!r}; presets: {', '.join(FAT_SPECTRA)}") from None
    if isinstance(spec, dict):
        try:
            return FatSpectrum(spec.get("name", "user"), tuple(spec["ppm"]), tuple(spec["relative_amplitudes"]),
                               spec.get("water_ppm", WATER_PPM))
        except KeyError as exc:
            raise InputError(f"user fat spectrum needs keys 'ppm' and 'relative_amplitudes' (missing {exc})") from None
    raise InputError(f"fat spectrum must be a preset name, FatSpectrum or dict, got {type(spec).__name__}")
