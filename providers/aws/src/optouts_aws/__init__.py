"""AWS End User Messaging SMS opt-out lists for optouts: the ``aws`` provider and its emulator.

Installing the distribution registers the provider; use it by name with the standard AWS
settings in the environment (keys or a profile, and a Region)::

    optouts.Client("aws", sender_lists={"+18005550100": "Marketing", "*": "Default"})

The emulator's classes load on first use, so a client never imports the emulator.
"""

import typing as _typing

from ._auth import SigV4, load_credentials
from ._knobs import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCOUNT,
    DEFAULT_REGION,
    DEFAULT_SECRET_ACCESS_KEY,
    Fault,
)
from ._lists import ListMap
from ._model import MAX_LOOKUP, MAX_RESULTS, PUBLISHED_RATES
from ._pacer import Pacer
from ._provider import AwsProvider

if _typing.TYPE_CHECKING:
    from ._emulator import AwsEmulator, ErrorForms

__all__ = [
    "DEFAULT_ACCESS_KEY_ID",
    "DEFAULT_ACCOUNT",
    "DEFAULT_REGION",
    "DEFAULT_SECRET_ACCESS_KEY",
    "MAX_LOOKUP",
    "MAX_RESULTS",
    "PUBLISHED_RATES",
    "AwsEmulator",
    "AwsProvider",
    "ErrorForms",
    "Fault",
    "ListMap",
    "Pacer",
    "SigV4",
    "load_credentials",
]

_FROM_EMULATOR = ("AwsEmulator", "ErrorForms")


def __getattr__(name: str) -> object:
    """Import the emulator when one of its names is first asked for, and keep them all."""
    if name not in _FROM_EMULATOR:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _emulator

    globals().update({each: getattr(_emulator, each) for each in _FROM_EMULATOR})
    return globals()[name]
