"""``osteomri ute``: UTE bone maps (bi-component T2*, porosity index, suppression ratio, UTE-MT, VFA T1)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    app.command(name="ute")(ute)


def ute(
    inputs: list[Path] = typer.Argument(..., help="UTE image(s): one 4-D image, or 3-D images in measurement "
                                        "order (NIfTI, DICOM folder)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder."),
    protocol: Path = typer.Option(None, "--protocol", help="Protocol JSON (kind t2star, mt, vfa, porosity_index, "
                                  "suppression_ratio). Default: T2* from the sidecar's echo times."),
    exam_id: str = typer.Option("ute", "--exam-id", help="File stem of the outputs."),
    labels: Path = typer.Option(None, "--labels", help="Vertebra label map: write a per-vertebra table."),
    preset: str = typer.Option("spineps", "--preset", help="Label convention of --labels."),
    roi: str = typer.Option("body", "--roi", help="ROI strategy: body or paper."),
    m0: Path = typer.Option(None, "--m0", help="MT-free reference image (UTE-MT): fixes S0."),
) -> None:
    """Fit a UTE protocol and write maps with sidecars (and a per-vertebra table with --labels)."""
    from osteomri.cli._common import console
    from osteomri.pipeline.ute import run_ute

    written = run_ute(inputs, protocol, out, exam_id=exam_id, labels=labels, preset=preset, roi=roi, m0=m0)
    console.print(f"wrote {len(written)} files to {out}", highlight=False)
