"""``osteomri exam``: one exam from your own files (NIfTI, DICOM folders, toolbox .mat) through the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from osteomri.cli._common import assign_series, console, err_console, stage_progress
from osteomri.errors import InputError


def register(app: typer.Typer) -> None:
    app.command("exam")(exam)


def _parse_clinical(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise InputError(f"--clinical takes KEY=VALUE, got {item!r}")
        key, value = item.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def exam(
    out: Path = typer.Option(..., "--out", help="Output folder; the exam goes to OUT/sub-XX\\[/ses-YY]/."),
    exam_id: str = typer.Option("sub-01", "--exam-id", help="BIDS-style sub-<label>\\[_ses-<label>]."),
    megre: str = typer.Option(None, help="Multi-echo GRE: NIfTI (+JSON sidecar with EchoTime), DICOM folder, .mat."),
    pdff: str = typer.Option(None, help="Vendor PDFF map (percent) when no MEGRE is given."),
    r2star: str = typer.Option(None, help="Vendor R2* map (1/s) when no MEGRE is given."),
    t1w: str = typer.Option(None, help="T1-weighted image (VBQ)."),
    dwi: str = typer.Option(None, help="Multi-b DWI (IVIM)."),
    bvals: str = typer.Option(None, help="b-values: FSL .bval file (else the DWI sidecar's 'bvalues')."),
    ute: str = typer.Option(None, help="UTE series (measurements on the last axis): bone water maps."),
    ute_protocol: str = typer.Option(None, "--ute-protocol", help="UTE protocol JSON (kind t2star, mt, vfa, ...; "
                                     "default: bi-component T2* from the sidecar's echo times)."),
    labels: str = typer.Option(None, help="Vertebra label map."),
    preset: str = typer.Option("spineps", help="Label convention of --labels."),
    roi: str = typer.Option("paper", help="ROI strategy (paper, body, ...)."),
    clinical: list[str] = typer.Option([], help="Clinical column KEY=VALUE (repeatable)."),
    series: list[str] = typer.Option([], "--series", help="DICOM SeriesInstanceUID to read where an input folder "
                                     "holds several series (repeatable)."),
    resample_labels: bool = typer.Option(False, "--resample-labels", help="Resample --labels onto each map's "
                                         "grid by world coordinates (else labels off the grid are refused)."),
    dicom_out: Path = typer.Option(None, "--dicom-out", help="Also write DICOM results (Parametric Maps, SEG, "
                                   "TID 1500 SR, QC capture) referencing the DICOM inputs into DIR/sub-XX/."),
    anonymize: bool = typer.Option(False, "--anonymize", help="Pseudonymise the DICOM results (PS3.15 basic "
                                   "profile; key from --anon-key-file or $OSTEOMRI_ANON_KEY)."),
    anon_key_file: Path = typer.Option(None, "--anon-key-file", help="File holding the pseudonymisation key."),
    mrs: list[str] = typer.Option([], "--mrs", help="Marrow spectrum file(s) or folder (one multi-TE series; "
                                  "repeatable): fitted and shown beside the PDFF of its vertebra."),
    autolabel: bool = typer.Option(True, "--autolabel/--no-autolabel", help="Without --labels: find and name the "
                                   "vertebrae in the image (default), or measure nothing per vertebra."),
    lowest_level: str = typer.Option(None, "--lowest-level", help="Without --labels: level of the body above the "
                                     "lowest disc (e.g. L5), when the sacrum is not in view."),
) -> None:
    """Run every stage that applies to the given inputs; write maps, the per-vertebra table and a report."""
    from osteomri.pipeline.exam import run_exam
    from osteomri.pipeline.spec import ExamSpec
    from osteomri.pipeline.stages import STAGES

    given = {"megre": megre, "pdff": pdff, "r2star": r2star, "t1w": t1w, "dwi": dwi, "ute": ute, "labels": labels}
    for name, path in given.items():
        if path is not None and not Path(path).exists():
            raise InputError(f"--{name}: file not found: {path}")
    for path in mrs:
        if not Path(path).exists():
            raise InputError(f"--mrs: file not found: {path}")
    if not any(given.values()) and not mrs:
        raise InputError("give at least one input (--megre, --pdff/--r2star, --t1w, --dwi, --ute or --mrs)")
    options: dict = {"labels": {"resample": True}} if resample_labels else {}
    if not labels and autolabel:  # automatic labels (issue #14)
        options["autolabel"] = {"lowest_level": lowest_level} if lowest_level else {}
    if ute_protocol is not None:
        if ute is None:
            raise InputError("--ute-protocol is used with --ute")
        from osteomri.models.ute import load_protocol

        options["ute"] = {"protocol": load_protocol(Path(ute_protocol))}
    if mrs:
        options["mrs"] = {"spectra": list(mrs)}
    spec = ExamSpec(exam_id, **given, bvals=bvals, label_preset=preset, roi=roi, clinical=_parse_clinical(clinical),
                    series=assign_series(given, series), options=options)
    n = sum(1 for s in STAGES if s.applies(spec)) + (dicom_out is not None)
    from osteomri.pipeline.dicom_export import cli_anonymize_key

    key = cli_anonymize_key(anonymize, anon_key_file, dicom_out)
    with stage_progress(n, exam_id) as cb:
        result = run_exam(spec, out_dir=out, progress=cb, dicom_out=dicom_out, anonymize_key=key)
    console.print(result.stage_table().to_string(index=False))
    console.print(f"outputs: {out / spec.relative_dir()}")
    if not result.ok:
        for line in result.errors():
            err_console.print(f"[bold red]error:[/] {line}", highlight=False)
        raise typer.Exit(1)
