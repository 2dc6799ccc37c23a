"""Variable-projection (VARPRO) residual of the water–fat model over a field-map × R2* grid.

For one voxel with complex echoes ``s`` (length n) and a candidate field map ``psi`` (Hz) and R2* ``r``
(1/s), the model is ``s = B(psi, r) x`` with ``B = diag(exp((i 2 pi psi - r) t)) [1, c_fat(t)]`` and the
complex amplitudes ``x = (W, F)`` eliminated by least squares. The residual is

    R(psi, r) = ||s||^2 - s^H P(psi, r) s,      P = B (B^H B)^-1 B^H

(Golub & Pereyra, SIAM J Numer Anal 1973; Hernando et al., MRM 2008;59:571). ``P`` depends only on the
acquisition, so it is precomputed once for every grid point; ``s^H P s`` is then a real dot product of
the ``n^2`` real features of ``s s^H`` with the ``n^2`` real weights of ``P``, and the residual of all
voxels at all grid points is a single matrix product (BLAS), evaluated in voxel chunks to bound memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class FieldGrid:
    """The discrete field-map candidates (Hz).

    ``circular`` is True when echo spacing is uniform: the residual is then exactly periodic in ``psi``
    with ``period_hz = 1 / delta_TE`` and the grid covers one period.
    """

    values_hz: np.ndarray
    period_hz: float
    circular: bool

    @property
    def step_hz(self) -> float:
        return float(self.values_hz[1] - self.values_hz[0])

    def difference(self, a_hz: np.ndarray, b_hz: np.ndarray | float) -> np.ndarray:
        """``a - b``, wrapped into [-period/2, period/2) on a circular grid."""
        d = np.asarray(a_hz) - b_hz
        if self.circular:  # = (d + P/2) mod P - P/2, without the slow floating-point modulo
            d = d - self.period_hz * np.floor(d / self.period_hz + 0.5)
        return d


def uniform_echo_spacing(te_s: np.ndarray, rel_tol: float = 0.02) -> float | None:
    """The echo spacing (s) when the echo times are uniformly spaced within ``rel_tol``, else None."""
    dte = np.diff(np.sort(te_s))
    if dte.size == 0:
        return None
    mean = float(dte.mean())
    return mean if np.all(np.abs(dte - mean) <= rel_tol * mean) else None


def make_field_grid(te_s: np.ndarray, step_hz: float | None = None, range_hz: float | None = None,
                    max_points: int = 200) -> FieldGrid:
    """Field-map grid for these echo times.

    Uniform spacing: one period ``1/dTE``, circular. Non-uniform: ``[-range, range)`` with default
    ``range = 1/min(dTE)`` (about two quasi-periods), not circular. The default step resolves the
    residual minima (``1/(20 (TE_max - TE_min))``), capped at ``max_points`` points.
    """
    te = np.sort(np.asarray(te_s, dtype=float))
    span = te[-1] - te[0]
    dte = uniform_echo_spacing(te)
    if step_hz is None:
        step_hz = 1.0 / (20.0 * span)
    if dte is not None and range_hz is None:
        period = 1.0 / dte
        n = int(min(max_points, max(16, np.ceil(period / step_hz))))
        if n % 2 == 0:  # odd: no two labels exactly half a period apart (no tie in the wrapped differences)
            n = n - 1 if n >= max_points else n + 1
        return FieldGrid(np.arange(n) * (period / n) - period / 2, period, True)
    half = float(range_hz) if range_hz is not None else 1.0 / float(np.min(np.diff(te)))
    n = int(min(max_points, max(16, np.ceil(2 * half / step_hz))))
    return FieldGrid(np.arange(n) * (2 * half / n) - half, 2 * half, False)


def make_r2star_grid(r2star_max_hz: float = 500.0, n: int = 9) -> np.ndarray:
    """R2* candidates (1/s) for the residual grid, denser at low R2*."""
    return r2star_max_hz * np.linspace(0.0, 1.0, n) ** 1.5


def hermitian_features(signal: np.ndarray) -> np.ndarray:
    """Real features of ``s s^H`` per voxel: |s_j|^2, Re(conj(s_j) s_k), Im(conj(s_j) s_k) for j<k.

    ``signal``: [n_vox, n] complex. Returns [n_vox, n^2] float32.
    """
    n = signal.shape[1]
    j, k = np.triu_indices(n, 1)
    cross = np.conj(signal[:, j]) * signal[:, k]
    return np.concatenate([np.abs(signal) ** 2, cross.real, cross.imag], axis=1).astype(np.float32)


def projection_weights(te_s: np.ndarray, fat_signal: np.ndarray, psi_hz: np.ndarray,
                       r2star_hz: np.ndarray) -> np.ndarray:
    """Weights ``w`` such that ``hermitian_features(s) @ w = s^H P s``; shape [n^2, n_psi * n_r2].

    Column order: field-map index major, R2* index minor.
    """
    te = np.asarray(te_s, float)
    n = te.size
    a = np.stack([np.ones(n, complex), np.asarray(fat_signal, complex)], axis=1)  # [n, 2]
    phase = np.exp(2j * np.pi * psi_hz[:, None, None] * te) * np.exp(-r2star_hz[None, :, None] * te)  # [p, r, n]
    b = phase[..., None] * a  # [p, r, n, 2]
    gram = np.einsum("prni,prnj->prij", b.conj(), b)
    pinv = np.linalg.inv(gram + 1e-12 * np.eye(2))
    proj = np.einsum("prni,prij,prmj->prnm", b, pinv, b.conj())  # P_nm
    j, k = np.triu_indices(n, 1)
    # s^H P s = sum_nm conj(s_n) P_nm s_m = sum_n P_nn |s_n|^2 + 2 Re sum_{j<k} conj(s_j) s_k P_kj
    pkj = proj[..., k, j]
    w = np.concatenate([np.real(np.diagonal(proj, axis1=-2, axis2=-1)), 2 * pkj.real, 2 * pkj.imag], axis=-1)
    return w.reshape(-1, n * n).T.astype(np.float32)


def residual_curves(signal: np.ndarray, weights: np.ndarray, n_r2: int, chunk_voxels: int = 16384) -> np.ndarray:
    """VARPRO residual over the field grid, minimised over the R2* grid.

    ``signal`` [n_vox, n] complex; ``weights`` from :func:`projection_weights`. Returns ``residual``
    [n_vox, n_psi] float32 (signal units squared, >= 0).
    """
    n_vox = signal.shape[0]
    n_psi = weights.shape[1] // n_r2
    residual = np.empty((n_vox, n_psi), np.float32)
    for start in range(0, n_vox, chunk_voxels):
        sl = slice(start, min(start + chunk_voxels, n_vox))
        feats = hermitian_features(signal[sl])
        proj = feats @ weights[:, :: n_r2]
        for r in range(1, n_r2):
            np.maximum(proj, feats @ weights[:, r::n_r2], out=proj)
        energy = feats[:, : signal.shape[1]].sum(axis=1)
        residual[sl] = energy[:, None] - proj
    np.maximum(residual, 0.0, out=residual)
    return residual


def best_r2star_index(signal: np.ndarray, weights: np.ndarray, n_r2: int, psi_index: np.ndarray,
                      chunk_voxels: int = 16384) -> np.ndarray:
    """Index into the R2* grid of the lowest VARPRO residual of each voxel at its own field-map grid point.

    ``signal`` [n_vox, n] complex; ``weights`` from :func:`projection_weights`; ``psi_index`` [n_vox] the
    field-map grid index of each voxel. The start of the nonlinear refinement (one small product per voxel).
    """
    n_vox = signal.shape[0]
    psi_index = np.asarray(psi_index)
    if psi_index.shape != (n_vox,):
        raise ValueError(f"psi_index must have shape ({n_vox},), got {psi_index.shape}")
    per_psi = weights.T.reshape(-1, n_r2, weights.shape[0])  # [n_psi, n_r2, n^2]
    best = np.empty(n_vox, np.int64)
    for start in range(0, n_vox, chunk_voxels):
        sl = slice(start, min(start + chunk_voxels, n_vox))
        feats = hermitian_features(signal[sl])
        proj = np.matmul(per_psi[psi_index[sl]], feats[:, :, None])[..., 0]  # s^H P s, [v, n_r2]
        best[sl] = proj.argmax(axis=1)
    return best
