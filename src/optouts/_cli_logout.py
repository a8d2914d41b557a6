"""Vendor sessions that outlive one command: kept by default, ended by ``optouts logout``.

A person runs command after command, and a vendor that allows a handful of logins a
minute (RingCentral: five) would make every third quick run wait. So the command line
says so for the length of each command (``keep_sessions``); a provider that can keep its
session across runs (RingCentral's token cache) asks ``optouts.plugin.keeps_sessions()``
when it is built and keeps it, unless its own setting says otherwise. Library clients
never hear it.

``optouts logout PROVIDER`` ends such a session: it calls the provider's public
``logout()``, which forgets what is kept at once and leaves the revoke to the client's
close, so it goes through the same transport, auth and rate-limit pacing as every request.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import click

from ._cli_options import Options
from ._client import Client
from ._config import core_setting, load_config_file
from ._errors import ConfigurationError
from ._plugins import get_provider_class
from ._sessions import keeping_sessions

__all__ = ["LogsOut", "keep_sessions", "register"]


@runtime_checkable
class LogsOut(Protocol):
    """A provider that keeps a session across runs and can end it."""

    def logout(self) -> bool:
        """Forget the kept session now and revoke it on close; False when there was none."""
        ...


def keep_sessions(ctx: click.Context) -> None:
    """Let providers keep their sessions across runs for the length of this command."""
    ctx.with_resource(keeping_sessions())


@click.command(name="logout")
@click.argument("name", metavar="[PROVIDER]", required=False)
@click.pass_obj
def logout_command(options: Options, name: str | None) -> int:
    """End the session kept across runs for PROVIDER: revoke it and delete it from the cache.

    PROVIDER defaults to the configured one (--provider, $OPTOUTS_PROVIDER, optouts.toml).

    \b
    Examples:
      optouts logout ringcentral
      OPTOUTS_RINGCENTRAL_JWT=... optouts logout ringcentral   # the session of that JWT
    """
    chosen = name or core_setting("provider", options.provider, load_config_file(options.config))
    if not issubclass(get_provider_class(chosen), LogsOut):
        raise ConfigurationError(f"provider {chosen!r} keeps no session to log out of")
    with Client(chosen, config=options.config, **options.settings) as client:
        provider = client.provider
        assert isinstance(provider, LogsOut)  # its class was checked above
        ended = provider.logout()
    if ended:
        click.echo(
            f"optouts: logged out of {chosen}: the session is revoked and forgotten", err=True
        )
    else:
        click.echo(f"optouts: no {chosen} session was kept; nothing to log out of", err=True)
    return 0


def register(group: click.Group) -> None:
    group.add_command(logout_command)
