"""What a provider plugin needs beyond the names of ``optouts`` itself.

``optouts`` holds what plugins and applications share: ``Provider``, ``Exchange``, ``Sleep``,
``Note``, ``Setting``, ``Settings``, ``Outcome``, ``OptOut``, the errors, ``normalize``,
``RetryPolicy``, ``require_https``, ``hookimpl``. This module adds what only a plugin's
code and tests use, so a plugin never imports ``optouts._anything``, whose names may
change in any release (a test of optouts fails when an in-tree provider does):

- ``country_of`` fills ``OptOut.country`` from an E.164 recipient; ``WILDCARD`` is the
  sender ``*``, every number of the account, which the client hands to operations as is.
- ``run_exchange`` drives one exchange over a blocking ``httpx.Client`` as the client
  does, so a test can call an operation directly; ``with_retry`` wraps it in a
  ``RetryPolicy`` the way the client does, for tests of pacing and deadlines.
- ``settings_for`` resolves a provider's declared settings from a given environment only,
  for tests of the declarations (defaults, ``env_aliases``, secrets).
- ``keeps_sessions`` says whether the command line is running a command, when a provider
  that can keep its vendor session across runs (a token cache) should by default.
- ``clip`` cuts vendor text (an error message, a reason) for an exception or a log line,
  saying how long it was: a vendor's 1 MB error page must not become a 1 MB message.

The shared contract suite is ``optouts.testing``; emulator serving is ``optouts.emulators``.
A plugin that reads its vendor's webhooks registers an ``optouts.inbound.InboundParser``
from ``register_inbound_parsers`` and builds it with the helpers of ``optouts.inbound``
(``load_json``, ``each_object``, ``read_number``, ``read_timestamp``, ``get_header``,
``shown``), which keep every parser's promise: a malformed body is ``InvalidPayload``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from . import _config
from ._config import Settings
from ._emulate_options import latency_option, port_option
from ._errors import clip
from ._http import Stats, run_sync
from ._numbers import WILDCARD, country_of
from ._provider import Exchange, Provider
from ._retry import with_retry
from ._sessions import keeps_sessions

__all__ = [
    "WILDCARD",
    "clip",
    "country_of",
    "keeps_sessions",
    "latency_option",
    "port_option",
    "run_exchange",
    "settings_for",
    "with_retry",
]

T = TypeVar("T")


def run_exchange(
    exchange: Exchange[T],
    http: httpx.Client | None,
    auth: httpx.Auth | None = None,
    *,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """Drive ``exchange`` to its answer with the client's own runner, for tests of one call.

    Requests go through ``http`` with ``auth``, transport errors go back into the exchange,
    and each ``Sleep`` calls ``sleep`` (``time.sleep`` unless a test passes a fake clock's).
    Nothing is retried (wrap the exchange in ``with_retry`` for that) and notes are dropped.
    """
    return run_sync(exchange, http, auth, Stats(), sleep)


def settings_for(
    provider: type[Provider],
    explicit: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """``provider``'s settings as a Client would resolve them, from ``explicit`` and ``environ``.

    Never from os.environ or an optouts.toml, so a test gets the same answer wherever it
    runs; a missing required setting raises ``ConfigurationError`` as it would for users.
    """
    return _config.resolve_settings(
        provider.name, provider.settings, explicit or {}, _config.ConfigFile(), environ or {}
    )
