"""Find the providers: in-tree default plugins plus third-party ones by entry point.

Third-party plugins are distributions that declare an entry point in the ``optouts`` group.
``OPTOUTS_LOAD_PLUGINS`` (comma-separated distribution or entry-point names) restricts which
of them load; set it to an empty string to load none.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
import os
import threading
from collections.abc import Mapping

import attrs
import pluggy

from . import _hookspecs
from ._config import ConfigFile
from ._errors import ConfigurationError
from ._models import Capability
from ._provider import Provider
from ._webhooks import InboundParser

__all__ = [
    "DEFAULT_PLUGINS",
    "ProviderInfo",
    "check_provider_tables",
    "get_plugin_manager",
    "get_provider_class",
    "inbound_parsers",
    "provider_classes",
    "providers",
]

ENTRY_POINT_GROUP = "optouts"
DEFAULT_PLUGINS = ("optouts.ledger._plugin",)

logger = logging.getLogger("optouts")
_lock = threading.Lock()
_broken: dict[str, str] = {}
"""Plugins that failed to load, with why, so a request for their provider can say so."""
_skipped: set[str] = set()
"""Entry points OPTOUTS_LOAD_PLUGINS left out: their tables in optouts.toml are expected."""
_warned: set[tuple[str, str]] = set()
"""(file, table) pairs already warned about, so a sync's two clients say it once."""
_manager: pluggy.PluginManager | None = None


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, built on first use."""
    global _manager
    with _lock:
        if _manager is None:
            manager = pluggy.PluginManager("optouts")
            manager.add_hookspecs(_hookspecs)
            for module_name in DEFAULT_PLUGINS:
                manager.register(importlib.import_module(module_name), name=module_name)
            _load_entry_points(manager)
            _manager = manager
        return _manager


def _load_entry_points(manager: pluggy.PluginManager) -> None:
    """Load third-party plugins; one that fails to import is reported, not fatal to others."""
    allowed = os.environ.get("OPTOUTS_LOAD_PLUGINS")
    wanted = None if allowed is None else {n.strip() for n in allowed.split(",") if n.strip()}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        distribution = entry_point.dist.name if entry_point.dist else None
        if wanted is not None and not wanted & {entry_point.name, distribution}:
            _skipped.add(entry_point.name)
            continue
        if manager.get_plugin(entry_point.name) is not None:
            continue
        try:
            plugin = entry_point.load()
        except Exception as exc:
            _broken[entry_point.name] = f"{type(exc).__name__}: {exc}"
            logger.warning("optouts plugin %r failed to load: %s", entry_point.name, exc)
            continue
        manager.register(plugin, name=entry_point.name)


def provider_classes() -> Mapping[str, type[Provider]]:
    """Every registered provider class by name; two with one name is an error."""
    found: dict[str, type[Provider]] = {}

    def register(provider_class: type[Provider]) -> None:
        name = getattr(provider_class, "name", None)
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"provider class {provider_class!r} has no name")
        if name in found and found[name] is not provider_class:
            raise ConfigurationError(
                f"two plugins register a provider named {name!r}: "
                f"{found[name].__module__} and {provider_class.__module__}; "
                "restrict OPTOUTS_LOAD_PLUGINS or uninstall one"
            )
        found[name] = provider_class

    get_plugin_manager().hook.register_providers(register=register)
    return dict(sorted(found.items()))


def inbound_parsers() -> Mapping[str, InboundParser]:
    """Every registered webhook format by name; two with one name is an error."""
    found: dict[str, InboundParser] = {}

    def register(parser: InboundParser) -> None:
        if not isinstance(parser, InboundParser):
            raise ConfigurationError(
                f"register_inbound_parsers was handed {type(parser).__name__}, "
                "not an optouts.inbound.InboundParser"
            )
        known = found.get(parser.name)
        if known is not None and known != parser:
            raise ConfigurationError(
                f"two plugins register a webhook format named {parser.name!r}: "
                f"{known.module} and {parser.module}; "
                "restrict OPTOUTS_LOAD_PLUGINS or uninstall one"
            )
        found[parser.name] = parser

    get_plugin_manager().hook.register_inbound_parsers(register=register)
    return dict(sorted(found.items()))


def get_provider_class(name: str) -> type[Provider]:
    classes = provider_classes()
    try:
        return classes[name]
    except KeyError:
        broken = "".join(
            f"; plugin {plugin!r} failed to load ({why})" for plugin, why in _broken.items()
        )
        raise ConfigurationError(
            f"unknown provider {name!r}; installed: {', '.join(classes) or 'none'} "
            f"(set OPTOUTS_PROVIDER or provider in optouts.toml){broken}"
        ) from None


@attrs.frozen
class ProviderInfo:
    """What ``optouts.providers()`` tells about each installed provider."""

    name: str
    capabilities: frozenset[Capability]
    max_batch: int
    module: str


def providers() -> list[ProviderInfo]:
    """The installed providers with what each can do, sorted by name."""
    return [
        ProviderInfo(name, cls.capabilities, cls.max_batch, cls.__module__)
        for name, cls in provider_classes().items()
    ]


def check_provider_tables(config: ConfigFile) -> None:
    """Warn on stderr about each ``[providers.<name>]`` table no installed provider reads.

    A warning, not an error: one optouts.toml is shared by machines with different plugins
    installed, OPTOUTS_LOAD_PLUGINS may leave some out on purpose, and a plugin that fails to
    load must not stop opt-outs being recorded through the others. Tables of plugins left
    out or broken (warned about already) pass quietly; a misspelt name is the warning's case.
    """
    tables = set(config.providers)
    if not tables:
        return
    installed = provider_classes()
    for name in sorted(tables - set(installed) - _skipped - set(_broken)):
        key = (str(config.path), name)
        if key in _warned:
            continue
        _warned.add(key)
        close = difflib.get_close_matches(name, installed, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        logger.warning(
            "%s: no installed provider is named %r%s, so its settings are ignored; installed: %s",
            config.where(name),
            name,
            hint,
            ", ".join(installed) or "none",
        )
