"""``osteomri exam``: one exam from your own files (NIfTI, DICOM folders, toolbox .mat) through the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from osteomri.cli._common import console, err_console, stage_progress
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
    out: Path = typer.Option(..., "--out", help="Output folder; the exam goes to OUT/sub-XX[/ses-YY]/."),
    exam_id: str = typer.Option("sub-01", "--exam-id", help="BIDS-style sub-<label>[_ses-<label>]."),
    megre: str = typer.Option(None, help="Multi-echo GRE: NIfTI (+JSON sidecar with EchoTime), DICOM folder, .mat."),
    pdff: str = typer.Option(None, help="Vendor PDFF map (percent) when no MEGRE is given."),
    r2star: str = typer.Option(None, help="Vendor R2* map (1/s) when no MEGRE is given."),
    t1w: str = typer.Option(None, help="T1-weighted image (VBQ)."),
    dwi: str = typer.Option(None, help="Multi-b DWI (IVIM)."),
    bvals: str = typer.Option(None, help="b-values: FSL .bval file (else the DWI sidecar's 'bvalues')."),
    labels: str = typer.Option(None, help="Vertebra label map."),
    preset: str = typer.Option("spineps", help="Label convention of --labels."),
    roi: str = typer.Option("paper", help="ROI strategy (paper, body, ...)."),
    clinical: list[str] = typer.Option([], help="Clinical column KEY=VALUE (repeatable)."),
    lowest_level: str = typer.Option(None, "--lowest-level", help="Without --labels: level of the body above the "
                                     "lowest disc (e.g. L5), when the sacrum is not in view."),
) -> None:
    """Run every stage that applies to the given inputs; write maps, the per-vertebra table and a report."""
    from osteomri.pipeline.exam import run_exam
    from osteomri.pipeline.spec import ExamSpec
    from osteomri.pipeline.stages import STAGES

    given = {"megre": megre, "pdff": pdff, "r2star": r2star, "t1w": t1w, "dwi": dwi, "labels": labels}
    for name, path in given.items():
        if path is not None and not Path(path).exists():
            raise InputError(f"--{name}: file not found: {path}")
    if not any(given.values()):
        raise InputError("give at least one input image (--megre, --pdff/--r2star, --t1w or --dwi)")
    auto = {} if labels else {"autolabel": {"lowest_level": lowest_level} if lowest_level else {}}  # issue #14
    spec = ExamSpec(exam_id, **given, bvals=bvals, label_preset=preset, roi=roi, clinical=_parse_clinical(clinical),
                    options=auto)
    n = sum(1 for s in STAGES if s.applies(spec))
    with stage_progress(n, exam_id) as cb:
        result = run_exam(spec, out_dir=out, progress=cb)
    console.print(result.stage_table().to_string(index=False))
    console.print(f"outputs: {out / spec.relative_dir()}")
    if not result.ok:
        for line in result.errors():
            err_console.print(f"[bold red]error:[/] {line}", highlight=False)
        raise typer.Exit(1)
