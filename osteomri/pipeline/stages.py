"""The exam pipeline's stages: the only place that knows which stages exist and what each needs.

Each stage is a :class:`Stage` with a predicate saying whether it applies to an exam (its inputs exist),
the library modules it uses, and a function ``run(spec, ctx) -> message`` that adds maps/tables/scores to
the shared context. Map names, units and file names come from the map registry
(:mod:`osteomri.models.registry`), filled by the model modules imported here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from osteomri.errors import InputError
from osteomri.io.image import Image
from osteomri.io.loader import is_dicom_source, load_image
from osteomri.models import ivim as _ivim  # noqa: F401 - each model module registers its maps
from osteomri.models import t1w as _t1w  # noqa: F401
from osteomri.models import waterfat as _waterfat  # noqa: F401
from osteomri.models.registry import map_spec
from osteomri.pipeline import mrs_stage as _mrs  # the MRS stage lives in its own module
from osteomri.pipeline.autolabel_stage import autolabel_applies, labels_available, run_autolabel
from osteomri.pipeline.guards import check_screenable, labelled_options
from osteomri.pipeline.measure_stage import run_given_maps, run_measure
from osteomri.pipeline.model_stages import check_finite, run_ivim, run_waterfat
from osteomri.pipeline.spec import ExamResult, ExamSpec
from osteomri.pipeline.ute import run_ute_stage


@dataclass
class ExamContext:
    """Mutable state shared by the stages of one exam run."""

    spec: ExamSpec
    result: ExamResult
    images: dict[str, Image]

    def input(self, name: str) -> Image:
        """Load (once) the input ``name`` of the spec (the DICOM series of ``spec.series[name]`` if given)."""
        if name not in self.images:
            if getattr(self.spec, name) is None:
                raise InputError(f"no {name}: none given and none found automatically (see the autolabel stage)")
            self.images[name] = load_image(getattr(self.spec, name), series_uid=self.spec.series.get(name))
        return self.images[name]


@dataclass(frozen=True)
class Stage:
    name: str
    applies: Callable[[ExamSpec], bool]
    modules: tuple[str, ...]  # the library modules it uses (documentation; an import error is a failure)
    run: Callable[[ExamSpec, ExamContext], str]
    needs: tuple[tuple[str, ...], ...] = ()  # each group: at least one of these stages must have succeeded

    def unmet_needs(self, done: set[str]) -> list[str]:
        """The groups of ``needs`` of which no stage succeeded (``"a or b"``)."""
        return [" or ".join(group) for group in self.needs if not done.intersection(group)]


def _opts(spec: ExamSpec, stage: str) -> dict[str, Any]:
    return dict(spec.options.get(stage, {}))


def _vendor_map(source: object, quantity: str) -> Image:
    from osteomri.io.dicom_vendor import load_vendor_map

    return load_vendor_map(source, quantity=quantity)


def run_vendor_maps(spec: ExamSpec, ctx: ExamContext) -> str:
    loaded = []
    for name, key in (("pdff", "pdff_percent"), ("r2star", "r2star_hz")):
        if getattr(spec, name) is None:
            continue
        img = _vendor_map(getattr(spec, name), name) if is_dicom_source(getattr(spec, name)) else ctx.input(name)
        check_finite(img, f"{name} map")
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
        ctx.result.maps[key] = img.with_data(data, Units=map_spec(key).units)
        loaded.append(key)
    return "vendor maps: " + ", ".join(loaded)


def run_t1w(spec: ExamSpec, ctx: ExamContext) -> str:
    img = ctx.input("t1w")
    check_finite(img, "T1w image")
    data = img.data if img.data.ndim == 3 else img.data[..., 0]
    ctx.result.maps["t1w_signal"] = img.with_data(np.asarray(data, dtype=float), Units=map_spec("t1w_signal").units)
    return "T1-weighted image loaded"


def run_vbq(spec: ExamSpec, ctx: ExamContext) -> str:
    from osteomri.vertebrae import vbq_score

    res = vbq_score(ctx.input("t1w"), ctx.input("labels"), preset=spec.label_preset,
                    **labelled_options(spec, "vbq"))
    ctx.result.scores["vbq"] = res
    value = getattr(res, "value", res)
    return f"VBQ = {float(value):.3f}"


def run_screening(spec: ExamSpec, ctx: ExamContext) -> str:
    """Risk estimate: the L1–L5 mean PDFF and R2* against the seed study's published cut-offs."""
    from osteomri.stats.screening import PUBLISHED_CUTOFFS, SEED_STUDY_PREVALENCE, screen_markers
    from osteomri.vertebrae.measure import DEFAULT_LEVEL_SET, parse_level_set

    table = ctx.result.vertebrae
    if table is None or not len(table):
        raise InputError("no per-vertebra table to screen (the measure stage did not succeed)")
    lumbar = table[table["level"].isin(parse_level_set(DEFAULT_LEVEL_SET))]  # the seed study's L1–L5
    values = {m: float(lumbar.loc[lumbar["map"] == m, "mean"].mean()) for m in PUBLISHED_CUTOFFS
              if (lumbar["map"] == m).any()}
    if not values:
        raise InputError("no PDFF or R2* measured in L1–L5: nothing to compare with the published cut-offs")
    opts = _opts(spec, "screening")
    field = ctx.images["megre"].meta.get("MagneticFieldStrength") if "megre" in ctx.images else None
    check_screenable(lumbar, field, ctx.result.qc)
    screen = screen_markers(values, opts.get("pretest_probability", SEED_STUDY_PREVALENCE))
    screen["levels"] = ",".join(sorted(lumbar["level"].unique()))
    screen["field_strength_t"] = field
    screen["applicability"] = ("protocol matches (3 T)" if field is not None and abs(float(field) - 3.0) < 0.2
                               else "extrapolated: cut-offs were derived at 3 T (R2* scales with B0)")
    ctx.result.scores["osteoporosis_screen"] = screen
    flags = [f"{r.marker} {'positive' if r.positive else 'negative'}" for r in screen.itertuples()]
    return "; ".join(flags)


_MAP_STAGES = ("waterfat", "vendor_maps", "t1w", "ivim", "ute", "maps")

STAGES: tuple[Stage, ...] = (
    Stage("waterfat", lambda s: s.megre is not None, ("osteomri.models.waterfat",), run_waterfat),
    Stage("vendor_maps", lambda s: s.megre is None and (s.pdff is not None or s.r2star is not None),
          ("osteomri.io.nifti",), run_vendor_maps),
    Stage("t1w", lambda s: s.t1w is not None, ("osteomri.io.nifti",), run_t1w),
    Stage("ivim", lambda s: s.dwi is not None, ("osteomri.models.ivim",), run_ivim),
    Stage("ute", lambda s: s.ute is not None, ("osteomri.models.ute",), run_ute_stage),
    Stage("maps", lambda s: bool(s.maps), ("osteomri.io.loader",), run_given_maps),
    Stage("autolabel", autolabel_applies, ("osteomri.vertebrae.autolabel",), run_autolabel,
          needs=(("waterfat", "vendor_maps", "t1w"),)),
    Stage("measure", lambda s: labels_available(s) or (bool(s.maps) and s.roi == "seed"),
          ("osteomri.vertebrae.measure",), run_measure, needs=(_MAP_STAGES,)),
    Stage("vbq", lambda s: labels_available(s) and s.t1w is not None, ("osteomri.vertebrae.scores",), run_vbq,
          needs=(("t1w",),)),
    Stage("screening", lambda s: labels_available(s) and any(x is not None for x in (s.megre, s.pdff, s.r2star)),
          ("osteomri.vertebrae.measure", "osteomri.stats.screening"), run_screening,
          needs=(("measure",), ("waterfat", "vendor_maps"))),
    Stage("mrs", _mrs.mrs_applies, ("osteomri.models.mrs", "osteomri.io.spectrum"), _mrs.run_mrs),
)
