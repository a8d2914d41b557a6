"""What the provider and the emulator agree on: paths, API versions and limits of the API.

Kept in one place so the emulator cannot drift from the provider on facts taken from the
published spec (api-version 2026-01-23 and the versions before it that carry opt-outs).
"""

from __future__ import annotations

import re
from typing import Final, Literal

__all__ = [
    "API_VERSIONS",
    "DEFAULT_API_VERSION",
    "MAX_RECIPIENTS",
    "OPERATIONS",
    "Operation",
    "check_api_version",
    "operation_path",
]

Operation = Literal["add", "remove", "check"]
OPERATIONS: Final[tuple[Operation, ...]] = ("add", "remove", "check")

API_VERSIONS: Final[tuple[str, ...]] = (
    "2024-12-10-preview",
    "2025-05-29-preview",
    "2025-08-01-preview",
    "2025-09-17",
    "2026-01-23",
)
"""Every published api-version that carries the opt-out operations, oldest first."""

DEFAULT_API_VERSION: Final = "2026-01-23"

MAX_RECIPIENTS: Final = 100
"""The spec's maxItems for ``recipients``."""

_VERSION_SHAPE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(-preview)?")


def operation_path(operation: Operation) -> str:
    return f"/sms/optouts:{operation}"


def check_api_version(value: object) -> str:
    """Accept a version shaped like Azure's, so a newer one works before this list knows it."""
    text = str(value).strip()
    if not _VERSION_SHAPE.fullmatch(text):
        raise ValueError(
            f"{text!r} is not an api-version such as {DEFAULT_API_VERSION!r}; "
            f"known: {', '.join(API_VERSIONS)}"
        )
    return text
