"""``osteomri measure``: the exam pipeline's measurement stages on given maps (same tables as ``exam``)."""

from __future__ import annotations

from pathlib import Path

import typer

from osteomri.cli._common import run_single_stage
from osteomri.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("measure")(measure)


def _pairs(items: list[str], what: str, default_name: str | None = None) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for i, item in enumerate(items, start=1):
        name, sep, path = item.partition("=")
        if not sep and default_name:
            name, path = f"{default_name}{i}", item
        elif not sep or not name.strip() or not path.strip():
            raise InputError(f"{what} takes NAME=PATH (e.g. pdff=sub-01_pdff.nii.gz), got {item!r}")
        if name.strip() in out:
            raise InputError(f"{what} {name.strip()} given twice")
        out[name.strip()] = Path(path.strip())
    return out


def measure(
    map_: list[str] = typer.Option(..., "--map", help="NAME=PATH of a map (pdff, r2star, t1w, d, dstar, f or a "
                                   "registered map name); repeatable."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder; tables go to OUT/sub-XX/."),
    exam_id: str = typer.Option("sub-01", "--exam-id", help="sub-LABEL or sub-LABEL_ses-LABEL (file stem)."),
    exam: str = typer.Option(None, "--exam", hidden=True),
    labels: Path = typer.Option(None, "--labels", help="Vertebra label map (not needed with --roi-point)."),
    preset: str = typer.Option("spineps", "--preset", help="Label convention: spineps, spineps_subregion, "
                               "totalsegmentator, total_mr, totalspineseg, or a JSON mapping."),
    roi: str = typer.Option("paper", "--roi", help="ROI strategy: paper, body, seed, roi (reader ROIs)."),
    levels: str = typer.Option(None, "--levels", help="L1-L4, L1-L5, all, or a list such as L1,L2."),
    subregion: Path = typer.Option(None, "--subregion", help="SPINEPS subregion mask (with --preset spineps)."),
    lowest_level: str = typer.Option(None, "--lowest-level", help="Level of the lowest vertebra (one-class maps)."),
    t1w: Path = typer.Option(None, "--t1w", help="T1-weighted image: compute the VBQ score."),
    vbq_cutoff: float = typer.Option(3.05, "--vbq-cutoff", help="VBQ cut-off (depends on field strength)."),
    reader_roi: list[str] = typer.Option([], "--reader-roi", help="[NAME=]PATH of a reader's ROI mask (NIfTI "
                                         "or DICOM SEG); repeatable."),
    point: list[str] = typer.Option([], "--roi-point", help="LEVEL=x,y,z world RAS mm point inside the vertebral "
                                    "body (with --roi seed); repeatable."),
    margin_mm: float = typer.Option(None, "--margin-mm", help="ROI margin from cortex and endplates (mm)."),
    qc: bool = typer.Option(True, "--qc/--no-qc", help="QC figure per map (ROIs outlined)."),
    resample_labels: bool = typer.Option(False, "--resample-labels", help="Resample labels that are not on a "
                                         "map's grid by world coordinates (else refused: misregistration?)."),
    dicom_out: Path = typer.Option(None, "--dicom-out", help="Also write the results as DICOM (Parametric Maps, "
                                   "SEG, SR) referencing the DICOM input series, into DIR/sub-XX/."),
    anonymize: bool = typer.Option(False, "--anonymize", help="Pseudonymise the DICOM results (PS3.15 basic "
                                   "profile; key from --anon-key-file or $OSTEOMRI_ANON_KEY)."),
    anon_key_file: Path = typer.Option(None, "--anon-key-file", help="File holding the pseudonymisation key."),
) -> None:
    """Per-vertebra statistics (mean, median, SD, IQR, P5, P95, volume) of each map in each level's ROI; the
    one-row summary; VBQ with --t1w; reader agreement with several --reader-roi; a QC figure per map."""
    from osteomri.io.loader import load_image
    from osteomri.pipeline.dicom_export import cli_anonymize_key
    from osteomri.pipeline.spec import ExamSpec
    from osteomri.vertebrae.measure import LEVEL_SETS

    if (roi == "roi") != bool(reader_roi):
        raise InputError("--roi roi needs at least one --reader-roi PATH" if roi == "roi" else
                         "--reader-roi is used with --roi roi")
    if point and roi != "seed":
        raise InputError("--roi-point is used with --roi seed")
    if t1w is not None and labels is None:
        raise InputError("--t1w (VBQ) needs --labels")
    label_opts = {k: v for k, v in (("subregion", subregion and load_image(subregion)),
                                    ("lowest_level", lowest_level)) if v is not None}
    opts = {"levels": list(LEVEL_SETS[levels]) if levels in LEVEL_SETS else levels, "seeds": point or None,
            "reader_rois": _pairs(reader_roi, "--reader-roi", "reader"), "qc": qc, **label_opts,
            **({"margin_mm": margin_mm} if margin_mm is not None and roi in ("paper", "body") else {})}
    spec = ExamSpec(exam or exam_id, labels=labels, t1w=t1w, label_preset=preset, roi=roi, maps=_pairs(map_, "--map"),
                    options={"measure": opts, "vbq": {"cutoff": vbq_cutoff, **label_opts},
                             **({"labels": {"resample": True}} if resample_labels else {})},
                    stages=("maps", "measure", "vbq"))
    run_single_stage(spec, out, "measure", dicom_out, cli_anonymize_key(anonymize, anon_key_file, dicom_out))
