"""Registers the ledger as the in-tree ``local`` provider."""

from __future__ import annotations

from collections.abc import Callable

from .._hookspecs import hookimpl
from .._provider import Provider
from ._provider import LocalProvider


@hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(LocalProvider)
