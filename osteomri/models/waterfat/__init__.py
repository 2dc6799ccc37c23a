"""Chemical-shift-encoded water–fat separation: spectra, the signal equation and the fitter."""

from osteomri.models.waterfat.signal import fat_basis, multiecho_signal, validate_echo_times
from osteomri.models.waterfat.spectrum import FAT_SPECTRA, FatSpectrum, get_fat_spectrum

__all__ = ["FAT_SPECTRA", "FatSpectrum", "get_fat_spectrum", "fat_basis", "multiecho_signal", "validate_echo_times"]
