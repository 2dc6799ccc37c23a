"""UTE signal models: multi-exponential T2* decay, the Rician noise floor, and fat's multi-peak modulation.

Times are in milliseconds and rates in 1/ms inside the fitting kernels (all parameters O(0.1–10)); the public
models take seconds (``te_s``) and report milliseconds (``*_ms``).

* Bi-component T2*: S(TE) = A_s exp(-TE/T2*_s) + A_l exp(-TE/T2*_l) — bound (short) and pore (long) water
  of cortical bone (Du et al., J Magn Reson 2010;207:304; Biswas et al., Bone 2012;50:749).
* Magnitude data carry a Rician noise floor: the expected magnitude of a signal nu in complex Gaussian noise
  of SD sigma is sigma sqrt(pi/2) L_1/2(-nu^2 / 2 sigma^2) (Rice 1944; Gudbjartsson & Patz, MRM
  1995;34:910), fitted as the model of the data instead of the noise-free decay.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ive

_SQRT_HALF_PI = np.sqrt(np.pi / 2.0)


_RICE_STEP = 12.0 / 8192
_RICE_SNR = np.arange(8193) * _RICE_STEP


def _rice_tables() -> tuple[np.ndarray, np.ndarray]:
    x = _RICE_SNR**2 / 4.0
    i0, i1 = ive(0, x), ive(1, x)
    return _SQRT_HALF_PI * ((1.0 + 2.0 * x) * i0 + 2.0 * x * i1), _SQRT_HALF_PI * _RICE_SNR / 2.0 * (i0 + i1)


_RICE_MEAN, _RICE_DERIV = _rice_tables()


def rician_mean(nu: np.ndarray, sigma: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Expected magnitude of signal ``nu >= 0`` in complex Gaussian noise of SD ``sigma``, and d/d nu.

    E[M] = sigma sqrt(pi/2) exp(-x) [(1 + 2x) I0(x) + 2x I1(x)], x = nu^2 / (4 sigma^2) (Rice 1944);
    dE/dnu = sqrt(pi/2) (nu / 2 sigma) exp(-x) [I0(x) + I1(x)]. Below nu = 12 sigma both are read from a
    table of the exact expressions (step 0.0015 sigma, linear interpolation: relative error < 1e-6); above,
    the asymptotic series E = nu + sigma^2/2nu + sigma^4/8nu^3 (relative error < 1e-8).
    """
    nu = np.abs(np.asarray(nu, dtype=float))
    sigma = np.asarray(sigma, dtype=float)
    if np.all(sigma <= 0):
        return nu, np.ones_like(nu)
    s = np.maximum(sigma, 1e-300)
    snr = nu / s
    inv = 1.0 / np.maximum(snr, 12.0)  # the series is used above snr 12 only
    q = inv * inv
    mean = nu * (1.0 + 0.5 * q + 0.125 * q * q)
    deriv = 1.0 - 0.5 * q - 0.375 * q * q
    low = snr < 12.0
    mean = np.where(low, s * np.interp(snr, _RICE_SNR, _RICE_MEAN), mean)
    deriv = np.where(low, np.interp(snr, _RICE_SNR, _RICE_DERIV), deriv)
    if np.any(sigma <= 0):
        zero = np.broadcast_to(sigma <= 0, nu.shape)
        mean, deriv = np.where(zero, nu, mean), np.where(zero, 1.0, deriv)
    return mean, deriv


def multiexp(te_ms: np.ndarray, amplitudes: np.ndarray, rates_per_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of exponentials ``[n, m]`` and its Jacobian ``[n, m, 2k]`` w.r.t. (A_1..A_k, R_1..R_k).

    ``amplitudes`` and ``rates_per_ms`` are ``[n, k]``; ``te_ms`` is ``[m]``.
    """
    e = np.exp(-rates_per_ms[:, None, :] * te_ms[None, :, None])  # n, m, k
    s = np.einsum("nmk,nk->nm", e, amplitudes)
    jac = np.concatenate([e, -te_ms[None, :, None] * e * amplitudes[:, None, :]], axis=2)
    return s, jac


def fat_modulation(te_ms: np.ndarray, field_strength_t: float, fat_spectrum) -> np.ndarray:
    """Complex fat signal c(TE) = sum_p alpha_p exp(i 2 pi f_p TE) relative to water, ``[m]``.

    The peak table is the water–fat module's (:func:`~osteomri.models.waterfat.signal.fat_basis`): one home
    for the fat spectrum.
    """
    from osteomri.models.waterfat.signal import fat_basis

    return np.asarray(fat_basis(np.asarray(te_ms) * 1e-3, field_strength_t, fat_spectrum))
