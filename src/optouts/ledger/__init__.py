"""The embedded ledger: provider ``local``, the business's own record of every opt-out."""

from ._provider import LocalProvider
from ._store import SQLiteLedger

__all__ = ["LocalProvider", "SQLiteLedger"]
