"""The exam pipeline's stages: the only place that knows which stages exist and what each needs.

Each stage is a :class:`Stage` with a predicate saying whether it applies to an exam (its inputs exist),
the library module it needs (a stage whose module is not built yet is reported ``not_available``, never
faked) and a function ``run(spec, ctx) -> message`` that adds maps/tables/scores to the shared context.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.io.loader import is_dicom_source, load_image
from osteomri.pipeline.spec import ExamResult, ExamSpec

# Map key -> (BIDS-style file suffix, units, description). One home for the names of every output map.
MAP_OUTPUTS: dict[str, tuple[str, str, str]] = {
    "pdff_percent": ("pdff", "percent", "proton-density fat fraction"),
    "r2star_hz": ("r2star", "Hz", "transverse relaxation rate R2* (1/s)"),
    "fieldmap_hz": ("fieldmap", "Hz", "B0 off-resonance"),
    "water": ("water", "a.u.", "water signal amplitude at TE = 0"),
    "fat": ("fat", "a.u.", "fat signal amplitude at TE = 0"),
    "waterfat_residual": ("desc-waterfat_residual", "fraction", "relative water-fat fit residual"),
    "t1w_signal": ("T1w", "a.u.", "T1-weighted signal intensity"),
    "s0": ("S0", "a.u.", "IVIM signal at b = 0"),
    "f": ("perfusionfraction", "fraction", "IVIM perfusion fraction f"),
    "d_mm2_s": ("D", "mm2/s", "IVIM tissue diffusion coefficient D"),
    "dstar_mm2_s": ("Dstar", "mm2/s", "IVIM pseudo-diffusion coefficient D*"),
    "ivim_residual": ("desc-ivim_residual", "fraction", "relative IVIM fit residual"),
}



def output_spec(key: str) -> tuple[str, str, str]:
    """(file suffix, units, description) of an output map; ``<map>_sd`` posterior SDs get ``desc-sd_<suffix>``."""
    if key in MAP_OUTPUTS:
        return MAP_OUTPUTS[key]
    if key.endswith("_sd") and key[:-3] in MAP_OUTPUTS:
        suffix, units, description = MAP_OUTPUTS[key[:-3]]
        return f"desc-sd_{suffix}", units, f"posterior standard deviation of {description}"
    return key, "", key


def signal_mask(reference: np.ndarray, fraction_of_p99: float = 0.05) -> np.ndarray:
    """Voxels whose reference (lowest-b) signal exceeds ``fraction_of_p99`` of its 99th percentile (not air)."""
    ref = np.abs(np.nan_to_num(np.asarray(reference, dtype=float)))
    if not (ref > 0).any():
        raise InputError("reference image has no signal (all zero or NaN)")
    return ref > fraction_of_p99 * np.percentile(ref[ref > 0], 99)


# Maps that the measurement layer summarises per vertebra, and those shown with their ROIs outlined.
MEASURED_MAPS = ("pdff_percent", "r2star_hz", "t1w_signal", "f", "d_mm2_s", "dstar_mm2_s")
QC_FIGURE_MAPS = ("pdff_percent", "r2star_hz", "t1w_signal", "f")


@dataclass
class ExamContext:
    """Mutable state shared by the stages of one exam run."""

    spec: ExamSpec
    result: ExamResult
    images: dict[str, Image]

    def input(self, name: str) -> Image:
        """Load (once) the input ``name`` of the spec."""
        if name not in self.images:
            if getattr(self.spec, name) is None:
                raise InputError(f"no {name}: none given and none found automatically (see the autolabel stage)")
            self.images[name] = load_image(getattr(self.spec, name))
        return self.images[name]


@dataclass(frozen=True)
class Stage:
    name: str
    applies: Callable[[ExamSpec], bool]
    modules: tuple[str, ...]
    run: Callable[[ExamSpec, ExamContext], str]
    needs: tuple[tuple[str, ...], ...] = ()  # each group: at least one of these stages must have succeeded

    def missing_modules(self) -> list[str]:
        """The library modules this stage needs that are not built (yet)."""
        return [m for m in self.modules if importlib.util.find_spec(m) is None]

    def unmet_needs(self, done: set[str]) -> list[str]:
        """The groups of ``needs`` of which no stage succeeded (``"a or b"``)."""
        return [" or ".join(group) for group in self.needs if not done.intersection(group)]


def _opts(spec: ExamSpec, stage: str) -> dict[str, Any]:
    return dict(spec.options.get(stage, {}))


def _check_finite(image: Image, what: str) -> None:
    if not np.isfinite(image.data).any():
        raise InputError(f"{what} has no finite values (NaN-only data)")


def run_waterfat(spec: ExamSpec, ctx: ExamContext) -> str:
    from osteomri.waterfat import WaterFatModel

    img = ctx.input("megre")
    _check_finite(img, "MEGRE")
    if img.data.ndim != 4:
        raise InputError(f"MEGRE must be 4-D (x, y, z, echo), got shape {img.data.shape}")
    model = WaterFatModel.from_image(img, **_opts(spec, "waterfat"))
    fit = model.fit(img.data)
    _store_maps(ctx, img, fit.maps(), "waterfat", drop_meta=("EchoTime",))
    ctx.result.qc.update({f"waterfat_{k}": v for k, v in fit.qc.items()})
    return f"{model.te_s.size} echoes at {model.field_strength_t:g} T"


def _store_maps(ctx: ExamContext, source: Image, maps: dict[str, np.ndarray], model: str,
                drop_meta: tuple[str, ...]) -> None:
    """Put a fit's maps into the result on the grid of ``source``; its ``residual`` becomes ``<model>_residual``
    and acquisition keys that no longer describe the map (echo times, b-values) are dropped."""
    for key, arr in maps.items():
        out_key = f"{model}_residual" if key == "residual" else key
        image = source.with_data(np.asarray(arr), Units=output_spec(out_key)[1])
        for name in drop_meta:
            image.meta.pop(name, None)
        ctx.result.maps[out_key] = image


def _vendor_map(source: object, quantity: str) -> Image:
    from osteomri.io.dicom_vendor import load_vendor_map

    return load_vendor_map(source, quantity=quantity)


def run_vendor_maps(spec: ExamSpec, ctx: ExamContext) -> str:
    loaded = []
    for name, key in (("pdff", "pdff_percent"), ("r2star", "r2star_hz")):
        if getattr(spec, name) is None:
            continue
        img = _vendor_map(getattr(spec, name), name) if is_dicom_source(getattr(spec, name)) else ctx.input(name)
        _check_finite(img, f"{name} map")
        data = np.asarray(img.data, dtype=float)
        units = str(img.meta.get("Units", "")).lower()
        if key == "pdff_percent":
            if units in ("fraction", "ratio"):
                data = data * 100.0
            elif units not in ("percent", "%") and np.nanpercentile(data, 99) <= 1.0:
                raise InputError("PDFF map values lie within [0, 1] and its sidecar gives no Units: say 'percent' "
                                 "or 'fraction' in the JSON sidecar")
        elif units in ("ms", "s"):
            raise InputError(f"R2* map has Units '{units}' (a T2* time?): give R2* in 1/s (Units 'Hz')")
        ctx.result.maps[key] = img.with_data(data, Units=MAP_OUTPUTS[key][1])
        loaded.append(key)
    return "vendor maps: " + ", ".join(loaded)


def run_t1w(spec: ExamSpec, ctx: ExamContext) -> str:
    img = ctx.input("t1w")
    _check_finite(img, "T1w image")
    data = img.data if img.data.ndim == 3 else img.data[..., 0]
    ctx.result.maps["t1w_signal"] = img.with_data(np.asarray(data, dtype=float), Units="a.u.")
    return "T1-weighted image loaded"


def run_ivim(spec: ExamSpec, ctx: ExamContext) -> str:
    from osteomri.ivim import IvimModel

    img = ctx.input("dwi")
    _check_finite(img, "DWI")
    bvals = _bvalues(spec, img)
    opts = _opts(spec, "ivim")
    mask = signal_mask(img.data[..., int(np.argmin(bvals))])
    fit = IvimModel(bvals, **opts).fit(img.data, mask=mask)
    _store_maps(ctx, img, fit.maps(), "ivim", drop_meta=("bvalues",))
    return f"{len(bvals)} b-values, method {opts.get('method', 'default')}, {int(mask.sum())} voxels"


def _bvalues(spec: ExamSpec, dwi: Image) -> np.ndarray:
    """b-values (s/mm^2): as given (numbers, .bval/.json file), else beside the DWI file or in its sidecar."""
    from osteomri.io.bvals import find_bvals, resolve_bvalues

    if spec.bvals is None and isinstance(spec.dwi, (str, os.PathLike)):
        return resolve_bvalues(find_bvals(spec.dwi, None, dwi.meta)[0], dwi)
    return resolve_bvalues(spec.bvals, dwi)


def run_measure(spec: ExamSpec, ctx: ExamContext) -> str:
    from osteomri.report.figures import qc_panels
    from osteomri.vertebrae import measure_vertebrae_with_rois

    maps = {k: v for k, v in ctx.result.maps.items() if k in MEASURED_MAPS}
    if not maps:
        raise InputError("no parametric map to measure (no MEGRE, vendor map, T1w or DWI stage succeeded)")
    table, rois = measure_vertebrae_with_rois(maps, ctx.input("labels"), preset=spec.label_preset, roi=spec.roi,
                                              exam=spec.exam_id, **_opts(spec, "measure"))
    ctx.result.vertebrae = table
    shown = {name: maps[name] for name in QC_FIGURE_MAPS if name in rois}
    if shown:
        ctx.result.figures["qc"] = qc_panels(shown, rois)
    return f"{table['level'].nunique()} levels x {len(maps)} maps, ROI '{spec.roi}'"


def run_vbq(spec: ExamSpec, ctx: ExamContext) -> str:
    from osteomri.vertebrae import vbq_score

    res = vbq_score(ctx.input("t1w"), ctx.input("labels"), preset=spec.label_preset, **_opts(spec, "vbq"))
    ctx.result.scores["vbq"] = res
    value = getattr(res, "value", res)
    return f"VBQ = {float(value):.3f}"


def run_screening(spec: ExamSpec, ctx: ExamContext) -> str:
    """Risk estimate: the L1–L5 mean PDFF and R2* against the seed study's published cut-offs."""
    from osteomri.stats.screening import PUBLISHED_CUTOFFS, SEED_STUDY_PREVALENCE, screen_markers
    from osteomri.vertebrae.labels import LUMBAR

    table = ctx.result.vertebrae
    if table is None or not len(table):
        raise InputError("no per-vertebra table to screen (the measure stage did not succeed)")
    lumbar = table[table["level"].isin(LUMBAR)]
    values = {m: float(lumbar.loc[lumbar["map"] == m, "mean"].mean()) for m in PUBLISHED_CUTOFFS
              if (lumbar["map"] == m).any()}
    if not values:
        raise InputError("no PDFF or R2* measured in L1–L5: nothing to compare with the published cut-offs")
    opts = _opts(spec, "screening")
    screen = screen_markers(values, opts.get("pretest_probability", SEED_STUDY_PREVALENCE))
    field = ctx.images["megre"].meta.get("MagneticFieldStrength") if "megre" in ctx.images else None
    screen["levels"] = ",".join(sorted(lumbar["level"].unique()))
    screen["field_strength_t"] = field
    screen["applicability"] = ("protocol matches (3 T)" if field is not None and abs(float(field) - 3.0) < 0.2
                               else "extrapolated: cut-offs were derived at 3 T (R2* scales with B0)")
    ctx.result.scores["osteoporosis_screen"] = screen
    flags = [f"{r.marker} {'positive' if r.positive else 'negative'}" for r in screen.itertuples()]
    return "; ".join(flags)


_MAP_STAGES = ("waterfat", "vendor_maps", "t1w", "ivim")
# automatic labels when the exam has none (issue #14): the stage logic lives in its own module
from osteomri.pipeline.autolabel_stage import autolabel_applies, labels_available, run_autolabel  # noqa: E402

STAGES: tuple[Stage, ...] = (
    Stage("waterfat", lambda s: s.megre is not None, ("osteomri.waterfat",), run_waterfat),
    Stage("vendor_maps", lambda s: s.megre is None and (s.pdff is not None or s.r2star is not None),
          ("osteomri.io.nifti",), run_vendor_maps),
    Stage("t1w", lambda s: s.t1w is not None, ("osteomri.io.nifti",), run_t1w),
    Stage("ivim", lambda s: s.dwi is not None, ("osteomri.ivim", "osteomri.io.bvals"), run_ivim),
    Stage("autolabel", autolabel_applies, ("osteomri.vertebrae.autolabel",), run_autolabel,
          needs=(("waterfat", "vendor_maps", "t1w"),)),
    Stage("measure", labels_available, ("osteomri.vertebrae.measure",), run_measure,
          needs=(_MAP_STAGES,)),
    Stage("vbq", lambda s: labels_available(s) and s.t1w is not None, ("osteomri.vertebrae.scores",), run_vbq,
          needs=(("t1w",),)),
    Stage("screening", lambda s: labels_available(s) and any(x is not None for x in (s.megre, s.pdff, s.r2star)),
          ("osteomri.vertebrae.measure", "osteomri.stats.screening"), run_screening,
          needs=(("measure",), ("waterfat", "vendor_maps"))),
)
