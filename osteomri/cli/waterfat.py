"""``osteomri waterfat``: the exam pipeline's water–fat stage alone (same files and sidecars as ``exam``)."""

from __future__ import annotations

from pathlib import Path

import typer

from osteomri.cli._common import exam_id_for, run_single_stage
from osteomri.errors import InputError

PRECESSION = {"meta": None, "auto": "auto", "clockwise": True, "counterclockwise": False}


def register(app: typer.Typer) -> None:
    app.command("waterfat")(waterfat)


def waterfat(
    input: Path = typer.Argument(..., help="Multi-echo data: NIfTI (+ JSON sidecar), DICOM folder or toolbox .mat"),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder; maps go to OUT/sub-XX/ (or OUT/sub-XX/ses-YY/)"),
    exam_id: str = typer.Option(None, "--exam-id", help="sub-LABEL or sub-LABEL_ses-LABEL (default: file name)"),
    exam: str = typer.Option(None, "--exam", hidden=True),
    series: list[str] = typer.Option([], "--series", help="DICOM SeriesInstanceUID to read (repeatable: "
                                     "magnitude and phase series are pooled)"),
    fat_spectrum: str = typer.Option("ren_marrow", help="ren_marrow | hamilton_liver | ismrm_6peak"),
    precession: str = typer.Option("meta", help="meta (from the input; auto when not recorded) | auto | "
                                                "clockwise | counterclockwise"),
    echo_times_ms: str = typer.Option("", help="Comma-separated echo times in ms when the input lacks them"),
    field_strength: float = typer.Option(0.0, help="Field strength in T when the input lacks it"),
    regularisation: float = typer.Option(100.0, help="Field-map smoothness weight (noise units)"),
    magnitude: bool = typer.Option(False, "--magnitude", help="Fit magnitude only (ignore phase)"),
    t1_correction: bool = typer.Option(False, "--t1-correction", help="Correct T1 bias (needs TR and flip angle)"),
    t1_water_s: float = typer.Option(1.2, help="Assumed water T1 (s) for --t1-correction"),
    t1_fat_s: float = typer.Option(0.38, help="Assumed fat T1 (s) for --t1-correction"),
    bipolar: bool = typer.Option(None, "--bipolar/--monopolar", help="Readout polarity. Default: detected from the "
                                 "data (or the header) and the even echoes' phase error corrected when found"),
    voxel_size: str = typer.Option("", "--voxel-size", help="x,y,z voxel size in mm for inputs without geometry "
                                   "(toolbox .mat); else 1 mm is assumed, with a warning"),
    dicom_out: Path = typer.Option(None, "--dicom-out", help="Also write the maps as DICOM Parametric Maps "
                                   "referencing the DICOM input series."),
    anonymize: bool = typer.Option(False, "--anonymize", help="Pseudonymise the DICOM maps (PS3.15 basic "
                                   "profile; key from --anon-key-file or $OSTEOMRI_ANON_KEY)."),
    anon_key_file: Path = typer.Option(None, "--anon-key-file", help="File holding the pseudonymisation key."),
) -> None:
    """Separate water and fat: <exam>_pdff (%), _r2star (1/s), _fieldmap (Hz), _water, _fat,
    _desc-waterfat_residual, each NIfTI with a JSON sidecar (units, model parameters, QC, provenance)."""
    from osteomri.pipeline.dicom_export import cli_anonymize_key
    from osteomri.pipeline.spec import ExamSpec

    key = cli_anonymize_key(anonymize, anon_key_file, dicom_out)

    if precession not in PRECESSION:
        raise InputError(f"--precession must be meta, auto, clockwise or counterclockwise, got {precession!r}")
    opts: dict = {"fat_spectrum": fat_spectrum, "regularisation": regularisation, "magnitude": magnitude}
    if bipolar is not None:
        opts["bipolar_correction"] = bipolar
    if voxel_size:
        try:
            size = [float(v) for v in voxel_size.split(",")]
        except ValueError:
            size = []
        if len(size) != 3 or not all(v > 0 for v in size):
            raise InputError(f"--voxel-size must be three positive numbers in mm 'x,y,z', got {voxel_size!r}")
        opts["given_voxel_size_mm"] = size
    if precession != "meta":
        opts["precession_clockwise"] = PRECESSION[precession]
    if echo_times_ms:
        try:
            opts["echo_times_s"] = [float(v) / 1000.0 for v in echo_times_ms.split(",")]
        except ValueError:
            raise InputError(f"--echo-times-ms takes comma-separated numbers, got {echo_times_ms!r}") from None
    if field_strength > 0:
        opts["field_strength_t"] = field_strength
    if t1_correction:
        opts["t1_correction"] = {"t1_water_s": t1_water_s, "t1_fat_s": t1_fat_s}
    spec = ExamSpec(exam_id_for(input, exam_id or exam), megre=input, options={"waterfat": opts},
                    stages=("waterfat",), series={"megre": series} if series else {})
    run_single_stage(spec, out, "waterfat", dicom_out=dicom_out, anonymize_key=key)
