"""The embedded ledger: provider ``local``, the business's own record of every opt-out."""

from ._base import AuditTrail, Change, LedgerStore
from ._provider import LocalProvider
from ._sqlite import SQLiteLedger

__all__ = ["AuditTrail", "Change", "LedgerStore", "LocalProvider", "SQLiteLedger"]
