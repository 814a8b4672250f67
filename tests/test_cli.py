"""The CLI shell: version, help on every command, one-line errors."""

from __future__ import annotations

import subprocess
import sys

import pytest
import typer.main

from entitylabel import __version__
from entitylabel.cli import app, main


def _commands(group: typer.Typer, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    click_group = typer.main.get_command(group)
    found = []
    for name, cmd in click_group.commands.items():  # type: ignore[attr-defined]
        found.append(prefix + (name,))
        if hasattr(cmd, "commands"):
            found += [prefix + (name, sub) for sub in cmd.commands]
    return found


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--version"])
    assert capsys.readouterr().out.strip() == f"entitylabel {__version__}"


def test_help_on_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    commands = _commands(app)
    assert ("discover",) in commands
    for cmd in commands:
        main([*cmd, "--help"])
        assert "Usage" in capsys.readouterr().out, cmd


def test_console_script_runs_as_module() -> None:
    res = subprocess.run([sys.executable, "-m", "entitylabel", "--help"], capture_output=True, text=True, check=True)
    assert "discover" in res.stdout


def test_bad_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["discover", "--no-such-option"])
    assert e.value.code == 2
