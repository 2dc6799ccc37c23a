"""``UteT2starModel`` / ``UteT2starFit``: mono-, bi- and tri-component T2* of UTE multi-echo data.

* ``components=1``: S = S0 exp(-TE/T2*).
* ``components=2``: S = S0 [f_s exp(-TE/T2*_s) + (1 - f_s) exp(-TE/T2*_l)] — bound (short) and pore (long)
  water (Du et al., J Magn Reson 2010;207:304; Biswas et al., Bone 2012;50:749). ``f_s`` is identifiable
  only where T2*_l / T2*_s is large (>~ 4; Seifert et al., NMR Biomed 2015;28:861): judge it over a
  population or a ROI, and read ``fraction_short_sd``.
* ``components=3``: adds fat with the multi-peak spectrum of the water–fat module (one home for the fat
  spectrum; Lu et al., NMR Biomed 2019;32:e4174): S = |A_s e^(-TE/T2*_s) + A_l e^(-TE/T2*_l) +
  A_f e^(-TE/T2*_f) c(TE)|, for voxels next to marrow. The magnitude of the sum does not depend on the
  B0 off-resonance or the common phase, so complex data are fitted through their magnitude.

Fitting (all voxels at once): a variable-projection grid over the rates (amplitudes solved in closed form,
non-negative) gives the start of a batched Levenberg–Marquardt (:mod:`osteomri.models.lm`). Magnitude
data are fitted with the Rician expected magnitude as the model (:func:`.signal.rician_mean`), with the noise
SD given (``noise_sd``) or estimated from the residuals of a first, Gaussian fit. Cramér–Rao SDs use that
noise SD.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from osteomri.errors import InputError
from osteomri.models.lm import crlb_covariance, levenberg_marquardt
from osteomri.models.registry import MapSpec, register_maps
from osteomri.models.ute.fit import VoxelFit
from osteomri.models.ute.kernels import fit_multiexp
from osteomri.models.ute.signal import _RICE_DERIV, _RICE_MEAN, _RICE_STEP, fat_modulation, multiexp, rician_mean

register_maps(
    MapSpec("ute_s0", "{a.u.}", "UTE signal extrapolated to TE = 0 (sum of all components)", "desc-ute_S0map",
            "ute", (0.0, np.inf)),
    MapSpec("t2star_ms", "ms", "UTE mono-exponential T2*", "desc-ute_T2starmap", "ute", (0.0, np.inf)),
    MapSpec("t2star_short_ms", "ms", "T2* of the short (bound-water) component", "desc-short_T2starmap", "ute",
            (0.0, np.inf)),
    MapSpec("t2star_long_ms", "ms", "T2* of the long (pore-water) component", "desc-long_T2starmap", "ute",
            (0.0, np.inf)),
    MapSpec("fraction_short", "1", "signal fraction of the short-T2* (bound-water) component at TE = 0",
            "desc-boundwater_fraction", "ute", (0.0, 1.0)),
    MapSpec("t2star_fat_ms", "ms", "T2* of the fat component (tri-component UTE)", "desc-fat_T2starmap", "ute",
            (0.0, np.inf)),
    MapSpec("fraction_fat", "1", "signal fraction of fat at TE = 0 (tri-component UTE)", "desc-utefat_fraction",
            "ute", (0.0, 1.0)),
    MapSpec("ute_residual", "1", "root-mean-square UTE fit residual relative to the TE = 0 signal",
            "desc-ute_residual", "ute", (0.0, np.inf)),
)

_T2_RANGES_MS = {"short": (0.05, 1.0), "long": (1.0, 50.0), "mono": (0.02, 100.0), "fat": (2.0, 50.0)}


def _validate_te(te_s: Any, n_params: int) -> np.ndarray:
    te = np.atleast_1d(np.asarray(te_s, dtype=float))
    if te.ndim != 1 or not np.all(np.isfinite(te)) or np.any(te < 0):
        raise InputError(f"UTE echo times must be finite and >= 0 s, got {te.tolist()}")
    if te.max() > 0.5:
        raise InputError(f"UTE echo times look like milliseconds ({te.max():g}); give them in seconds")
    if np.any(np.diff(te) <= 0):
        raise InputError(f"UTE echo times must be strictly increasing, got {te.tolist()}")
    if te.size <= n_params:
        raise InputError(f"{te.size} echoes cannot determine {n_params} parameters: need at least {n_params + 1}")
    return te


class UteT2starModel:
    """Multi-echo UTE T2* model (see the module docstring).

    Parameters
    ----------
    te_s:
        Echo times in seconds, strictly increasing (e.g. 0.032e-3 ... 4.4e-3).
    components:
        1, 2 or 3 (3 adds fat and needs ``field_strength_t``).
    field_strength_t, fat_spectrum:
        For ``components=3``: field in tesla and fat spectrum preset (``ren_marrow`` default).
    noise_sd:
        Noise SD of the (complex) data in signal units; ``None`` estimates it from the residuals.
    rician:
        Fit the Rician expected magnitude (default ``True``: UTE magnitudes decay into the noise floor).
    t2star_short_ms_range, t2star_long_ms_range:
        Search ranges of the two water components (ms); they must not overlap.
    """

    def __init__(self, te_s: Any, *, components: int = 2, field_strength_t: float | None = None,
                 fat_spectrum: str = "ren_marrow", noise_sd: float | None = None, rician: bool = True,
                 t2star_short_ms_range: tuple[float, float] = _T2_RANGES_MS["short"],
                 t2star_long_ms_range: tuple[float, float] = _T2_RANGES_MS["long"]) -> None:
        if components not in (1, 2, 3):
            raise InputError(f"components must be 1, 2 or 3, got {components}")
        self.te_s = _validate_te(te_s, 2 * components)
        if components == 3 and (field_strength_t is None or not field_strength_t > 0):
            raise InputError("components=3 (fat) needs field_strength_t (tesla)")
        if noise_sd is not None and not (np.isfinite(noise_sd) and noise_sd >= 0):
            raise InputError(f"noise_sd must be a finite number >= 0, got {noise_sd}")
        lo_s, hi_s = map(float, t2star_short_ms_range)
        lo_l, hi_l = map(float, t2star_long_ms_range)
        if not (0 < lo_s < hi_s <= lo_l < hi_l):
            raise InputError(f"T2* ranges must be increasing and not overlap: short {t2star_short_ms_range}, "
                             f"long {t2star_long_ms_range} (ms)")
        self.components = components
        self.field_strength_t = None if field_strength_t is None else float(field_strength_t)
        self.fat_spectrum = fat_spectrum
        self.noise_sd = noise_sd
        self.rician = bool(rician)
        self.t2star_short_ms_range = (lo_s, hi_s)
        self.t2star_long_ms_range = (lo_l, hi_l)

    def parameters(self) -> dict[str, Any]:
        """Every constructor argument: ``UteT2starModel(**parameters())`` rebuilds this model."""
        return {"te_s": self.te_s.tolist(), "components": self.components, "field_strength_t": self.field_strength_t,
                "fat_spectrum": self.fat_spectrum, "noise_sd": self.noise_sd, "rician": self.rician,
                "t2star_short_ms_range": list(self.t2star_short_ms_range),
                "t2star_long_ms_range": list(self.t2star_long_ms_range)}

    @classmethod
    def from_image(cls, image, **options: Any) -> UteT2starModel:
        """Model from an :class:`~osteomri.io.image.Image` (``EchoTime`` list, ``MagneticFieldStrength``)."""
        field = image.meta.get("MagneticFieldStrength")
        options.setdefault("field_strength_t", None if field is None else float(field))
        return cls(image.echo_times_s, **options)

    # -- fitting ----------------------------------------------------------------------------------------
    def _rate_bounds(self) -> tuple[list[tuple[float, float]], list[str]]:
        if self.components == 1:
            lo, hi = _T2_RANGES_MS["mono"]
            return [(1 / hi, 1 / lo)], ["mono"]
        kinds = ["short", "long"] + (["fat"] if self.components == 3 else [])
        ranges = {"short": self.t2star_short_ms_range, "long": self.t2star_long_ms_range, "fat": _T2_RANGES_MS["fat"]}
        return [(1 / ranges[k][1], 1 / ranges[k][0]) for k in kinds], kinds

    def _predict_kernel(self, te_ms: np.ndarray, cfat: np.ndarray | None):
        k = self.components

        def model(theta: np.ndarray, rows: np.ndarray | None = None):
            amps, rates = theta[:, :k], theta[:, k:]
            if k < 3:
                return multiexp(te_ms, amps, rates)
            s_w, j_w = multiexp(te_ms, amps[:, :2], rates[:, :2])
            e_f = np.exp(-rates[:, 2:3] * te_ms[None, :])
            z = s_w + amps[:, 2:3] * e_f * cfat[None, :]
            mag = np.abs(z)
            u = np.where(mag > 0, z / np.where(mag > 0, mag, 1.0), 1.0)  # d|z|/dx = Re(conj(u) dz/dx)
            jac = np.empty(z.shape + (6,))
            jac[..., 0:2] = j_w[..., 0:2] * u.real[..., None]
            jac[..., 3:5] = j_w[..., 2:4] * u.real[..., None]
            jac[..., 2] = np.real(np.conj(u) * e_f * cfat[None, :])
            jac[..., 5] = np.real(np.conj(u) * (-te_ms[None, :]) * amps[:, 2:3] * e_f * cfat[None, :])
            return mag, jac

        return model

    def _grid_start(self, y: np.ndarray, te_ms: np.ndarray, bounds: list[tuple[float, float]],
                    cfat: np.ndarray | None) -> np.ndarray:
        """Variable projection over a log grid of the rates, all grid points in one matrix product.

        For each rate combination the basis is orthonormalised (QR): the residual is |y|^2 - |Q^T y|^2 and
        the amplitudes R^-1 Q^T y; combinations with a negative amplitude are not admitted.
        """
        k = self.components
        n_grid = 24 if k == 1 else 12
        axes = [np.geomspace(lo, hi, n_grid if i < 2 else 4) for i, (lo, hi) in enumerate(bounds)]
        combos = np.array(list(itertools.product(*axes)))  # G, k
        basis = np.exp(-combos[:, None, :] * te_ms[None, :, None])  # G, m, k
        if k == 3:
            basis[:, :, 2] *= np.abs(cfat)[None, :]  # start only: fat's magnitude envelope
        q, r = np.linalg.qr(basis)  # G, m, k and G, k, k
        n_combo = combos.shape[0]
        proj = (y @ q.transpose(1, 0, 2).reshape(te_ms.size, -1)).reshape(-1, n_combo, k)  # n, G, k
        rinv = np.linalg.inv(r)  # G, k, k (upper triangular)
        amps = np.stack([sum(proj[:, :, c] * rinv[None, :, j, c] for c in range(k)) for j in range(k)], axis=2)
        energy = (proj * proj).sum(axis=2)
        energy[(amps < 0).any(axis=2)] = -np.inf
        best = np.argmax(energy, axis=1)
        start = np.zeros((y.shape[0], 2 * k))
        rows = np.arange(y.shape[0])
        start[:, :k] = np.maximum(amps[rows, best], 0.0)
        start[:, k:] = combos[best]
        none = ~np.isfinite(energy[rows, best])  # no admissible combination: mono-like start
        start[none, :k] = y[none, :1] / k
        return start

    @staticmethod
    def _fat_multistart(kernel, theta: np.ndarray, y: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
        """Best of LM runs from the grid start and from fat fractions 0.15–0.6 of its total signal (water split
        evenly) x pore-water T2* 1.5–4 ms x fat T2* 4–30 ms."""
        starts = [theta]
        total = theta[:, :3].sum(axis=1, keepdims=True)
        water = np.array([0.5, 0.5])  # short/long split of the water signal in the extra starts
        for ff, t2l_ms, t2f_ms in itertools.product((0.15, 0.35, 0.6), (1.5, 4.0), (4.0, 12.0, 30.0)):
            t = theta.copy()
            t[:, :2] = (1 - ff) * total * water
            t[:, 2:3] = ff * total
            t[:, 4] = np.clip(1.0 / t2l_ms, lower[4], upper[4])
            t[:, 5] = np.clip(1.0 / t2f_ms, lower[5], upper[5])
            starts.append(t)
        n = theta.shape[0]
        stacked = np.concatenate(starts)
        fitted, cost, _ = levenberg_marquardt(kernel, stacked, np.tile(y, (len(starts), 1)), lower, upper, n_iter=30)
        best = np.argmin(cost.reshape(len(starts), n), axis=0)
        return fitted.reshape(len(starts), n, -1)[best, np.arange(n)]

    def _lm(self, kernel, theta: np.ndarray, y: np.ndarray, te_ms: np.ndarray, lower: np.ndarray,
            upper: np.ndarray, sigma: float, n_iter: int = 50, tol: float = 1e-7):
        """Levenberg–Marquardt of the (Rician, when sigma > 0) decay: compiled for 1–2 components."""
        if self.components < 3:
            return fit_multiexp(np.ascontiguousarray(y, dtype=float), np.ascontiguousarray(te_ms, dtype=float),
                                np.ascontiguousarray(theta, dtype=float), self.components, lower.astype(float),
                                upper.astype(float), float(sigma), _RICE_STEP, _RICE_MEAN, _RICE_DERIV, n_iter, tol)
        if sigma > 0:
            def rician_kernel(t: np.ndarray, rows: np.ndarray):
                s, j = kernel(t)
                m, d = rician_mean(s, sigma)
                return m, j * d[..., None]
            return levenberg_marquardt(rician_kernel, theta, y, lower, upper, n_iter=n_iter, tol=tol)
        return levenberg_marquardt(kernel, theta, y, lower, upper, n_iter=n_iter, tol=tol)

    def fit(self, data: np.ndarray, mask: np.ndarray | None = None) -> UteT2starFit:
        """Fit ``data[..., n_echoes]`` (magnitude or complex). ``mask`` defaults to the voxels whose first
        echo exceeds 5 % of its 99th percentile (no fitting of air)."""
        arr = np.asarray(data)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.shape[-1] != self.te_s.size:
            raise InputError(f"data have {arr.shape[-1]} echoes on the last axis, the model "
                             f"{self.te_s.size} echo times")
        mag = np.abs(arr).astype(float)
        spatial = mag.shape[:-1]
        finite = np.isfinite(mag).all(axis=-1)
        if not finite.any():
            raise InputError("UTE data contain no finite voxel")
        if mask is None:
            first = np.where(finite, mag[..., 0], 0.0)
            ref = np.percentile(first[first > 0], 99) if (first > 0).any() else 0.0
            mask = first > 0.05 * ref
        mask = np.asarray(mask, dtype=bool).reshape(spatial) & finite
        y = mag[mask]
        te_ms = self.te_s * 1e3
        bounds, kinds = self._rate_bounds()
        k = self.components
        cfat = fat_modulation(te_ms, self.field_strength_t, self.fat_spectrum) if k == 3 else None
        kernel = self._predict_kernel(te_ms, cfat)
        scale = max(float(np.max(y[:, 0])) if y.size else 1.0, 1e-30)
        yn = y / scale
        lower = np.array([0.0] * k + [b[0] for b in bounds])
        upper = np.array([np.inf] * k + [b[1] for b in bounds])
        n = yn.shape[0]
        theta = np.zeros((n, 2 * k))
        for sl in _chunks(n):  # chunks keep the batched arrays in cache
            theta[sl] = self._grid_start(yn[sl], te_ms, bounds, cfat)
            if k == 3:  # the magnitude of a fat-modulated sum is multimodal: several starts
                theta[sl] = self._fat_multistart(kernel, theta[sl], yn[sl], lower, upper)
        dof = max(te_ms.size - 2 * k, 1)
        if self.noise_sd is not None:
            sigma = self.noise_sd / scale
        elif n:  # noise SD from Gaussian fits of (an even subsample of) the voxels
            sub = np.linspace(0, n - 1, min(n, 4096)).astype(int)
            _, sub_cost, _ = self._lm(kernel, theta[sub], yn[sub], te_ms, lower, upper, 0.0, n_iter=30)
            sigma = float(np.sqrt(np.median(sub_cost) / dof))
        else:
            sigma = 0.0
        use_rice = self.rician and sigma > 0

        cost = np.zeros(n)
        jac = np.zeros((n, te_ms.size, 2 * k))
        for sl in _chunks(n):
            theta[sl], cost[sl], jac[sl] = self._lm(kernel, theta[sl], yn[sl], te_ms, lower, upper,
                                                    sigma if use_rice else 0.0)
        if self.noise_sd is None and n:
            sigma = float(np.sqrt(np.median(cost) / dof))
        units = np.r_[[scale] * k, [1.0] * k]  # amplitudes back to signal units; rates unchanged
        cov = crlb_covariance(jac, sigma) * units[:, None] * units[None, :] if n else np.zeros((0, 2 * k, 2 * k))
        return UteT2starFit(model=self, mask=mask, theta=theta * units, cov=cov, cost=cost * scale**2,
                            noise_sd=sigma * scale, kinds=kinds)


class UteT2starFit(VoxelFit):
    """Fitted UTE T2* maps (spatial shape of the input; NaN outside ``mask``).

    ``maps()`` keys: ``ute_s0``, ``t2star_ms`` (mono) or ``t2star_short_ms``, ``t2star_long_ms``,
    ``fraction_short`` (bi), plus ``t2star_fat_ms``, ``fraction_fat`` (tri), and ``ute_residual``; ``sd`` holds
    Cramér–Rao SDs keyed ``<map>_sd``; ``qc`` the noise SD used and the fitted voxel count.
    """

    def __init__(self, *, model: UteT2starModel, mask: np.ndarray, theta: np.ndarray, cov: np.ndarray,
                 cost: np.ndarray, noise_sd: float, kinds: list[str]) -> None:
        self.model = model
        self.mask = mask
        self._theta = theta
        self._cost = cost
        k = model.components
        amps, rates = theta[:, :k], theta[:, k:]
        s0 = amps.sum(axis=1)
        safe = np.where(s0 > 0, s0, np.nan)
        values: dict[str, np.ndarray] = {"ute_s0": s0}
        sds: dict[str, np.ndarray] = {}
        sd = np.sqrt(np.maximum(np.einsum("npp->np", cov), 0.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            t2 = 1.0 / rates
            sd_t2 = sd[:, k:] / rates**2
            if k == 1:
                values["t2star_ms"], sds["t2star_ms_sd"] = t2[:, 0], sd_t2[:, 0]
            else:
                values["t2star_short_ms"], values["t2star_long_ms"] = t2[:, 0], t2[:, 1]
                sds["t2star_short_ms_sd"], sds["t2star_long_ms_sd"] = sd_t2[:, 0], sd_t2[:, 1]
                values["fraction_short"] = amps[:, 0] / safe
                grad = np.zeros_like(theta)
                grad[:, :k] = -amps[:, 0:1] / safe[:, None] ** 2
                grad[:, 0] += 1.0 / safe
                sds["fraction_short_sd"] = np.sqrt(np.einsum("np,npq,nq->n", grad, cov, grad))
                if k == 3:
                    values["t2star_fat_ms"], sds["t2star_fat_ms_sd"] = t2[:, 2], sd_t2[:, 2]
                    values["fraction_fat"] = amps[:, 2] / safe
            n = model.te_s.size
            values["ute_residual"] = np.sqrt(cost / n) / safe
        self._values = values
        self._sds = sds
        self.qc: dict[str, Any] = {"noise_sd": float(noise_sd), "n_fitted_voxels": int(mask.sum()),
                                   "components": kinds}

    def predict(self, te_s: np.ndarray | None = None) -> np.ndarray:
        """Noise-free magnitude ``[..., n_te]`` at ``te_s`` (default: the fitted echo times); NaN outside mask."""
        te = self.model.te_s if te_s is None else np.atleast_1d(np.asarray(te_s, dtype=float))
        te_ms = te * 1e3
        cfat = (fat_modulation(te_ms, self.model.field_strength_t, self.model.fat_spectrum)
                if self.model.components == 3 else None)
        s, _ = self.model._predict_kernel(te_ms, cfat)(self._theta)
        out = np.full(self.mask.shape + (te.size,), np.nan, dtype=np.float32)
        out[self.mask] = s
        return out


def _chunks(n: int, size: int = 8192) -> list[slice]:
    return [slice(i, min(i + size, n)) for i in range(0, n, size)]
