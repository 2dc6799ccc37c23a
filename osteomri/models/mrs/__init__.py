"""Marrow MR spectroscopy: multi-TE water + triglyceride fit (PDFF, T2s, fat composition) with CRB SDs."""

from osteomri.models.mrs.basis import composition, fat_amplitudes, hamilton_cl, hamilton_nmidb, ppm_axis
from osteomri.models.mrs.model import MAP_NAMES, MrsFit, MrsModel

__all__ = ["MrsModel", "MrsFit", "MAP_NAMES", "fat_amplitudes", "composition", "hamilton_cl", "hamilton_nmidb",
           "ppm_axis"]
