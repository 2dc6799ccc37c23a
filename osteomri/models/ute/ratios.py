"""Image-ratio UTE biomarkers of cortical bone: porosity index and suppression ratio.

* Porosity index (Rajapakse et al., Radiology 2015;276:526): PI = S(TE_long) / S(TE_short) of a dual-echo
  UTE acquisition (TE_short ~ 0.05 ms sees bound and pore water, TE_long ~ 2.2 ms mainly pore water, the
  bound water having decayed). PI rises with cortical porosity.
* Suppression ratio (Li et al., MRM 2015;74:1006; Hong et al., MRM 2019;82:1226): SR = S_UTE / S_suppressed,
  the ratio of a plain UTE image to a long-T2-suppressed one (dual-band or adiabatic inversion recovery),
  i.e. total over bound-water signal; it falls as bound water (matrix) rises relative to pore water.

Both are computed voxel by voxel where the denominator is above ``min_signal`` (default: 2 % of the
denominator's 99th percentile); elsewhere NaN. Maps are float32.
"""

from __future__ import annotations

import numpy as np

from osteomri.errors import InputError
from osteomri.models.registry import MapSpec, register_maps

register_maps(
    MapSpec("porosity_index", "1", "UTE porosity index S(TE long) / S(TE short) (Rajapakse 2015)",
            "desc-ute_porosityindex", "ute_ratio", (0.0, np.inf)),
    MapSpec("suppression_ratio", "1", "UTE suppression ratio S(UTE) / S(long-T2 suppressed UTE) (Li 2015)",
            "desc-ute_suppressionratio", "ute_ratio", (0.0, np.inf)),
)


def _ratio(numerator: np.ndarray, denominator: np.ndarray, min_signal: float | None, what: str) -> np.ndarray:
    num = np.abs(np.asarray(numerator))
    den = np.abs(np.asarray(denominator))
    if num.shape != den.shape:
        raise InputError(f"{what}: the two images differ in shape ({num.shape} vs {den.shape})")
    good = np.isfinite(num) & np.isfinite(den)
    if not (good & (den > 0)).any():
        raise InputError(f"{what}: the denominator image has no signal")
    if min_signal is None:
        min_signal = 0.02 * float(np.percentile(den[good & (den > 0)], 99))
    keep = good & (den > min_signal)
    out = np.full(num.shape, np.nan, dtype=np.float32)
    out[keep] = (num[keep] / den[keep]).astype(np.float32)
    return out


def porosity_index(signal_short: np.ndarray, signal_long: np.ndarray, *, min_signal: float | None = None) -> np.ndarray:
    """PI = signal_long / signal_short (Rajapakse et al. 2015): the long-TE over the short-TE UTE image."""
    return _ratio(signal_long, signal_short, min_signal, "porosity index")


def suppression_ratio(signal_ute: np.ndarray, signal_suppressed: np.ndarray, *,
                      min_signal: float | None = None) -> np.ndarray:
    """SR = signal_ute / signal_suppressed (Li et al. 2015): plain over long-T2-suppressed UTE."""
    return _ratio(signal_ute, signal_suppressed, min_signal, "suppression ratio")
