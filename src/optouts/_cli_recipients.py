"""Recipients as the command line takes them: arguments, then files, then stdin.

Files are read a line at a time, never loaded, so a file of millions of numbers streams.
Blank lines and ``#`` comment lines are skipped. A line that cannot be read (bytes that are
not UTF-8) fails alone, as ``file:line: reason`` in its own result row, and every other
line is still answered: it goes to the client as an empty recipient (which fails without a
request) and its result is replaced by one that says what was wrong, in its place.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack
from typing import IO

import attrs
import click

from ._errors import printable
from ._models import RecipientResult

__all__ = ["Recipients", "count_lines"]

_BOM = b"\xef\xbb\xbf"
_STDIN = "-"
_PLACEHOLDER = ""
"""What a bad line sends to the client: no number, so no request."""


def _wanted(line: bytes) -> bool:
    text = line.strip()
    return bool(text) and not text.startswith(b"#")


def _wanted_text(line: str) -> bool:
    text = line.strip()
    return bool(text) and not text.startswith("#")


def count_lines(path: str) -> int:
    """Recipients in a file, counted up front for a progress bar's ETA (files stream)."""
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if _wanted(line))
    except OSError as exc:
        raise click.UsageError(f"cannot read {path}: {exc.strerror}") from None


class Recipients:
    """The recipients of one command, in order; ``mend`` puts each bad line's failure in
    its place among the results."""

    def __init__(self, arguments: Iterable[str], files: Iterable[str], stack: ExitStack) -> None:
        self._arguments = arguments
        # Opened now, so that a missing file fails before the first result.
        self._files = [(path, None if path == _STDIN else _open(path, stack)) for path in files]
        self._bad: dict[int, RecipientResult] = {}

    def __iter__(self) -> Iterator[str]:
        position = 0
        for number in self._arguments:
            yield number
            position += 1
        for path, handle in self._files:
            for line_number, read in _lines(handle):
                if isinstance(read, RecipientResult):
                    where = f"{_shown(path)}:{line_number}"
                    self._bad[position] = attrs.evolve(read, error=f"{where}: {read.error}")
                    read = _PLACEHOLDER
                yield read
                position += 1

    def mend(self, results: Iterable[RecipientResult]) -> Iterator[RecipientResult]:
        """``results`` with each bad line's own failure in its place."""
        for position, result in enumerate(results):
            yield self._bad.pop(position, result) if self._bad else result


def _shown(path: str) -> str:
    return "stdin" if path == _STDIN else printable(path)


def _open(path: str, stack: ExitStack) -> IO[bytes]:
    try:
        return stack.enter_context(open(path, "rb"))
    except OSError as exc:
        raise click.UsageError(f"cannot read {path}: {exc.strerror}") from None


def _lines(handle: IO[bytes] | None) -> Iterator[tuple[int, str | RecipientResult]]:
    """(line number, the number on it or why it cannot be read) for each wanted line of a
    file, or of stdin (``None``)."""
    if handle is None:
        binary = getattr(sys.stdin, "buffer", None)
        if binary is None:  # a text stream stands in for stdin (tests, embedding)
            for line_number, text in enumerate(sys.stdin, 1):
                if _wanted_text(text):
                    yield line_number, text.strip()
            return
        handle = binary
    for line_number, raw in enumerate(handle, 1):
        if line_number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        if not _wanted(raw):
            continue
        try:
            yield line_number, raw.decode("utf-8").strip()
        except UnicodeDecodeError as exc:
            shown = raw.strip().decode("utf-8", "backslashreplace")
            reason = f"not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
            yield line_number, RecipientResult(shown, ok=False, error=reason)
