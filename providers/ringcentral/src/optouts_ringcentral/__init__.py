"""RingCentral for optouts: High Volume SMS opt-outs (v1) and SMS consents (v2), plus an emulator.

Installed, it registers the provider ``ringcentral``; use it through ``optouts.Client``.
"""

from ._emulator import Emulator, RateLimit
from ._oauth import RingCentralAuth
from ._provider import API_CONSENTS, API_V1, CheckPlan, RingCentralProvider
from ._ratelimit import Pacer

__all__ = [
    "API_CONSENTS",
    "API_V1",
    "CheckPlan",
    "Emulator",
    "Pacer",
    "RateLimit",
    "RingCentralAuth",
    "RingCentralProvider",
]
