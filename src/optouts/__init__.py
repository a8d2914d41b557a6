"""optouts: one interface over SMS opt-out lists, a local ledger and every vendor's API."""

from importlib.metadata import PackageNotFoundError, version

from ._client import AsyncClient, Client
from ._config import Secret, Setting, Settings
from ._csvio import ImportReport, export_csv, import_csv
from ._errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidCursor,
    InvalidNumber,
    InvalidPayload,
    OptOutError,
    ProviderError,
    RateLimited,
    UnsupportedOperation,
)
from ._handling import (
    Handled,
    handle_event,
    handle_event_async,
    handle_inbound,
    handle_inbound_async,
)
from ._hookspecs import hookimpl
from ._models import (
    BatchResult,
    Capability,
    OptOut,
    Outcome,
    Page,
    RecipientResult,
    RecipientsFailed,
    Status,
)
from ._numbers import normalize
from ._plugins import ProviderInfo, providers
from ._provider import Exchange, Note, Provider, Results, Sleep, StatusFilter
from ._retry import RetryPolicy
from ._sync import SyncSummary, TargetSummary, sync
from ._urls import require_https
from .ledger import AuditTrail, Ledger

try:
    __version__ = version("optouts")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "AsyncClient",
    "AuditTrail",
    "AuthenticationError",
    "BatchResult",
    "Capability",
    "Client",
    "ConfigurationError",
    "Exchange",
    "Handled",
    "ImportReport",
    "InvalidCursor",
    "InvalidNumber",
    "InvalidPayload",
    "Ledger",
    "Note",
    "OptOut",
    "OptOutError",
    "Outcome",
    "Page",
    "Provider",
    "ProviderError",
    "ProviderInfo",
    "RateLimited",
    "RecipientResult",
    "RecipientsFailed",
    "Results",
    "RetryPolicy",
    "Secret",
    "Setting",
    "Settings",
    "Sleep",
    "Status",
    "StatusFilter",
    "SyncSummary",
    "TargetSummary",
    "UnsupportedOperation",
    "__version__",
    "export_csv",
    "handle_event",
    "handle_event_async",
    "handle_inbound",
    "handle_inbound_async",
    "hookimpl",
    "import_csv",
    "normalize",
    "providers",
    "require_https",
    "sync",
]
