"""Open the ledger a ``database`` setting names: a SQLite file path, or a database URL."""

from __future__ import annotations

from .._errors import ConfigurationError
from ._base import LedgerStore
from ._sqlite import SQLiteLedger

__all__ = ["open_store"]

_URL_SCHEMES = ("postgresql://", "postgres://")


def open_store(database: str) -> LedgerStore:
    """A path opens SQLite; ``postgresql://`` URLs open PostgreSQL. (``database_of`` has
    refused what is no ledger; ``:memory:`` still opens here, for a store made in code.)"""
    if database.startswith(_URL_SCHEMES):
        try:
            from ._postgres import PostgresLedger
        except ImportError as exc:
            if not (exc.name or "psycopg").startswith("psycopg"):
                raise
            raise ConfigurationError(
                "a postgresql:// ledger needs psycopg: pip install 'optouts[postgresql]' "
                "(setting database, OPTOUTS_LOCAL_DATABASE)"
            ) from None
        return PostgresLedger(database)
    if "://" in database:
        scheme = database.split("://", 1)[0]
        raise ConfigurationError(
            f"the ledger cannot use {scheme}:// databases; give a file path or a "
            "postgresql:// URL (setting database, OPTOUTS_LOCAL_DATABASE)"
        )
    return SQLiteLedger(database)
