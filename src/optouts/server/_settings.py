"""What ``optouts serve`` is configured with: API keys, targets, its instance name, and each
webhook's settings.

Each is found as every setting is: explicit argument > environment > the ``[serve]`` table
of optouts.toml. Webhook settings are whatever the installed formats declare
(``InboundParser.settings``), under ``[serve.<format>]`` or ``OPTOUTS_SERVE_<FORMAT>_<SETTING>``,
so a new vendor's endpoint needs no change here. An endpoint is served only when its format
can authenticate a delivery and every setting it requires is set: a missing secret leaves
the route unserved (404), never open. Secrets stay ``optouts.Secret`` from here on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

import attrs

from .._config import (
    CONFIG_FILENAME,
    ConfigFile,
    Secret,
    Setting,
    Settings,
    env_name,
    load_config_file,
)
from .._errors import ConfigurationError, clip, quote_value
from ..inbound import InboundParser, get_parser, parsers

__all__ = ["ServeSettings"]

_INSTANCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_API_KEY_LENGTH = 16
"""Characters an API key has at least: a shorter one can be guessed."""
_ENV_REFERENCE = "env:"
_TABLE = "[serve]"


def _names(value: Any) -> tuple[str, ...]:
    """A list in optouts.toml, or comma-separated text in the environment."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, str) for i in items):
        raise ValueError("expected a list of strings, or comma-separated strings")
    return tuple(item.strip() for item in items if item.strip())


def _api_keys(value: Any) -> tuple[Secret, ...]:
    if isinstance(value, (list, tuple)):
        value = [item.reveal() if isinstance(item, Secret) else item for item in value]
    keys = _names(value)
    if any(len(key) < _API_KEY_LENGTH for key in keys):
        raise ValueError(f"an API key has at least {_API_KEY_LENGTH} characters")
    return tuple(Secret(key) for key in keys)


def _instance(value: Any) -> str:
    if not isinstance(value, str) or not _INSTANCE.fullmatch(value.strip()):
        raise ValueError("expected a name of letters, digits, '.', '_' and '-', at most 64")
    return value.strip()


_CORE = (
    Setting(
        "api_keys",
        "bearer tokens the check and opt-out API accepts; none: the API is not served",
        secret=True,
        parse=_api_keys,
    ),
    Setting("targets", "vendors the outbox carries every opt-out to", parse=_names),
    Setting(
        "instance",
        "this service's name in the ledger's leases: restarted under the same name on the "
        "same host, it takes its own leases back at once",
        default="serve",
        parse=_instance,
    ),
)


@attrs.frozen
class ServeSettings:
    """How the service is configured; build it with ``ServeSettings.from_settings()``.

    ``instance`` names this service in the ledger's leases, with the host (``_identity``):
    restarted under the same name, it takes its own leases back at once. ``webhooks`` holds
    the settings of each endpoint that is served, by format name (a ``Settings`` mapping,
    secrets masked in its repr); ``not_served`` says, for each other installed format, what
    it would need.
    """

    api_keys: tuple[Secret, ...] = ()
    targets: tuple[str, ...] = ()
    instance: str = "serve"
    webhooks: Mapping[str, Settings] = attrs.field(factory=dict)
    not_served: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def from_settings(
        cls,
        *,
        config: str | os.PathLike[str] | None = None,
        environ: Mapping[str, str] | None = None,
        api_keys: Any = None,
        targets: Any = None,
        instance: Any = None,
        webhooks: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> ServeSettings:
        """Resolve every setting; ``webhooks`` gives values per format (``{"azure": {"token":
        ...}}``) that win over the environment and the file, as ``api_keys`` and
        ``targets`` do. Anything unknown or malformed is a ConfigurationError naming it."""
        environ = os.environ if environ is None else environ
        found = load_config_file(config, environ)
        table = _serve_table(found)
        explicit = {"api_keys": api_keys, "targets": targets, "instance": instance}
        core = {
            setting.name: _resolve(None, setting, explicit, table, found, environ)
            for setting in _CORE
        }
        installed = parsers()
        given = dict(webhooks or {})
        tables = [key for key, value in table.items() if isinstance(value, dict)]
        for origin, names in (("the webhooks argument", given), (_TABLE, tables)):
            for name in names:
                if name not in installed:
                    try:
                        get_parser(name)  # its error lists the installed formats
                    except ConfigurationError as exc:
                        raise ConfigurationError(f"{origin}: {exc}") from None
        served: dict[str, Settings] = {}
        not_served: dict[str, str] = {}
        for name, parser in installed.items():
            values = _webhook_settings(parser, given.get(name, {}), table, found, environ)
            why = _why_not_served(parser, values)
            if why is None:
                served[name] = Settings(name, values)
            else:
                not_served[name] = why
        return cls(
            api_keys=core["api_keys"] or (),
            targets=core["targets"] or (),
            instance=core["instance"],
            webhooks=served,
            not_served=not_served,
        )


def _serve_table(found: ConfigFile) -> Mapping[str, Any]:
    table = found.serve
    known = {setting.name for setting in _CORE}
    unknown = sorted(key for key, value in table.items() if key not in known)
    unknown = [key for key in unknown if not isinstance(table[key], dict)]
    if unknown:
        raise ConfigurationError(
            f"{_TABLE} in {found.path or CONFIG_FILENAME}: unknown setting "
            f"{quote_value(unknown[0])}; known: {', '.join(sorted(known))} and a "
            "[serve.<format>] table per webhook format"
        )
    return table


def _webhook_settings(
    parser: InboundParser,
    explicit: Mapping[str, Any],
    serve: Mapping[str, Any],
    found: ConfigFile,
    environ: Mapping[str, str],
) -> dict[str, Any]:
    table = serve.get(parser.name, {})
    known = {setting.name for setting in parser.settings}
    place = f"[serve.{parser.name}] in {found.path or CONFIG_FILENAME}"
    for origin, names in (("the webhooks argument", explicit), (place, table)):
        unknown = sorted(set(names) - known)
        if unknown:
            raise ConfigurationError(
                f"{origin}: unknown setting {quote_value(unknown[0])} of webhook format "
                f"{parser.name!r}; its settings are: {', '.join(sorted(known)) or 'none'}"
            )
    return {
        setting.name: _resolve(parser.name, setting, explicit, table, found, environ)
        for setting in parser.settings
    }


def _why_not_served(parser: InboundParser, values: Mapping[str, Any]) -> str | None:
    if parser.authenticate is None:
        return "its format cannot authenticate a delivery"
    missing = [s.name for s in parser.settings if s.required and values.get(s.name) is None]
    if missing:
        variables = ", ".join(env_name(f"serve_{parser.name}", name) for name in missing)
        return (
            f"set {', '.join(missing)} under [serve.{parser.name}] in {CONFIG_FILENAME} "
            f"or as {variables}"
        )
    return None


def _resolve(
    name: str | None,
    setting: Setting,
    explicit: Mapping[str, Any],
    table: Mapping[str, Any],
    found: ConfigFile,
    environ: Mapping[str, str],
) -> Any:
    """One setting: argument > ``OPTOUTS_SERVE_[<FORMAT>_]<SETTING>`` > the file > default."""
    variable = env_name(f"serve_{name}" if name else "serve", setting.name)
    place = f"[serve.{name}]" if name else _TABLE
    what = f"setting {setting.name!r}" + (f" of webhook format {name!r}" if name else "")
    if explicit.get(setting.name) is not None:
        raw, origin = explicit[setting.name], "the argument"
    elif environ.get(variable):
        raw, origin = environ[variable], variable
    elif table.get(setting.name) is not None:
        raw = table[setting.name]
        origin = f"{place} in {found.path or CONFIG_FILENAME}"
        if isinstance(raw, str) and raw.startswith(_ENV_REFERENCE):
            reference = raw[len(_ENV_REFERENCE) :]
            if not environ.get(reference):
                raise ConfigurationError(
                    f"{what} in {origin} reads variable {clip(reference)}, which is not set"
                )
            raw = environ[reference]
    elif setting.default is not None:
        raw, origin = setting.default, "default"
    else:
        return None
    if isinstance(raw, Secret):
        raw = raw.reveal()
    try:
        value = setting.parse(raw) if setting.parse else raw
        if setting.secret and not setting.parse and (not isinstance(value, str) or not value):
            raise ValueError("expected a non-empty string")
    except (TypeError, ValueError) as exc:
        shown = "the given value" if setting.secret else quote_value(raw)
        # A plugin's parser might quote a secret in its reason; the service's own never do.
        reason = "" if setting.secret and name else f": {clip(str(exc), 200)}"
        raise ConfigurationError(
            f"{what} from {origin} is malformed ({shown}){reason}; "
            f"also settable as {variable} or {setting.name} under {place} in {CONFIG_FILENAME}"
        ) from None
    return Secret(value) if setting.secret and isinstance(value, str) else value
