"""``osteomri cohort run|synth``: a whole cohort through the exam pipeline on Dask; a synthetic phantom cohort."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from osteomri.cli._common import console, err_console

cohort_app = typer.Typer(help="Cohorts: many exams through one pipeline, locally or on a Dask cluster.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(cohort_app, name="cohort")


@cohort_app.command("run")
def run(
    dataset: Path = typer.Argument(..., help="BIDS-like folder (sub-*/\\[ses-*/]anat|dwi/) or manifest .csv/.tsv."),
    out: Path = typer.Option(..., "--out", help="Output folder: OUT/sub-XX\\[/ses-YY]/ per exam + cohort tables."),
    scheduler: str = typer.Option(None, "--scheduler",
                                  help="Dask scheduler address (tcp://HOST:PORT); default: a local cluster."),
    workers: int = typer.Option(2, "--workers", min=1, help="Worker processes of the local cluster."),
    retries: int = typer.Option(2, "--retries", min=0, help="Dask retries of a task that raised."),
    retry_failed: bool = typer.Option(False, "--retry-failed", help="Redo exams whose recorded run failed."),
    preset: str = typer.Option("spineps", "--preset", help="Label convention of the label maps."),
    roi: str = typer.Option("paper", "--roi", help="ROI strategy (paper, body, ...)."),
    connect_timeout: float = typer.Option(30.0, "--connect-timeout", help="Seconds to wait for --scheduler."),
    levels: str = typer.Option("L1-L5", "--levels", help="Levels of the per-patient means in "
                               "cohort_patients.tsv: L1-L5 (default, the seed study's), L1-L4 or one level."),
    resample_labels: bool = typer.Option(False, "--resample-labels", help="Resample label maps onto each map's "
                                         "grid by world coordinates (else labels off the grid are refused)."),
    dicom_out: Path = typer.Option(None, "--dicom-out", help="Also write each exam's DICOM results (from DICOM "
                                   "inputs) into DIR/sub-XX/."),
    anonymize: bool = typer.Option(False, "--anonymize", help="Pseudonymise the DICOM results, one key for the "
                                   "cohort (--anon-key-file or $OSTEOMRI_ANON_KEY): consistent pseudonyms."),
    anon_key_file: Path = typer.Option(None, "--anon-key-file", help="File holding the pseudonymisation key."),
    autolabel: bool = typer.Option(True, "--autolabel/--no-autolabel", help="Exams without labels: find and name "
                                   "the vertebrae in the image (default), or measure nothing per vertebra."),
    lowest_level: str = typer.Option(None, "--lowest-level", help="Exams without labels: level of the body above "
                                     "the lowest disc (e.g. L5), when the sacrum is not in view."),
) -> None:
    """Run every exam of DATASET; skip those already complete; record failures in OUT/errors.tsv."""
    from osteomri.pipeline.cohort import run_cohort
    from osteomri.pipeline.dataset import discover_exams
    from osteomri.pipeline.dicom_export import cli_anonymize_key

    key = cli_anonymize_key(anonymize, anon_key_file, dicom_out)
    options: dict = {"autolabel": {"lowest_level": lowest_level} if lowest_level else {}} if autolabel else {}
    if resample_labels:
        options["labels"] = {"resample": True}
    specs = discover_exams(dataset, label_preset=preset, roi=roi, options=options)
    where = f"scheduler {scheduler}" if scheduler else f"local cluster, {workers} worker(s)"
    err_console.print(f"{len(specs)} exams from {dataset.name} on {where}", highlight=False)
    progress = Progress(TextColumn("[bold]cohort"), BarColumn(), MofNCompleteColumn(),
                        TextColumn("[green]{task.fields[done]} done[/] · [red]{task.fields[failed]} failed[/] · "
                                   "{task.fields[skipped]} skipped · {task.fields[remaining]} remaining"),
                        TimeElapsedColumn(), TimeRemainingColumn(), console=err_console)
    with progress:
        task = progress.add_task("cohort", total=len(specs), done=0, failed=0, skipped=0, remaining=len(specs))

        def on_exam(outcome, counts) -> None:
            progress.update(task, advance=1, done=counts["done"], failed=counts["failed"] + counts["lost"],
                            skipped=counts["skipped"], remaining=counts["remaining"])

        result = run_cohort(specs, out, scheduler=scheduler, workers=workers, retries=retries,
                            retry_failed=retry_failed, progress=on_exam,
                            connect_timeout=connect_timeout, levels=levels, dicom_out=dicom_out, anonymize_key=key)
    c = result.counts
    console.print(f"{c['total']} exams: {c['done']} processed without error, {c['failed'] + c['lost']} failed, "
                  f"{c['skipped']} already complete ({result.seconds:.1f} s)", highlight=False)
    for name in ("patients", "vertebrae", "errors", "report"):
        if name in result.files:
            console.print(f"  {result.files[name]}", highlight=False)
    if c["with_errors"]:
        err_console.print(f"[bold red]{c['with_errors']} exam(s) with errors[/]: see {result.files['errors']}",
                          highlight=False)
        raise typer.Exit(1)


@cohort_app.command("synth")
def synth(
    n: int = typer.Option(..., "--n", min=1, help="Number of exams (patients)."),
    out: Path = typer.Option(..., "--out", help="Folder of the BIDS-like dataset to write."),
    seed: int = typer.Option(0, "--seed", help="Random seed (clinical draws, phantoms and noise)."),
    modalities: str = typer.Option("megre,t1w,dwi", "--modalities",
                                   help="Comma-separated: megre, t1w, dwi, vendor (true PDFF/R2* maps)."),
    full: bool = typer.Option(False, "--full", help="Full-resolution phantom (slower) instead of the small grid."),
) -> None:
    """Write a synthetic cohort of phantom exams with clinical columns drawn like the seed study's groups."""
    from osteomri.pipeline.synth_cohort import write_synthetic_cohort

    mods = tuple(m.strip() for m in modalities.split(",") if m.strip())
    truth = write_synthetic_cohort(out, n, seed=seed, modalities=mods, small=not full)
    console.print(f"{len(truth)} phantom exams ({', '.join(mods)}) in {out}; truth in "
                  f"{out / 'derivatives' / 'phantom-truth'}", highlight=False)
