"""v2 SMS consents, the API RingCentral now recommends: search and patch, pure functions.

``POST .../sms/consents/search`` filters on up to 20 senders and 20 recipients at once, so a
per-recipient check costs one request per 20 numbers; ``PATCH .../sms/consents`` changes up
to 1000 records and lists the ones it refused in ``failedRecords``. A record whose
``coverage`` is ``Account`` applies to every number of the account: it is the v1 ``*``
sender, and is reported with sender ``*``. Numbers are read as in ``_v1``: normalised, and a
record without a readable recipient, or without a readable sender or ``Account`` coverage,
makes its page unreadable.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from optouts import OptOut, Outcome, ProviderError, Status
from optouts.plugin import WILDCARD, clip, country_of

from ._errors import PROVIDER, REASON, quoted
from ._v1 import SOURCES, page_parts, read_recipient, read_sender, unreadable_number

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
_ERROR_FIELDS = ("errors", "errorCode", "error")
"""Fields of an error body: a 200 carrying them is no PATCH summary."""


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
        f"RingCentral returned a consent with optStatus {quoted(value)}", provider=PROVIDER
    )


def to_opt_out(record: dict[str, Any]) -> OptOut:
    sender = WILDCARD if record.get("coverage") == ACCOUNT else read_sender(record.get("from"))
    if sender is None:
        raise unreadable_number("a consent without Account coverage", "from", record.get("from"))
    recipient = read_recipient(record.get("to"))
    if recipient is None:
        raise unreadable_number("a consent", "to", record.get("to"))
    source = record.get("source")
    return OptOut(
        sender=sender,
        recipient=recipient,
        status=_status(record),
        country=country_of(recipient),
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
    """Every number succeeded except those in ``failedRecords``, which carry the vendor's code.

    The summary (``OptRecordsModificationSummary``) is a JSON object whose ``failedRecords``,
    an array of one or more records, is left out when nothing failed: ``{}`` is a full
    success. So here success is what the vendor does *not* say, and the summary must be
    read whole or not at all: a body that is not an object, that carries an error's fields,
    whose ``failedRecords`` is not an array (null included), or with a failed entry that
    names none of the numbers sent (no ``to``, not a number, another number) is a
    ProviderError, and no number of the request passes. A failed entry with an unreadable
    ``error`` still fails its number, with a generic reason.
    """
    if not isinstance(body, dict) or any(name in body for name in _ERROR_FIELDS):
        raise ProviderError(
            "RingCentral answered a consents PATCH with something other than its summary",
            provider=PROVIDER,
        )
    entries = body.get("failedRecords", [])
    if not isinstance(entries, list):
        raise ProviderError(
            "RingCentral's PATCH summary has failedRecords that is not an array",
            provider=PROVIDER,
        )
    wanted = set(recipients)
    failed: dict[str, Outcome] = {}
    for entry in entries:
        number = read_recipient(entry.get("to")) if isinstance(entry, dict) else None
        if number is None or number not in wanted:
            raise ProviderError(
                "RingCentral's PATCH summary has a failed record for none of the numbers sent",
                provider=PROVIDER,
            )
        failed[number] = Outcome.failure(_reason(entry.get("error")))
    done = Outcome.OPTED_OUT if opt_out else Outcome.NOT_OPTED_OUT
    return {number: failed.get(number, done) for number in recipients}


def _reason(error: Any) -> str:
    """``errorCode: message`` of a failed record, each cut short; generic when unreadable."""
    fields: dict[str, Any] = error if isinstance(error, dict) else {}
    code = _text(fields.get("errorCode"), 100, "unknown")
    message = _text(fields.get("message"), REASON, "RingCentral did not apply this record")
    return f"{code}: {message}"


def _text(value: Any, limit: int, default: str) -> str:
    return clip(value, limit) if isinstance(value, str) and value else default
