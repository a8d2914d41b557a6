"""The hooks a plugin can implement. One for now: bring providers."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

from ._provider import Provider

__all__ = ["hookimpl", "hookspec"]

hookspec = pluggy.HookspecMarker("optouts")
hookimpl = pluggy.HookimplMarker("optouts")


@hookspec
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    """Register provider classes by calling ``register(ProviderClass)`` for each."""
