"""What every command is given: the global options, and the provider or ledger they name.

A write to a ledger that does not exist yet creates it and says so on stderr, once, so a
mistyped path does not pass unseen; reads never create one.

``USES`` says which global options each command acts on. One it would ignore is refused
with a line saying why (exit code 2): an option that is silently ignored reads as one that
worked.
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

__all__ = ["FORMATS", "USES", "Options", "Uses"]

FORMATS = ("table", "json", "csv")


@attrs.frozen
class Uses:
    """The global options a command acts on."""

    formats: tuple[str, ...] = FORMATS
    provider: str = "any"
    """``any`` provider, only the ``ledger`` (``local``), or ``none`` at all."""
    region: bool = True
    concurrency: bool = True
    settings: bool = True
    instead: str = ""
    """What to do instead of a --format or --provider the command does not take."""

    def shows(self, option: str) -> bool:
        """Whether the command's help lists the global option named ``option``."""
        return {
            "provider": self.provider == "any",
            "output": len(self.formats) > 1,
            "settings": self.settings,
            "default_region": self.region,
            "max_concurrency": self.concurrency,
        }.get(option, True)


USES = {
    "list": Uses(region=False, concurrency=False),
    "providers": Uses(provider="none", region=False, concurrency=False, settings=False),
    "sync": Uses(
        provider="ledger",
        region=False,
        concurrency=False,
        instead="name vendors with --source and --target",
    ),
    "import": Uses(formats=("table", "json")),
    "export": Uses(
        formats=("csv",),
        region=False,
        concurrency=False,
        instead="for JSON or a table: optouts list --status all --format json",
    ),
    "audit": Uses(formats=("table", "json"), provider="ledger", concurrency=False),
    "serve": Uses(
        formats=(),
        provider="ledger",
        region=False,
        concurrency=False,
        instead="name vendors with --target",
    ),
    "logout": Uses(formats=(), region=False, concurrency=False),
    "emulate": Uses(formats=(), provider="none", region=False, concurrency=False, settings=False),
}


@attrs.define
class Options:
    """The global options of one run; ``None`` (or empty) when not given."""

    provider: str | None = None
    config: str | None = None
    output: str | None = None
    settings: dict[str, Any] = attrs.Factory(dict)
    default_region: str | None = None
    max_concurrency: int | None = None

    @property
    def format(self) -> str:
        """The output format: ``--format``, else a table."""
        return self.output or "table"

    def given(self, name: str, value: Any) -> None:
        """An option's value, from before the subcommand or after it (the later wins)."""
        if name == "settings":
            self.settings = {**self.settings, **value}
        else:
            setattr(self, name, value)

    def check_used(self, command: str) -> None:
        """Refuse a global option that ``command`` would ignore."""
        uses = USES.get(command, Uses())
        instead = f" ({uses.instead})" if uses.instead else ""
        if self.output is not None and self.output not in uses.formats:
            does = f"prints {' or '.join(uses.formats)}" if uses.formats else "prints no results"
            _refuse(f"optouts {command} {does}; --format {self.output} does not apply{instead}")
        if self.provider is not None and (
            uses.provider == "none" or (uses.provider == "ledger" and self.provider != LEDGER)
        ):
            works = "works on the ledger" if uses.provider == "ledger" else "takes no provider"
            _refuse(
                f"optouts {command} {works}; --provider {self.provider} does not apply{instead}"
            )
        if self.default_region is not None and not uses.region:
            _refuse(
                f"optouts {command} reads no numbers written without +country code; "
                "--default-region does not apply"
            )
        if self.max_concurrency is not None and not uses.concurrency:
            _refuse(f"optouts {command} sends no batches; --max-concurrency does not apply")
        if self.settings and not uses.settings:
            _refuse(f"optouts {command} opens no provider; --set does not apply")

    def uses_ledger(self) -> bool:
        """Whether the commands work on the ledger (provider ``local``) rather than a vendor."""
        chosen = core_setting("provider", self.provider, load_config_file(self.config))
        return bool(chosen == LEDGER)

    def ledger(self, *, settings: bool = True) -> Ledger:
        """The ledger, with ``--set`` settings (commands that work on the ledger whatever
        provider is configured give them to it; ``settings=False`` when they name another
        provider's)."""
        ledger = Ledger.from_settings(config=self.config, **(self.settings if settings else {}))
        ledger.on_create = _announce
        return ledger

    def client(self) -> Client:
        """The configured provider's client; over the ledger, one that closes it after."""
        if self.uses_ledger():
            return self.ledger().client(
                config=self.config, default_region=self.default_region, closes_ledger=True
            )
        return Client(
            self.provider,
            config=self.config,
            default_region=self.default_region,
            max_concurrency=self.max_concurrency,
            **self.settings,
        )

    def region(self) -> str | None:
        """The default region: ``--default-region``, else the environment or optouts.toml."""
        found = core_setting("default_region", self.default_region, load_config_file(self.config))
        return found if isinstance(found, str) else None


def _refuse(message: str) -> None:
    raise click.UsageError(message)


def _announce(where: str) -> None:
    click.echo(f"optouts: created a new ledger at {printable(where)}", err=True)
