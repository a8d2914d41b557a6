"""The embedded ledger: ``Ledger``, the business's own record of every opt-out, its stores
(SQLite, PostgreSQL) and provider ``local``, the ledger behind the common client interface."""

from ._base import AuditTrail, Change, LedgerStore, datetime_of, micros_of, trusted_time
from ._ledger import Ledger
from ._provider import LocalProvider
from ._sqlite import SQLiteLedger

__all__ = [
    "AuditTrail",
    "Change",
    "Ledger",
    "LedgerStore",
    "LocalProvider",
    "SQLiteLedger",
    "datetime_of",
    "micros_of",
    "trusted_time",
]
