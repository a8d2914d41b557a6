"""v2 SMS consents, the API RingCentral now recommends: search and patch, pure functions.

``POST .../sms/consents/search`` filters on up to 20 senders and 20 recipients at once, so a
per-recipient check costs one request per 20 numbers; ``PATCH .../sms/consents`` changes up
to 1000 records and lists the ones it refused in ``failedRecords``. A record whose
``coverage`` is ``Account`` applies to every number of the account: it is the v1 ``*``
sender, and is reported with sender ``*``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from optouts import OptOut, Outcome, ProviderError, Status
from optouts.plugin import WILDCARD, country_of

from ._errors import PROVIDER
from ._v1 import SOURCES, page_parts

__all__ = [
    "FILTER_MAX",
    "PATCH_ENDPOINT",
    "PATCH_MAX",
    "SEARCH_ENDPOINT",
    "applies_to",
    "parse_patch",
    "parse_search",
    "patch_request",
    "search_request",
]

SEARCH_ENDPOINT = "v2 search"
PATCH_ENDPOINT = "v2 patch"
FILTER_MAX = 20
"""Most senders, and most recipients, one search filter may name."""
PATCH_MAX = 1000
"""Most records one PATCH may carry."""
ACCOUNT = "Account"
_OPT = {Status.OPTED_OUT: "OptOut", Status.OPTED_IN: "OptIn"}
_STATUSES = {value: key for key, value in _OPT.items()}


def base_path(server_url: str, account_id: str) -> str:
    return f"{server_url}/restapi/v2/accounts/{quote(account_id, safe='~')}/sms/consents"


def search_request(
    server_url: str,
    account_id: str,
    *,
    sender: str | None = None,
    recipients: Sequence[str] = (),
    status: Status | None = Status.OPTED_OUT,
    per_page: int = 1000,
    page_token: str | None = None,
) -> httpx.Request:
    """A search; sender ``*`` asks for account-wide records, None for every sender."""
    body: dict[str, Any] = {}
    if sender == WILDCARD:
        body["coverage"] = [ACCOUNT]
    elif sender is not None:
        body["from"] = [sender]
    if recipients:
        body["to"] = list(recipients)
    if status is not None:
        body["optStatus"] = _OPT[status]
    body["perPage"] = per_page
    if page_token is not None:
        body["pageToken"] = page_token
    return httpx.Request(
        "POST",
        f"{base_path(server_url, account_id)}/search",
        json=body,
        headers={"Accept": "application/json"},
    )


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _status(record: dict[str, Any]) -> Status:
    value = record.get("optStatus")
    if isinstance(value, str) and value in _STATUSES:
        return _STATUSES[value]
    raise ProviderError(
        f"RingCentral returned a consent with optStatus {value!r}", provider=PROVIDER
    )


def to_opt_out(record: dict[str, Any]) -> OptOut:
    recipient = str(record.get("to", ""))
    source = record.get("source")
    sender = WILDCARD if record.get("coverage") == ACCOUNT else str(record.get("from", ""))
    return OptOut(
        sender=sender,
        recipient=recipient,
        status=_status(record),
        country=country_of(recipient) if recipient.startswith("+") else None,
        source=SOURCES.get(source, source.lower()) if isinstance(source, str) else None,
        updated_at=_parse_time(record.get("lastModifiedTime")),
        provider=PROVIDER,
        raw=record,
    )


def applies_to(record: OptOut, sender: str) -> bool:
    """Whether a record speaks for ``sender``: its own, or an account-wide one."""
    return record.sender in (sender, WILDCARD)


def parse_search(body: Any) -> tuple[list[OptOut], str | None]:
    """Records of one page and the next page's token (None on the last page)."""
    records, token = page_parts(body)
    return [to_opt_out(record) for record in records], token


def patch_request(
    server_url: str, account_id: str, sender: str, recipients: Sequence[str], *, opt_out: bool
) -> httpx.Request:
    status = "OptOut" if opt_out else "OptIn"
    records = [
        {"from": sender, "to": to, "optStatus": status, "source": "Api"} for to in recipients
    ]
    return httpx.Request(
        "PATCH",
        base_path(server_url, account_id),
        json={"records": records},
        headers={"Accept": "application/json"},
    )


def parse_patch(body: Any, recipients: Sequence[str], *, opt_out: bool) -> dict[str, Outcome]:
    """Every number succeeded except those in ``failedRecords``, which carry the vendor's code."""
    failed: dict[str, Outcome] = {}
    entries = body.get("failedRecords") if isinstance(body, dict) else None
    for entry in entries or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("to"), str):
            continue
        error: dict[str, Any] = entry["error"] if isinstance(entry.get("error"), dict) else {}
        code = error.get("errorCode") or "unknown"
        message = error.get("message") or "RingCentral did not apply this record"
        failed[entry["to"]] = Outcome.failure(f"{code}: {message}")
    done = Outcome.OPTED_OUT if opt_out else Outcome.NOT_OPTED_OUT
    return {number: failed.get(number, done) for number in recipients}
