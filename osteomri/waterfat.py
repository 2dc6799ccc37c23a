"""Public water–fat API: ``from osteomri.waterfat import WaterFatModel``.

Exactly the names of :mod:`osteomri.models.waterfat` (the implementation), so both import paths offer the
same API.
"""

from osteomri.models.waterfat import *  # noqa: F403
from osteomri.models.waterfat import __all__  # noqa: F401
