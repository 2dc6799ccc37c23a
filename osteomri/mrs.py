"""Shortcut: ``from osteomri.mrs import MrsModel`` (the implementation lives in :mod:`osteomri.models.mrs`)."""

from osteomri.models.mrs import MAP_NAMES, MrsFit, MrsModel

__all__ = ["MrsModel", "MrsFit", "MAP_NAMES"]
