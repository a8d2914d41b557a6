"""RingCentral for optouts: High Volume SMS opt-outs (v1) and SMS consents (v2), plus an emulator.

Installed, it registers the provider ``ringcentral``; use it through ``optouts.Client``.
The emulator's names load on first use, so a client never imports the emulator.
"""

import typing as _typing

from ._oauth import RingCentralAuth
from ._provider import API_CONSENTS, API_V1, CheckPlan, RingCentralProvider
from ._ratelimit import Pacer
from ._tokencache import TokenCache

if _typing.TYPE_CHECKING:
    from ._emulator import Emulator, RateLimit

__all__ = [
    "API_CONSENTS",
    "API_V1",
    "CheckPlan",
    "Emulator",
    "Pacer",
    "RateLimit",
    "RingCentralAuth",
    "RingCentralProvider",
    "TokenCache",
]

_FROM_EMULATOR = ("Emulator", "RateLimit")


def __getattr__(name: str) -> object:
    """Import the emulator when one of its names is first asked for, and keep them all."""
    if name not in _FROM_EMULATOR:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _emulator

    globals().update({each: getattr(_emulator, each) for each in _FROM_EMULATOR})
    return globals()[name]
