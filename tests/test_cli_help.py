"""What ``--help`` tells a new user: whole descriptions, defaults, and examples to copy."""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest

from optouts.cli import cli, run


def help_of(capsys: pytest.CaptureFixture[str], *path: str) -> str:
    assert run([*path, "--help"]) == 0
    return capsys.readouterr().out


def every_command(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*path, name))
        if isinstance(command, click.Group):
            found.extend(every_command(command, (*path, name)))
    return found


COMMANDS = every_command(cli)


def test_the_commands_include_the_emulators() -> None:
    assert ("emulate", "azure") in COMMANDS
    assert ("emulate", "ringcentral") in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_shows_examples(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...]
) -> None:
    shown = help_of(capsys, *path)
    examples = shown.split("Examples:", 1)[1].splitlines()
    lines = [line.strip() for line in examples if line.strip().startswith(("optouts", "cat"))]
    assert 1 <= len(lines) <= 2, shown
    assert all(" ".join(path) in line for line in lines)


@pytest.mark.parametrize("path", [(), ("emulate",)], ids=["optouts", "emulate"])
def test_command_lists_show_whole_descriptions(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...]
) -> None:
    shown = help_of(capsys, *path)
    listed = shown.split("Commands:", 1)[1]
    assert "..." not in listed
    assert "history, vendor confirmations." in " ".join(listed.split()) or path


def test_target_says_it_repeats(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("sync", "serve"):
        shown = " ".join(help_of(capsys, command).split())
        assert "--target" in shown
        assert "repeatable" in shown.split("--target", 1)[1].split("--", 1)[0]


@pytest.mark.parametrize(("command", "default"), [("list", "opted-out"), ("export", "all")])
def test_list_and_export_say_their_default_status(
    capsys: pytest.CaptureFixture[str], command: str, default: str
) -> None:
    shown = " ".join(help_of(capsys, command).split())
    assert f"[default: {default}]" in shown
    top = " ".join(help_of(capsys).split())
    described = top.split(f" {command} ", 1)[1]
    wanted = "opted-out records, by default" if command == "list" else "opt-ins, by default"
    assert wanted in described


def test_global_options_show_on_a_command_that_uses_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    check = help_of(capsys, "check")
    assert "--format" in check
    assert "--provider" in check
    export = help_of(capsys, "export")
    assert "--format" not in export  # accepted, and refused, but not offered
    assert "--default-region" not in export


def test_shell_completion_as_the_readme_says() -> None:
    script = subprocess.run(
        [sys.executable, "-m", "optouts.cli"],
        env={**os.environ, "_OPTOUTS_COMPLETE": "bash_source"},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "_optouts_completion" in script
    completed = subprocess.run(
        [sys.executable, "-m", "optouts.cli"],
        env={
            **os.environ,
            "_OPTOUTS_COMPLETE": "bash_complete",
            "COMP_WORDS": "optouts check --for",
            "COMP_CWORD": "2",
        },
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "--format" in completed
