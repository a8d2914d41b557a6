"""CSV and JSON on a terminal show a vendor's or a file's text; they never run it.

Into a pipe or a file they are written as they are (a program reads them); on a terminal
an ESC or BEL in a cell could retitle the window or rewrite what the screen shows, so
there every control character but the line break is written as an escape.
"""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from optouts._terminal import shown

HOSTILE = "\x1b]0;pwned\x07+1202\u202e5550101"


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_escapes_and_a_pipe_the_text() -> None:
    terminal, pipe = Terminal(), io.StringIO()
    for out in (terminal, pipe):
        shown(out).write(f"a,{HOSTILE}\n")
    assert terminal.getvalue() == "a,\\x1b]0;pwned\\x07+1202\\u202e5550101\n"
    assert pipe.getvalue() == f"a,{HOSTILE}\n"


def run_on_terminal(arguments: list[str], tmp_path: Path) -> str:
    controller, terminal = pty.openpty()
    env = {**os.environ, "OPTOUTS_LOCAL_DATABASE": str(tmp_path / "l.db")}
    child = subprocess.Popen(
        [sys.executable, "-m", "optouts.cli", *arguments],
        stdout=terminal,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=env,
    )
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    child.wait(timeout=60)
    os.close(controller)
    return b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.parametrize("output", ["csv", "json"])
def test_check_on_a_terminal_escapes_the_input(output: str, tmp_path: Path) -> None:
    shown_text = run_on_terminal(
        ["--format", output, "check", "--from", "+18005550100", HOSTILE], tmp_path
    )
    assert "pwned" in shown_text
    assert "\x1b" not in shown_text
    assert "\x07" not in shown_text
    assert "\u202e" not in shown_text
