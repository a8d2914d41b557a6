"""The emulator's defaults that ``optouts emulate aws`` shows in its help, kept apart so the
command describes itself without loading the emulator (or botocore's model)."""

from __future__ import annotations

from typing import Final, Literal, get_args

__all__ = [
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_ACCOUNT",
    "DEFAULT_REGION",
    "DEFAULT_SECRET_ACCESS_KEY",
    "FAULTS",
    "Fault",
]

DEFAULT_ACCESS_KEY_ID: Final = "AKIAOPTOUTSEMULATOR0"
"""The development key pair the emulator accepts unless given another; it guards nothing.
It is shaped like a real key id on purpose: the cassette check must catch one that leaks."""
DEFAULT_SECRET_ACCESS_KEY: Final = "optouts/aws/emulator/development+key/0000"
DEFAULT_REGION: Final = "us-east-1"
DEFAULT_ACCOUNT: Final = "123456789012"

Fault = Literal["throttle", "error", "unavailable"]
"""``throttle``: 400 ThrottlingException; ``error``: 500 InternalServerException;
``unavailable``: 503 ServiceUnavailableException (AWS's front end, outside the model)."""
FAULTS: Final[tuple[Fault, ...]] = get_args(Fault)
