"""One vocabulary across commands (issue 13 item 14): -h everywhere, -o for every --out, --seed is always a
random seed, --exam-id is the one spelling of the exam id."""

from __future__ import annotations

import click
import pytest

from osteomri.cli.main import _command, main


def _commands() -> dict[str, click.Command]:
    out: dict[str, click.Command] = {}

    def walk(cmd: click.Command, path: tuple[str, ...]) -> None:
        subs = getattr(cmd, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, (*path, name))
        else:
            out[" ".join(path)] = cmd

    walk(_command(), ())
    return out


COMMANDS = _commands()


def test_every_command_is_found():
    assert {"demo", "exam", "waterfat", "ivim", "measure", "study", "cohort run", "cohort synth"} <= set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_dash_h_prints_help(name, capsys):
    assert main([*name.split(), "-h"]) == 0
    assert "Usage" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_one_meaning_per_option(name):
    params = {opt: p for p in COMMANDS[name].params for opt in p.opts}
    if "--out" in params:
        assert "-o" in params["--out"].opts, name
    if "--seed" in params:  # a random seed, an integer, everywhere
        assert "random seed" in (params["--seed"].help or "").lower(), name
    visible = {opt for p in COMMANDS[name].params if not getattr(p, "hidden", False) for opt in p.opts}
    assert "--exam" not in visible, f"{name}: the exam id is spelled --exam-id"
