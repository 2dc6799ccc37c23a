"""IVIM model and fit (dipy-style ``Model(...).fit(data, mask) -> Fit``).

    S(b) = S0 * [f * exp(-b D*) + (1 - f) * exp(-b D)]           Le Bihan et al., Radiology 1988;168:497

Example::

    from osteomri.ivim import IvimModel
    model = IvimModel(bvalues_s_mm2, method="full")
    fit = model.fit(dwi, mask=mask)            # dwi[..., n_b]
    fit.f, fit.d_mm2_s, fit.dstar_mm2_s       # spatial shape, NaN outside the mask / in invalid voxels

Methods (see :mod:`osteomri.models.ivim.fitters` for the algorithms and references):

* ``"segmented"`` -- D from a mono-exponential fit of b >= ``b_threshold_s_mm2``, then f and D*.
* ``"full"`` -- bounded nonlinear least squares of all four parameters (batched Levenberg-Marquardt),
  started from the segmented fit and two other points of its D* profile. The default.
* ``"bayesian"`` -- posterior means (and SDs, as ``*_sd`` maps) under flat priors within the bounds.

Bounds: :mod:`osteomri.models.ivim.bounds` (defaults suited to marrow; f up to 1). b-values, repeats,
b = 0 and normalisation: :mod:`osteomri.models.ivim.acquisition`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from osteomri.errors import InputError
from osteomri.models.ivim.acquisition import Acquisition
from osteomri.models.ivim.bounds import PARAMS, IvimBounds, make_bounds
from osteomri.models.ivim.fitters import fit_bayesian, fit_full, segmented_with_starts
from osteomri.models.ivim.signal import ivim_signal
from osteomri.models.registry import MapSpec, finalise_maps, map_spec, register_maps

METHODS = ("full", "segmented", "bayesian")

#: The maps of an IVIM fit, declared once (names = keys of :meth:`IvimFit.maps`; posterior SDs of
#: ``method="bayesian"`` are ``<name>_sd``, see :func:`~osteomri.models.registry.map_spec`).
MAP_SPECS = register_maps(
    MapSpec("ivim_s0", "{a.u.}", "IVIM signal at b = 0 (S0), in the units of the input signal", "S0", "ivim",
            (0.0, math.inf)),
    MapSpec("f", "1", "IVIM perfusion fraction f", "perfusionfraction", "ivim", (0.0, 1.0)),
    MapSpec("d_mm2_s", "mm2/s", "IVIM tissue diffusion coefficient D", "D", "ivim", (0.0, math.inf)),
    MapSpec("dstar_mm2_s", "mm2/s", "IVIM pseudo-diffusion coefficient D*", "Dstar", "ivim", (0.0, math.inf)),
    MapSpec("ivim_residual", "1", "root-mean-square IVIM fit residual over the (averaged) b-values, relative to "
            "the b = 0 signal", "desc-ivim_residual", "ivim", (0.0, math.inf)),
)
MAP_NAMES = tuple(spec.name for spec in MAP_SPECS)
_ATTRIBUTES = {"ivim_s0": "s0", "ivim_residual": "residual"}  # map name -> attribute, where they differ

ProgressCallback = Callable[[int, int], None]


@dataclass
class IvimFit:
    """Fitted IVIM parameter maps, each of the spatial shape of the input (NaN where not fitted).

    Attributes: ``s0`` (input signal units), ``f`` (0-1), ``d_mm2_s`` and ``dstar_mm2_s`` (mm^2/s),
    ``residual`` (RMS residual relative to the reference, b = 0, signal; about 1/SNR for a good fit); for
    ``method="bayesian"`` also ``sd`` with the posterior standard deviations keyed like :meth:`maps`
    (``ivim_s0_sd``, ``f_sd``, ...). ``mask`` the fitted voxels, ``qc`` exam-level counts.
    """

    s0: np.ndarray
    f: np.ndarray
    d_mm2_s: np.ndarray
    dstar_mm2_s: np.ndarray
    residual: np.ndarray
    method: str
    bounds: IvimBounds
    bvalues_s_mm2: np.ndarray
    sd: dict[str, np.ndarray] = field(default_factory=dict)
    mask: np.ndarray | None = None
    qc: dict[str, Any] = field(default_factory=dict)
    model: IvimModel | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.mask is None:
            self.mask = np.isfinite(np.asarray(self.f))

    def maps(self) -> dict[str, np.ndarray]:
        """The registered maps (:data:`MAP_NAMES`, + ``*_sd`` for ``bayesian``): float32, NaN outside
        :attr:`mask`."""
        maps = {k: getattr(self, _ATTRIBUTES.get(k, k)) for k in MAP_NAMES}
        maps.update(self.sd)
        return finalise_maps(maps, self.mask)

    def parameters(self) -> dict[str, Any]:
        """The fitted model's :meth:`IvimModel.parameters` (``{}`` for a fit built by hand)."""
        return {} if self.model is None else self.model.parameters()

    def predict(self, bvalues_s_mm2: np.ndarray | None = None) -> np.ndarray:
        """Noise-free model signal ``[..., n_b]`` at ``bvalues_s_mm2`` (default: the fitted b-values)."""
        b = self.bvalues_s_mm2 if bvalues_s_mm2 is None else np.asarray(bvalues_s_mm2, dtype=float)
        return ivim_signal(b, self.s0, self.f, self.d_mm2_s, self.dstar_mm2_s)

    def to_images(self, affine: np.ndarray, meta: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """``{name: Image}`` on the grid ``affine`` (``Units`` and ``Description`` from the map registry)."""
        from osteomri.io.image import Image

        base = dict(meta or {})
        return {k: Image(v, affine, {**base, "Units": map_spec(k).units, "Description": map_spec(k).description})
                for k, v in self.maps().items()}


class IvimModel:
    """IVIM model for an acquisition with the given b-values.

    Parameters
    ----------
    bvalues_s_mm2:
        One b-value per measurement (last axis of the signal), s/mm^2, >= 0. Repeats and several
        directions per b-value are allowed and averaged (``average``).
    method:
        ``"full"`` (default), ``"segmented"`` or ``"bayesian"``.
    bounds:
        Partial or full mapping ``{"s0": (lo, hi), "f": ..., "d_mm2_s": ..., "dstar_mm2_s": ...}`` merged
        with :data:`~osteomri.models.ivim.bounds.DEFAULT_BOUNDS`; ``s0`` is relative to the reference
        (lowest-b) signal.
    b_threshold_s_mm2:
        b-values >= this (s/mm^2) are taken as free of perfusion in the segmented step (default 200).
    average:
        ``"geometric"`` (default; trace for several directions) or ``"arithmetic"``.
    chunk_size:
        Voxels per batch (bounds memory: about ``chunk_size * n_b * 1 kB`` for ``full``).
    n_samples, n_burn, seed:
        Markov chain length, burn-in and random seed of ``method="bayesian"`` (results are reproducible).
    """

    def __init__(
        self,
        bvalues_s_mm2: np.ndarray | list[float],
        method: str = "full",
        bounds: Mapping[str, tuple[float, float]] | IvimBounds | None = None,
        b_threshold_s_mm2: float = 200.0,
        *,
        average: str = "geometric",
        chunk_size: int = 4096,
        n_samples: int = 2000,
        n_burn: int = 500,
        seed: int = 0,
    ) -> None:
        if method not in METHODS:
            raise InputError(f"unknown IVIM method {method!r}; use one of {', '.join(METHODS)}")
        self.method = method
        self.acquisition = Acquisition.from_bvalues(bvalues_s_mm2, average=average)
        self.bounds = make_bounds(bounds)
        self.b_threshold_s_mm2 = float(b_threshold_s_mm2)
        b = self.acquisition.unique_s_mm2
        n_high = int((b >= self.b_threshold_s_mm2).sum())
        if b.size < 4:
            raise InputError(f"IVIM needs at least 4 distinct b-values, got {b.size} ({_fmt(b)} s/mm^2)")
        if n_high < 2:
            raise InputError(
                f"IVIM needs at least 2 distinct b-values >= the threshold {self.b_threshold_s_mm2:g} s/mm^2, "
                f"got {n_high} ({_fmt(b)} s/mm^2)"
            )
        if n_high == b.size:
            raise InputError(
                f"IVIM needs b-values below the threshold {self.b_threshold_s_mm2:g} s/mm^2 to measure "
                f"perfusion, got only {_fmt(b)} s/mm^2"
            )
        if chunk_size < 1:
            raise InputError(f"chunk_size must be >= 1, got {chunk_size}")
        self.chunk_size = int(chunk_size)
        self.n_samples, self.n_burn, self.seed = int(n_samples), int(n_burn), int(seed)

    @property
    def bvalues_s_mm2(self) -> np.ndarray:
        """The b-values (s/mm^2) after grouping repeats: the abscissa of the fit."""
        return self.acquisition.unique_s_mm2

    @classmethod
    def from_image(cls, image: Any, bvalues_s_mm2: Any = None, **options: Any) -> IvimModel:
        """The model for a diffusion :class:`~osteomri.io.image.Image`: b-values as given (numbers or a
        ``.bval``/``.json`` path), else from the image's metadata (``bvalues``/``DiffusionBValue``); the count
        must match the image's last axis. ``options``: any other constructor argument."""
        from osteomri.io.bvals import resolve_bvalues

        return cls(resolve_bvalues(bvalues_s_mm2, image), **options)

    def parameters(self) -> dict[str, Any]:
        """Every setting, JSON-able: ``IvimModel(**parameters())`` rebuilds this model."""
        return {"bvalues_s_mm2": self.acquisition.bvalues_s_mm2.tolist(), "method": self.method,
                "bounds": self.bounds.as_dict(), "b_threshold_s_mm2": self.b_threshold_s_mm2,
                "average": self.acquisition.average, "chunk_size": self.chunk_size, "n_samples": self.n_samples,
                "n_burn": self.n_burn, "seed": self.seed}

    def fit(
        self,
        signal: np.ndarray,
        mask: np.ndarray | None = None,
        *,
        progress: ProgressCallback | None = None,
    ) -> IvimFit:
        """Fit every voxel of ``signal[..., n_measurements]`` (inside ``mask`` if given).

        Voxels outside the mask, with any non-finite value, or with a reference signal <= 0 (e.g. all
        zeros) get NaN in every map. ``progress(done, total)`` is called after each chunk of voxels.
        """
        signal = self.acquisition.check_signal(signal)
        spatial = signal.shape[:-1]
        flat = signal.reshape(-1, signal.shape[-1])
        select = np.ones(flat.shape[0], dtype=bool)
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != spatial:
                raise InputError(f"mask shape {mask.shape} does not match the signal's spatial shape {spatial}")
            select = mask.reshape(-1).astype(bool)
        names = list(PARAMS) + ["residual"]
        if self.method == "bayesian":
            names += [f"{p}_sd" for p in PARAMS]
        out = {k: np.full(flat.shape[0], np.nan) for k in names}
        where = np.flatnonzero(select)
        total = where.size
        for start in range(0, total, self.chunk_size):
            idx = where[start : start + self.chunk_size]
            y, ref, valid = self.acquisition.normalised(flat[idx])
            if valid.any():
                res = self._fit_normalised(y[valid], ref[valid])
                for k, v in res.items():
                    out[k][idx[valid]] = v
            if progress is not None:
                progress(min(start + self.chunk_size, total), total)
        maps = {k: v.reshape(spatial) for k, v in out.items()}
        sd = {("ivim_s0_sd" if k == "s0_sd" else k): maps[k] for k in names if k.endswith("_sd")}
        fitted = np.isfinite(maps["f"])
        return IvimFit(maps["s0"], maps["f"], maps["d_mm2_s"], maps["dstar_mm2_s"], maps["residual"],
                       self.method, self.bounds, self.bvalues_s_mm2.copy(), sd, mask=fitted,
                       qc={"n_fitted_voxels": int(fitted.sum()), "n_masked_voxels": int(select.sum())},
                       model=self)

    def _fit_normalised(self, y: np.ndarray, ref: np.ndarray) -> dict[str, np.ndarray]:
        b = self.acquisition.unique_s_mm2
        lo, hi = self.bounds.lower, self.bounds.upper
        theta, starts = segmented_with_starts(y, b, lo, hi, self.b_threshold_s_mm2, n_bands=3)
        sd = None
        if self.method in ("full", "bayesian"):
            theta = fit_full(y, b, lo, hi, np.concatenate([theta[:, None], starts], axis=1))
        if self.method == "bayesian":
            theta, sd = fit_bayesian(y, b, lo, hi, theta, n_burn=self.n_burn, n_samples=self.n_samples,
                                     seed=self.seed)
        pred = ivim_signal(b, theta[:, 0], theta[:, 1], theta[:, 2], theta[:, 3])
        rms = np.sqrt(((pred - y) ** 2).mean(1))
        out = {"s0": theta[:, 0] * ref, "f": theta[:, 1], "d_mm2_s": theta[:, 2], "dstar_mm2_s": theta[:, 3],
               "residual": rms}
        if sd is not None:
            out.update({"s0_sd": sd[:, 0] * ref, "f_sd": sd[:, 1], "d_mm2_s_sd": sd[:, 2],
                        "dstar_mm2_s_sd": sd[:, 3]})
        return out


def _fmt(b: np.ndarray) -> str:
    return ", ".join(f"{x:g}" for x in b)
