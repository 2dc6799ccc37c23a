"""``SolverOptions``: every result-changing setting of :class:`~osteomri.models.waterfat.model.WaterFatModel`
beyond the acquisition, as one frozen dataclass, so that ``fit.parameters()`` is complete by construction
(``WaterFatModel(**parameters)`` rebuilds the same model).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from osteomri.errors import InputError
from osteomri.models.waterfat.t1bias import T1Correction

#: Upper bound of every fitted R2* (1/s): complex and magnitude fits alike; the initial residual grid spans
#: 0..half of it (denser at low R2*). Marrow R2* at 3 T is about 50-150 1/s; cortical bone and iron overload
#: reach several hundred.
R2STAR_MAX_HZ = 1000.0


@dataclass(frozen=True)
class SolverOptions:
    """Solver settings of the water–fat separation (all keyword; defaults are those of every entry point).

    ``regularisation`` smoothness weight of the field map in noise units (a jump of one main fat shift
    between two neighbours costs ``regularisation`` noise variances of data term); ``voxel_size_mm`` voxel
    edges (mm; neighbours along thick axes are coupled less, weight ∝ 1/size²; None = isotropic);
    ``fieldmap_step_hz``/``fieldmap_range_hz`` grid step and half-range of the field-map search (None: from
    the echo times); ``r2star_max_hz`` upper R2* bound (1/s); ``n_r2star`` R2* grid points;
    ``smooth_fieldmap`` smooth the refined field map and refit the amplitudes (``smoothing_size_voxels``
    window, kept where the misfit rises by at most ``smoothing_misfit_limit`` noise variances);
    ``demodulate`` second field-map pass around a robust smooth fit of the first; ``noise_energy_factor``
    voxels whose echo energy is below this many noise energies leave the field-map search to the smoothness
    term; ``t1_correction`` optional :class:`T1Correction`; ``signal_threshold`` background below this
    fraction of the 99th percentile rms signal; ``chunk_voxels`` voxels per batch of the residual grid
    (memory only, no effect on results); ``bipolar_correction`` True: estimate and remove the even echoes'
    phase error of a bipolar readout, False: monopolar (the error is still looked for and flagged in QC),
    ``"auto"``: detect it from the data and correct it when found; ``precession_check`` check a stated
    precession convention against the data and follow the data, with a warning, when the other convention
    fits far better. ``voxel_size_mm`` None (unknown geometry, e.g. toolbox ``.mat``): the slice axis 2 is
    taken as thick (:data:`UNKNOWN_SLICE_WEIGHT`).
    """

    regularisation: float = 100.0
    voxel_size_mm: tuple[float, float, float] | None = None
    fieldmap_step_hz: float | None = None
    fieldmap_range_hz: float | None = None
    r2star_max_hz: float = R2STAR_MAX_HZ
    n_r2star: int = 9
    smooth_fieldmap: bool = True
    demodulate: bool = True
    smoothing_size_voxels: int = 3
    smoothing_misfit_limit: float = 9.0
    noise_energy_factor: float = 3.0
    t1_correction: T1Correction | None = None
    signal_threshold: float = 0.05
    chunk_voxels: int = 16384
    bipolar_correction: bool | str = "auto"
    precession_check: bool = True

    def __post_init__(self) -> None:
        t1 = self.t1_correction
        if isinstance(t1, Mapping):  # from a JSON sidecar
            object.__setattr__(self, "t1_correction", T1Correction(**t1))
        elif t1 is not None and not isinstance(t1, T1Correction):
            raise InputError(f"t1_correction must be a T1Correction or a dict, got {type(t1).__name__}")
        if self.voxel_size_mm is not None:
            size = tuple(float(v) for v in self.voxel_size_mm)
            if len(size) != 3 or not all(v > 0 for v in size):
                raise InputError(f"voxel_size_mm must be three positive numbers, got {self.voxel_size_mm}")
            object.__setattr__(self, "voxel_size_mm", size)
        bip = self.bipolar_correction
        if isinstance(bip, str) and bip != "auto":
            raise InputError(f"bipolar_correction must be True, False or 'auto', got {bip!r}")
        if not isinstance(bip, str):
            object.__setattr__(self, "bipolar_correction", bool(bip))
        if not self.r2star_max_hz > 0:
            raise InputError(f"r2star_max_hz must be positive (1/s), got {self.r2star_max_hz}")

    @classmethod
    def build(cls, options: SolverOptions | Mapping[str, Any] | None = None, **overrides: Any) -> SolverOptions:
        """Options from a :class:`SolverOptions`, a dict (e.g. a sidecar's parameters) and keyword overrides;
        an unknown name raises :class:`InputError`."""
        base = options if isinstance(options, SolverOptions) else cls(**_checked(dict(options or {})))
        return dataclasses.replace(base, **_checked(overrides)) if overrides else base

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (tuples as lists, the T1 correction as a dict)."""
        out = dataclasses.asdict(self)
        if out["voxel_size_mm"] is not None:
            out["voxel_size_mm"] = list(out["voxel_size_mm"])
        return out


def _checked(values: dict[str, Any]) -> dict[str, Any]:
    known = {f.name for f in dataclasses.fields(SolverOptions)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise InputError(f"unknown water-fat option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return values
