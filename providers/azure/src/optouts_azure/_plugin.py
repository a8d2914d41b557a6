"""Registers the ``azure`` provider, the ``azure`` webhook format (Event Grid SMS) and the
``optouts emulate azure`` command with optouts.

The command's options live here; the emulator and uvicorn load only when it runs, so a client
that finds the provider through this module never imports them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import cast

import click

import optouts
from optouts.inbound import InboundParser
from optouts.plugin import latency_option, port_option

from ._inbound import FORMAT
from ._knobs import DEFAULT_ACCESS_KEY, FAULTS, RANDOM_FAULTS, Fault
from ._provider import AzureProvider


class _QuietDrops(logging.Filter):
    """Drops the server's traceback for connections the emulator closes on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        from ._emulator import DroppedConnection

        return not (record.exc_info and isinstance(record.exc_info[1], DroppedConnection))


@optouts.hookimpl
def register_providers(register: Callable[[type[optouts.Provider]], None]) -> None:
    register(AzureProvider)


@optouts.hookimpl
def register_inbound_parsers(register: Callable[[InboundParser], None]) -> None:
    register(FORMAT)


@click.command(
    "azure",
    epilog="Examples:\n\n\b\n"
    "  optouts emulate azure --port 8101 > azure.env & sleep 2; . ./azure.env\n"
    "  optouts emulate azure --latency 0.05 --fault-rate 0.1 --seed 1",
)
@port_option()
@latency_option()
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of requests that meet a fault: 5xx, per-recipient 500s or a dropped connection.",
)
@click.option(
    "--throttle-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of requests answered 429.",
)
@click.option(
    "--item-fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of recipients answered 500 on their own inside otherwise good answers.",
)
@click.option(
    "--faults",
    default=",".join(RANDOM_FAULTS),
    show_default=True,
    help=f"Which faults --fault-rate draws from, comma-separated: {', '.join(FAULTS)}.",
)
@click.option(
    "--retry-after",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Retry-After seconds sent with 429s.",
)
@click.option("--seed", type=int, default=None, help="Make faults repeat run after run.")
@click.option(
    "--access-key",
    default=DEFAULT_ACCESS_KEY,
    help="Base64 key the emulator verifies signatures with (default: a fixed development key).",
)
def emulate_azure(
    port: int,
    latency: float,
    fault_rate: float,
    throttle_rate: float,
    item_fault_rate: float,
    faults: str,
    retry_after: float,
    seed: int | None,
    access_key: str,
) -> None:
    """Serve an emulator of Azure Communication Services SMS opt-outs on 127.0.0.1."""
    from optouts.emulators import serve

    from ._emulator import AzureEmulator

    chosen = [name.strip() for name in faults.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(FAULTS))
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}", param_hint="--faults")
    try:
        app = AzureEmulator(
            access_key=access_key,
            latency=latency,
            fault_rate=fault_rate,
            faults=cast("list[Fault]", chosen),
            throttle_rate=throttle_rate,
            item_fault_rate=item_fault_rate,
            retry_after=retry_after,
            seed=seed,
        )
    except ValueError:
        raise click.BadParameter("not valid base64", param_hint="--access-key") from None

    def ready(base_url: str) -> None:
        # Lines a shell can source: its own variable only, so that another emulator's
        # lines, sourced too, keep theirs, and each command picks one with -p.
        click.echo(f"# Azure opt-outs emulator listening on {base_url} (Ctrl+C stops it).")
        click.echo("# Source these lines to point optouts at it, then pick it per command:")
        click.echo("#   optouts -p azure check …   (or: export OPTOUTS_PROVIDER=azure)")
        click.echo(f"export OPTOUTS_AZURE_CONNECTION_STRING='{app.connection_string(base_url)}'")
        sys.stdout.flush()  # scripts read these lines through a pipe while the server runs

    logging.getLogger("uvicorn.error").addFilter(_QuietDrops())
    serve(app, port=port, on_ready=ready)


@optouts.hookimpl
def register_emulators(emulate: click.Group) -> None:
    emulate.add_command(emulate_azure)
