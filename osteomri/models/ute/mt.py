"""``UteMtModel`` / ``UteMtFit``: two-pool quantitative magnetization transfer of UTE-MT data.

Pools: free water (a) and macromolecules (b: collagen backbone protons). Under a train of off-resonance
saturation pulses replaced by their continuous-wave power equivalent (CWPE), the steady-state free-pool
magnetization follows from the coupled Bloch–McConnell longitudinal equations (Henkelman et al., MRM
1993;29:759; Ramani et al., Magn Reson Imaging 2002;20:721)::

    0 = R_a (M0a - Ma) - k_m Ma + k_w Mb - R_rfa Ma
    0 = R_b (M0b - Mb) - k_w Mb + k_m Ma - R_rfb Mb

    Ma / M0a = [R_a (R_b + k_w + R_rfb) + R_b k_m] / [(R_a + k_m + R_rfa)(R_b + k_w + R_rfb) - k_w k_m]

with k_w = R M0a (``exchange_rate_hz``, RM0w of Ma et al. 2018), k_m = R M0b = k_w f / (1 - f), f = M0b /
(M0a + M0b) the macromolecular fraction (``mmf_percent``), R_rfb = pi w^2 g_b(2 pi D, T2b) with g_b the
super-Lorentzian lineshape (Morrison & Henkelman, MRM 1995;33:475), R_rfa = w^2 T2a / (1 + (2 pi D T2a)^2)
the free pool's Lorentzian direct saturation, and w^2 the CWPE power of the MT pulse (Ramani 2002):
w^2 = (theta / (p1 tau))^2 p2 tau / TR, p1 and p2 the mean and mean square of the normalised envelope. This
is the model of Ma et al., MRM 2018;79:1941 (UTE-MT of cortical bone: tibia f 54.5 %, T2b 15.4 us, R1w 8.9
1/s, RM0w 9.5 1/s).

Choices pinned so that results compare across sites:

* ``offsets_hz`` and ``pulse_flip_deg`` give one entry per measurement, in the order of the last data axis;
  ``tr_s`` is the period over which the MT pulse's power is averaged; ``excitation_flip_deg`` is recorded
  (the small UTE excitation is neglected in the steady state, as in Ma 2018).
* ``pulse_shape="fermi"`` is Bernstein's Fermi envelope (Handbook of MRI Pulse Sequences 2004): b(t) = 1 / (1 +
  exp((|t| - t0) / a)), t0 = 10 a, tau = 2 t0 + 13.81 a; any other envelope may be given as samples.
* R_a = ``r1_water_hz`` (the free-pool R1, scalar or map); R_b = ``r1_macromolecule_hz`` (1 1/s). Instead,
  an observed R1 (``r1_observed_hz``, e.g. from :class:`~osteomri.models.ute.vfa.UteVfaT1Model`) is converted
  jointly with the fit through the slow eigenvalue of the two-pool longitudinal relaxation (Henkelman 1993):
  R_a = R1obs - k_m (R_b - R1obs) / (R_b - R1obs + k_w). This couples R_a to f and k_w, so f's Cramér–Rao SD
  grows (reported in ``sd``).
* Fitted: the scale S0 (the unsaturated signal; fixed at 1 when ``m0`` is given), f, k_w, T2a (free-pool T2,
  which dominates direct saturation at 2 kHz) and T2b. Noise SD from the residuals unless ``noise_sd`` given.

Fitting is vectorised over voxels: a multi-start set of starting points is scored for all voxels at once
(S0 in closed form), then a batched Levenberg–Marquardt (:mod:`osteomri.models.lm`) in log/logit
parameters. The super-Lorentzian is tabulated once as g_b = T2b G(2 pi D T2b) (log-spaced, cubic).
"""

from __future__ import annotations

import itertools
from functools import lru_cache
from typing import Any

import numpy as np
from scipy.interpolate import CubicSpline

from osteomri.errors import InputError
from osteomri.models.lm import crlb_sd, levenberg_marquardt
from osteomri.models.registry import MapSpec, register_maps
from osteomri.models.ute.fit import VoxelFit

register_maps(
    MapSpec("mmf_percent", "%", "macromolecular proton fraction of the two-pool UTE-MT model", "desc-ute_MMF",
            "ute_mt", (0.0, 100.0)),
    MapSpec("t2_macromolecule_us", "us", "T2 of the macromolecular pool (super-Lorentzian)", "desc-macromolecule_T2map",
            "ute_mt", (0.0, np.inf)),
    MapSpec("exchange_rate_hz", "1/s", "exchange rate R M0a from the macromolecular to the free pool (RM0w)",
            "desc-ute_exchangerate", "ute_mt", (0.0, np.inf)),
    MapSpec("t2_free_water_ms", "ms", "T2 of the free (water) pool of the two-pool UTE-MT model",
            "desc-freewater_T2map", "ute_mt", (0.0, np.inf)),
    MapSpec("r1_free_water_hz", "1/s", "longitudinal relaxation rate of the free (water) pool used in the fit",
            "desc-freewater_R1map", "ute_mt", (0.0, np.inf)),
    MapSpec("ute_mt_s0", "{a.u.}", "unsaturated UTE-MT signal (S0)", "desc-utemt_S0map", "ute_mt", (0.0, np.inf)),
    MapSpec("ute_mt_residual", "1", "root-mean-square UTE-MT fit residual relative to S0", "desc-utemt_residual",
            "ute_mt", (0.0, np.inf)),
)

_PARAMS = ("s0", "mmf", "exchange_rate_hz", "t2_free_water_ms", "t2_macromolecule_us")


# -- lineshape and pulse power ------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _super_lorentzian_table() -> CubicSpline:
    """log G(x) against log x, x = 2 pi D T2b, G = g_b / T2b = int_0^1 sqrt(2/pi) / |3c^2 - 1|
    exp(-2 x^2 / (3c^2 - 1)^2) dc (c = cos theta; Morrison & Henkelman 1995)."""
    log_x = np.linspace(np.log(1e-3), np.log(50.0), 600)
    c = (np.arange(200_000) + 0.5) / 200_000  # midpoint rule, fine near the magic angle
    u = np.abs(3 * c * c - 1)
    g = np.empty_like(log_x)
    for i, lx in enumerate(log_x):
        x = np.exp(lx)
        g[i] = np.mean(np.sqrt(2 / np.pi) / u * np.exp(-2 * x * x / (u * u)))
    return CubicSpline(log_x, np.log(np.maximum(g, 1e-300)))


def super_lorentzian(offset_hz: np.ndarray, t2_s: np.ndarray) -> np.ndarray:
    """Super-Lorentzian lineshape g(2 pi D, T2) in seconds (normalised over angular frequency)."""
    x = 2 * np.pi * np.abs(np.asarray(offset_hz, dtype=float)) * np.asarray(t2_s, dtype=float)
    lx = np.log(np.clip(x, 1e-3, 50.0))
    return np.asarray(t2_s) * np.exp(_super_lorentzian_table()(lx))


def fermi_envelope(n_samples: int = 1001) -> np.ndarray:
    """Bernstein's Fermi envelope on [-tau/2, tau/2]: 1 / (1 + exp((|t| - t0)/a)), t0 = 10 a, tau = 2 t0 + 13.81 a."""
    a = 1.0 / 33.81  # tau = 1
    t = np.linspace(-0.5, 0.5, n_samples)
    return 1.0 / (1.0 + np.exp((np.abs(t) - 10 * a) / a))


def cw_power_equivalent(flip_deg: np.ndarray, duration_s: float, tr_s: float,
                        envelope: np.ndarray | None = None) -> np.ndarray:
    """Mean-square B1 of the MT pulse as an angular frequency, w^2_cwpe (rad^2/s^2) (Ramani et al. 2002).

    w^2 = (theta / (p1 tau))^2 p2 tau / TR, with p1 and p2 the mean and mean square of the envelope
    normalised to its peak.
    """
    b = fermi_envelope() if envelope is None else np.abs(np.asarray(envelope, dtype=float))
    if b.ndim != 1 or b.size < 3 or not np.all(np.isfinite(b)) or b.max() <= 0:
        raise InputError("the MT pulse envelope must be a 1-D array of >= 3 finite samples, not all zero")
    b = b / b.max()
    p1, p2 = b.mean(), (b * b).mean()
    theta = np.deg2rad(np.asarray(flip_deg, dtype=float))
    return (theta / (p1 * duration_s)) ** 2 * p2 * duration_s / tr_s


def two_pool_signal(offsets_hz: np.ndarray, w2: np.ndarray, s0: np.ndarray, mmf: np.ndarray, k_w: np.ndarray,
                    t2a_s: np.ndarray, t2b_s: np.ndarray, r1a: np.ndarray | None, r1b: float = 1.0,
                    r1_observed: np.ndarray | None = None) -> np.ndarray:
    """Steady-state free-pool signal ``[n, m]`` (see the module docstring); parameters ``[n]`` or scalars."""
    col = [np.asarray(v, dtype=float).reshape(-1, 1) for v in (s0, mmf, k_w, t2a_s, t2b_s)]
    s0, f, kw, t2a, t2b = col
    f = np.clip(f, 1e-9, 1 - 1e-9)
    km = kw * f / (1 - f)
    if r1_observed is not None:
        ro = np.asarray(r1_observed, dtype=float).reshape(-1, 1)
        ra = ro - km * (r1b - ro) / (r1b - ro + kw)
    else:
        ra = np.asarray(r1a, dtype=float).reshape(-1, 1)
    d = 2 * np.pi * offsets_hz[None, :]
    rrfb = np.pi * w2[None, :] * super_lorentzian(offsets_hz[None, :], t2b)
    rrfa = w2[None, :] * t2a / (1 + (d * t2a) ** 2)
    den_b = r1b + kw + rrfb
    return s0 * (ra * den_b + r1b * km) / ((ra + km + rrfa) * den_b - kw * km)


def _free_r1(r1_observed: np.ndarray, mmf: np.ndarray, k_w: np.ndarray, r1b: float) -> np.ndarray:
    km = k_w * mmf / (1 - mmf)
    return r1_observed - km * (r1b - r1_observed) / (r1b - r1_observed + k_w)


class UteMtModel:
    """Two-pool UTE-MT model for a protocol (see the module docstring for every choice).

    Parameters
    ----------
    offsets_hz, pulse_flip_deg:
        Off-resonance frequency (Hz) and flip angle (deg) of the MT pulse of each measurement, in the order of
        the data's last axis.
    pulse_duration_s, tr_s:
        MT pulse duration and the period over which its power is averaged (s).
    excitation_flip_deg:
        UTE excitation flip angle (recorded).
    pulse_shape:
        ``"fermi"`` (Bernstein) or an array of envelope samples.
    r1_water_hz:
        Free-pool R1 (1/s), a scalar or a map; exclusive with ``r1_observed_hz``.
    r1_observed_hz:
        Observed (single-pool) R1 (1/s), scalar or map, converted jointly with the fit.
    r1_macromolecule_hz:
        Macromolecular-pool R1 (default 1 1/s).
    noise_sd:
        Noise SD in signal units; ``None`` estimates it from the residuals.
    """

    def __init__(self, offsets_hz: Any, pulse_flip_deg: Any, pulse_duration_s: float, tr_s: float,
                 excitation_flip_deg: float, *, pulse_shape: Any = "fermi", r1_water_hz: Any = None,
                 r1_observed_hz: Any = None, r1_macromolecule_hz: float = 1.0, noise_sd: float | None = None) -> None:
        off = np.atleast_1d(np.asarray(offsets_hz, dtype=float))
        flip = np.atleast_1d(np.asarray(pulse_flip_deg, dtype=float))
        if off.ndim != 1 or flip.shape != off.shape:
            raise InputError(f"offsets_hz ({off.size}) and pulse_flip_deg ({flip.size}) need one entry per "
                             "measurement")
        if not (np.all(np.isfinite(off)) and np.all(np.abs(off) > 0)):
            raise InputError(f"MT offsets must be finite and non-zero (Hz), got {off.tolist()}")
        if not (np.all(np.isfinite(flip)) and np.all(flip > 0)):
            raise InputError(f"MT pulse flip angles must be > 0 deg, got {flip.tolist()}")
        if off.size <= len(_PARAMS):
            raise InputError(f"{off.size} MT measurements cannot determine {len(_PARAMS)} parameters")
        for name, v in (("pulse_duration_s", pulse_duration_s), ("tr_s", tr_s)):
            if v is None or not (np.isfinite(v) and v > 0):
                raise InputError(f"{name} must be a positive number of seconds, got {v}")
        if pulse_duration_s > tr_s:
            raise InputError(f"MT pulse ({pulse_duration_s} s) longer than its period tr_s ({tr_s} s)")
        if excitation_flip_deg is None or not np.isfinite(excitation_flip_deg):
            raise InputError("excitation_flip_deg is required (deg)")
        if (r1_water_hz is None) == (r1_observed_hz is None):
            raise InputError("give exactly one of r1_water_hz (free-pool R1) and r1_observed_hz (observed R1)")
        for name, v in (("r1_water_hz", r1_water_hz), ("r1_observed_hz", r1_observed_hz)):
            if v is not None and not (np.all(np.isfinite(v)) and np.all(np.asarray(v) > 0)):
                raise InputError(f"{name} must be > 0 (1/s)")
        self.offsets_hz = off
        self.pulse_flip_deg = flip
        self.pulse_duration_s = float(pulse_duration_s)
        self.tr_s = float(tr_s)
        self.excitation_flip_deg = float(excitation_flip_deg)
        self.pulse_shape = pulse_shape
        envelope = None if isinstance(pulse_shape, str) and pulse_shape == "fermi" else pulse_shape
        if isinstance(pulse_shape, str) and pulse_shape != "fermi":
            raise InputError(f"unknown MT pulse shape {pulse_shape!r}: 'fermi' or an array of envelope samples")
        self.w2 = cw_power_equivalent(flip, self.pulse_duration_s, self.tr_s, envelope)
        self.r1_water_hz = r1_water_hz
        self.r1_observed_hz = r1_observed_hz
        self.r1_macromolecule_hz = float(r1_macromolecule_hz)
        self.noise_sd = noise_sd

    def parameters(self) -> dict[str, Any]:
        """Every constructor argument (maps of R1 are summarised by their shape)."""

        def plain(v: Any) -> Any:
            if v is None or np.isscalar(v):
                return v
            a = np.asarray(v)
            return a.tolist() if a.ndim <= 1 and a.size <= 4096 else f"map of shape {a.shape}"

        return {"offsets_hz": self.offsets_hz.tolist(), "pulse_flip_deg": self.pulse_flip_deg.tolist(),
                "pulse_duration_s": self.pulse_duration_s, "tr_s": self.tr_s,
                "excitation_flip_deg": self.excitation_flip_deg, "pulse_shape": plain(self.pulse_shape),
                "r1_water_hz": plain(self.r1_water_hz), "r1_observed_hz": plain(self.r1_observed_hz),
                "r1_macromolecule_hz": self.r1_macromolecule_hz, "noise_sd": self.noise_sd}

    @classmethod
    def from_protocol(cls, protocol: dict[str, Any], **options: Any) -> UteMtModel:
        """Model from a protocol dict (see :mod:`osteomri.models.ute.protocol`)."""
        from osteomri.models.ute.protocol import mt_arguments

        return cls(**{**mt_arguments(protocol), **options})

    @classmethod
    def from_image(cls, image, **options: Any) -> UteMtModel:
        """Model from an Image whose meta carries the protocol's keys (``offsets_hz``, ``pulse_flip_deg``, ...,
        e.g. from a sidecar written by a protocol), overridden by ``options``."""
        from osteomri.models.ute.protocol import KEYS

        required, optional = KEYS["mt"]
        found = {k: image.meta[k] for k in required | optional if k in image.meta}
        return cls.from_protocol({**found, **options})

    # -- fitting -----------------------------------------------------------------------------------------
    def _r1_per_voxel(self, value: Any, mask: np.ndarray) -> np.ndarray | None:
        if value is None:
            return None
        a = np.asarray(value, dtype=float)
        if a.ndim == 0:
            return np.full(int(mask.sum()), float(a))
        if a.shape != mask.shape:
            raise InputError(f"R1 map shape {a.shape} does not match the data's spatial shape {mask.shape}")
        return a[mask]

    def fit(self, data: np.ndarray, mask: np.ndarray | None = None, m0: np.ndarray | None = None) -> UteMtFit:
        """Fit ``data[..., n_measurements]``; ``m0`` (spatial shape) an MT-free reference that fixes S0."""
        arr = np.abs(np.asarray(data, dtype=complex if np.iscomplexobj(data) else float))
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.shape[-1] != self.offsets_hz.size:
            raise InputError(f"UTE-MT data have {arr.shape[-1]} measurements on the last axis, the protocol "
                             f"{self.offsets_hz.size}")
        spatial = arr.shape[:-1]
        finite = np.isfinite(arr).all(axis=-1)
        if not finite.any():
            raise InputError("UTE-MT data contain no finite voxel")
        if mask is None:
            ref = np.where(finite, arr.max(axis=-1), 0.0)
            mask = ref > 0.05 * np.percentile(ref[ref > 0], 99) if (ref > 0).any() else ref > 0
        mask = np.asarray(mask, dtype=bool).reshape(spatial) & finite
        y = arr[mask]
        n = y.shape[0]
        ref = None
        if m0 is not None:
            m0 = np.asarray(m0, dtype=float).reshape(spatial)
            ref = m0[mask]
            if not np.all(np.isfinite(ref) & (ref > 0)):
                raise InputError("m0 must be finite and > 0 in every fitted voxel")
            y = y / ref[:, None]
        r1a = self._r1_per_voxel(self.r1_water_hz, mask)
        r1o = self._r1_per_voxel(self.r1_observed_hz, mask)
        scale = np.ones(n) if ref is not None else np.maximum(y.max(axis=1), 1e-30)
        yn = y / scale[:, None]
        theta, cost, jac = self._solve(yn, r1a, r1o, fixed_s0=ref is not None)
        unit = scale * (ref if ref is not None else 1.0)  # normalised -> raw signal units, per voxel
        n_free = len(_PARAMS) - (ref is not None)
        dof = max(y.shape[1] - n_free, 1)
        if self.noise_sd is not None:
            sigma_raw = float(self.noise_sd)
        else:
            sigma_raw = float(np.sqrt(np.median(cost * unit**2) / dof)) if n else 0.0
        sd_u = crlb_sd(jac, sigma_raw / unit) if n else np.zeros((0, 5))
        return UteMtFit(model=self, mask=mask, u=theta, sd_u=sd_u, cost=cost, unit=unit, s0_scale=scale,
                        r1a=r1a, r1o=r1o, noise_sd=sigma_raw, fixed_s0=ref is not None)

    def _solve(self, yn: np.ndarray, r1a: np.ndarray | None, r1o: np.ndarray | None, fixed_s0: bool):
        """Multi-start + batched LM on u = (log S0, logit f, log k_w, log T2a[ms], log T2b[us])."""
        n = yn.shape[0]
        off, w2, rb = self.offsets_hz, self.w2, self.r1_macromolecule_hz

        def shape(u: np.ndarray, ra: np.ndarray | None, ro: np.ndarray | None) -> np.ndarray:
            f = 1 / (1 + np.exp(-u[:, 1]))
            return two_pool_signal(off, w2, 1.0, f, np.exp(u[:, 2]), np.exp(u[:, 3]) * 1e-3, np.exp(u[:, 4]) * 1e-6,
                                   ra, rb, ro)

        starts = list(itertools.product([0.3, 0.5, 0.7], [5.0, 20.0], [0.3, 1.0, 3.0], [8.0, 15.0, 30.0]))
        best_cost = np.full(n, np.inf)
        u0 = np.zeros((n, 5))
        for f, kw, t2a, t2b in starts:
            u = np.tile([0.0, np.log(f / (1 - f)), np.log(kw), np.log(t2a), np.log(t2b)], (n, 1))
            m = shape(u, r1a, r1o)
            s0 = np.ones(n) if fixed_s0 else np.maximum((m * yn).sum(1) / np.maximum((m * m).sum(1), 1e-30), 1e-30)
            c = ((yn - s0[:, None] * m) ** 2).sum(1)
            better = c < best_cost
            best_cost[better] = c[better]
            u[:, 0] = np.log(s0)
            u0[better] = u[better]

        lower = np.array([-np.inf, np.log(1e-3 / (1 - 1e-3)), np.log(0.1), np.log(0.01), np.log(1.0)])
        upper = np.array([np.inf, np.log(0.97 / 0.03), np.log(500.0), np.log(100.0), np.log(100.0)])
        if fixed_s0:
            lower[0] = upper[0] = 0.0

        def model(u: np.ndarray, rows: np.ndarray) -> np.ndarray:
            ra = None if r1a is None else r1a[rows]
            ro = None if r1o is None else r1o[rows]
            return np.exp(u[:, :1]) * shape(u, ra, ro)

        if n == 0:
            return u0, np.zeros(0), np.zeros((0, yn.shape[1], 5))
        return levenberg_marquardt(model, u0, yn, lower, upper)


class UteMtFit(VoxelFit):
    """Fitted UTE-MT maps (NaN outside ``mask``): ``mmf_percent``, ``t2_macromolecule_us``,
    ``exchange_rate_hz`` (RM0w), ``t2_free_water_ms``, ``r1_free_water_hz`` (given, or converted from the
    observed R1), ``ute_mt_s0`` and ``ute_mt_residual``; ``sd`` the Cramér–Rao SDs (``<map>_sd``)."""

    def __init__(self, *, model: UteMtModel, mask: np.ndarray, u: np.ndarray, sd_u: np.ndarray, cost: np.ndarray,
                 unit: np.ndarray, s0_scale: np.ndarray, r1a: np.ndarray | None, r1o: np.ndarray | None,
                 noise_sd: float, fixed_s0: bool) -> None:
        self.model = model
        self.mask = mask
        self._u = u
        self._unit = unit
        self._r1a, self._r1o = r1a, r1o
        f = 1 / (1 + np.exp(-u[:, 1]))
        kw, t2a, t2b = np.exp(u[:, 2]), np.exp(u[:, 3]), np.exp(u[:, 4])
        s0 = np.exp(u[:, 0]) * unit
        r1 = r1a if r1a is not None else _free_r1(r1o, f, kw, model.r1_macromolecule_hz)
        self._values = {"mmf_percent": 100 * f, "t2_macromolecule_us": t2b, "exchange_rate_hz": kw,
                        "t2_free_water_ms": t2a, "r1_free_water_hz": r1, "ute_mt_s0": s0,
                        "ute_mt_residual": np.sqrt(cost / model.offsets_hz.size) / np.exp(u[:, 0])}
        self._sds = {"mmf_percent_sd": 100 * f * (1 - f) * sd_u[:, 1], "t2_macromolecule_us_sd": t2b * sd_u[:, 4],
                     "exchange_rate_hz_sd": kw * sd_u[:, 2], "t2_free_water_ms_sd": t2a * sd_u[:, 3],
                     "ute_mt_s0_sd": s0 * (0.0 if fixed_s0 else 1.0) * sd_u[:, 0]}
        source = "free-pool R1 given" if r1a is not None else "converted from observed R1"
        self.qc: dict[str, Any] = {"noise_sd": noise_sd, "n_fitted_voxels": int(mask.sum()), "r1_source": source}

    def predict(self) -> np.ndarray:
        """Noise-free signal ``[..., n_measurements]`` (raw units); NaN outside the mask."""
        v = self._values
        s = two_pool_signal(self.model.offsets_hz, self.model.w2, v["ute_mt_s0"], v["mmf_percent"] / 100,
                            v["exchange_rate_hz"], v["t2_free_water_ms"] * 1e-3, v["t2_macromolecule_us"] * 1e-6,
                            self._r1a, self.model.r1_macromolecule_hz, self._r1o)
        out = np.full(self.mask.shape + (s.shape[1],), np.nan, dtype=np.float32)
        out[self.mask] = s
        return out
