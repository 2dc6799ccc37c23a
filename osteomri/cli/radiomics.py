"""``osteomri radiomics``: IBSI-tagged radiomics features of parametric maps per vertebra.

Writes into ``--out``: ``<stem>_radiomics.tsv`` (tidy: exam, level, roi, map, ibsi_tag, feature, value),
``<stem>_radiomics_wide.tsv`` (one row per vertebra, columns ``<map>__<tag>``), ``<stem>_radiomics_exam.tsv``
(one row per exam: the mean of each feature over the L1–L5 levels present, the default level set; the input
of ``osteomri model train`` once the exams' rows are stacked with the clinical columns) and ``<stem>_radiomics.json``
(provenance: settings per map, PyRadiomics parameters and version, input hashes). Library:
:func:`osteomri.radiomics.vertebrae.vertebra_features`.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from osteomri.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("radiomics")(radiomics)


def _settings(text: str) -> str | dict:
    """A preset name, a JSON object, or a path to a JSON file."""
    text = text.strip()
    if text.startswith("{"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(f"--settings is not valid JSON: {exc}") from exc
    if text.endswith(".json"):
        path = Path(text)
        if not path.is_file():
            raise InputError(f"--settings file not found: {path}")
        try:
            return json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise InputError(f"{path.name}: not valid JSON: {exc}") from exc
    return text


def radiomics(
    map_: list[str] = typer.Option(..., "--map", help="NAME=PATH of a map NIfTI (pdff, r2star, t1w, water or any "
                                   "name); repeatable."),
    labels: Path = typer.Option(..., "--labels", help="Vertebra label map NIfTI."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    preset: str = typer.Option("spineps", "--preset", help="Label convention: spineps, spineps_subregion, "
                               "totalsegmentator, total_mr, totalspineseg, or a JSON mapping."),
    roi: str = typer.Option("body", "--roi", help="ROI strategy: body (whole marrow of the body) or paper "
                            "(mid-sagittal anterior two thirds)."),
    settings: str = typer.Option("default", "--settings", help="Radiomics preset (default, ibsi_digital_phantom), "
                                 "a JSON object or a .json file (discretisation, bins, bin_width, resample_mm, "
                                 "intensity_range, distance, ngldm_alpha, families)."),
    exam_id: str = typer.Option("", "--exam-id", help="Exam id written in the tables and used as file stem."),
    exam: str = typer.Option("", "--exam", hidden=True),
    levels: str = typer.Option(None, "--levels", help="L1-L4, L1-L5, all, or a list such as L1,L2."),
) -> None:
    """Radiomics (first order, shape, GLCM, GLRLM, GLSZM, NGLDM, NGTDM) of each map in each vertebra's ROI."""
    from osteomri.cli._common import console
    from osteomri.cli.measure import _pairs
    from osteomri.io.nifti import load_nifti
    from osteomri.io.provenance import provenance, write_json_atomic, write_table_atomic
    from osteomri.pipeline.measure_stage import map_name
    from osteomri.radiomics.vertebrae import vertebra_features, wide_features
    from osteomri.vertebrae.measure import DEFAULT_LEVEL_SET, LEVEL_SETS, parse_level_set

    if roi not in ("body", "paper"):
        raise InputError(f"--roi must be body or paper for radiomics, got {roi!r}")
    paths = {map_name(k): v for k, v in _pairs(map_, "--map").items()}  # pdff -> pdff_percent, ...
    for name, p in paths.items():
        if not p.is_file():
            raise InputError(f"--map {name}: file not found: {p}")
    if not labels.is_file():
        raise InputError(f"--labels: file not found: {labels}")
    maps = {k: load_nifti(p) for k, p in paths.items()}
    exam = exam_id or exam
    long = vertebra_features(maps, load_nifti(labels), preset, roi, exam=exam, settings=_settings(settings),
                             levels=list(LEVEL_SETS[levels]) if levels in LEVEL_SETS else
                             (levels.split(",") if levels else None))
    stem = exam or "radiomics"
    out.mkdir(parents=True, exist_ok=True)
    prov = provenance("osteomri radiomics", {"preset": preset, "roi": roi, "settings_argument": settings,
                                             "levels": levels, **long.attrs["provenance"]},
                      inputs=[*paths.values(), labels])
    core = [lv for lv in parse_level_set(DEFAULT_LEVEL_SET) if lv in set(long["level"])]
    per_exam = wide_features(long, by="exam", levels=core or None)
    per_exam.insert(2, "levels", ",".join(core) if core else "all")
    files = [write_table_atomic(long, out / f"{stem}_radiomics.tsv", "%.8g"),
             write_table_atomic(wide_features(long), out / f"{stem}_radiomics_wide.tsv", "%.8g"),
             write_table_atomic(per_exam, out / f"{stem}_radiomics_exam.tsv", "%.8g"),
             write_json_atomic(out / f"{stem}_radiomics.json", {"Provenance": prov})]
    console.print(f"{long['level'].nunique()} levels x {len(maps)} maps: {long['feature'].nunique()} features "
                  f"({roi} ROI); wrote {len(files)} files to {out}", highlight=False)
