"""The ledger's settings, declared once for ``Ledger.from_settings`` and ``Client("local")``."""

from __future__ import annotations

from pathlib import Path

from .._config import Setting
from .._errors import ConfigurationError
from .._paths import user_data_dir
from ._redact import looks_like_conninfo

__all__ = ["LEDGER_SETTINGS", "database_of"]


_SETTING = "(setting database, OPTOUTS_LOCAL_DATABASE)"


def _database_path(value: object) -> str:
    text = str(value).strip()
    if not text:
        raise ValueError("empty path")
    return text if _not_a_path(text) else str(Path(text).expanduser())


def _not_a_path(text: str) -> bool:
    """Whether ``text`` is something other than a file path (a URL, SQLite's in-memory
    names, a libpq ``key=value`` string): ``database_of`` says which, or refuses it."""
    return (
        "://" in text
        or text == ":memory:"
        or text.lower().startswith("file:")
        or looks_like_conninfo(text)
    )


LEDGER_SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database",
        "path of the SQLite ledger file (default: ledger.db in the user data folder), "
        "or a postgresql:// URL",
        parse=_database_path,
        secret=True,  # a database URL may carry a password
        path=True,  # relative in optouts.toml: beside that file
    ),
    Setting("source", "source recorded for changes made through this client", default="api"),
)


def database_of(given: str | None) -> str:
    """The database a setting names: the path or URL given, else the default file."""
    if given is None:
        return str(user_data_dir() / "ledger.db")
    try:
        database = _database_path(given)
    except ValueError:
        raise ConfigurationError(
            f"the ledger's database is empty: give a file path or a postgresql:// URL {_SETTING}"
        ) from None
    _refuse_non_ledgers(database)
    return database


def _refuse_non_ledgers(database: str) -> None:
    """A ledger is a file or a PostgreSQL database: nothing else keeps what is written.

    An in-memory SQLite database would answer every read from nothing ("not opted out")
    and lose every write at exit. A libpq ``key=value`` string would otherwise be taken
    for a file name (with its password in it): it is never shown back, for that reason.
    """
    if database == ":memory:":
        raise ConfigurationError(
            "the ledger cannot be an in-memory database (:memory:): what it records would "
            "be lost at exit, and a read would answer from nothing; give a file path or a "
            f"postgresql:// URL {_SETTING}"
        )
    if database.lower().startswith("file:") and "://" not in database:
        raise ConfigurationError(
            "the ledger's database is not read as a SQLite URI (file:..., which can name an "
            f"in-memory database): give a plain file path or a postgresql:// URL {_SETTING}"
        )
    if looks_like_conninfo(database):
        raise ConfigurationError(
            "the ledger's database looks like a PostgreSQL key=value connection string, "
            "which is not read (it is not shown here, as it may hold a password): write it "
            f"as a URL, postgresql://user:password@host:port/dbname {_SETTING}"
        )
