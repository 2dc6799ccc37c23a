"""Even-echo phase correction for multi-echo gradient echo with a bipolar (alternating) readout.

With alternating readout gradients, gradient delays and eddy currents give the even echoes (2nd, 4th, ...)
a phase error relative to the odd ones that is, to first order, a constant plus a linear ramp along the
readout direction (Lu et al., MRM 2008;60:198; Yu et al., JMRI 2010;31:1264):

    s_n(x) -> s_n(x) exp(i theta(x)) for even n,   theta(x) = phase0 + ramp * (x - (N - 1) / 2)

with ``x`` the voxel index along the readout axis (length ``N``), so ``phase0_rad`` is the error at the
centre of that axis (rad) and ``ramp_rad_per_voxel`` its slope (rad per voxel).

Estimation (uniform echo spacing ``dTE``). For an even echo ``k`` and its odd neighbours the ratio

    zeta_k = s_k^2 / (s_(k-1) s_(k+1)) = exp(2 i theta) g_k(eta),   g_k = m_k^2 / (m_(k-1) m_(k+1)),
    m_n = 1 - eta + eta c_n

does not depend on the field map, the R2* or the initial phase (they cancel for equally spaced echoes), only
on the error and on the voxel's fat fraction ``eta`` (W and F share one phase, so the mixture is real;
``c_n`` the fat signal, :func:`.signal.fat_basis`). Per voxel ``eta`` is taken from a grid on [0, 1] by
least squares in ``log zeta`` (the modulus, free of the error, and the spread of the phase over the even
echoes about their common phase), weights ``w_k = 1 / (4/|s_k|^2 + 1/|s_(k-1)|^2 + 1/|s_(k+1)|^2)`` (the
inverse variance of ``log zeta_k`` in noise units); then ``2 theta_v = arg sum_k w_k zeta_k / g_k`` with
weight ``sum_k w_k``. Without a fat signal every voxel is one spectral line (``g = 1``), which biases
``theta`` in water–fat mixtures. The model ``2 theta(x)`` is fitted to the ``2 theta_v`` (rad):

1. for each candidate axis, the weighted phasors summed over the other axes are Fourier-transformed
   (zero-padded); the peak gives the ramp, and the axis with the most coherent peak is the readout axis;
2. iteratively reweighted least squares of the wrapped residual (Tukey biweight, scale from the weighted
   median absolute residual) refines constant and ramp.

``2 theta`` leaves ``theta`` defined modulo pi; ``phase0_rad`` is taken in (-pi/2, pi/2]. The other branch is
not a different separation: even echoes times -1 equal a field-map shift of 1 / (2 dTE) with uniform echo
spacing, which the separation absorbs exactly (only the field map's offset changes). This is also why the
error is not estimated from a per-voxel water–fat fit: there an even-echo phase trades off against the
field map and, fat being near opposed phase at many echo spacings, against the fat fraction.

Not corrected: an even/odd amplitude difference, an error that changes along the echo train, and the opposite
chemical-shift displacement of fat along the readout in even and odd echoes (fat shift / bandwidth per voxel
each way; Lu et al. 2008), which blurs thin fat layers that are cut by the readout direction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from osteomri.errors import InputError
from osteomri.models.waterfat.varpro import uniform_echo_spacing


@dataclass(frozen=True)
class BipolarPhaseError:
    """Estimated even-echo phase error ``theta(x) = phase0_rad + ramp_rad_per_voxel * (x - (N - 1) / 2)``.

    ``readout_axis`` is a spatial axis of the signal, ``n_voxels`` the voxels used, ``coherence`` the
    weighted mean cosine of the fit residual of ``2 theta`` over them (1 = every voxel on the model).
    """

    phase0_rad: float
    ramp_rad_per_voxel: float
    readout_axis: int
    n_voxels: int = 0
    coherence: float = 1.0

    def phase_map(self, spatial_shape: tuple[int, ...]) -> np.ndarray:
        """``theta`` (rad) broadcastable to ``spatial_shape`` (varies along the readout axis only)."""
        n = spatial_shape[self.readout_axis]
        x = np.arange(n) - (n - 1) / 2
        shape = [1] * len(spatial_shape)
        shape[self.readout_axis] = n
        return (self.phase0_rad + self.ramp_rad_per_voxel * x).reshape(shape)

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def check_bipolar_echo_times(te_s: np.ndarray) -> None:
    """Raise :class:`InputError` unless ``te_s`` (s) are >= 4 increasing, uniformly spaced echo times (1 %)."""
    te = np.asarray(te_s, float).ravel()
    if te.size < 4:
        raise InputError(f"bipolar phase correction needs at least 4 echoes, got {te.size}")
    if np.any(np.diff(te) <= 0) or uniform_echo_spacing(te, rel_tol=0.01) is None:
        raise InputError("bipolar phase correction needs increasing, uniformly spaced echo times; "
                         f"got {np.round(te * 1e3, 4).tolist()} ms")


def _check(signal: np.ndarray, te_s: np.ndarray | None) -> np.ndarray:
    signal = np.asarray(signal)
    if not np.iscomplexobj(signal):
        raise InputError(f"bipolar phase correction needs complex data, got dtype {signal.dtype}")
    if signal.ndim < 2:
        raise InputError(f"signal must be [spatial..., n_echoes] with >= 1 spatial axis, got shape {signal.shape}")
    if signal.shape[-1] < 4:
        raise InputError(f"bipolar phase correction needs at least 4 echoes, got {signal.shape[-1]}")
    if te_s is not None:
        if np.size(te_s) != signal.shape[-1]:
            raise InputError(f"{np.size(te_s)} echo times for {signal.shape[-1]} echoes")
        check_bipolar_echo_times(te_s)
    return signal


def _peak_slope(profile: np.ndarray, pad: int = 16) -> tuple[float, float]:
    """Slope ``g`` (rad/voxel) maximising ``|sum_x p(x) exp(-i g x)|``, and that maximum."""
    n = profile.size
    spec = np.abs(np.fft.fft(profile, pad * n))
    j = int(np.argmax(spec))
    j = j if j < spec.size // 2 else j - spec.size
    return 2 * np.pi * j / spec.size, float(spec.max())


def _weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    order = np.argsort(values)
    cum = np.cumsum(weights[order])
    return float(values[order][np.searchsorted(cum, 0.5 * cum[-1])])


def _voxel_phases(s: np.ndarray, fat_signal: np.ndarray | None, n_eta: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-voxel ``2 theta`` (rad) and its weight from ``s`` [v, n] (no zero samples); see the module docstring."""
    n = s.shape[1]
    k = np.arange(1, n - 1, 2)  # 0-based odd = even echoes with both neighbours
    a2 = np.abs(s) ** 2
    zeta = s[:, k] ** 2 / (s[:, k - 1] * s[:, k + 1])  # [v, K]
    w = 1.0 / (4.0 / a2[:, k] + 1.0 / a2[:, k - 1] + 1.0 / a2[:, k + 1])  # 1 / var(log zeta), times sigma^2
    unit = w * np.exp(1j * np.angle(zeta))
    if fat_signal is None:
        return np.angle(unit.sum(axis=1)), w.sum(axis=1)
    eta = np.linspace(0.0, 1.0, n_eta)  # fat fraction of the common-phase mixture W + F c
    m = (1 - eta)[:, None] + eta[:, None] * fat_signal[None, :]
    g = m[:, k] ** 2 / (m[:, k - 1] * m[:, k + 1])  # [e, K], zeta of the mixture without error
    log_mag, log_g = np.log(np.abs(zeta)), np.log(np.abs(g))
    p = unit @ np.exp(-1j * np.angle(g)).T  # [v, e]: sum_k w_k exp(i (arg zeta_k - arg g_k))
    # 0.5 sum_k w (log|zeta| - log|g|)^2  +  sum_k w (1 - cos(phase residual about the best common phase))
    cost = 0.5 * ((w * log_mag**2).sum(axis=1)[:, None] - 2 * (w * log_mag) @ log_g.T + w @ (log_g**2).T)
    cost += w.sum(axis=1)[:, None] - np.abs(p)
    best = np.argmin(cost, axis=1)
    return np.angle(p[np.arange(p.shape[0]), best]), w.sum(axis=1)


def estimate_bipolar_phase(signal: np.ndarray, te_s: np.ndarray | None = None, *, readout_axis: int | None = None,
                           fat_signal: np.ndarray | None = None, mask: np.ndarray | None = None,
                           signal_fraction: float = 0.1, max_voxels: int = 100_000, n_eta: int = 41,
                           n_iter: int = 10) -> BipolarPhaseError:
    """Estimate the even-echo phase error of ``signal`` [spatial..., n_echoes] (complex, >= 4 echoes).

    ``te_s`` (s), when given, must be uniformly spaced (the estimator assumes it). ``readout_axis``: a
    spatial axis, or None to detect it. ``fat_signal``: fat signal per echo (:func:`.signal.fat_basis`, in the
    data's precession convention) for the water–fat mixture term; None treats every voxel as one spectral
    line. Voxels used: ``mask`` (spatial shape) or those whose rms signal exceeds ``signal_fraction`` of the
    99th percentile, at most ``max_voxels`` of them (evenly strided); ``n_eta`` fat-fraction grid points.
    """
    signal = _check(signal, te_s)
    spatial = signal.shape[:-1]
    axes = [a for a in range(len(spatial)) if spatial[a] > 1] or [0]
    if readout_axis is not None:
        if not -len(spatial) <= readout_axis < len(spatial):
            raise InputError(f"readout_axis {readout_axis} is not a spatial axis of shape {spatial}")
        axes = [readout_axis % len(spatial)]
    n = signal.shape[-1]
    if fat_signal is not None:
        fat_signal = np.asarray(fat_signal, complex).ravel()
        if fat_signal.size != n:
            raise InputError(f"fat_signal has {fat_signal.size} values for {n} echoes")
    s = np.where(np.isfinite(signal), signal, 0)
    rms = np.sqrt((np.abs(s) ** 2).mean(axis=-1))
    if mask is None:
        positive = rms[rms > 0]
        if positive.size == 0:
            raise InputError("signal is zero everywhere")
        use = rms > signal_fraction * np.percentile(positive, 99)
    else:
        use = np.asarray(mask, bool)
        if use.shape != spatial:
            raise InputError(f"mask shape {use.shape} does not match the spatial shape {spatial}")
    use = use & (np.abs(s) > 0).all(axis=-1)
    index = np.flatnonzero(use)
    index = index[:: max(1, int(np.ceil(index.size / max_voxels)))]
    if index.size < 10:
        raise InputError(f"only {index.size} voxels with signal to estimate the bipolar phase error")
    zs, ws = _voxel_phases(s.reshape(-1, n)[index].astype(np.complex128), fat_signal, n_eta)
    coords = np.unravel_index(index, spatial)

    # 1. readout axis and starting ramp: the most coherent linear phase along one axis
    best = None
    for a in axes:
        profile = np.bincount(coords[a], weights=ws * np.cos(zs), minlength=spatial[a]) \
            + 1j * np.bincount(coords[a], weights=ws * np.sin(zs), minlength=spatial[a])
        slope, peak = _peak_slope(profile)
        if best is None or peak > best[2] * (1 + 1e-9):
            best = (a, slope, peak)
    axis, slope, _ = best
    xs = coords[axis] - (spatial[axis] - 1) / 2
    offset = float(np.angle(np.sum(ws * np.exp(1j * (zs - slope * xs)))))

    # 2. IRLS of the wrapped residual, Tukey biweight
    for _ in range(n_iter):
        r = np.angle(np.exp(1j * (zs - offset - slope * xs)))
        scale = max(1.4826 * _weighted_median(np.abs(r), ws), 0.02)
        u = r / (4.685 * scale)
        tw = ws * np.where(np.abs(u) < 1, (1 - u**2) ** 2, 0.0)
        m = np.array([[tw.sum(), (tw * xs).sum()], [(tw * xs).sum(), (tw * xs * xs).sum()]])
        rhs = np.array([(tw * r).sum(), (tw * r * xs).sum()])
        if np.linalg.det(m) <= 1e-12 * max(m[0, 0] * m[1, 1], 1e-300):
            break  # no spread along the axis: keep the current estimate
        d0, d1 = np.linalg.solve(m, rhs)
        offset, slope = offset + d0, slope + d1
        if abs(d0) < 1e-7 and abs(d1) * max(np.abs(xs).max(), 1.0) < 1e-7:
            break
    offset = float(np.angle(np.exp(1j * offset)))  # 2 phase0 in (-pi, pi]  ->  phase0 in (-pi/2, pi/2]
    r = np.angle(np.exp(1j * (zs - offset - slope * xs)))
    coherence = float(np.sum(ws * np.cos(r)) / np.sum(ws))
    return BipolarPhaseError(phase0_rad=offset / 2, ramp_rad_per_voxel=float(slope) / 2, readout_axis=int(axis),
                             n_voxels=int(index.size), coherence=coherence)


def correct_bipolar_phase(signal: np.ndarray, error: BipolarPhaseError) -> np.ndarray:
    """``signal`` [spatial..., n_echoes] with the even echoes (2nd, 4th, ...) multiplied by ``exp(-i theta)``."""
    signal = np.asarray(signal)
    if not np.iscomplexobj(signal):
        raise InputError(f"bipolar phase correction needs complex data, got dtype {signal.dtype}")
    spatial = signal.shape[:-1]
    if not 0 <= error.readout_axis < len(spatial):
        raise InputError(f"readout_axis {error.readout_axis} is not a spatial axis of shape {spatial}")
    out = signal.copy()
    out[..., 1::2] *= np.exp(-1j * error.phase_map(spatial))[..., None].astype(out.dtype)
    return out


#: metadata keys that may record the readout polarity (BIDS-style sidecars; Siemens ``ucReadOutMode``)
POLARITY_KEYS = ("ReadoutPolarity", "ReadoutMode", "GradientEchoReadoutMode", "ucReadOutMode")


def readout_polarity_from_meta(meta: dict) -> bool | None:
    """True (bipolar), False (monopolar / flyback) or None (not recorded) from an image's metadata.

    Read from the first of :data:`POLARITY_KEYS` present: text values ``bipolar`` / ``alternating`` and
    ``monopolar`` / ``unipolar`` / ``flyback`` (any case), or the Siemens protocol code ``ucReadOutMode``
    (``0x1`` monopolar, ``0x2`` bipolar; as text or number). Raise :class:`InputError` on any other value of
    a recorded key (a polarity that cannot be read must not be guessed).
    """
    for key in POLARITY_KEYS:
        if key not in meta or meta[key] is None:
            continue
        value = meta[key]
        text = str(value).strip().lower()
        if text in ("bipolar", "alternating", "0x2", "2"):
            return True
        if text in ("monopolar", "unipolar", "flyback", "0x1", "1"):
            return False
        raise InputError(f"metadata {key}={value!r} is not a readout polarity (bipolar or monopolar)")
    return None


def bipolar_assessable(te_s: np.ndarray) -> bool:
    """Whether the even-echo error can be estimated from echo times ``te_s`` (s): >= 4 uniformly spaced."""
    try:
        check_bipolar_echo_times(te_s)
    except InputError:
        return False
    return True


@dataclass(frozen=True)
class BipolarDetection:
    """Outcome of :func:`detect_bipolar_error`: ``detected``, the rough error estimate, its largest
    ``|theta|`` over the field of view (rad), and the bright voxels' mean relative VARPRO residual without
    and with the correction (None when the estimate was too small to test)."""

    detected: bool
    error: BipolarPhaseError
    max_phase_rad: float
    residual_uncorrected: float | None = None
    residual_corrected: float | None = None

    def as_dict(self) -> dict[str, object]:
        return {"detected": self.detected, "max_phase_rad": self.max_phase_rad,
                "residual_uncorrected": self.residual_uncorrected, "residual_corrected": self.residual_corrected,
                "rough_estimate": self.error.as_dict()}


def detect_bipolar_error(signal: np.ndarray, te_s: np.ndarray, pick: np.ndarray, residual, *,
                         min_phase_rad: float = 0.05, max_residual_ratio: float = 0.7,
                         max_voxels: int = 20_000, residual_uncorrected: float | None = None) -> BipolarDetection:
    """Whether ``signal`` [x, y, z, n_echoes] carries an alternating-readout (bipolar) even-echo phase error.

    A rough error (no fat term, at most ``max_voxels`` voxels; :func:`estimate_bipolar_phase`) is tested on
    the flat voxels ``pick`` (the brightest): it is detected when its correction lowers their mean relative
    VARPRO residual ``residual(signal_of_pick)`` (a callable; the lower of both precession conventions) to at
    most ``max_residual_ratio`` times the uncorrected one. A monopolar acquisition has no such error: its
    rough estimate fits noise and fat-mixture bias, and correcting it leaves the residual unchanged or raises
    it (ratios 1.0-17 on the eight monopolar cases of the shared data; 0.3 and 0.2 on the two bipolar ones).
    An estimate below ``min_phase_rad`` everywhere is not tested (it could not change the separation).
    ``residual_uncorrected``: ``residual`` of the uncorrected voxels when already known.
    """
    rough = estimate_bipolar_phase(signal, te_s, max_voxels=max_voxels)
    spatial = signal.shape[:-1]
    theta = np.broadcast_to(rough.phase_map(spatial), spatial).ravel()
    largest = float(np.abs(theta).max())
    if largest < min_phase_rad:
        return BipolarDetection(False, rough, largest)
    sig = signal.reshape(-1, signal.shape[-1])[pick]
    fixed = sig.copy()
    fixed[:, 1::2] *= np.exp(-1j * theta[pick])[:, None]
    before = float(residual(sig)) if residual_uncorrected is None else float(residual_uncorrected)
    after = float(residual(fixed))
    return BipolarDetection(bool(after <= max_residual_ratio * before), rough, largest, before, after)
