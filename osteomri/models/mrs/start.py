"""Starting values for the marrow spectrum fit: a variable-projection search over the frequency shift.

For a trial Lorentzian width ``L`` (common to water and fat) and the adipose fat spectrum (ndb = 3), the
echo-summed FID's projections on the water and fat lines at every trial shift ``delta`` are read off one
zero-padded FFT of the matched-filtered FID (``sum_n y_n exp(-pi L t_n) exp(-2 pi i f t_n)`` is that FFT at
frequency ``f``); the Gram matrix of the two lines does not depend on ``delta``. The shift and width that
maximise the projected energy ``p^H G^-1 p`` (variable projection, Golub & Pereyra 1973) are kept; at them
each echo's complex water and fat amplitudes are solved linearly, giving the phase (their common angle),
and weighted log-linear fits over TE give the T2s and the TE = 0 amplitudes.
"""

from __future__ import annotations

import numpy as np

from osteomri.models.mrs.lm import DEL, LWF, LWW, N_PARAMS, NDB, PHI, R2F, R2W, Design, F, W

TRIAL_WIDTHS_HZ = (12.0, 25.0, 45.0)
START_NDB = 3.0
SEARCH_TIME_S = 0.25
DEFAULT_R2W, DEFAULT_R2F = 1000.0 / 30.0, 1000.0 / 60.0


def starting_values(y: np.ndarray, design: Design, shift_range_hz: float, *, t2: bool = True,
                    return_energy: bool = False):
    """Initial parameter rows (b, 9) for FIDs ``y`` (b, n_te, N) (and, with ``return_energy``, the projected
    energy of the chosen shift and width, (b,))."""
    b, n_te, n = y.shape
    dt = design.t_s[1] - design.t_s[0]
    # the matched filters of the trial widths make points beyond ~0.2 s irrelevant to the search
    n_search = int(min(n, max(64, np.ceil(SEARCH_TIME_S / dt))))
    t = design.t_s[:n_search]
    m = int(2 ** np.ceil(np.log2(2 * n_search)))
    ysum = y[..., :n_search].sum(1)
    a, _ = design.amplitudes(np.array([START_NDB]))
    a = a[0]
    pmat = design.peak_matrix[:, :n_search]
    best = np.full(b, -np.inf)
    best_shift = np.zeros(b)
    best_width = np.full(b, TRIAL_WIDTHS_HZ[0])
    df = 1.0 / (m * dt)
    k_range = int(np.ceil(shift_range_hz / df))
    shifts = np.arange(-k_range, k_range + 1) * df                      # (n_s,)
    for width in TRIAL_WIDTHS_HZ:
        env = np.exp(-np.pi * width * t)
        x = np.fft.fft(ysum * env, n=m, axis=-1)                        # (b, m)
        wline = env * np.exp(2j * np.pi * design.f_water_hz * t)
        gline = env * (a @ pmat)
        gram = np.array([[np.vdot(wline, wline), np.vdot(wline, gline)],
                         [np.vdot(gline, wline), np.vdot(gline, gline)]])
        ginv = np.linalg.inv(gram)
        def bins(freqs: np.ndarray) -> np.ndarray:
            return np.round(freqs * m * dt).astype(int) % m
        pw = x[:, bins(shifts + design.f_water_hz)]                     # (b, n_s)
        pg = sum(a[k] * x[:, bins(shifts + design.f_fat_hz[k])] for k in range(a.size))
        energy = np.real(pw.conj() * (ginv[0, 0] * pw + ginv[0, 1] * pg)
                         + pg.conj() * (ginv[1, 0] * pw + ginv[1, 1] * pg))
        j = np.argmax(energy, axis=1)
        e = energy[np.arange(b), j]
        better = e > best
        best[better], best_shift[better], best_width[better] = e[better], shifts[j[better]], width
    if return_energy:
        return best
    # per-echo complex amplitudes at the chosen shift and width
    t, pmat, y = design.t_s, design.peak_matrix, y
    env = np.exp((2j * np.pi * best_shift[:, None] - np.pi * best_width[:, None]) * t)
    wline = env * np.exp(2j * np.pi * design.f_water_hz * t)
    gline = env * (a @ pmat)[None, :]
    g00 = np.einsum("bn,bn->b", wline.conj(), wline)
    g01 = np.einsum("bn,bn->b", wline.conj(), gline)
    g11 = np.einsum("bn,bn->b", gline.conj(), gline)
    pw = np.einsum("bn,ben->be", wline.conj(), y)
    pg = np.einsum("bn,ben->be", gline.conj(), y)
    det = (g00 * g11 - g01 * g01.conj())[:, None]
    cw = (g11[:, None] * pw - g01[:, None] * pg) / det
    cf = (g00[:, None] * pg - g01.conj()[:, None] * pw) / det
    phase = np.angle((cw + cf).sum(1))
    rw = np.real(cw * np.exp(-1j * phase)[:, None])
    rf = np.real(cf * np.exp(-1j * phase)[:, None])
    theta = np.zeros((b, N_PARAMS))
    theta[:, PHI], theta[:, DEL] = phase, best_shift
    theta[:, LWW] = theta[:, LWF] = best_width
    theta[:, NDB] = START_NDB if design.fixed_amplitudes is None else 0.0
    if t2 and n_te > 1:
        theta[:, W], theta[:, R2W] = _loglinear(rw, design.te_s, DEFAULT_R2W)
        theta[:, F], theta[:, R2F] = _loglinear(rf, design.te_s, DEFAULT_R2F)
    else:
        theta[:, W], theta[:, F] = rw[:, 0], rf[:, 0]
    return theta


def _loglinear(amp: np.ndarray, te: np.ndarray, default_r2: float) -> tuple[np.ndarray, np.ndarray]:
    """TE = 0 amplitude and R2 (1/s) from a log-linear fit weighted by amplitude^2; default R2 where unusable."""
    pos = amp > 1e-6 * np.abs(amp).max(1, keepdims=True)
    wts = np.where(pos, amp**2, 0.0)
    la = np.log(np.where(pos, amp, 1.0))
    sw = wts.sum(1)
    mt = (wts * te).sum(1) / np.maximum(sw, 1e-300)
    ml = (wts * la).sum(1) / np.maximum(sw, 1e-300)
    var = (wts * (te - mt[:, None]) ** 2).sum(1)
    slope = (wts * (te - mt[:, None]) * (la - ml[:, None])).sum(1) / np.maximum(var, 1e-300)
    ok = (pos.sum(1) >= 2) & (var > 0)
    r2 = np.where(ok, np.clip(-slope, 5.0, 150.0), default_r2)
    a0 = amp[:, 0] * np.exp(r2 * te[0])
    a0 = np.where(ok, np.exp(ml + r2 * mt), a0)
    return a0, r2
