"""Text from vendors and files as the command line shows it: read, never run."""

from __future__ import annotations

from rich.text import Text

from ._errors import printable

__all__ = ["cell"]


def cell(value: object) -> Text:
    """A table cell that shows ``value`` as it is: no markup, control characters escaped."""
    return Text("" if value is None else printable(str(value)))
