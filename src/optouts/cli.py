"""The ``optouts`` command line."""

from __future__ import annotations

import click

from ._plugins import get_plugin_manager


@click.group()
def cli() -> None:
    """Manage SMS opt-out lists across vendors."""


@cli.group()
def emulate() -> None:
    """Serve a vendor emulator on 127.0.0.1 for tests and demos."""


get_plugin_manager().hook.register_emulators(emulate=emulate)


def main() -> None:
    cli()
