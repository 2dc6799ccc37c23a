"""Intravoxel incoherent motion (IVIM) diffusion model: signal equation, model and fit."""

from osteomri.models.ivim.bounds import DEFAULT_BOUNDS, IvimBounds, make_bounds
from osteomri.models.ivim.model import MAP_DESCRIPTIONS, MAP_UNITS, METHODS, IvimFit, IvimModel
from osteomri.models.ivim.signal import ivim_signal

__all__ = [
    "ivim_signal",
    "IvimModel",
    "IvimFit",
    "IvimBounds",
    "make_bounds",
    "DEFAULT_BOUNDS",
    "METHODS",
    "MAP_UNITS",
    "MAP_DESCRIPTIONS",
]
