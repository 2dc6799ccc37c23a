"""One registry of every quantitative output map, and the Fit contract every model follows.

Each model declares its maps once, as :class:`MapSpec` rows passed to :func:`register_maps` at import of
its module; the pipeline writer, the CLI, the reports, the cohort tables and the DICOM writer read them
from here (:func:`map_spec`), so a map has the same name, unit, description and file name from every
entry point.

Rules:

* ``MapSpec.name`` is globally unique and states the unit where it has one (``pdff_percent``,
  ``r2star_hz``, ``t2star_short_ms``); it is the key of ``Fit.maps()``.
* ``units`` is UCUM (``%``, ``1/s``, ``Hz``, ``mm2/s``, ``ms``, ``us``, ``1`` for a dimensionless
  fraction, ``{a.u.}`` for arbitrary signal units).
* ``suffix`` is the BIDS-style file suffix (``<exam>_<suffix>.nii.gz``).
* A posterior/Cramér–Rao standard deviation of map ``X`` is ``X_sd``; :func:`map_spec` derives its spec.

The Fit contract (dipy ``reconst`` style; checked for every registered model by one test):
``fit.maps()`` returns ``{name: float32 array}`` for the registered names of that model, NaN outside
``fit.mask`` (and in voxels that could not be fitted); ``fit.mask`` is the boolean fitted mask;
``fit.qc`` a dict of exam-level quality metrics; ``fit.parameters()`` a JSON-able dict complete enough to
rebuild the model (``Model(**parameters)`` gives the same fit); ``fit.predict()`` the noise-free signal
where the model has a forward signal; ``Model.from_image(image)`` builds the model from an
:class:`~osteomri.io.image.Image`'s acquisition metadata.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from osteomri.errors import OsteoMRIError


@dataclass(frozen=True)
class MapSpec:
    """Declaration of one output map.

    ``model`` the model family that produces it (``"waterfat"``, ``"ivim"``, ``"t1w"``, ``"ute"``, ...);
    ``valid_range`` the physically possible range (values outside are a fit failure or a wrong input);
    ``dicom_quantity`` an optional coded concept ``(code value, coding scheme, meaning)`` for DICOM
    Parametric Map / SR output (e.g. ``("129100", "DCM", "Proton density fat fraction")``).
    """

    name: str
    units: str
    description: str
    suffix: str
    model: str
    valid_range: tuple[float, float] = (-math.inf, math.inf)
    dtype: str = "float32"
    dicom_quantity: tuple[str, str, str] | None = None


_REGISTRY: dict[str, MapSpec] = {}
#: the model modules that declare maps; imported on the first look-up, so that the answer never depends on
#: which models the caller happened to import
MODEL_MODULES = ("osteomri.models.waterfat", "osteomri.models.ivim", "osteomri.models.t1w", "osteomri.models.ute",
                 "osteomri.models.mrs")
_loaded = False


def _load_models() -> None:
    global _loaded
    if not _loaded:
        import importlib

        _loaded = True
        for name in MODEL_MODULES:
            importlib.import_module(name)


def register_maps(*specs: MapSpec) -> tuple[MapSpec, ...]:
    """Add ``specs`` to the registry (idempotent for an identical spec; a conflicting one raises)."""
    for spec in specs:
        old = _REGISTRY.get(spec.name)
        if old is not None and old != spec:
            raise OsteoMRIError(f"map {spec.name!r} registered twice with different specs: {old} vs {spec}")
        suffixes = {s.suffix: s.name for s in _REGISTRY.values() if s.name != spec.name}
        if spec.suffix in suffixes:
            raise OsteoMRIError(f"file suffix {spec.suffix!r} of map {spec.name!r} is already used by "
                                f"{suffixes[spec.suffix]!r}")
        _REGISTRY[spec.name] = spec
    return specs


def map_spec(name: str) -> MapSpec:
    """The spec of map ``name``; ``<name>_sd`` gets ``desc-sd_<suffix>`` (``desc-<label>sd_...`` when the suffix
    has a ``desc`` already), same units. Unknown -> KeyError."""
    if name not in _REGISTRY:
        _load_models()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name.endswith("_sd") and name[:-3] in _REGISTRY:
        base = _REGISTRY[name[:-3]]
        return MapSpec(name=name, units=base.units, description=f"standard deviation of {base.description}",
                       suffix=_sd_suffix(base.suffix), model=base.model, valid_range=(0.0, math.inf))
    raise KeyError(f"no output map named {name!r} is registered (known: {', '.join(sorted(_REGISTRY))})")


def _sd_suffix(suffix: str) -> str:
    """BIDS-style suffix of a standard-deviation map: one ``desc`` entity (``D`` -> ``desc-sd_D``,
    ``desc-short_T2starmap`` -> ``desc-shortsd_T2starmap``)."""
    if suffix.startswith("desc-") and "_" in suffix:
        label, rest = suffix[len("desc-"):].split("_", 1)
        return f"desc-{label}sd_{rest}"
    return f"desc-sd_{suffix}"


def registered_maps(model: str | None = None) -> dict[str, MapSpec]:
    """All registered specs (of one model family when ``model`` is given), by name."""
    _load_models()
    return {k: v for k, v in _REGISTRY.items() if model is None or v.model == model}


def finalise_maps(maps: Mapping[str, np.ndarray], mask: np.ndarray) -> dict[str, np.ndarray]:
    """The contract's map form: float32 copies with NaN outside ``mask`` (boolean, spatial shape)."""
    m = np.asarray(mask, dtype=bool)
    out: dict[str, np.ndarray] = {}
    for name, arr in maps.items():
        a = np.array(arr, dtype=np.float32, copy=True)
        if a.shape != m.shape:
            raise OsteoMRIError(f"map {name!r} has shape {a.shape}, its mask {m.shape}")
        a[~m] = np.nan
        out[name] = a
    return out


@runtime_checkable
class Fit(Protocol):
    """What every model's fit offers (see the module docstring)."""

    mask: np.ndarray
    qc: dict[str, Any]

    def maps(self) -> dict[str, np.ndarray]: ...

    def parameters(self) -> dict[str, Any]: ...
