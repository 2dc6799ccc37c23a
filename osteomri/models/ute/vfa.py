"""``UteVfaT1Model``: T1 from variable-flip-angle spoiled UTE (for the UTE-MT model's R1).

Spoiled steady state (Ernst): S(a) = M0 sin a (1 - E1) / (1 - E1 cos a), E1 = exp(-TR / T1). Its linear form
S / sin a = E1 S / tan a + M0 (1 - E1) (Gupta, J Magn Reson 1977;25:231; DESPOT1, Deoni et al., MRM
2003;49:515) gives E1 and M0 by a weighted linear regression for all voxels at once, refined by the
batched Levenberg–Marquardt on the nonlinear signal. ``flip_deg`` are the nominal angles (B1 not corrected).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from osteomri.errors import InputError
from osteomri.models.lm import levenberg_marquardt
from osteomri.models.registry import MapSpec, register_maps
from osteomri.models.ute.fit import VoxelFit

register_maps(
    MapSpec("t1_ms", "ms", "observed longitudinal relaxation time T1 from variable-flip-angle UTE", "desc-vfa_T1map",
            "ute_vfa", (0.0, np.inf)),
    MapSpec("vfa_m0", "{a.u.}", "equilibrium signal M0 from variable-flip-angle UTE", "desc-vfa_M0map", "ute_vfa",
            (0.0, np.inf)),
)


class UteVfaT1Model:
    """Variable-flip-angle T1: ``flip_deg`` one per measurement (last data axis), ``tr_s`` the repetition time."""

    def __init__(self, flip_deg: Any, tr_s: float) -> None:
        flips = np.atleast_1d(np.asarray(flip_deg, dtype=float))
        if flips.ndim != 1 or flips.size < 2 or np.unique(flips).size < 2:
            raise InputError(f"variable-flip-angle T1 needs at least 2 distinct flip angles, got {flips.tolist()}")
        if not np.all((flips > 0) & (flips < 180)):
            raise InputError(f"flip angles must lie in (0, 180) deg, got {flips.tolist()}")
        if tr_s is None or not (np.isfinite(tr_s) and 0 < tr_s < 10):
            raise InputError(f"tr_s must be a repetition time in seconds, got {tr_s}")
        self.flip_deg = flips
        self.tr_s = float(tr_s)

    def parameters(self) -> dict[str, Any]:
        return {"flip_deg": self.flip_deg.tolist(), "tr_s": self.tr_s}

    @classmethod
    def from_image(cls, image) -> UteVfaT1Model:
        image.require("FlipAngle", "RepetitionTime")
        return cls(image.meta["FlipAngle"], float(image.meta["RepetitionTime"]))

    def fit(self, data: np.ndarray, mask: np.ndarray | None = None) -> UteVfaT1Fit:
        arr = np.abs(np.asarray(data))
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.shape[-1] != self.flip_deg.size:
            raise InputError(f"data have {arr.shape[-1]} flip angles on the last axis, the model {self.flip_deg.size}")
        finite = np.isfinite(arr).all(axis=-1)
        if mask is None:
            ref = np.where(finite, arr.max(axis=-1), 0.0)
            mask = ref > 0.05 * np.percentile(ref[ref > 0], 99) if (ref > 0).any() else ref > 0
        mask = np.asarray(mask, dtype=bool).reshape(arr.shape[:-1]) & finite
        y = arr[mask].astype(float)
        a = np.deg2rad(self.flip_deg)
        # linear start (Gupta 1977): y/sin a = E1 * y/tan a + M0 (1 - E1), weighted by sin^2 a
        xs, ys = y / np.tan(a), y / np.sin(a)
        w = np.sin(a) ** 2
        sw, sx, sy = w.sum(), xs @ w, ys @ w
        sxx, sxy = (xs * xs) @ w, (xs * ys) @ w
        det = sw * sxx - sx * sx
        e1 = np.clip(np.where(det != 0, (sw * sxy - sx * sy) / np.where(det != 0, det, 1), 0.5), 1e-4, 1 - 1e-6)
        m0 = np.maximum((sy - e1 * sx) / sw / (1 - e1), 1e-12)
        scale = np.maximum(y.max(axis=1), 1e-30)
        theta0 = np.stack([m0 / scale, -self.tr_s / np.log(e1) * 1e3], axis=1)  # M0 (normalised), T1 (ms)
        tr_ms = self.tr_s * 1e3
        sin_a, cos_a = np.sin(a), np.cos(a)

        def model(t: np.ndarray, rows: np.ndarray):
            m, t1 = t[:, :1], t[:, 1:2]
            e = np.exp(-tr_ms / t1)
            den = 1 - e * cos_a
            s = m * sin_a * (1 - e) / den
            de_dt1 = e * tr_ms / t1**2
            ds_de = m * sin_a * (cos_a - 1) / den**2
            return s, np.stack([sin_a * (1 - e) / den, ds_de * de_dt1], axis=2)

        theta, cost, _ = levenberg_marquardt(model, theta0, y / scale[:, None], [0.0, 1.0], [np.inf, 1e5])
        return UteVfaT1Fit(self, mask, theta[:, 0] * scale, theta[:, 1])


class UteVfaT1Fit(VoxelFit):
    """``t1_ms`` and ``vfa_m0`` maps (NaN outside the mask); ``r1_hz`` = 1000 / ``t1_ms`` for UTE-MT."""

    def __init__(self, model: UteVfaT1Model, mask: np.ndarray, m0: np.ndarray, t1_ms: np.ndarray) -> None:
        self.model, self.mask = model, mask
        self._values = {"t1_ms": t1_ms, "vfa_m0": m0}
        self._sds: dict[str, np.ndarray] = {}
        self.qc: dict[str, Any] = {"n_fitted_voxels": int(mask.sum())}

    @property
    def r1_hz(self) -> np.ndarray:
        """1000 / ``t1_ms`` (1/s): the observed R1 the UTE-MT model takes as ``r1_observed_hz``."""
        return 1000.0 / self.t1_ms

    def predict(self) -> np.ndarray:
        m = self.maps()
        a = np.deg2rad(self.model.flip_deg)
        e = np.exp(-self.model.tr_s * 1e3 / m["t1_ms"])[..., None]
        return (m["vfa_m0"][..., None] * np.sin(a) * (1 - e) / (1 - e * np.cos(a))).astype(np.float32)
