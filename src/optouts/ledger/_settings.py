"""The ledger's settings, declared once for ``Ledger.from_settings`` and ``Client("local")``."""

from __future__ import annotations

from pathlib import Path

from .._config import Setting
from .._errors import ConfigurationError
from .._paths import user_data_dir

__all__ = ["LEDGER_SETTINGS", "database_of"]


def _database_path(value: object) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("empty path")
    return text if text == ":memory:" or "://" in text else str(Path(text).expanduser())


LEDGER_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database",
        "path of the SQLite ledger file (default: ledger.db in the user data folder), "
        "or a postgresql:// URL",
        parse=_database_path,
        secret=True,  # a database URL may carry a password
    ),
    Setting("source", "source recorded for changes made through this client", default="api"),
)


def database_of(given: str | None) -> str:
    """The database a setting names: the path or URL given, else the default file."""
    if given is None:
        return str(user_data_dir() / "ledger.db")
    try:
        return _database_path(given)
    except ValueError:
        raise ConfigurationError(
            "the ledger's database is empty: give a file path or a postgresql:// URL "
            "(setting database, OPTOUTS_LOCAL_DATABASE)"
        ) from None
