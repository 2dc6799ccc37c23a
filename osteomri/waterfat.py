"""Convenience alias: ``from osteomri.waterfat import WaterFatModel``."""

from osteomri.models.waterfat import (
    FAT_SPECTRA,
    MAP_NAMES,
    MAP_UNITS,
    FatSpectrum,
    T1Correction,
    WaterFatFit,
    WaterFatModel,
    fat_basis,
    get_fat_spectrum,
    multiecho_signal,
    triglyceride_spectrum,
)

__all__ = ["FAT_SPECTRA", "MAP_NAMES", "MAP_UNITS", "FatSpectrum", "T1Correction", "WaterFatFit", "WaterFatModel",
           "fat_basis", "get_fat_spectrum", "multiecho_signal", "triglyceride_spectrum"]
