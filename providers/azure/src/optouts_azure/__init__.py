"""Azure Communication Services SMS opt-outs for optouts: the ``azure`` provider and its emulator.

Installing the distribution registers the provider; use it by name::

    optouts.Client("azure", connection_string="endpoint=https://...;accesskey=...")
"""

from ._api import API_VERSIONS, DEFAULT_API_VERSION
from ._auth import HMACAuth
from ._connection import Connection, parse_connection_string
from ._emulator import DEFAULT_ACCESS_KEY, AzureEmulator, DroppedConnection, Fault
from ._provider import AzureProvider

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
