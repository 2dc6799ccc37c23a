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
    bipolar: bool = typer.Option(False, "--bipolar", help="Bipolar readout: estimate and remove the even echoes' "
                                                          "phase error (>= 4 uniformly spaced echoes)"),
) -> None:
    """Separate water and fat: <exam>_pdff (%), _r2star (1/s), _fieldmap (Hz), _water, _fat,
    _desc-waterfat_residual, each NIfTI with a JSON sidecar (units, model parameters, QC, provenance)."""
    from osteomri.pipeline.spec import ExamSpec

    if precession not in PRECESSION:
        raise InputError(f"--precession must be meta, auto, clockwise or counterclockwise, got {precession!r}")
    opts: dict = {"fat_spectrum": fat_spectrum, "regularisation": regularisation, "bipolar_correction": bipolar,
                  "magnitude": magnitude}
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
    run_single_stage(spec, out, "waterfat")
