"""Shortcut: ``from osteomri.ivim import IvimModel`` (the implementation lives in :mod:`osteomri.models.ivim`)."""

from osteomri.models.ivim import DEFAULT_BOUNDS, IvimFit, IvimModel, ivim_signal

__all__ = ["IvimModel", "IvimFit", "DEFAULT_BOUNDS", "ivim_signal"]
