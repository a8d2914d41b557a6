"""Registers the ``aws`` provider and the ``optouts emulate aws`` command with optouts.

The command's options live here; the emulator, botocore's model and uvicorn load only when
it runs, so a client that finds the provider through this module never imports them.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TextIO, cast

import click

import optouts
from optouts.plugin import latency_option, port_option

from ._knobs import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_REGION,
    DEFAULT_SECRET_ACCESS_KEY,
    FAULTS,
    Fault,
)
from ._model import DEFAULT_LIST, PUBLISHED_RATES, Operation
from ._provider import AwsProvider
from ._settings import parse_rates


@optouts.hookimpl
def register_providers(register: Callable[[type[optouts.Provider]], None]) -> None:
    register(AwsProvider)


def _quotas(_: click.Context, __: click.Parameter, value: str) -> dict[Operation, float | None]:
    try:
        return parse_rates(value)
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


@click.command(
    "aws",
    epilog="Examples:\n\n\b\n"
    "  optouts emulate aws --port 8103 > aws.env & sleep 2; . ./aws.env\n"
    "  optouts emulate aws --latency 0.05 --quotas quotas --throttle-rate 0.05 --seed 1",
)
@port_option()
@click.option(
    "--region", default=DEFAULT_REGION, show_default=True, help="The Region signatures must name."
)
@latency_option()
@click.option(
    "--quotas",
    default="off",
    show_default=True,
    callback=_quotas,
    help="Throttle each operation over a rate: 'off', 'quotas' (AWS's published defaults: "
    + ", ".join(f"{op} {rate:g}/s" for op, rate in PUBLISHED_RATES.items())
    + "), a number, or Operation=N pairs.",
)
@click.option(
    "--throttle-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of requests answered ThrottlingException.",
)
@click.option(
    "--fault-rate",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help=f"Share of requests that meet a fault from --faults ({', '.join(FAULTS)}).",
)
@click.option(
    "--faults", default="error", show_default=True, help="Faults --fault-rate draws from."
)
@click.option("--seed", type=int, default=None, help="Make random faults repeat run after run.")
@click.option(
    "--lookup-not-found",
    is_flag=True,
    default=False,
    help="Answer a lookup naming a number the list does not hold with "
    "ResourceNotFoundException (opted-out-number) instead of leaving the number out.",
)
@click.option(
    "--create-list",
    "create_lists",
    multiple=True,
    metavar="NAME",
    help="An opt-out list to create besides Default (repeatable).",
)
@click.option(
    "--opted-out",
    "opted_out",
    type=click.File("r"),
    default=None,
    help="Start with these numbers (one a line) in the Default list, as if each texted STOP.",
)
@click.option(
    "--access-key-id",
    default=DEFAULT_ACCESS_KEY_ID,
    help="The key the emulator accepts (default: a fixed development key).",
)
@click.option(
    "--secret-access-key",
    default=DEFAULT_SECRET_ACCESS_KEY,
    help="Its secret, which signatures are verified with.",
)
def emulate_aws(
    port: int,
    region: str,
    latency: float,
    quotas: dict[Operation, float | None],
    throttle_rate: float,
    fault_rate: float,
    faults: str,
    seed: int | None,
    lookup_not_found: bool,
    create_lists: tuple[str, ...],
    opted_out: TextIO | None,
    access_key_id: str,
    secret_access_key: str,
) -> None:
    """Serve an emulator of AWS End User Messaging SMS opt-out lists on 127.0.0.1."""
    from optouts.emulators import serve

    from ._emulator import AwsEmulator

    chosen = [name.strip() for name in faults.split(",") if name.strip()]
    unknown = sorted(set(chosen) - set(FAULTS))
    if unknown:
        raise click.BadParameter(f"unknown {', '.join(unknown)}", param_hint="--faults")
    app = AwsEmulator(
        access_key_id=access_key_id,
        secret_access_key=secret_access_key,
        region=region,
        latency=latency,
        quotas=quotas,
        throttle_rate=throttle_rate,
        fault_rate=fault_rate,
        faults=cast("list[Fault]", chosen),
        seed=seed,
        lookup_not_found=lookup_not_found,
    )

    for name in create_lists:
        app.create_list(name)
    if opted_out is not None:
        app.load(DEFAULT_LIST, (line.strip() for line in opted_out if line.strip()))

    def ready(base_url: str) -> None:
        # Lines a shell can source: the standard AWS variables and the endpoint only, so
        # another emulator's lines, sourced too, keep theirs, and -p picks one per command.
        click.echo(f"# AWS End User Messaging SMS emulator on {base_url} (Ctrl+C stops it).")
        click.echo("# Source these lines to point optouts at it, then pick it per command:")
        click.echo("#   optouts -p aws check --from +18005550100 +12025550101")
        click.echo("# optouts paces each operation at AWS's default quota (1 lookup a second);")
        click.echo("# against the emulator, OPTOUTS_AWS_REQUESTS_PER_SECOND=off lifts that.")
        click.echo("unset AWS_SESSION_TOKEN  # a session token of your own would not be this key's")
        click.echo(f"export AWS_ACCESS_KEY_ID={access_key_id}")
        click.echo(f"export AWS_SECRET_ACCESS_KEY='{secret_access_key}'")
        click.echo(f"export AWS_REGION={region}")
        click.echo(f"export OPTOUTS_AWS_ENDPOINT_URL={base_url}")
        sys.stdout.flush()  # read through a pipe or a file while the server runs

    serve(app, port=port, on_ready=ready)


@optouts.hookimpl
def register_emulators(emulate: click.Group) -> None:
    emulate.add_command(emulate_aws)
