"""The global options, accepted before the subcommand and after it alike.

``optouts --format csv check …`` and ``optouts check --format csv …`` mean the same: the
group and each subcommand carry their own copy of the global options, and every copy hands
its value to the run's one ``Options`` (given after the subcommand, a value wins). A
subcommand's help shows only the global options it uses; the others are still accepted, so
that giving one is refused with a line saying why (``Options.check_used``) rather than
"no such option".
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import click
import phonenumbers

from ._cli_options import FORMATS, USES, Options
from ._config import CORE_SETTINGS, env_name
from ._errors import quote_value

__all__ = ["attach", "check_plugin_selection", "give_group", "parse_settings"]

_Callback = Callable[[click.Context, click.Parameter, Any], Any]

_CORE_OPTIONS = {
    "provider": "--provider/-p",
    "config": "--config/-c",
    "default_region": "--default-region",
    "max_concurrency": "--max-concurrency",
}
"""Core settings that have an option of their own."""
_NOT_SETTINGS = {
    "retry": "the retry_* settings ($OPTOUTS_RETRY_ATTEMPTS, … or optouts.toml)",
    "http_client": "Client(http_client=...) in Python",
}


def _core_name_error(name: str) -> str | None:
    """Why NAME cannot be given with --set, and what to use instead; None for other names."""
    if name in _CORE_OPTIONS:
        return f"a core setting, not a provider's: use {_CORE_OPTIONS[name]}"
    if name in _NOT_SETTINGS:
        return f"not a provider setting: use {_NOT_SETTINGS[name]}"
    if any(setting.name == name for setting in CORE_SETTINGS):
        return (
            f"a core setting, not a provider's: set {env_name(None, name)} "
            f"or {name} in optouts.toml"
        )
    return None


def parse_settings(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> dict[str, str]:
    """``NAME=VALUE`` pairs of provider settings; a core setting's name is refused, naming
    the option or variable that sets it."""
    settings: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {quote_value(item)}", ctx, param)
        why = _core_name_error(name)
        if why:  # a traceback once, from Client(**settings)
            raise click.UsageError(f"--set {quote_value(name)}: {why}", ctx)
        settings[name] = value
    return settings


def _parse_region(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    region = value.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise click.BadParameter(
            f"{quote_value(value)} is not a country code (ISO 3166 alpha-2, e.g. US, GB)",
            ctx,
            param,
        )
    return region


def _store(name: str, check: _Callback | None = None) -> _Callback:
    """A callback that hands the option's value, once checked, to the run's ``Options``."""

    def store(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        value = check(ctx, param, value) if check else value
        if value is None or value == {} or value == ():
            return
        ctx.ensure_object(Options).given(name, value)

    return store


def _options() -> list[click.Option]:
    """A fresh copy of the global options (click keeps state on each)."""
    return [
        click.Option(
            ["--provider", "-p"],
            expose_value=False,
            callback=_store("provider"),
            help="Provider to use (default: config, $OPTOUTS_PROVIDER, local).",
        ),
        click.Option(
            ["--config", "-c"],
            type=click.Path(dir_okay=False),
            expose_value=False,
            callback=_store("config"),
            help="Path of optouts.toml.",
        ),
        click.Option(
            ["--format", "output"],
            type=click.Choice(FORMATS),
            expose_value=False,
            callback=_store("output"),
            help="Output format (default: table).",
        ),
        click.Option(
            ["--set", "-s", "settings"],
            multiple=True,
            expose_value=False,
            callback=_store("settings", parse_settings),
            metavar="NAME=VALUE",
            help="A provider setting, e.g. -s database=optouts.db (repeatable).",
        ),
        click.Option(
            ["--default-region"],
            expose_value=False,
            callback=_store("default_region", _parse_region),
            metavar="CC",
            help="Country (ISO code) for numbers written without +code.",
        ),
        click.Option(
            ["--max-concurrency"],
            type=click.IntRange(min=1),
            expose_value=False,
            callback=_store("max_concurrency"),
            help="Batches in flight at once (default: the provider's own).",
        ),
    ]


def give_group(group: click.Group) -> None:
    """The group's own copy, for options written before the subcommand."""
    group.params[:0] = _options()


def attach(command: click.Command) -> None:
    """Give ``command`` the global options, showing in its help the ones it uses, and check
    before it runs that no option it would ignore was given."""
    uses = USES.get(command.name or "")
    for option in _options():
        option.hidden = uses is not None and not uses.shows(option.name or "")
        command.params.append(option)
    inner = command.callback
    if inner is None:
        return

    @functools.wraps(inner)
    def checked(*args: Any, **kwargs: Any) -> Any:
        click.get_current_context().ensure_object(Options).check_used(command.name or "")
        return inner(*args, **kwargs)

    command.callback = checked


def check_plugin_selection(environ: Mapping[str, str] | None = None) -> None:
    """``OPTOUTS_LOAD_PLUGINS`` naming a plugin that is not installed would load nothing
    for it, without a word: refused, listing what is installed."""
    environ = os.environ if environ is None else environ
    wanted = [name.strip() for name in environ.get("OPTOUTS_LOAD_PLUGINS", "").split(",")]
    installed = {
        entry_point.name: entry_point.dist.name if entry_point.dist else ""
        for entry_point in importlib.metadata.entry_points(group="optouts")
    }
    known = {*installed, *installed.values(), ""}
    unknown = [name for name in wanted if name not in known]
    if unknown:
        listed = ", ".join(f"{name} ({dist})" for name, dist in sorted(installed.items()))
        raise click.UsageError(
            f"OPTOUTS_LOAD_PLUGINS names {quote_value(unknown[0])}, which is no installed "
            f"plugin; installed: {listed or 'none'} (an empty value loads none)"
        )
