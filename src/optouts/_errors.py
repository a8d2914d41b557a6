"""Every error optouts raises, under one base class so callers can catch them together.

    OptOutError
    ├── ConfigurationError        a setting is missing or malformed (names it and its variable)
    ├── UnsupportedOperation      the provider cannot do this (names the way around it)
    ├── InvalidNumber             a sender or recipient is not a usable phone number
    ├── InvalidPayload            a vendor's webhook body is not the documented shape
    ├── InvalidCursor             a paging cursor this provider did not hand out
    ├── RecipientsFailed          raised on demand by BatchResult.raise_for_failures()
    │                             (defined beside BatchResult, in _models)
    └── ProviderError             the vendor answered with an error (status, code, request id)
        ├── AuthenticationError   credentials refused, or the feature is not enabled
        └── RateLimited           the vendor asked us to slow down (retry_after seconds)

Whole-call failures raise; per-recipient failures come back as failed results instead, so
one bad number never hides the answers for the others.

Messages quote the values they name through ``quote_value``, which cuts them short: a 5 MB
number or setting must not make a 5 MB error. ``printable`` makes vendor or file text safe
to show on a terminal.
"""

from __future__ import annotations

import re

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "InvalidCursor",
    "InvalidNumber",
    "InvalidPayload",
    "OptOutError",
    "ProviderError",
    "RateLimited",
    "UnsupportedOperation",
]

_QUOTED = 60
"""Characters of a value a message shows; the rest is only counted."""
_REASON = 200
"""Characters of a vendor's reason a message shows."""
_SHOWN = 1_000
"""Characters of any one text the command line prints."""
_UNPRINTABLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
"""C0 and C1 controls (ESC starts colours, cursor moves and OSC 8 links), bidi marks and
overrides (which reorder what a line seems to say), line separators, and lone surrogates
(from bytes that were not UTF-8, which a terminal cannot even encode)."""


def quote_value(value: object, limit: int = _QUOTED) -> str:
    """``repr(value)`` for a message, cut to ``limit`` characters of the value (fewer where
    escapes such as ``\\x1b`` widen it) with the full length said, as in
    ``'+1202555…' (5,000,000 characters)``. Control characters come out escaped."""
    if isinstance(value, (str, bytes)):
        cut = min(len(value), limit)
        shown = repr(value[:cut])
        while len(shown) > 2 * limit + 2 and cut > 1:
            cut = max(1, min(cut - 1, cut * 2 * limit // len(shown)))
            shown = repr(value[:cut])
        if cut == len(value):
            return shown
        unit = "bytes" if isinstance(value, bytes) else "characters"
        return f"{shown[:-1]}…{shown[-1]} ({len(value):,} {unit})"
    try:
        shown = repr(value)
    except (ValueError, RecursionError):  # an int too long to write out, a list nested deep
        return f"<{type(value).__name__}>"
    return clip(shown, limit)


def clip(text: str, limit: int = _QUOTED) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was (for unquoted text)."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def printable(text: str, limit: int = _SHOWN) -> str:
    """``text`` for a terminal: every character it would act on written as an escape
    (``\\x1b``, ``\\u202e``), so vendor or file text is only ever read, never run; and
    cut to ``limit`` characters, so a vendor's 5 MB error page is not a 5 MB line."""
    return _UNPRINTABLE.sub(_escaped, clip(text, limit))


def _escaped(match: re.Match[str]) -> str:
    return repr(match.group())[1:-1]


class OptOutError(Exception):
    """Base class of every optouts error."""


class ConfigurationError(OptOutError):
    """A setting is missing, unknown or malformed."""


class UnsupportedOperation(OptOutError):
    """The provider does not offer this operation."""

    def __init__(self, provider: str, operation: str, hint: str = "") -> None:
        self.provider = provider
        self.operation = operation
        self.hint = hint
        message = f"provider {quote_value(provider)} does not support {operation!r}"
        super().__init__(f"{message}: {hint}" if hint else message)


class InvalidNumber(OptOutError, ValueError):
    """A phone number that cannot be normalised to E.164 (or a short code, for senders)."""

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"{quote_value(value)}: {reason}")


class InvalidPayload(OptOutError, ValueError):
    """A webhook body that does not have the shape the vendor documents."""


class InvalidCursor(OptOutError, ValueError):
    """A paging cursor that was not produced by this provider."""


class ProviderError(OptOutError):
    """The vendor refused or failed a whole request."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
    ) -> None:
        self.message = message
        self.provider = provider
        self.status_code = status_code
        self.code = code
        self.request_id = request_id
        # Server errors are worth another try unless the provider knows better.
        self.retryable = (
            (status_code is not None and status_code >= 500) if retryable is None else retryable
        )
        super().__init__(message)

    def __str__(self) -> str:
        parts = [self.message]
        details = []
        if self.provider:
            details.append(f"provider={self.provider}")
        if self.status_code is not None:
            details.append(f"status={self.status_code}")
        if self.code:
            details.append(f"code={self.code}")
        if self.request_id:
            details.append(f"request_id={self.request_id}")
        if details:
            parts.append(f"({', '.join(details)})")
        return " ".join(parts)


class AuthenticationError(ProviderError):
    """The vendor refused the credentials (or the account lacks the feature); never retried."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        status_code: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(
            message,
            provider=provider,
            status_code=status_code,
            code=code,
            request_id=request_id,
            retryable=False,
        )


class RateLimited(ProviderError):
    """The vendor asked to wait ``retry_after`` seconds (None when it did not say)."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        provider: str | None = None,
        status_code: int | None = 429,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(
            message,
            provider=provider,
            status_code=status_code,
            code=code,
            request_id=request_id,
            retryable=True,
        )
