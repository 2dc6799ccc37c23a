"""Helpers shared by the CLI commands: consoles and a stage progress bar."""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

console = Console()
err_console = Console(stderr=True)


@contextmanager
def stage_progress(total: int, description: str = "exam"):
    """A rich progress bar advanced by ``callback(stage, status)`` when a stage ends."""
    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=err_console,
                        transient=False, disable=not err_console.is_terminal)  # no bar in logs or pipes
    with progress:
        task = progress.add_task(description, total=total)

        def callback(stage: str, status: str) -> None:
            if status == "start":
                progress.update(task, description=f"{description}: {stage}")
            else:
                progress.advance(task)

        yield callback


_EXAM_PREFIX = re.compile(r"^(sub-[A-Za-z0-9]+(?:_ses-[A-Za-z0-9]+)?)(?:_|\.|$)")


def exam_id_for(path: Path, given: str | None) -> str:
    """The exam id: as given, else the ``sub-XX[_ses-YY]`` prefix of the input's file name, else ``sub-01``."""
    if given:
        return given
    match = _EXAM_PREFIX.match(path.name)
    return match.group(1) if match else "sub-01"


def run_single_stage(spec, out: Path, label: str, dicom_out: Path | None = None,
                     anonymize_key: bytes | str | None = None) -> None:
    """Run the exam pipeline restricted to ``spec.stages`` (strict: an input error is one line, nothing is
    written; ``dicom_out``: DICOM results too), then print the stage messages and where the outputs are."""
    from osteomri.pipeline.exam import run_exam

    with stage_progress(len(spec.stages), label) as cb:
        result = run_exam(spec, out_dir=out, progress=cb, strict=True, dicom_out=dicom_out,
                          anonymize_key=anonymize_key)
    for record in result.stages:
        console.print(f"{record.stage}: {record.message} ({record.seconds:.1f} s)", highlight=False)
    console.print(f"maps in {out / spec.relative_dir()}", highlight=False)


def assign_series(inputs: dict[str, object], uids: list[str]) -> dict[str, list[str]]:
    """``--series`` UIDs by the DICOM input folder that holds them (a UID in no input is an error)."""
    if not uids:
        return {}
    from osteomri.errors import InputError
    from osteomri.io.dicom import list_dicom_series
    from osteomri.io.loader import is_dicom_source

    out: dict[str, list[str]] = {}
    for name, path in inputs.items():
        if path is not None and is_dicom_source(path):
            found = set(list_dicom_series(path)["uid"])
            out.update({name: [u for u in uids if u in found]} if found.intersection(uids) else {})
    missing = [u for u in uids if not any(u in v for v in out.values())]
    if missing:
        raise InputError(f"--series {', '.join(missing)}: in none of the DICOM inputs")
    return out
