"""v1 High Volume (A2P) SMS opt-outs: the requests to send and how to read the answers.

Pure functions, no I/O: the provider strings them into exchanges. The list call is the
one the seed documents (``GET .../a2p-sms/opt-outs``); add and remove share
``POST .../opt-outs/bulk-assign``, whose partial failures come back in a 200.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from optouts import OptOut, Outcome, ProviderError, Status
from optouts.plugin import country_of

from ._errors import PROVIDER

__all__ = [
    "BULK_ASSIGN_MAX",
    "BULK_ENDPOINT",
    "LIST_ENDPOINT",
    "SOURCES",
    "STATUS_PARAM",
    "bulk_assign_request",
    "list_request",
    "page_parts",
    "parse_bulk_assign",
    "parse_list",
    "to_opt_out",
    "to_status",
]

LIST_ENDPOINT = "v1 list"
BULK_ENDPOINT = "v1 bulk-assign"
BULK_ASSIGN_MAX = 1000
"""No documented maximum per bulk-assign request, so we stay at the v2 API's 1000."""
STATUS_PARAM = {Status.OPTED_OUT: "optout", Status.OPTED_IN: "optin", None: "all"}
_STATUSES = {"OptOut": Status.OPTED_OUT, "OptIn": Status.OPTED_IN}
SOURCES = {
    "Recipient": "recipient",
    "Account": "api",
    "Api": "api",
    "Upstream": "upstream",
    "Carrier": "carrier",
}
"""Vendor sources in the common vocabulary (v1 ``Account`` is v2 ``Api``: set through the API)."""


def base_path(server_url: str, account_id: str) -> str:
    return f"{server_url}/restapi/v1.0/account/{quote(account_id, safe='~')}/a2p-sms/opt-outs"


def _query(params: Iterable[tuple[str, str]]) -> str:
    """Percent-encode every value: a raw ``+`` would reach the server as a space."""
    return "&".join(f"{name}={quote(value, safe='')}" for name, value in params)


def list_request(
    server_url: str,
    account_id: str,
    *,
    sender: str | None = None,
    recipient: str | None = None,
    status: Status | None = Status.OPTED_OUT,
    per_page: int = 1000,
    page_token: str | None = None,
) -> httpx.Request:
    params: list[tuple[str, str]] = []
    if sender is not None:
        params.append(("from", sender))
    if recipient is not None:
        params.append(("to", recipient))
    params.append(("status", STATUS_PARAM[status]))
    params.append(("perPage", str(per_page)))
    if page_token is not None:
        params.append(("pageToken", page_token))
    url = f"{base_path(server_url, account_id)}?{_query(params)}"
    return httpx.Request("GET", url, headers={"Accept": "application/json"})


def to_status(record: dict[str, Any], asked: Status | None) -> Status:
    """The record's status; a record without one can only be what the filter asked for."""
    value = record.get("status")
    if isinstance(value, str) and value in _STATUSES:
        return _STATUSES[value]
    if value is None and asked is not None:
        return asked
    raise ProviderError(
        f"RingCentral returned an opt-out record with status {value!r}", provider=PROVIDER
    )


def to_opt_out(record: dict[str, Any], asked: Status | None) -> OptOut:
    recipient = str(record.get("to", ""))
    source = record.get("source")
    return OptOut(
        sender=str(record.get("from", "")),
        recipient=recipient,
        status=to_status(record, asked),
        country=country_of(recipient) if recipient.startswith("+") else None,
        source=SOURCES.get(source, source.lower()) if isinstance(source, str) else None,
        provider=PROVIDER,
        raw=record,
    )


def parse_list(body: Any, asked: Status | None) -> tuple[list[OptOut], str | None]:
    """Records of one page and the next page's token (None on the last page)."""
    records, token = page_parts(body)
    return [to_opt_out(record, asked) for record in records], token


def page_parts(body: Any) -> tuple[list[dict[str, Any]], str | None]:
    """The records and next page token of a v1 list or v2 search answer, or ProviderError.

    An answer without a ``records`` array (missing, null, another type) or with a record that
    is not an object cannot be read as "no records": that would report opted-out numbers as
    free to message. The same goes for a ``nextPageToken`` that is not a string.
    """
    if not isinstance(body, dict):
        raise ProviderError(
            "RingCentral returned a page that is not a JSON object", provider=PROVIDER
        )
    records = body.get("records")
    if not isinstance(records, list) or not all(isinstance(item, dict) for item in records):
        raise ProviderError(
            "RingCentral returned a page without a records array of objects", provider=PROVIDER
        )
    paging = body.get("paging")
    if paging is None:
        paging = {}  # a last page may come without paging
    token = paging.get("nextPageToken") if isinstance(paging, dict) else None
    if not isinstance(paging, dict) or not isinstance(token, (str, type(None))):
        raise ProviderError("RingCentral returned paging it cannot read", provider=PROVIDER)
    return records, token or None


def bulk_assign_request(
    server_url: str, account_id: str, sender: str, recipients: Sequence[str], *, opt_out: bool
) -> httpx.Request:
    body = {"from": sender, ("optOuts" if opt_out else "optIns"): list(recipients)}
    return httpx.Request(
        "POST",
        f"{base_path(server_url, account_id)}/bulk-assign",
        json=body,
        headers={"Accept": "application/json"},
    )


def parse_bulk_assign(body: Any, recipients: Sequence[str], *, opt_out: bool) -> dict[str, Outcome]:
    """One outcome per number the vendor named; numbers it left out get none (never ok)."""
    section = body.get("optOuts" if opt_out else "optIns") if isinstance(body, dict) else None
    if not isinstance(section, dict):
        return {}
    wanted = set(recipients)
    done = Outcome.OPTED_OUT if opt_out else Outcome.NOT_OPTED_OUT
    results: dict[str, Outcome] = {}
    for number in section.get("successful") or []:
        if number in wanted:
            results[number] = done
    for entry in section.get("failed") or []:
        if not isinstance(entry, dict) or entry.get("to") not in wanted:
            continue
        number = str(entry["to"])
        message = entry.get("errorMessage") or "RingCentral did not apply this number"
        results[number] = Outcome.failure(str(message))
    return results
