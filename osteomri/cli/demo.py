"""``osteomri demo``: digital phantom -> input files -> exam pipeline -> maps, table and report."""

from __future__ import annotations

from pathlib import Path

import typer

from osteomri.cli._common import console, stage_progress


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    out: Path = typer.Option(..., "--out", help="Output folder (created)."),
    seed: int = typer.Option(0, help="Random seed of the phantom's truth and noise."),
    snr: float = typer.Option(50.0, help="MEGRE SNR (noise SD = 1/SNR of a PD-1 voxel at TE 0)."),
    small: bool = typer.Option(False, "--small", help="Coarser, faster phantom (for quick checks)."),
) -> None:
    """Build the digital lumbar-spine phantom, write its images as inputs, and run the exam pipeline."""
    from osteomri.pipeline.demo import demo_exam, write_demo_inputs
    from osteomri.pipeline.exam import run_exam
    from osteomri.pipeline.stages import STAGES

    out.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]osteomri demo[/]: phantom (seed {seed}) -> {out}")
    inputs = write_demo_inputs(out / "inputs", seed=seed, snr=snr, small=small)
    spec = demo_exam(inputs)
    n = sum(1 for s in STAGES if s.applies(spec))
    with stage_progress(n, spec.exam_id) as cb:
        result = run_exam(spec, out_dir=out, progress=cb)
    console.print(result.stage_table().to_string(index=False))
    report = out / spec.relative_dir() / "report.html"
    console.print(f"report: [link=file://{report.resolve()}]{report}[/link]")
    if not result.ok:
        raise typer.Exit(1)
