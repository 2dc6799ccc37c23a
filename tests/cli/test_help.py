"""``--help`` of every command and sub-command renders (issue 13, item 1).

The commands are discovered from the typer app, so a command added later is covered without editing this
test. Help texts are rendered as rich markup by typer: a bracket such as ``[/ses-YY]`` is read as a closing
tag and crashes ``--help`` (MarkupError), and ``[ses-*/]`` is silently swallowed as a style. The second test
checks that every help text survives rich markup unchanged (an escaped ``\\[`` renders as ``[``).
"""

from __future__ import annotations

import pytest
import typer
from rich.text import Text

from osteomri.cli.main import app, main


def _walk(command: object, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], object]]:
    out = [(path, command)]
    for name, sub in getattr(command, "commands", {}).items():  # a group (typer may vendor its own click)
        out.extend(_walk(sub, (*path, name)))
    return out


COMMANDS = _walk(typer.main.get_command(app))


def test_every_registered_command_is_discovered():
    names = {" ".join(p) for p, _ in COMMANDS}
    # the commands of the README and their sub-commands (a floor: new commands only add to the list)
    assert {"", "demo", "exam", "waterfat", "ivim", "measure", "study", "cohort", "cohort run",
            "cohort synth"} <= names


@pytest.mark.parametrize("path", [p for p, _ in COMMANDS], ids=lambda p: " ".join(p) or "osteomri")
def test_help_of_every_command_renders(path, capsys):
    rc = main([*path, "--help"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    assert "Usage" in out.out and "Traceback" not in out.err


def _help_texts(command: object) -> list[str]:
    texts = [command.help or ""]
    texts += [getattr(p, "help", None) or "" for p in command.params]
    return [t for t in texts if t]


@pytest.mark.parametrize("path, command", COMMANDS, ids=[" ".join(p) or "osteomri" for p, _ in COMMANDS])
def test_help_texts_survive_rich_markup(path, command):
    for text in _help_texts(command):
        assert Text.from_markup(text).plain == text.replace("\\[", "["), text
