"""Text from vendors and files as the command line shows it: read, never run."""

from __future__ import annotations

import re
from typing import TextIO

from rich.text import Text

from ._errors import printable

__all__ = ["cell", "shown"]

_ACTS = re.compile(
    "[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
"""What ``printable`` escapes, but the line break that ends each row of CSV or JSON."""


def cell(value: object) -> Text:
    """A table cell that shows ``value`` as it is: no markup, control characters escaped."""
    return Text("" if value is None else printable(str(value)))


class _Escaping:
    """A text stream that escapes what a terminal would act on (ESC sequences, bidi
    overrides) and passes the rest, line breaks included, to ``out``."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, text: str) -> int:
        return self._out.write(_ACTS.sub(lambda m: repr(m.group())[1:-1], text))

    def flush(self) -> None:
        self._out.flush()

    def isatty(self) -> bool:
        return True

    def __getattr__(self, name: str) -> object:
        return getattr(self._out, name)


def shown(out: TextIO) -> TextIO:
    """``out`` as machine formats (CSV, JSON) should write to it: as it is into a pipe or
    a file, with controls escaped on a terminal, where a vendor's or a file's text could
    otherwise retitle the window or rewrite what the screen shows."""
    return _Escaping(out) if out.isatty() else out  # type: ignore[return-value]
