"""Following AWS's ``NextToken`` within one call without looping forever.

Each loop that reads pages inside one provider call (every page of a lookup, the empty
pages a listing skips, every page of DescribeOptOutLists) keeps the tokens it followed: a
token AWS hands out twice would send the loop round again, so it is a protocol error, as
a repeated page cursor is to the core's own listing loop. A lookup names at most
``MAX_LOOKUP`` numbers, so its answer needs at most that many pages; ``most`` caps the
pages a loop may read, so a chain of ever new tokens ends too.
"""

from __future__ import annotations

import httpx

from ._wire import protocol_error

__all__ = ["LOOKUP_PAGES", "Trail"]

LOOKUP_PAGES = 10
"""Pages one lookup of at most 5 numbers may take: twice what 5 records could need."""


class Trail:
    """The NextTokens one loop followed, and how many pages it read."""

    def __init__(self, what: str, most: int | None = None) -> None:
        self.what = what
        """What the loop does, for the error: ``"a lookup of 3 numbers in list 'Default'"``."""
        self.most = most
        self.pages = 0
        self._seen: set[str] = set()

    def start(self, token: str) -> None:
        """The token the loop starts from (a cursor's): AWS handing it back is a repeat."""
        self._seen.add(token)

    def follow(self, token: str, response: httpx.Response) -> None:
        """Note one page read and the token of the next; raise when the loop would not end."""
        self.pages += 1
        if token in self._seen:
            raise protocol_error(
                f"AWS returned a NextToken it had already returned in {self.what}", response
            )
        if self.most is not None and self.pages >= self.most:
            raise protocol_error(
                f"AWS answered {self.what} in more than {self.most} pages (each with a "
                "NextToken), more than such an answer can need; stopped reading",
                response,
            )
        self._seen.add(token)
