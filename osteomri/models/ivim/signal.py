"""Forward signal equation of intravoxel incoherent motion (IVIM) diffusion.

    S(b) = S0 * [f * exp(-b D*) + (1 - f) * exp(-b D)]      (Le Bihan et al., Radiology 1988;168:497)

with ``b`` in s/mm^2, ``D`` and ``D*`` in mm^2/s and ``f`` the perfusion fraction (0..1).
"""

from __future__ import annotations

import numpy as np


def ivim_signal(
    bvalues_s_mm2: np.ndarray,
    s0: np.ndarray | float,
    f: np.ndarray | float,
    d_mm2_s: np.ndarray | float,
    dstar_mm2_s: np.ndarray | float,
) -> np.ndarray:
    """Noise-free IVIM signal, shape ``broadcast(s0, f, d, dstar).shape + (n_b,)``."""
    b = np.asarray(bvalues_s_mm2, dtype=float)
    s0, f, d, ds = (np.asarray(x, dtype=float)[..., None] for x in np.broadcast_arrays(s0, f, d_mm2_s, dstar_mm2_s))
    return s0 * (f * np.exp(-b * ds) + (1.0 - f) * np.exp(-b * d))
