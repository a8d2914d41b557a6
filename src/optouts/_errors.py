"""Every error optouts raises, under one base class so callers can catch them together.

    OptOutError
    ├── ConfigurationError        a setting is missing or malformed (names it and its variable)
    ├── UnsupportedOperation      the provider cannot do this (names the way around it)
    ├── InvalidNumber             a sender or recipient is not a usable phone number
    ├── InvalidPayload            a vendor's webhook body is not the documented shape
    ├── InvalidCursor             a paging cursor this provider did not hand out
    ├── RecipientsFailed          raised on demand by BatchResult.raise_for_failures()
    └── ProviderError             the vendor answered with an error (status, code, request id)
        ├── AuthenticationError   credentials refused, or the feature is not enabled
        └── RateLimited           the vendor asked us to slow down (retry_after seconds)

Whole-call failures raise; per-recipient failures come back as failed results instead, so
one bad number never hides the answers for the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._models import RecipientResult

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "InvalidCursor",
    "InvalidNumber",
    "InvalidPayload",
    "OptOutError",
    "ProviderError",
    "RateLimited",
    "RecipientsFailed",
    "UnsupportedOperation",
]


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
        message = f"provider {provider!r} does not support {operation!r}"
        super().__init__(f"{message}: {hint}" if hint else message)


class InvalidNumber(OptOutError, ValueError):
    """A phone number that cannot be normalised to E.164 (or a short code, for senders)."""

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        super().__init__(f"{value!r}: {reason}")


class InvalidPayload(OptOutError, ValueError):
    """A webhook body that does not have the shape the vendor documents."""


class InvalidCursor(OptOutError, ValueError):
    """A paging cursor that was not produced by this provider."""


class RecipientsFailed(OptOutError):
    """Some recipients of a batch failed; ``failed`` holds their results."""

    def __init__(self, failed: Sequence[RecipientResult]) -> None:
        self.failed = tuple(failed)
        first = self.failed[0] if self.failed else None
        detail = f"; first: {first.recipient}: {first.error}" if first else ""
        super().__init__(f"{len(self.failed)} recipient(s) failed{detail}")


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
