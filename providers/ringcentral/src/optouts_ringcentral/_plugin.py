"""Registers the ``ringcentral`` provider, the ``ringcentral`` webhook format (consent
notifications) and the ``optouts emulate ringcentral`` command.

The command's options live here; the emulator and uvicorn load only when it runs, so a client
that finds the provider through this module never imports them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

import optouts
from optouts import Provider
from optouts.inbound import InboundParser
from optouts.plugin import latency_option, port_option

from ._inbound import FORMAT
from ._provider import RingCentralProvider

if TYPE_CHECKING:
    from ._emulator import RateLimit


@optouts.hookimpl
def register_providers(register: Callable[[type[Provider]], None]) -> None:
    register(RingCentralProvider)


@optouts.hookimpl
def register_inbound_parsers(register: Callable[[InboundParser], None]) -> None:
    register(FORMAT)


def _rate_limit(_: click.Context, __: click.Parameter, value: str) -> RateLimit:
    from ._emulator import parse_rate_limit

    try:
        return parse_rate_limit(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(
    "ringcentral",
    epilog="Examples:\n\n\b\n"
    "  optouts emulate ringcentral --port 8102 > ringcentral.env & sleep 2; . ./ringcentral.env\n"
    "  optouts emulate ringcentral --rate-limit 1000/60s --fault-rate 0.1",
)
@port_option()
@click.option(
    "--rate-limit",
    default="50/60s",
    show_default=True,
    callback=_rate_limit,
    help="Light group budget: REQUESTS/WINDOW (the Auth group keeps 5/60s).",
)
@click.option(
    "--token-lifetime",
    type=float,
    default=3600.0,
    show_default=True,
    help="Access token lifetime, seconds.",
)
@latency_option()
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of API requests answered 5xx.",
)
@click.option(
    "--drop-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of API requests dropped.",
)
def emulate_ringcentral(
    port: int,
    rate_limit: RateLimit,
    token_lifetime: float,
    latency: float,
    fault_rate: float,
    drop_rate: float,
) -> None:
    """Serve a RingCentral emulator (OAuth, v1 a2p-sms opt-outs, v2 SMS consents)."""
    from optouts.emulators import serve

    from ._emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_JWT, Emulator

    app = Emulator(
        rate_limit=rate_limit,
        token_lifetime=token_lifetime,
        latency=latency,
        fault_rate=fault_rate,
        drop_rate=drop_rate,
    )

    def ready(url: str) -> None:
        # Lines a shell can source: its own variables only, so that another emulator's
        # lines, sourced too, keep theirs, and each command picks one with -p.
        budget = f"{rate_limit.limit}/{rate_limit.window:g}s"
        click.echo(f"# RingCentral emulator on {url} (Light group: {budget}; Ctrl+C stops it).")
        click.echo("# Source these lines to point optouts at it, then pick it per command:")
        click.echo("#   optouts -p ringcentral list   (or: export OPTOUTS_PROVIDER=ringcentral)")
        click.echo(f"export RC_SERVER_URL={url}")
        click.echo(f"export RC_CLIENT_ID={DEFAULT_CLIENT_ID}")
        click.echo(f"export RC_CLIENT_SECRET={DEFAULT_CLIENT_SECRET}")
        click.echo(f"export RC_JWT={DEFAULT_JWT}")
        sys.stdout.flush()  # read through a pipe or a file while the server runs

    serve(app, port=port, on_ready=ready)


@optouts.hookimpl
def register_emulators(emulate: click.Group) -> None:
    emulate.add_command(emulate_ringcentral)
