"""What every command is given: the global options, and the provider or ledger they name.

A write to a ledger that does not exist yet creates it and says so on stderr, once, so a
mistyped path does not pass unseen; reads never create one.
"""

from __future__ import annotations

from typing import Any

import attrs
import click

from ._client import Client
from ._config import core_setting, load_config_file
from ._errors import printable
from ._sync import LEDGER
from .ledger import Ledger

__all__ = ["Options"]


@attrs.define
class Options:
    provider: str | None
    config: str | None
    output: str
    settings: dict[str, Any]
    default_region: str | None
    max_concurrency: int | None

    def uses_ledger(self) -> bool:
        """Whether the commands work on the ledger (provider ``local``) rather than a vendor."""
        chosen = core_setting("provider", self.provider, load_config_file(self.config))
        return bool(chosen == LEDGER)

    def ledger(self, *, chosen: bool | None = None) -> Ledger:
        """The ledger, whichever provider the other commands are configured for (``chosen``:
        whether it is the configured provider, when the caller knows already)."""
        chosen = self.uses_ledger() if chosen is None else chosen
        ledger = Ledger.from_settings(config=self.config, **(self.settings if chosen else {}))
        ledger.on_create = _announce
        return ledger

    def client(self) -> Client:
        """The configured provider's client; over the ledger, one that closes it after."""
        if self.uses_ledger():
            return self.ledger(chosen=True).client(
                config=self.config, default_region=self.default_region, closes_ledger=True
            )
        return Client(
            self.provider,
            config=self.config,
            default_region=self.default_region,
            max_concurrency=self.max_concurrency,
            **self.settings,
        )


def _announce(where: str) -> None:
    click.echo(f"optouts: created a new ledger at {printable(where)}", err=True)
