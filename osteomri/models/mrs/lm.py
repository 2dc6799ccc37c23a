"""Batched Levenberg–Marquardt fit of multi-echo water + triglyceride spectra in the time domain.

Signal of echo ``e`` (time ``t`` from the echo top, see :mod:`osteomri.models.mrs.basis` for the sign
convention)::

    s_e(t) = exp(i phi) exp(2 pi i delta t) [ W exp(-R2w TE_e) exp((2 pi i f_w - pi lw_w) t)
                                            + F exp(-R2f TE_e) exp(-pi lw_f t) sum_k a_k(ndb) exp(2 pi i f_k t) ]

``W`` and ``F`` are the water and fat proton signals at TE = 0 (real), ``a_k`` the relative triglyceride
peak amplitudes (sum 1; Hamilton et al., NMR Biomed 2011;24:784), ``lw`` Lorentzian full widths at half
maximum (Hz), ``delta`` a frequency shift common to all peaks, ``phi`` a zero-order phase common to all echoes.
One nonlinear least-squares problem over all echoes and points.

Every Jacobian column of echo ``e`` is a combination, with echo-dependent coefficients ``C[e]``, of five time
functions ``u = [w, t w, g, t g, dg/dndb]``; the normal equations therefore need only the 5 x 5 Gram matrix
of ``u`` and its projections on the data (``O(N)`` work per spectrum and iteration, done for a whole batch
of spectra with BLAS). Levenberg–Marquardt (Marquardt's diagonal scaling) with box bounds by projection;
spectra that have converged leave the batch. Cramér–Rao covariance: ``sigma^2 / 2 * Re(J^H J)^-1`` with the
noise variance ``sigma^2`` (per complex point) estimated from the residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from osteomri.models.mrs.basis import NDB_BOUNDS, fat_amplitudes

PARAMS = ("water", "fat", "r2_water_hz", "r2_fat_hz", "phase_rad", "shift_hz", "linewidth_water_hz",
          "linewidth_fat_hz", "ndb")
W, F, R2W, R2F, PHI, DEL, LWW, LWF, NDB = range(9)
N_PARAMS = len(PARAMS)
R2_BOUNDS_HZ = (1.0, 250.0)
# pseudo-columns of the Jacobian: time function, complex factor, and the parameter each adds to
_PSEUDO_F = np.array([0, 2, 0, 2, 0, 2, 1, 3, 1, 3, 4])
_PSEUDO_KAPPA = np.array([1, 1, 1, 1, 1j, 1j, 2j * np.pi, 2j * np.pi, -np.pi, -np.pi, 1], complex)
_PSEUDO_K = np.conj(_PSEUDO_KAPPA)[:, None] * _PSEUDO_KAPPA[None, :]
_SUM = np.zeros((9, 11))
for _p, _j in enumerate((0, 1, 2, 3, 4, 4, 5, 5, 6, 7, 8)):
    _SUM[_j, _p] = 1.0
LW_BOUNDS_HZ = (0.5, 150.0)


@dataclass(frozen=True)
class Design:
    """What is fixed for every spectrum of one acquisition.

    ``te_s`` (n_te,), ``t_s`` (N,) sampling times from the echo top, ``f_water_hz`` the water frequency
    relative to the receiver, ``f_fat_hz`` (9,) fat peak frequencies, ``fixed_amplitudes`` the relative fat
    amplitudes when the fat spectrum is fixed (else ``None``: amplitudes follow ``ndb``).
    """

    te_s: np.ndarray
    t_s: np.ndarray
    f_water_hz: float
    f_fat_hz: np.ndarray
    fixed_amplitudes: np.ndarray | None = None

    @property
    def peak_matrix(self) -> np.ndarray:
        """``exp(2 pi i f_k t_n)``, shape (n_peaks, N)."""
        return np.exp(2j * np.pi * self.f_fat_hz[:, None] * self.t_s[None, :])

    def amplitudes(self, ndb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.fixed_amplitudes is not None:
            a = np.broadcast_to(self.fixed_amplitudes, ndb.shape + self.fixed_amplitudes.shape)
            return a, np.zeros_like(a)
        return fat_amplitudes(ndb)


def time_functions(theta: np.ndarray, design: Design, pmat: np.ndarray) -> np.ndarray:
    """``u = [w, t w, g, t g, dg/dndb]`` of each spectrum, shape (b, 5, N), including the shift rotation."""
    t = design.t_s
    dt = t[1] - t[0]
    rot = 2j * np.pi * theta[:, DEL]
    w = uniform_exp(rot + 2j * np.pi * design.f_water_hz - np.pi * theta[:, LWW], dt, t.size)
    env = uniform_exp(rot - np.pi * theta[:, LWF], dt, t.size)
    a, da = design.amplitudes(theta[:, NDB])
    u = np.empty((theta.shape[0], 5, t.size), complex)
    u[:, 0] = w
    u[:, 1] = w * t
    u[:, 2] = env * (a.astype(complex) @ pmat)
    u[:, 3] = u[:, 2] * t
    u[:, 4] = env * (da.astype(complex) @ pmat)
    return u


def uniform_exp(rate: np.ndarray, dt: float, n: int, block: int = 32) -> np.ndarray:
    """``exp(rate * n' * dt)`` for n' = 0..n-1, shape (b, n), as an outer product of two short power tables
    (one complex multiply per point instead of a complex exponential)."""
    n_blocks = -(-n // block)
    inner = np.exp(rate[:, None] * (np.arange(block) * dt))                  # (b, block)
    outer = np.exp(rate[:, None] * (np.arange(n_blocks) * (block * dt)))     # (b, n_blocks)
    return (outer[:, :, None] * inner[:, None, :]).reshape(rate.shape[0], -1)[:, :n]


def model_signal(theta: np.ndarray, design: Design, first_echo_only: bool = False) -> np.ndarray:
    """Noise-free FIDs (b, n_te, N) for parameter rows ``theta`` (b, 9) (b, 1, N: the first echo only)."""
    u = time_functions(theta, design, design.peak_matrix)
    ew, ef = _decays(theta, design)
    if first_echo_only:
        ew, ef = ew[:, :1], ef[:, :1]
    a = theta[:, W, None] * ew
    b = theta[:, F, None] * ef
    sig = a[:, :, None] * u[:, None, 0] + b[:, :, None] * u[:, None, 2]
    return np.exp(1j * theta[:, PHI])[:, None, None] * sig


def model_components(theta: np.ndarray, design: Design) -> dict[str, np.ndarray]:
    """Water and fat FIDs (b, n_te, N) separately, and each fat peak ``fat_k`` (b, n_te, N)."""
    u = time_functions(theta, design, design.peak_matrix)
    ew, ef = _decays(theta, design)
    ph = np.exp(1j * theta[:, PHI])[:, None, None]
    out = {"water": ph * (theta[:, W, None] * ew)[:, :, None] * u[:, None, 0]}
    a, _ = design.amplitudes(theta[:, NDB])
    t = design.t_s
    env = np.exp(2j * np.pi * theta[:, DEL, None] * t - np.pi * theta[:, LWF, None] * t)
    fat_scale = ph * (theta[:, F, None] * ef)[:, :, None]
    for k in range(design.f_fat_hz.size):
        peak = a[:, k, None] * env * np.exp(2j * np.pi * design.f_fat_hz[k] * t)
        out[f"fat_{k}"] = fat_scale * peak[:, None, :]
    return out


def _decays(theta: np.ndarray, design: Design) -> tuple[np.ndarray, np.ndarray]:
    te = design.te_s[None, :]
    return np.exp(-theta[:, R2W, None] * te), np.exp(-theta[:, R2F, None] * te)


def normal_equations(theta: np.ndarray, y_t: np.ndarray, y_energy: np.ndarray, design: Design,
                     pmat: np.ndarray, free: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cost ``||y - s||^2``, ``Re(J^H J)`` (b, 9, 9) and ``Re(J^H r)`` (b, 9) at ``theta``.

    ``y_t`` is the data transposed to (b, N, n_te); ``y_energy`` (b,) its squared norm. Fixed parameters
    (``free`` False) get identity rows and zero gradient.
    """
    u = time_functions(theta, design, pmat)
    uc = u.conj()
    gram = uc @ u.transpose(0, 2, 1)                     # (b, 5, 5): <u_f, u_g>
    proj = uc @ y_t                                      # (b, 5, n_te): <u_f, y_e>
    ew, ef = _decays(theta, design)
    a = theta[:, W, None] * ew                           # (b, n_te)
    bf = theta[:, F, None] * ef
    te = design.te_s[None, :]
    derot = np.exp(-1j * theta[:, PHI])[:, None, None]
    # <u_f, r_e> in the frame rotated by -phi
    ur = derot * proj - a[:, None, :] * gram[:, :, 0, None] - bf[:, None, :] * gram[:, :, 2, None]
    cost = (y_energy - 2 * np.real(derot[:, 0, 0, None] * (a * proj[:, 0] + bf * proj[:, 2])).sum(-1)
            + (a**2 * gram[:, 0, 0, None].real + bf**2 * gram[:, 2, 2, None].real
               + 2 * a * bf * gram[:, 0, 2, None].real).sum(-1))
    # Each Jacobian column is (constant complex factor) x (real per-echo vector) x (one time function), or a
    # sum of two such "pseudo-columns" (phase, shift): Re(J^H J) needs only the Gram matrix, the constants
    # and the real echo sums r_p . r_q.
    r = np.stack([ew, ef, -te * a, -te * bf, a, bf, a, bf, a, bf, bf], axis=1)     # (b, 11, n_te)
    rr = r @ r.transpose(0, 2, 1)                                                   # (b, 11, 11)
    gp = gram[:, _PSEUDO_F[:, None], _PSEUDO_F[None, :]]                            # (b, 11, 11)
    h11 = np.real(gp * _PSEUDO_K) * rr
    hess = _SUM @ h11 @ _SUM.T                                                      # (b, 9, 9)
    g11 = np.real(np.conj(_PSEUDO_KAPPA) * np.einsum("bpe,bpe->bp", r, ur[:, _PSEUDO_F, :]))
    grad = g11 @ _SUM.T
    fixed = ~free
    if fixed.any():
        hess[:, fixed, :] = 0.0
        hess[:, :, fixed] = 0.0
        hess[:, fixed, fixed] = 1.0
        grad[:, fixed] = 0.0
    return np.maximum(cost, 0.0), hess, grad


def default_bounds(shift_range_hz: float) -> np.ndarray:
    """Box bounds (9, 2): amplitudes free, T2 4 ms - 1 s (R2 1-250 1/s), shift ±``shift_range_hz``, Lorentzian
    widths 0.5-150 Hz, ndb within :data:`NDB_BOUNDS`. The T2 bounds keep a weak fat or water signal from
    extrapolating to an absurd TE = 0 amplitude."""
    inf = np.inf
    return np.array([[-inf, inf], [-inf, inf], R2_BOUNDS_HZ, R2_BOUNDS_HZ, [-inf, inf],
                     [-shift_range_hz, shift_range_hz], LW_BOUNDS_HZ, LW_BOUNDS_HZ, list(NDB_BOUNDS)])


@dataclass
class LMResult:
    theta: np.ndarray
    cost: np.ndarray
    hess: np.ndarray
    n_iter: np.ndarray
    converged: np.ndarray


def levenberg_marquardt(y: np.ndarray, theta0: np.ndarray, design: Design, free: np.ndarray,
                        bounds: np.ndarray, *, max_iter: int = 60, tol: float = 1e-9,
                        lam0: float = 1e-3) -> LMResult:
    """Fit ``y`` (b, n_te, N) from ``theta0`` (b, 9); batched over spectra, converged ones drop out."""
    pmat = design.peak_matrix
    y_t = np.ascontiguousarray(y.transpose(0, 2, 1))
    y_energy = np.einsum("ben,ben->b", y.conj(), y).real
    theta = np.clip(theta0.astype(float), bounds[:, 0], bounds[:, 1])
    cost, hess, grad = normal_equations(theta, y_t, y_energy, design, pmat, free)
    lam = np.full(theta.shape[0], lam0)
    n_iter = np.zeros(theta.shape[0], int)
    active = np.ones(theta.shape[0], bool)
    converged = np.zeros(theta.shape[0], bool)
    for _ in range(max_iter):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        h = hess[idx]
        d = np.diagonal(h, axis1=1, axis2=2)
        scale = d + 1e-12 * d.max(1, keepdims=True) + 1e-300
        a = h + lam[idx, None, None] * (scale[:, :, None] * np.eye(N_PARAMS))
        try:
            step = np.linalg.solve(a, grad[idx][..., None])[..., 0]
        except np.linalg.LinAlgError:
            step = np.stack([np.linalg.lstsq(ai, gi, rcond=None)[0] for ai, gi in zip(a, grad[idx], strict=True)])
        step[~np.isfinite(step)] = 0.0
        trial = np.clip(theta[idx] + step, bounds[:, 0], bounds[:, 1])
        c_new, h_new, g_new = normal_equations(trial, y_t[idx], y_energy[idx], design, pmat, free)
        better = c_new < cost[idx]
        acc = idx[better]
        rel = (cost[acc] - c_new[better]) / np.maximum(cost[acc], 1e-300)
        theta[acc], cost[acc], hess[acc], grad[acc] = trial[better], c_new[better], h_new[better], g_new[better]
        lam[acc] = np.maximum(lam[acc] / 5.0, 1e-9)
        rej = idx[~better]
        lam[rej] *= 10.0
        n_iter[idx] += 1
        done_acc = acc[rel < tol]
        converged[done_acc] = True
        active[done_acc] = False
        stalled = rej[lam[rej] > 1e8]
        converged[stalled] = True  # no downhill step left: a minimum at working precision
        active[stalled] = False
    return LMResult(theta, cost, hess, n_iter, converged)


def crb_covariance(result: LMResult, n_points_total: int, free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cramér–Rao covariance (b, 9, 9) of the free parameters (zero rows/columns for fixed ones) and the
    estimated noise variance per complex point ``sigma^2`` (b,)."""
    n_free = int(free.sum())
    sigma2 = result.cost / max(n_points_total - n_free / 2.0, 1.0)
    h = result.hess[:, free][:, :, free]
    cov = np.full((h.shape[0], N_PARAMS, N_PARAMS), 0.0)
    try:
        inv = np.linalg.inv(h)
    except np.linalg.LinAlgError:
        inv = np.linalg.pinv(h)
    sub = inv * (sigma2 / 2.0)[:, None, None]
    ix = np.flatnonzero(free)
    cov[:, ix[:, None], ix[None, :]] = sub
    return cov, sigma2
