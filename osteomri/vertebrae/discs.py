"""Image primitives of the vertebra detector: robust intensity normalisation and a 2-D Hessian ridge measure.

A ridge (a bright band of ``polarity * image``) has one strongly curved eigen-direction of the Hessian (across
the band) and one flat one (along it); its strength is ``-l1 - |l2|`` (scale-normalised by sigma², Lindeberg
1998) and its normal the eigenvector of ``l1`` (Frangi et al. 1998, ridge measure in 2-D).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def normalise(volume: np.ndarray) -> np.ndarray:
    """Intensities mapped to [0, 1] by the 1st and 99th percentiles of the non-zero voxels."""
    vals = volume[volume > 0]
    if vals.size < 100:
        vals = volume.ravel()
    lo, hi = np.percentile(vals, [1, 99])
    return np.clip((volume - lo) / max(hi - lo, 1e-6), 0, 1.5).astype(np.float32)


def ridge_map(slab: np.ndarray, polarity: int, sigma_px: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plate ridge strength of ``polarity * slab`` and the unit normal (ns, na) at every pixel."""
    img = polarity * slab.astype(np.float64)
    hss = ndimage.gaussian_filter(img, sigma_px, order=(2, 0))
    haa = ndimage.gaussian_filter(img, sigma_px, order=(0, 2))
    hsa = ndimage.gaussian_filter(img, sigma_px, order=(1, 1))
    half = np.sqrt(((hss - haa) / 2) ** 2 + hsa**2)
    l1 = (hss + haa) / 2 - half  # most negative: across a bright band
    l2 = (hss + haa) / 2 + half
    v1 = np.stack([l1 - haa, hsa])
    v2 = np.stack([hsa, l1 - hss])
    use2 = np.hypot(*v2) > np.hypot(*v1)
    v = np.where(use2, v2, v1)
    norm = np.hypot(*v) + 1e-12
    ns, na = v[0] / norm, v[1] / norm
    strength = np.clip(-l1 - np.abs(l2), 0, None) * sigma_px**2
    return strength, ns, na
