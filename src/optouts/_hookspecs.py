"""The hooks a plugin can implement: bring providers, and serve emulators of their vendors."""

from __future__ import annotations

from collections.abc import Callable

import click
import pluggy

from ._provider import Provider

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("optouts")
hookimpl = pluggy.HookimplMarker("optouts")


@hookspec
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register provider classes by calling ``register(ProviderClass)`` for each."""


@hookspec
def register_emulators(emulate: click.Group) -> None:
    """Add a command to ``optouts emulate`` that serves this plugin's vendor emulator."""
