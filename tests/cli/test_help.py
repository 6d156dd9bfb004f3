"""Every command explains itself: `--help` works and shows at least one example."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from distillwatch.cli.main import app


def _commands(group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    # typer ships its own copy of click, so groups are recognised by having sub-commands.
    found: list[tuple[str, ...]] = []
    for name, cmd in group.commands.items():
        path = (*prefix, name)
        if hasattr(cmd, "commands"):
            found.extend(_commands(cmd, path))
        else:
            found.append(path)
    return found


COMMANDS = _commands(typer.main.get_command(app))


def test_the_pipeline_commands_are_all_there() -> None:
    names = {c[0] for c in COMMANDS}
    for expected in ("ingest", "simulate", "scan", "evaluate", "signals", "report", "demo", "decide", "serve", "intel"):
        assert expected in names


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_an_example(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "example" in result.output.lower(), f"`distillwatch {' '.join(command)} --help` shows no example"
