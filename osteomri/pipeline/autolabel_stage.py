"""Pipeline stage ``autolabel``: when an exam has no label map, find and name the vertebrae automatically.

It runs when ``ExamSpec.options`` has an ``"autolabel"`` entry (the CLI's ``exam`` and ``cohort run`` add one
whenever no labels are given), so library callers keep the old behaviour unless they ask for it.

The source image is the best one the exam has for the labeller: the water image of the water–fat separation,
else the T1-weighted image, else the PDFF map (vendor or fitted). Options (``ExamSpec.options["autolabel"]``):
``lowest_level`` (e.g. ``"L5"``: the level of the body directly above the lowest disc; needed when the sacrum
is not in view) and ``contrast`` (overrides the one implied by the source). The labels go where the measure,
VBQ and screening stages read the exam's labels, and the report says that they are automatic.
"""

from __future__ import annotations

from typing import Any

from osteomri.errors import InputError

AUTOLABEL_SOURCES = (("water", "water"), ("t1w", "t1w"), ("pdff_percent", "pdff"))


def autolabel_applies(spec: Any) -> bool:
    """No label map given, automatic labels asked for (``options["autolabel"]``, set by ``osteomri exam`` and
    ``osteomri cohort run`` when no labels are given), and an image to label from (MEGRE, T1w or PDFF)."""
    return (spec.labels is None and "autolabel" in spec.options
            and any(getattr(spec, k) is not None for k in ("megre", "t1w", "pdff")))


def labels_available(spec: Any) -> bool:
    """The exam will have labels: given, or found by ``autolabel``."""
    return spec.labels is not None or autolabel_applies(spec)


def _source(ctx: Any) -> tuple[str, Any, str]:
    maps = ctx.result.maps
    if "water" in maps:
        return "water image", maps["water"], "water"
    if ctx.spec.t1w is not None:
        return "T1w image", ctx.input("t1w"), "t1w"
    if "pdff_percent" in maps:
        return "PDFF map", maps["pdff_percent"], "pdff"
    raise InputError("no water, T1w or PDFF image to find the vertebrae on (give --labels)")


def run_autolabel(spec: Any, ctx: Any) -> str:
    from osteomri.report.figures_autolabel import autolabel_figure
    from osteomri.vertebrae.autolabel import label_vertebrae

    if spec.label_preset != "spineps":
        raise InputError(f"automatic labels are in the spineps convention, but the exam names the preset "
                         f"{spec.label_preset!r} without a label map: drop the preset or give --labels")
    opts = dict(spec.options.get("autolabel", {}))
    name, image, contrast = _source(ctx)
    labels = label_vertebrae(image, contrast=opts.get("contrast", contrast), lowest_level=opts.get("lowest_level"))
    ctx.images["labels"] = labels
    info = labels.meta["VertebraLabelling"]
    levels = info["levels"]
    ctx.result.qc["labels"] = (f"automatic (osteomri label_vertebrae on the {name}; {info['evidence']['naming']}); "
                               "check the labels figure")
    ctx.result.qc["label_confidence"] = ", ".join(f"{k} {v:.2f}" for k, v in info["confidence"].items())
    ctx.result.figures["autolabel"] = autolabel_figure(image, labels, f"automatic labels on the {name}")
    return f"{len(levels)} bodies ({levels[0]}–{levels[-1]}) from the {name}"
