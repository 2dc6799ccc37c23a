"""The conventional T1-weighted image as a map (the VBQ score and the report read it): declared here once.

There is no model to fit: the stored signal is the map (arbitrary units, scanner-scaled).
"""

from __future__ import annotations

import math

from osteomri.models.registry import MapSpec, register_maps

MAP_SPECS = register_maps(
    MapSpec("t1w_signal", "{a.u.}", "T1-weighted signal intensity", "T1w", "t1w", (0.0, math.inf)),
)
