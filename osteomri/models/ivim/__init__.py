"""Intravoxel incoherent motion (IVIM) diffusion model: signal equation, model and fit."""

from osteomri.models.ivim.bounds import DEFAULT_BOUNDS, IvimBounds, make_bounds
from osteomri.models.ivim.model import MAP_NAMES, MAP_SPECS, METHODS, IvimFit, IvimModel
from osteomri.models.ivim.signal import ivim_signal

__all__ = ["DEFAULT_BOUNDS", "MAP_NAMES", "MAP_SPECS", "METHODS", "IvimBounds", "IvimFit", "IvimModel",
           "ivim_signal", "make_bounds"]
