"""Azure Communication Services SMS opt-outs for optouts: the ``azure`` provider and its emulator.

Installing the distribution registers the provider; use it by name::

    optouts.Client("azure", connection_string="endpoint=https://...;accesskey=...")

The emulator's classes load on first use, so a client never imports the emulator.
"""

import typing as _typing

from ._api import API_VERSIONS, DEFAULT_API_VERSION
from ._auth import HMACAuth
from ._connection import Connection, parse_connection_string
from ._knobs import DEFAULT_ACCESS_KEY, Fault
from ._provider import AzureProvider

if _typing.TYPE_CHECKING:
    from ._emulator import AzureEmulator, DroppedConnection

__all__ = [
    "API_VERSIONS",
    "DEFAULT_ACCESS_KEY",
    "DEFAULT_API_VERSION",
    "AzureEmulator",
    "AzureProvider",
    "Connection",
    "DroppedConnection",
    "Fault",
    "HMACAuth",
    "parse_connection_string",
]

_FROM_EMULATOR = ("AzureEmulator", "DroppedConnection")


def __getattr__(name: str) -> object:
    """Import the emulator when one of its names is first asked for, and keep them all."""
    if name not in _FROM_EMULATOR:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _emulator

    globals().update({each: getattr(_emulator, each) for each in _FROM_EMULATOR})
    return globals()[name]
