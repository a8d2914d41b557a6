"""v1 High Volume (A2P) SMS opt-outs: the requests to send and how to read the answers.

Pure functions, no I/O: the provider strings them into exchanges. The list call is the
one the seed documents (``GET .../a2p-sms/opt-outs``); add and remove share
``POST .../opt-outs/bulk-assign``, whose partial failures come back in a 200.

Numbers in answers are read with ``optouts.normalize`` before anything compares them: a
vendor writing ``+1 212 555 0100`` must not turn an opt-out into "not opted out". A record
without a sender and a recipient that read as numbers is unreadable, like one without a
status: the page holding it is a ProviderError, never a page of records for nobody.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from optouts import InvalidNumber, OptOut, Outcome, ProviderError, Status, normalize
from optouts.plugin import WILDCARD, clip, country_of

from ._errors import PROVIDER, REASON, quoted

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
    "read_recipient",
    "read_sender",
    "to_opt_out",
    "to_status",
    "unreadable_number",
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
_SHORT_CODE_LENGTHS = range(3, 9)
_NOT_MENTIONED = Outcome.failure("RingCentral's answer did not mention this number")


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
        f"RingCentral returned an opt-out record with status {quoted(value)}", provider=PROVIDER
    )


def read_recipient(value: Any) -> str | None:
    """A number from a vendor answer in E.164, or None when it is not a phone number."""
    try:
        return normalize(value)
    except InvalidNumber:
        return None


def read_sender(value: Any) -> str | None:
    """A record's sender: E.164, a short code (3-8 digits) or ``*``; None when none of them."""
    if isinstance(value, str):
        text = value.strip()
        if text == WILDCARD or (
            text.isascii() and text.isdigit() and len(text) in _SHORT_CODE_LENGTHS
        ):
            return text
    return read_recipient(value)


def unreadable_number(kind: str, field: str, value: Any) -> ProviderError:
    """The error for a record whose sender or recipient is missing or not a number."""
    shown = "missing" if value is None else f"not a phone number: {quoted(value, 40)}"
    return ProviderError(
        f"RingCentral returned {kind} whose {field!r} is {shown}", provider=PROVIDER
    )


def to_opt_out(record: dict[str, Any], asked: Status | None) -> OptOut:
    sender = read_sender(record.get("from"))
    if sender is None:
        raise unreadable_number("an opt-out record", "from", record.get("from"))
    recipient = read_recipient(record.get("to"))
    if recipient is None:
        raise unreadable_number("an opt-out record", "to", record.get("to"))
    source = record.get("source")
    return OptOut(
        sender=sender,
        recipient=recipient,
        status=to_status(record, asked),
        country=country_of(recipient),
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
    """An outcome for every number sent: done only when ``successful`` names it.

    The envelope must be the documented one, a JSON object whose ``optOuts`` (or ``optIns``)
    section is an object with ``successful`` and ``failed`` arrays (either may be absent);
    anything else is a ProviderError, so no number of the request passes. Inside, v1 names
    each success, so an entry that names no number we sent (not a string, not a phone
    number, another number) is skipped, and a number no readable entry names fails alone as
    unmentioned. A number named in both arrays fails.
    """
    field = "optOuts" if opt_out else "optIns"
    if not isinstance(body, dict):
        raise ProviderError(
            "RingCentral answered a bulk-assign with something other than a JSON object",
            provider=PROVIDER,
        )
    section = body.get(field)
    if not isinstance(section, dict):
        raise ProviderError(
            f"RingCentral's bulk-assign answer has no {field} object", provider=PROVIDER
        )
    successful = _array(section, "successful", field)
    failed = _array(section, "failed", field)
    results = dict.fromkeys(recipients, _NOT_MENTIONED)
    done = Outcome.OPTED_OUT if opt_out else Outcome.NOT_OPTED_OUT
    for value in successful:
        number = read_recipient(value)
        if number is not None and number in results:
            results[number] = done
    for entry in failed:
        number = read_recipient(entry.get("to")) if isinstance(entry, dict) else None
        if number is None or number not in results:
            continue
        message = entry.get("errorMessage")
        reason = message if isinstance(message, str) and message else None
        results[number] = Outcome.failure(
            clip(reason, REASON) if reason else "RingCentral did not apply this number"
        )
    return results


def _array(section: dict[str, Any], name: str, field: str) -> list[Any]:
    """``section[name]`` as a list; absent or null is empty, any other type unreadable."""
    value = section.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ProviderError(
            f"RingCentral's bulk-assign answer has a {field}.{name} that is not an array",
            provider=PROVIDER,
        )
    return value
