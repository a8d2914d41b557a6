"""Where settings come from: explicit arguments > environment > optouts.toml > defaults.

Each provider declares its settings; this module finds a value for each, converts it, and
masks secrets wherever a value could be printed. Every error names the setting, the
environment variable and the file table that would supply it.
"""

from __future__ import annotations

import datetime
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs
import phonenumbers

from ._errors import ConfigurationError, clip, quote_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "CONFIG_FILENAME",
    "CORE_SETTINGS",
    "ConfigFile",
    "Secret",
    "Setting",
    "Settings",
    "core_setting",
    "env_name",
    "load_config_file",
    "resolve_settings",
]

CONFIG_FILENAME = "optouts.toml"
_ENV_PREFIX = "OPTOUTS_"
_ENV_REFERENCE = "env:"
_REASON = 200
"""Characters of a parser's reason an error shows."""


@attrs.frozen(repr=False)
class Secret:
    """A value that must never be printed: reprs, logs and errors show ``'********'``."""

    _value: str

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__


@attrs.frozen
class Setting:
    """One setting a provider accepts."""

    name: str
    help: str
    default: Any = None
    required: bool = False
    secret: bool = False
    parse: Callable[[Any], Any] | None = None
    env_aliases: tuple[str, ...] = ()
    """Other variables that also supply it, such as a vendor's customary one."""
    path: bool = False
    """A file path: written relative in optouts.toml, it is taken from that file's folder,
    so a cron job run elsewhere finds the same file (from an argument or the environment,
    from the working directory). Text with ``:`` or ``=`` (a URL) is left as written."""


def env_name(provider: str | None, setting: str) -> str:
    """``OPTOUTS_<PROVIDER>_<SETTING>``, or ``OPTOUTS_<SETTING>`` for core settings."""
    parts = [_ENV_PREFIX.rstrip("_"), *([provider] if provider else []), setting]
    return "_".join(part.upper().replace("-", "_") for part in parts)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("expected a non-empty string")
    return value.strip()


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError("expected a whole number")
    try:
        number = int(value)
    except ValueError:  # its message repeats the value, which the error quotes already
        raise ValueError("expected a whole number") from None
    if number < 1:
        raise ValueError("expected a whole number >= 1")
    return number


def _seconds(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError("expected a number of seconds")
    try:
        number = float(value)
    except ValueError:  # its message repeats the value whole
        raise ValueError("expected a number of seconds") from None
    if not number >= 0:
        raise ValueError("expected a number of seconds >= 0")
    return number


def _region(value: Any) -> str:
    """An ISO country phonenumbers knows: ``ZZ`` would make every national number fail."""
    region = _text(value).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError("not a country code phonenumbers knows (ISO 3166 alpha-2, e.g. US, GB)")
    return region


def _words(value: Any) -> tuple[str, ...]:
    """A list in optouts.toml, or comma-separated text in the environment."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not all(isinstance(w, str) for w in items):
        raise ValueError("expected a list of words, or comma-separated words")
    return tuple(word.strip() for word in items if word.strip())


CORE_SETTINGS = (
    Setting("provider", "which provider to use", default="local", parse=_text),
    Setting(
        "default_region",
        "ISO country assumed for numbers written without +country code",
        parse=_region,
    ),
    Setting(
        "max_concurrency",
        "batches in flight at once (default: the provider's own)",
        parse=_whole,
    ),
    Setting("retry_attempts", "tries per batch, the first included (default 4)", parse=_whole),
    Setting("retry_backoff", "base of the exponential backoff in seconds (0.5)", parse=_seconds),
    Setting("retry_cap", "longest single backoff pause in seconds (30)", parse=_seconds),
    Setting(
        "retry_deadline",
        "no retry starts later than this many seconds into a batch (300)",
        parse=_seconds,
    ),
    Setting("keywords_opt_out", "extra opt-out keywords for inbound messages", parse=_words),
    Setting("keywords_opt_in", "extra opt-in keywords for inbound messages", parse=_words),
    Setting("keywords_help", "extra help keywords for inbound messages", parse=_words),
    Setting("keywords_drop", "default keywords not to honour (e.g. YES)", parse=_words),
)


@attrs.frozen
class ConfigFile:
    """The parsed optouts.toml: core settings at top level, ``[providers.<name>]`` tables,
    and the ``[serve]`` table of ``optouts serve`` (read by ``optouts.server``)."""

    path: Path | None = None
    core: Mapping[str, Any] = attrs.field(factory=dict)
    providers: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    serve: Mapping[str, Any] = attrs.field(factory=dict)

    def where(self, provider: str | None) -> str:
        table = f"[providers.{provider}] in " if provider else ""
        return f"{table}{self.path or CONFIG_FILENAME}"


def load_config_file(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> ConfigFile:
    """Read ``path``, else ``$OPTOUTS_CONFIG``, else ./optouts.toml if present."""
    environ = os.environ if environ is None else environ
    explicit = path if path is not None else environ.get("OPTOUTS_CONFIG") or None
    candidate = Path(explicit) if explicit is not None else Path.cwd() / CONFIG_FILENAME
    if explicit is None and not candidate.is_file():
        return ConfigFile()
    data = _parse_file(candidate)
    providers = data.pop("providers", {})
    if not isinstance(providers, dict) or not all(isinstance(v, dict) for v in providers.values()):
        raise ConfigurationError(f"{candidate}: [providers] must hold one table per provider")
    serve = data.pop("serve", {})
    if not isinstance(serve, dict):
        raise ConfigurationError(f"{candidate}: serve must be a table ([serve])")
    known = {setting.name for setting in CORE_SETTINGS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigurationError(
            f"{candidate}: unknown top-level setting {quote_value(unknown[0])}; "
            f"known: {', '.join(sorted(known))}, [providers.<name>] tables and [serve]"
        )
    return ConfigFile(path=candidate, core=data, providers=providers, serve=serve)


def _parse_file(candidate: Path) -> dict[str, Any]:
    """The file's TOML; every way it can fail is an error naming the file."""
    try:
        raw = candidate.read_bytes()
    except FileNotFoundError:
        raise ConfigurationError(f"config file {candidate} does not exist") from None
    except OSError as exc:
        raise ConfigurationError(
            f"config file {candidate} cannot be read: {exc.strerror or exc}"
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise ConfigurationError(
            f"config file {candidate} is not UTF-8 (line {line}: byte 0x{raw[exc.start]:02x})"
        ) from None
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {candidate} is not valid TOML: {exc}") from None
    return data


def core_setting(
    name: str,
    explicit: Any,
    config: ConfigFile,
    environ: Mapping[str, str] | None = None,
) -> Any:
    """A setting that is not any one provider's, such as which provider to use."""
    environ = os.environ if environ is None else environ
    setting = next(setting for setting in CORE_SETTINGS if setting.name == name)
    variable = env_name(None, name)
    if explicit is not None:
        raw, origin = explicit, f"argument {name}"
    elif environ.get(variable):
        raw, origin = environ[variable], variable
    elif config.core.get(name) is not None:
        raw, origin = config.core[name], f"{name} in {config.where(None)}"
    else:
        return setting.default
    try:
        return setting.parse(raw) if setting.parse else raw
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"setting {name!r} from {origin} is malformed ({quote_value(raw)}): "
            f"{_reason(exc, raw)}; "
            f"also settable as {variable} or {name} in {CONFIG_FILENAME}"
        ) from None


@attrs.frozen(repr=False)
class Settings(Mapping[str, Any]):
    """Resolved settings of one provider; secrets come wrapped in Secret."""

    provider: str
    _values: Mapping[str, Any]

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        shown = ", ".join(f"{key}={value!r}" for key, value in self._values.items())
        return f"Settings({self.provider!r}, {shown})"


def resolve_settings(
    provider: str,
    declared: tuple[Setting, ...],
    explicit: Mapping[str, Any],
    config: ConfigFile,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Find, convert and check a value for every declared setting of ``provider``."""
    environ = os.environ if environ is None else environ
    known = {setting.name for setting in declared}
    unknown = sorted(set(explicit) - known)
    if unknown:
        raise ConfigurationError(
            f"provider {provider!r} has no setting {quote_value(unknown[0])}; "
            f"its settings are: {', '.join(sorted(known)) or 'none'}"
        )
    table = config.providers.get(provider, {})
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigurationError(
            f"{config.where(provider)}: unknown setting {quote_value(unknown[0])}; "
            f"its settings are: {', '.join(sorted(known)) or 'none'}"
        )
    values = {
        setting.name: _resolve_one(provider, setting, explicit, table, config, environ)
        for setting in declared
    }
    return Settings(provider, values)


def _resolve_one(
    provider: str,
    setting: Setting,
    explicit: Mapping[str, Any],
    table: Mapping[str, Any],
    config: ConfigFile,
    environ: Mapping[str, str],
) -> Any:
    variable = env_name(provider, setting.name)
    origin: str
    if explicit.get(setting.name) is not None:
        raw, origin = explicit[setting.name], f"argument {setting.name}"
    elif environ.get(variable):
        raw, origin = environ[variable], variable
    elif alias := next((name for name in setting.env_aliases if environ.get(name)), None):
        raw, origin = environ[alias], alias
    elif table.get(setting.name) is not None:
        written = table[setting.name]
        origin = f"{setting.name} in {config.where(provider)}"
        if isinstance(written, str) and written.startswith(_ENV_REFERENCE):
            raw = _dereference(written, setting, provider, config, environ)
        else:
            return _from_file(provider, setting, written, config, origin)
    elif setting.default is not None:
        raw, origin = setting.default, "default"
    elif setting.required:
        variables = " or ".join((variable, *setting.env_aliases))
        raise ConfigurationError(
            f"missing setting {setting.name!r} for provider {provider!r} ({setting.help}): "
            f"pass {setting.name}=..., set {variables}, "
            f"or add {setting.name} under [providers.{provider}] in {CONFIG_FILENAME}"
        )
    else:
        return None
    return _parsed(provider, setting, raw, origin)


def _parsed(provider: str, setting: Setting, raw: Any, origin: str) -> Any:
    """``raw`` converted by the setting's parser; a refusal names the setting and its variable."""
    if isinstance(raw, Secret):
        raw = raw.reveal()
    try:
        value = setting.parse(raw) if setting.parse else raw
    except (TypeError, ValueError) as exc:
        shown = "the given value" if setting.secret else quote_value(raw)
        reason = "" if setting.secret else f": {_reason(exc, raw)}"
        raise ConfigurationError(
            f"setting {setting.name!r} of provider {provider!r} from {origin} "
            f"is malformed ({shown}){reason}; also settable as {env_name(provider, setting.name)}"
        ) from None
    return Secret(value) if setting.secret and isinstance(value, str) else value


def _from_file(
    provider: str, setting: Setting, written: Any, config: ConfigFile, origin: str
) -> Any:
    """A value as optouts.toml typed it. Text is what every setting takes (a path one beside
    the file); any other TOML type only when the parser makes more of it than text, so
    ``database = 5`` or ``= true`` is refused, not turned into a file named ``5`` or ``True``,
    while a table, a list or a number a setting understands passes."""
    if isinstance(written, str):
        return _parsed(
            provider, setting, _beside(written, config) if setting.path else written, origin
        )
    if setting.parse is None:
        if setting.default is not None and type(written) is type(setting.default):
            return written  # a plugin's unparsed number or flag, typed like its default
        value: Any = str(written)
    else:
        value = _parsed(provider, setting, written, origin)
    if isinstance(value, (str, os.PathLike, Secret)):
        shown = "" if setting.secret else f" ({quote_value(written)})"
        raise ConfigurationError(
            f"setting {setting.name!r} of provider {provider!r} from {origin} is "
            f"{_toml_type(written)}{shown}, not text: write it as a quoted string; "
            f"also settable as {env_name(provider, setting.name)}"
        )
    return value


def _toml_type(value: Any) -> str:
    """What TOML calls the type of a value tomllib returned."""
    kinds = (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a float"),
        (list, "an array"),
        (dict, "a table"),
        (datetime.datetime, "a date-time"),
        (datetime.date, "a date"),
        (datetime.time, "a time"),
    )
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


def _beside(text: str, config: ConfigFile) -> str:
    """A relative path written in ``config``, as a path from that file's folder.

    Only a plain file name is moved: text with ``:`` or ``=`` (a URL, SQLite's ``:memory:``
    or ``file:`` names, a libpq ``key=value`` string) is no file name the setting's parser
    would take as one, and ``~`` is the user's home wherever it is written."""
    stripped = text.strip()
    plain = stripped and not stripped.startswith("~") and not {":", "="} & set(stripped)
    if config.path is None or not plain or Path(stripped).is_absolute():
        return text
    return os.path.join(os.path.abspath(config.path.parent), stripped)


def _reason(exc: Exception, raw: Any) -> str:
    """Why a value was refused. A parser that quotes the value has it cut short like the
    message's own quote, and the whole reason is bounded too."""
    text = str(exc)
    if isinstance(raw, str):
        text = text.replace(repr(raw), quote_value(raw))
    return clip(text, _REASON)


def _dereference(
    raw: Any, setting: Setting, provider: str, config: ConfigFile, environ: Mapping[str, str]
) -> Any:
    """Values written as "env:NAME" in the file are read from the environment."""
    if isinstance(raw, str) and raw.startswith(_ENV_REFERENCE):
        name = raw[len(_ENV_REFERENCE) :]
        if not environ.get(name):
            raise ConfigurationError(
                f"setting {setting.name!r} in {config.where(provider)} reads variable "
                f"{clip(name)}, which is not set"
            )
        return environ[name]
    return raw
