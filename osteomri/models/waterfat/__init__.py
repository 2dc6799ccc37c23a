"""Chemical-shift-encoded water–fat separation: spectra, the signal equation and the fitter."""

from osteomri.models.waterfat.model import MAP_NAMES, MAP_SPECS, WaterFatFit, WaterFatModel
from osteomri.models.waterfat.options import R2STAR_MAX_HZ, SolverOptions
from osteomri.models.waterfat.signal import fat_basis, multiecho_signal, validate_echo_times
from osteomri.models.waterfat.spectrum import FAT_SPECTRA, FatSpectrum, get_fat_spectrum, triglyceride_spectrum
from osteomri.models.waterfat.t1bias import T1Correction, spgr_weight

__all__ = ["FAT_SPECTRA", "MAP_NAMES", "MAP_SPECS", "R2STAR_MAX_HZ", "FatSpectrum", "SolverOptions", "T1Correction",
           "WaterFatFit", "WaterFatModel", "fat_basis", "get_fat_spectrum", "multiecho_signal", "spgr_weight",
           "triglyceride_spectrum", "validate_echo_times"]
