"""Helpers shared by the CLI commands: consoles and a stage progress bar."""

from __future__ import annotations

from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

console = Console()
err_console = Console(stderr=True)


@contextmanager
def stage_progress(total: int, description: str = "exam"):
    """A rich progress bar advanced by ``callback(stage, status)`` when a stage ends."""
    progress = Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(),
                        TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), console=err_console,
                        transient=False)
    with progress:
        task = progress.add_task(description, total=total)

        def callback(stage: str, status: str) -> None:
            if status == "start":
                progress.update(task, description=f"{description}: {stage}")
            else:
                progress.advance(task)

        yield callback
