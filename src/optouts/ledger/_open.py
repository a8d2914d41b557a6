"""Open the ledger a ``database`` setting names: a SQLite file path, or a database URL."""

from __future__ import annotations

from .._errors import ConfigurationError
from ._base import LedgerStore
from ._sqlite import SQLiteLedger

__all__ = ["open_store"]

_URL_SCHEMES = ("postgresql://", "postgres://")


def open_store(database: str) -> LedgerStore:
    """A path (or ``:memory:``) opens SQLite; ``postgresql://`` URLs open PostgreSQL."""
    if database.startswith(_URL_SCHEMES):
        raise ConfigurationError(
            "PostgreSQL ledgers are not available in this build "
            "(setting database, OPTOUTS_LOCAL_DATABASE)"
        )
    if "://" in database:
        scheme = database.split("://", 1)[0]
        raise ConfigurationError(
            f"the ledger cannot use {scheme}:// databases; give a file path or a "
            "postgresql:// URL (setting database, OPTOUTS_LOCAL_DATABASE)"
        )
    return SQLiteLedger(database)
