"""Public IVIM API: ``from osteomri.ivim import IvimModel``.

Exactly the names of :mod:`osteomri.models.ivim` (the implementation), so both import paths offer the same
API.
"""

from osteomri.models.ivim import *  # noqa: F403
from osteomri.models.ivim import __all__  # noqa: F401
