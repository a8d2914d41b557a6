"""The hooks a plugin can implement: bring providers, read their vendors' webhooks, and serve
emulators of their vendors."""

from __future__ import annotations

from collections.abc import Callable

import click
import pluggy

from ._provider import Provider
from ._webhooks import InboundParser

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("optouts")
hookimpl = pluggy.HookimplMarker("optouts")


@hookspec
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register provider classes by calling ``register(ProviderClass)`` for each."""


@hookspec
def register_inbound_parsers(register: Callable[[InboundParser], None]) -> None:
    """Register webhook formats by calling ``register(InboundParser(...))`` for each."""


@hookspec
def register_emulators(emulate: click.Group) -> None:
    """Add a command to ``optouts emulate`` that serves this plugin's vendor emulator."""
