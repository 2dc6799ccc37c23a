"""Marrow MR spectroscopy: ``MrsModel(...).fit(fids) -> MrsFit`` (dipy-style Model/Fit pair).

Example::

    from osteomri.mrs import MrsModel
    model = MrsModel(te_s=[0.011, 0.015, 0.020, 0.025], spectrometer_mhz=123.2, dwell_time_s=5e-4)
    fit = model.fit(fids)                 # complex [..., n_te, n_points], echo top at t = 0
    fit.pdff_percent, fit.water_t2_ms, fit.ndb, fit.sd["mrs_pdff_percent_sd"]

The fit (:mod:`osteomri.models.mrs.lm`): water (free: amplitude, T2, linewidth) plus the triglyceride
spectrum of Hamilton et al. (NMR Biomed 2011;24:784) whose 9 peak amplitudes follow the number of double
bonds ``ndb`` (``nmidb`` and chain length ``CL`` tied to it by Hamilton's adipose relations), one fat T2 and
one fat linewidth shared by all fat peaks, a common frequency shift and zero-order phase; all echoes in one
time-domain nonlinear least-squares fit. ``pdff_percent`` is the T2-corrected proton-density fat fraction
``100 F / (W + F)`` of the TE = 0 amplitudes (all fat peaks, including the glycerol and olefinic protons
under the water line). T1 is not corrected (a long TR is assumed; STEAM's mixing time is common to the echoes
and cancels). J-coupling modulation of the fat peaks with TE is not modelled: the fat T2 is the apparent
T2 of the whole fat signal, which the methylene peak (about 60 % of the fat protons, weakly J-modulated,
Hamilton et al. 2011) dominates. The standard deviations ``sd`` are Cramér–Rao bounds evaluated at the fit
with the noise variance estimated from the residual.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from osteomri.errors import InputError, MetadataError
from osteomri.models.mrs import lm
from osteomri.models.mrs.basis import (
    FAT_PPM,
    NDB_BOUNDS,
    WATER_PPM,
    composition,
    peak_frequencies_hz,
)
from osteomri.models.mrs.start import START_NDB, starting_values
from osteomri.models.registry import MapSpec, finalise_maps, register_maps

SEQUENCES = ("steam", "press", "other")

MAP_SPECS = register_maps(
    MapSpec("mrs_pdff_percent", "%", "MRS proton-density fat fraction, T2-corrected (all fat peaks)", "mrspdff",
            "mrs", (-10.0, 110.0), dicom_quantity=("129100", "DCM", "Proton density fat fraction")),
    MapSpec("water_t2_ms", "ms", "MRS water T2", "mrswatert2", "mrs", (0.0, math.inf)),
    MapSpec("fat_t2_ms", "ms", "MRS fat T2 (one T2 shared by the fat peaks)", "mrsfatt2", "mrs", (0.0, math.inf)),
    MapSpec("ndb", "1", "number of double bonds per triglyceride (Hamilton 2011)", "mrsndb", "mrs", NDB_BOUNDS),
    MapSpec("nmidb", "1", "methylene-interrupted double bonds per triglyceride (0.093 ndb^2)", "mrsnmidb", "mrs",
            (0.0, 10.0)),
    MapSpec("cl", "1", "mean fatty-acid chain length (16.8 + 0.25 ndb)", "mrscl", "mrs", (10.0, 25.0)),
    MapSpec("unsaturation_index", "1", "olefinic (5.29 ppm) share of the fat protons", "mrsui", "mrs", (0.0, 1.0)),
    MapSpec("fpufa", "1", "polyunsaturated fatty-acid fraction (nmidb / 3)", "mrsfpufa", "mrs", (-0.5, 1.5)),
    MapSpec("fmufa", "1", "monounsaturated fatty-acid fraction ((ndb - 2 nmidb) / 3)", "mrsfmufa", "mrs",
            (-0.5, 1.5)),
    MapSpec("fsfa", "1", "saturated fatty-acid fraction (1 - (ndb - nmidb) / 3)", "mrsfsfa", "mrs", (-0.5, 1.5)),
    MapSpec("water_linewidth_hz", "Hz", "MRS water Lorentzian linewidth (FWHM)", "mrswaterlw", "mrs", (0.0, 300.0)),
    MapSpec("fat_linewidth_hz", "Hz", "MRS fat Lorentzian linewidth (FWHM)", "mrsfatlw", "mrs", (0.0, 300.0)),
    MapSpec("mrs_phase_rad", "rad", "MRS zero-order phase", "mrsphase", "mrs", (-math.pi, math.pi)),
    MapSpec("mrs_shift_ppm", "ppm", "MRS frequency shift of all peaks (positive: towards higher ppm)",
            "mrsshift", "mrs"),
    MapSpec("water_signal", "{a.u.}", "MRS water signal at TE = 0", "mrswater", "mrs"),
    MapSpec("fat_signal", "{a.u.}", "MRS fat signal at TE = 0 (all peaks)", "mrsfat", "mrs"),
    MapSpec("mrs_snr", "1", "MRS SNR: largest peak of the first echo's fitted spectrum / noise SD of the real "
            "spectrum", "mrssnr", "mrs", (0.0, math.inf)),
)
MAP_NAMES = tuple(s.name for s in MAP_SPECS)
MIRROR_MARGIN = 10.0  # noise energies by which the mirrored pattern must fit better to be chosen
NDB_SD_REFIT = 1.0  # an ndb less certain than this is not reported; the fit is repeated with ndb fixed at 3
TRUNCATION_DECAY = np.log(1e4)  # FID truncated where exp(-2 pi lw t) of the narrowest line reaches 1e-4
_COMPOSITION = ("ndb", "nmidb", "cl", "unsaturation_index", "fpufa", "fmufa", "fsfa")


@dataclass
class MrsFit:
    """Fitted marrow-spectrum parameters, each of the spectra grid's shape (NaN where not fitted).

    Attributes carry the registered names (see :data:`MAP_NAMES`; ``pdff_percent`` is the map
    ``mrs_pdff_percent``); ``sd`` holds the Cramér–Rao SDs as ``<name>_sd``; ``theta`` the raw parameter
    rows (grid + (9,), :data:`osteomri.models.mrs.lm.PARAMS`); ``qc`` counts and flags.
    """

    values: dict[str, np.ndarray]
    sd: dict[str, np.ndarray]
    mask: np.ndarray
    qc: dict[str, Any]
    theta: np.ndarray
    covariance: np.ndarray
    converged: np.ndarray
    model: MrsModel
    n_points: int
    design: lm.Design = field(repr=False)

    def __getattr__(self, name: str) -> np.ndarray:
        values = self.__dict__.get("values", {})
        key = "mrs_pdff_percent" if name == "pdff_percent" else name
        if key in values:
            return values[key]
        raise AttributeError(name)

    def maps(self) -> dict[str, np.ndarray]:
        """Every registered MRS quantity and its ``_sd`` (float32, NaN outside ``mask``)."""
        return finalise_maps({**self.values, **self.sd}, self.mask)

    def parameters(self) -> dict[str, Any]:
        return self.model.parameters()

    def implausible(self) -> np.ndarray:
        """Fitted spectra that do not read as water + fat: a PDFF outside [0, 100] % by more than 3 of its SDs
        (e.g. a water-suppressed or brain spectrum, whose metabolite peaks the marrow model cannot explain)."""
        pdff = np.asarray(self.values["mrs_pdff_percent"], dtype=float)
        sd = np.nan_to_num(np.asarray(self.sd["mrs_pdff_percent_sd"], dtype=float), nan=0.0)
        with np.errstate(invalid="ignore"):
            inside = (pdff >= -3 * sd) & (pdff <= 100 + 3 * sd)
        return np.asarray(self.mask, dtype=bool) & np.isfinite(pdff) & ~inside

    def predict(self) -> np.ndarray:
        """Noise-free fitted FIDs, complex [..., n_te, n_points] (NaN where not fitted)."""
        flat = self.theta.reshape(-1, lm.N_PARAMS)
        out = np.full((flat.shape[0], self.design.te_s.size, self.n_points), np.nan + 0j)
        ok = self.mask.reshape(-1)
        if ok.any():
            out[ok] = lm.model_signal(flat[ok], self.design)
        if self.qc.get("conjugated"):
            out = out.conj()
        return out.reshape(self.mask.shape + out.shape[1:])

    def components(self) -> dict[str, np.ndarray]:
        """Fitted water and fat FIDs and each fat peak's (``fat_<k>``), complex [..., n_te, n_points]."""
        flat = self.theta.reshape(-1, lm.N_PARAMS)
        ok = self.mask.reshape(-1)
        res = {}
        if ok.any():
            parts = lm.model_components(flat[ok], self.design)
            for k, v in parts.items():
                out = np.full((flat.shape[0],) + v.shape[1:], np.nan + 0j)
                out[ok] = v.conj() if self.qc.get("conjugated") else v
                res[k] = out.reshape(self.mask.shape + v.shape[1:])
        return res

    def table(self) -> list[dict[str, Any]]:
        """One row per fitted spectrum: index, every quantity and its SD (tidy, for TSV/JSON)."""
        rows = []
        for idx in zip(*np.nonzero(self.mask), strict=False) if self.mask.ndim else [()]:
            row: dict[str, Any] = {"index": list(int(i) for i in idx)}
            for k in MAP_NAMES:
                row[k] = float(self.values[k][idx])
                row[f"{k}_sd"] = float(self.sd[f"{k}_sd"][idx])
            row["converged"] = bool(self.converged[idx])
            rows.append(row)
        return rows


def _single_threaded_blas():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


class MrsModel:
    """Multi-TE single-voxel or MRSI marrow spectrum model.

    Parameters
    ----------
    te_s:
        Echo time of each FID of the series (s), the ``n_te`` axis of the data.
    spectrometer_mhz, dwell_time_s:
        Proton frequency (MHz) and sampling interval (s).
    sequence, mixing_time_s:
        ``"steam"`` (default), ``"press"`` or ``"other"``; STEAM mixing time (s), recorded only (it is common
        to the echoes, so the T2 fit does not need it).
    fat_model:
        ``"triglyceride"`` (default: 9 peaks whose amplitudes follow the fitted ``ndb``) or a fixed fat
        spectrum (a preset name of :data:`osteomri.models.waterfat.spectrum.FAT_SPECTRA`, a ``FatSpectrum`` or
        its dict form; no composition is reported).
    reference_ppm:
        Chemical shift of the receiver frequency (default 4.70 ppm).
    shift_range_ppm:
        The frequency shift is searched and bounded within ± this (default 0.3 ppm).
    conjugate:
        ``"auto"`` (default): take the complex conjugate of the FIDs when the water + fat pattern fits the
        mirrored data better (a dataset stored in the other sign convention; reported as ``qc["conjugated"]``);
        ``True``/``False`` force it.
    t2_correction:
        Fit water and fat T2 (needs >= 2 echo times; default). ``False``: no T2 (single-TE spectra), the
        amplitudes are those at the echo time and the fat fraction is not T2-corrected.
    max_iter, chunk_size:
        Levenberg–Marquardt iterations; spectra per batch.
    """

    def __init__(self, te_s, spectrometer_mhz: float, dwell_time_s: float, *, sequence: str = "steam",
                 mixing_time_s: float | None = None, fat_model: Any = "triglyceride",
                 reference_ppm: float = WATER_PPM, shift_range_ppm: float = 0.3, t2_correction: bool = True,
                 conjugate: bool | str = "auto",
                 max_iter: int = 60, chunk_size: int = 256) -> None:
        te = np.atleast_1d(np.asarray(te_s, dtype=float))
        if te.ndim != 1 or te.size == 0 or not np.all(np.isfinite(te)) or np.any(te < 0):
            raise MetadataError(f"echo times must be finite and >= 0 s, got {te_s!r}")
        if np.any(te > 1.0):
            raise MetadataError(f"echo times {te.tolist()} look like milliseconds; give them in seconds")
        if t2_correction and np.unique(te).size < 2:
            raise InputError(f"T2 correction needs at least 2 different echo times, got TE {te.tolist()} s "
                             f"(fit a single TE with t2_correction=False / --no-t2)")
        for name, v in (("spectrometer_mhz", spectrometer_mhz), ("dwell_time_s", dwell_time_s)):
            if v is None or not np.isfinite(v) or v <= 0:
                raise MetadataError(f"{name} must be a positive number, got {v!r}")
        if dwell_time_s > 0.01:
            raise MetadataError(f"dwell time {dwell_time_s} s is implausibly long (give it in seconds)")
        if sequence.lower() not in SEQUENCES:
            raise InputError(f"unknown MRS sequence {sequence!r}; use one of {', '.join(SEQUENCES)}")
        if not 0.1 <= shift_range_ppm <= 2.0:
            raise InputError(f"shift_range_ppm must lie in [0.1, 2], got {shift_range_ppm}")
        self.te_s = te
        self.spectrometer_mhz = float(spectrometer_mhz)
        self.dwell_time_s = float(dwell_time_s)
        self.sequence = sequence.lower()
        self.mixing_time_s = None if mixing_time_s is None else float(mixing_time_s)
        self.fat_model = fat_model
        self._fixed = None
        if not (isinstance(fat_model, str) and fat_model == "triglyceride"):
            from osteomri.models.waterfat.spectrum import FatSpectrum, get_fat_spectrum

            self._fixed = get_fat_spectrum(fat_model)
            if isinstance(fat_model, FatSpectrum):  # JSON-able for parameters()
                self.fat_model = {"name": fat_model.name, "ppm": list(fat_model.ppm),
                                  "relative_amplitudes": list(fat_model.relative_amplitudes),
                                  "water_ppm": fat_model.water_ppm}
        self.reference_ppm = float(reference_ppm)
        self.shift_range_ppm = float(shift_range_ppm)
        self.t2_correction = bool(t2_correction)
        if conjugate not in (True, False, "auto"):
            raise InputError(f"conjugate must be True, False or 'auto', got {conjugate!r}")
        self.conjugate = conjugate
        self.max_iter, self.chunk_size = int(max_iter), int(chunk_size)

    def parameters(self) -> dict[str, Any]:
        return {"te_s": self.te_s.tolist(), "spectrometer_mhz": self.spectrometer_mhz,
                "dwell_time_s": self.dwell_time_s, "sequence": self.sequence, "mixing_time_s": self.mixing_time_s,
                "fat_model": self.fat_model, "reference_ppm": self.reference_ppm,
                "shift_range_ppm": self.shift_range_ppm, "t2_correction": self.t2_correction,
                "conjugate": self.conjugate,
                "max_iter": self.max_iter, "chunk_size": self.chunk_size}

    @classmethod
    def from_spectrum(cls, spectrum, **options) -> MrsModel:
        """The model of an :class:`osteomri.io.spectrum.Spectrum`'s acquisition."""
        try:
            return cls(spectrum.te_s, spectrum.spectrometer_mhz, spectrum.dwell_time_s,
                       sequence=spectrum.sequence, mixing_time_s=spectrum.mixing_time_s,
                       reference_ppm=spectrum.reference_ppm, **options)
        except InputError as exc:  # name the file(s) at fault
            raise type(exc)(f"{', '.join(spectrum.sources)}: {exc}") from None

    def design(self, n_points: int) -> lm.Design:
        t = np.arange(n_points) * self.dwell_time_s
        if self._fixed is None:
            ppm, fixed = FAT_PPM, None
        else:
            ppm, fixed = np.asarray(self._fixed.ppm), self._fixed.amplitudes
        return lm.Design(self.te_s, t, float(peak_frequencies_hz(WATER_PPM, self.spectrometer_mhz,
                                                                   self.reference_ppm)),
                         peak_frequencies_hz(ppm, self.spectrometer_mhz, self.reference_ppm), fixed)

    def free_parameters(self) -> np.ndarray:
        free = np.ones(lm.N_PARAMS, bool)
        if not self.t2_correction:
            free[[lm.R2W, lm.R2F]] = False
        if self._fixed is not None:
            free[lm.NDB] = False
        return free

    def fit(self, fids: np.ndarray, mask: np.ndarray | None = None) -> MrsFit:
        """Fit every spectrum of ``fids`` (complex [..., n_te, n_points]) inside ``mask`` (grid shape).

        Spectra with a non-finite or all-zero FID are not fitted (NaN, counted in ``qc``); if none is left,
        :class:`InputError`. BLAS runs single-threaded here (the batches are many small problems)."""
        with _single_threaded_blas():
            return self._fit(fids, mask)

    def _fit(self, fids: np.ndarray, mask: np.ndarray | None) -> MrsFit:
        y = np.asarray(fids)
        n_te = self.te_s.size
        if not np.iscomplexobj(y):
            raise InputError(f"MRS data must be complex FIDs, got real data of dtype {y.dtype}")
        if y.ndim < 2 or y.shape[-2] != n_te:
            raise InputError(f"FIDs of shape {y.shape} do not match {n_te} echo times (need [..., {n_te}, "
                             f"n_points])")
        n = y.shape[-1]
        if n < 16:
            raise InputError(f"FIDs have only {n} points")
        grid = y.shape[:-2]
        flat = np.asarray(y.reshape(-1, n_te, n), dtype=np.complex128)
        finite = np.isfinite(flat.sum(axis=(1, 2)))  # one pass: a NaN or inf anywhere makes the sum non-finite
        nonzero = np.abs(flat[:, :, :16]).max(axis=(1, 2), initial=0.0) > 0  # an FID starts non-zero
        sel = finite & nonzero
        if mask is not None:
            m = np.asarray(mask, bool)
            if m.shape != grid:
                raise InputError(f"mask of shape {m.shape} does not match the spectra grid {grid}")
            sel &= m.reshape(-1)
        if not sel.any():
            what = "non-finite (NaN/inf)" if not finite.any() else "zero or masked out"
            raise InputError(f"no spectrum to fit: every FID is {what}")
        design = self.design(n)
        free = self.free_parameters()
        shift_hz = self.shift_range_ppm * self.spectrometer_mhz
        conjugated = self._mirrored(flat[sel], design, shift_hz) if self.conjugate == "auto" else self.conjugate
        bounds = lm.default_bounds(shift_hz * 1.05)
        theta = np.full((flat.shape[0], lm.N_PARAMS), np.nan)
        cov = np.full((flat.shape[0], lm.N_PARAMS, lm.N_PARAMS), np.nan)
        cost = np.full(flat.shape[0], np.nan)
        conv = np.zeros(flat.shape[0], bool)
        n_iter = np.zeros(flat.shape[0], int)
        ndb_fixed = np.zeros(flat.shape[0], bool)
        idx_all = np.flatnonzero(sel)
        for start in range(0, idx_all.size, self.chunk_size):
            idx = idx_all[start:start + self.chunk_size]
            yc = flat[idx].conj() if conjugated else flat[idx]
            scale = np.abs(yc[:, 0, :4]).mean(1)
            scale = np.where(scale > 0, scale, np.abs(yc).max(axis=(1, 2)))
            yc = yc / scale[:, None, None]
            th0 = starting_values(yc, design, shift_hz, t2=self.t2_correction)
            if not self.t2_correction:
                th0[:, [lm.R2W, lm.R2F]] = 0.0
            th, c, cst, cv, it = self._fit_truncated(yc, th0, free, bounds)
            if free[lm.NDB]:
                # composition not determinable (weak fat): refit with the adipose ndb fixed, report no ndb
                loose = ((th[:, lm.NDB] <= NDB_BOUNDS[0] + 1e-6) | (th[:, lm.NDB] >= NDB_BOUNDS[1] - 1e-6)
                         | ~(np.sqrt(c[:, lm.NDB, lm.NDB]) <= NDB_SD_REFIT))
                if loose.any():
                    fixed_ndb = free.copy()
                    fixed_ndb[lm.NDB] = False
                    th_l = th[loose].copy()
                    th_l[:, lm.NDB] = START_NDB
                    th_l, c_l, cst_l, cv_l, it_l = self._fit_truncated(yc[loose], th_l, fixed_ndb, bounds)
                    th[loose], c[loose], cst[loose], cv[loose] = th_l, c_l, cst_l, cv_l
                    it[loose] += it_l
                    c[loose, lm.NDB, lm.NDB] = np.nan
                    ndb_fixed[idx[loose]] = True
            th[:, [lm.W, lm.F]] *= scale[:, None]
            c[:, [lm.W, lm.F], :] *= scale[:, None, None]
            c[:, :, [lm.W, lm.F]] *= scale[:, None, None]
            theta[idx], cov[idx], cost[idx] = th, c, cst * scale**2
            conv[idx], n_iter[idx] = cv, it
        values, sd = self._derived(theta, cov, cost, design, free, sel)
        mask_out = sel.reshape(grid)
        qc = {"n_spectra": int(sel.size), "n_fitted": int(sel.sum()), "n_converged": int(conv[sel].sum()),
              "median_iterations": float(np.median(n_iter[sel])),
              "n_nonfinite": int((~finite).sum()), "t2_corrected": self.t2_correction,
              "conjugated": bool(conjugated),
              "n_ndb_not_determined": int(values.pop("_ndb_at_bound")[sel].sum()),
              "n_ndb_fixed": int(ndb_fixed[sel].sum()),
              "n_at_bound": int(self._at_bound(theta, free)[sel].sum())}
        return MrsFit({k: v.reshape(grid) for k, v in values.items()},
                      {k: v.reshape(grid) for k, v in sd.items()}, mask_out, qc,
                      theta.reshape(grid + (lm.N_PARAMS,)), cov.reshape(grid + cov.shape[1:]),
                      conv.reshape(grid), self, n, design)

    @staticmethod
    def _at_bound(theta: np.ndarray, free: np.ndarray) -> np.ndarray:
        """Spectra with a free T2 or linewidth on its bound (a poor fit, whatever its SD says)."""
        hit = np.zeros(theta.shape[0], bool)
        for i, (lo, hi) in ((lm.R2W, lm.R2_BOUNDS_HZ), (lm.R2F, lm.R2_BOUNDS_HZ), (lm.LWW, lm.LW_BOUNDS_HZ),
                            (lm.LWF, lm.LW_BOUNDS_HZ)):
            if free[i]:
                with np.errstate(invalid="ignore"):
                    hit |= (theta[:, i] <= lo * (1 + 1e-6)) | (theta[:, i] >= hi * (1 - 1e-6))
        return hit

    def _mirrored(self, y: np.ndarray, design: lm.Design, shift_hz: float) -> bool:
        """Whether the data are stored in the mirrored (complex-conjugate) convention: the water + fat pattern
        explains clearly more of the conjugated FIDs (summed over up to 64 spectra). Without fat (or with fat
        lost in the noise) both fit alike and the data are taken as they are (the NIfTI-MRS convention)."""
        if self._fixed is None and design.f_fat_hz.size == 0:  # pragma: no cover
            return False
        sub = y[:: max(1, y.shape[0] // 64)][:64]
        norm = np.abs(sub[:, 0, :4]).mean(1)
        sub = sub / np.where(norm > 0, norm, 1.0)[:, None, None]
        e_as_is = starting_values(sub, design, shift_hz, return_energy=True).sum()
        e_conj = starting_values(sub.conj(), design, shift_hz, return_energy=True).sum()
        # conjugate only when clearly better: by more than 10 x the noise energy of the echo-summed FID per
        # spectrum (noise from its last quarter; a tail with signal left only raises the bar)
        tail = sub.sum(1)[:, -max(sub.shape[-1] // 4, 8):]
        margin = MIRROR_MARGIN * float(np.mean(np.abs(tail) ** 2, axis=1).sum())
        return bool(e_conj > e_as_is + margin)

    def _fit_truncated(self, y, theta0, free, bounds):
        """LM fit on the FID truncated where the narrowest plausible line has decayed (energy beyond
        < 1e-4 of the total: no information lost), refitted in full where the fitted lines are narrower."""
        n = y.shape[-1]
        lw_min = 0.7 * float(np.min(theta0[:, [lm.LWW, lm.LWF]]))
        n_eff = min(n, max(64, int(np.ceil(TRUNCATION_DECAY / (2 * np.pi * lw_min) / self.dwell_time_s))))
        res = lm.levenberg_marquardt(y[..., :n_eff], theta0, self.design(n_eff), free, bounds,
                                     max_iter=self.max_iter)
        cov, _ = lm.crb_covariance(res, self.te_s.size * n_eff, free)
        theta, cost, conv, n_iter = res.theta, res.cost, res.converged, res.n_iter
        narrow = np.min(theta[:, [lm.LWW, lm.LWF]], axis=1) < lw_min
        if n_eff < n and narrow.any():
            r2 = lm.levenberg_marquardt(y[narrow], theta[narrow], self.design(n), free, bounds,
                                        max_iter=self.max_iter)
            c2, _ = lm.crb_covariance(r2, self.te_s.size * n, free)
            theta[narrow], cov[narrow], conv[narrow] = r2.theta, c2, r2.converged
            cost = cost.copy()
            # noise variance per point is what later steps need: keep cost on the truncated scale
            cost[narrow] = r2.cost * n_eff / n
            n_iter[narrow] += r2.n_iter
        return theta, cov, cost * n / n_eff, conv, n_iter

    def _derived(self, theta, cov, cost, design, free, sel):
        """Reported quantities and their delta-method SDs from the parameter rows and covariances."""
        def var(i):
            return cov[:, i, i]

        def sd_of(grad: dict[int, np.ndarray]) -> np.ndarray:
            v = np.zeros(theta.shape[0])
            for i, gi in grad.items():
                for j, gj in grad.items():
                    v = v + gi * gj * cov[:, i, j]
            return np.sqrt(np.maximum(v, 0.0))

        wat, fat = theta[:, lm.W], theta[:, lm.F]
        s = wat + fat
        with np.errstate(divide="ignore", invalid="ignore"):
            pdff = 100 * fat / s
            values = {"mrs_pdff_percent": pdff}
            sd = {"mrs_pdff_percent_sd": sd_of({lm.W: -100 * fat / s**2, lm.F: 100 * wat / s**2})}
            for name, i in (("water_t2_ms", lm.R2W), ("fat_t2_ms", lm.R2F)):
                r2 = theta[:, i]
                if free[i]:
                    values[name] = 1000.0 / r2
                    sd[f"{name}_sd"] = 1000.0 * np.sqrt(var(i)) / r2**2
                else:
                    values[name] = sd[f"{name}_sd"] = np.full(theta.shape[0], np.nan)
            ndb = theta[:, lm.NDB]
            at_bound = (ndb <= NDB_BOUNDS[0] + 1e-6) | (ndb >= NDB_BOUNDS[1] - 1e-6) | ~np.isfinite(var(lm.NDB))
            sd_ndb = np.sqrt(var(lm.NDB))
            comp = composition(ndb)
            values["ndb"], sd["ndb_sd"] = ndb, sd_ndb
            for k, (v, d) in comp.items():
                values[k], sd[f"{k}_sd"] = v, np.abs(d) * sd_ndb
            if not free[lm.NDB]:
                at_bound[:] = False
            for k in _COMPOSITION:
                bad = at_bound | (not free[lm.NDB])
                values[k] = np.where(bad, np.nan, values[k])
                sd[f"{k}_sd"] = np.where(bad, np.nan, sd[f"{k}_sd"])
            values["water_linewidth_hz"], sd["water_linewidth_hz_sd"] = theta[:, lm.LWW], np.sqrt(var(lm.LWW))
            values["fat_linewidth_hz"], sd["fat_linewidth_hz_sd"] = theta[:, lm.LWF], np.sqrt(var(lm.LWF))
            values["mrs_phase_rad"] = np.angle(np.exp(1j * theta[:, lm.PHI]))
            sd["mrs_phase_rad_sd"] = np.sqrt(var(lm.PHI))
            values["mrs_shift_ppm"] = theta[:, lm.DEL] / self.spectrometer_mhz
            sd["mrs_shift_ppm_sd"] = np.sqrt(var(lm.DEL)) / self.spectrometer_mhz
            values["water_signal"], sd["water_signal_sd"] = wat, np.sqrt(var(lm.W))
            values["fat_signal"], sd["fat_signal_sd"] = fat, np.sqrt(var(lm.F))
            values["mrs_snr"], sd["mrs_snr_sd"] = self._snr(theta, cost, design, sel), np.full(theta.shape[0], np.nan)
        values["_ndb_at_bound"] = at_bound
        return values, sd

    def _snr(self, theta, cost, design, sel) -> np.ndarray:
        n = design.t_s.size
        out = np.full(theta.shape[0], np.nan)
        idx = np.flatnonzero(sel)
        for start in range(0, idx.size, self.chunk_size):
            i = idx[start:start + self.chunk_size]
            # the fitted first echo up to where its narrowest line has decayed to 1e-3 (peak height within 0.1 %)
            lw = max(float(np.min(theta[i][:, [lm.LWW, lm.LWF]])), 0.5)
            n_s = min(n, int(np.ceil(np.log(1e3) / (np.pi * lw) / self.dwell_time_s)) + 1)
            short = lm.Design(design.te_s, design.t_s[:n_s], design.f_water_hz, design.f_fat_hz,
                              design.fixed_amplitudes)
            first = lm.model_signal(theta[i], short, first_echo_only=True)[:, 0]
            peak = np.abs(np.fft.fft(first, n=n, axis=-1)).max(-1)
            sigma2 = cost[i] / max(self.te_s.size * n - lm.N_PARAMS / 2, 1)
            out[i] = peak / np.sqrt(sigma2 * n / 2)
        return out
