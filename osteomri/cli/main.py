"""The ``osteomri`` command line: a thin typer layer over the library.

Each capability lives in its own module ``osteomri.cli.<name>`` exposing ``register(app)``; the modules
listed in :data:`COMMAND_MODULES` are registered. Errors raised on purpose
(:class:`~osteomri.errors.OsteoMRIError`) become one line on stderr and exit code 2; ``--debug`` shows
the traceback instead.
"""

from __future__ import annotations

import importlib
import sys
import warnings

import click
import typer
from rich.console import Console

from osteomri._version import __version__
from osteomri.errors import InputWarning, OsteoMRIError

COMMAND_MODULES = ("demo", "exam", "waterfat", "ivim", "measure", "study", "cohort", "label", "ute", "mrs",
                   "radiomics", "model")

app = typer.Typer(
    name="osteomri",
    help="Quantitative lumbar-spine MRI biomarkers of bone health.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err_console = Console(stderr=True)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"osteomri {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version_callback, is_eager=True,
                                 help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on errors."),
) -> None:
    """osteomri: lumbar-spine MRI -> maps, per-vertebra tables, risk estimates and study reports."""


for _name in COMMAND_MODULES:
    importlib.import_module(f"osteomri.cli.{_name}").register(app)


def _command() -> click.Command:
    """The app's click command, with one rule for every command: ``--out`` also answers to ``-o``."""
    command = typer.main.get_command(app)

    def walk(cmd: click.Command) -> None:
        for param in cmd.params:
            if "--out" in param.opts and "-o" not in param.opts:
                param.opts.append("-o")
        for sub in getattr(cmd, "commands", {}).values():
            walk(sub)

    walk(command)
    return command


_SHOWN: set[str] = set()


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings of the library (labels resampled, vertebra cut by the field of view, geometry assumed, ...) as
    one line each, each text once per command (``--debug`` leaves Python's format)."""
    from rich.markup import escape

    text = str(message)
    if text not in _SHOWN:
        _SHOWN.add(text)
        err_console.print(f"[bold yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


def main(argv: list[str] | None = None) -> int:
    """Console entry point. Returns the exit code (also used by tests with an explicit ``argv``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", InputWarning)
            _SHOWN.clear()
            if not debug:
                warnings.showwarning = _show_warning
            _command().main(args=args, prog_name="osteomri", standalone_mode=True)
    except SystemExit as exc:  # typer/click report usage errors and --version this way
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except (OsteoMRIError, FileNotFoundError, PermissionError) as exc:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        return 2
    return 0


def run() -> None:
    sys.exit(main())
