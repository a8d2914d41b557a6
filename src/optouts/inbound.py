"""Inbound webhooks: what they become, and the plugins that know each vendor's format.

Two kinds of news arrive:

- ``InboundMessage``: a text a consumer sent to one of our numbers (Azure Event Grid
  ``Microsoft.Communication.SMSReceived``). Nobody has decided anything yet: classify the
  text (``message.classify()``) and act on the verdict.
- ``ConsentEvent``: the vendor already applied an opt-out or opt-in (RingCentral's v1
  opt-out notification and v2 consent events); carry it to the ledger and the other vendors.

Both are named for the opt-out pair they concern, ``sender`` (our number, which sends the
campaigns) and ``recipient`` (the consumer). For a message that is the vendor's ``to`` and
``from`` swapped: the consumer *sent* the STOP, but in opt-out terms they are the recipient.

Which vendor sends what is plugin knowledge, so a new vendor's webhook needs no optouts
release: a plugin implements ``register_inbound_parsers(register)`` and registers an
``InboundParser`` per format it reads (optouts-azure brings ``"azure"``, optouts-ringcentral
``"ringcentral"``). ``parse(name, body)`` reads a delivery with the format of that name, and
``receive(name, body, headers, method=...)`` is all a webhook endpoint needs: the answer to
the vendor's subscription handshake, or the delivery's events.

Who may post to an endpoint is the format's knowledge as well: an ``InboundParser`` names
the ``settings`` its endpoint reads (a shared secret, allowed origins) and an
``authenticate(headers, query, settings)`` that checks a delivery against them, which
``optouts serve`` asks before it parses a delivery; ``secret_matches`` and ``bearer_token``
help write one.

A payload that is not what the vendor documents raises ``InvalidPayload`` naming the field,
whatever is wrong with it: not JSON, not UTF-8, nested too deeply, or a field of the wrong
type. A number that is no phone number raises ``InvalidNumberInPayload``, which is both an
``InvalidPayload`` and an ``InvalidNumber``. The helpers here (``load_json``,
``each_object``, ``read_number``, ``read_timestamp``, ``get_header``, ``shown``) keep those
promises for every parser. Optional fields that only describe a delivery (ids, ``source``)
are ignored when unusable rather than refuse an opt-out; events of other types are
skipped, so one webhook endpoint can subscribe to more than it handles.

The functions of optouts 0.2 stay, for its callers, as thin calls of the registered format:
``parse_azure_event_grid``, ``azure_validation_response`` and ``azure_handshake_headers``
need optouts-azure installed, ``parse_ringcentral_notification`` and
``ringcentral_validation_headers`` optouts-ringcentral (else ``ConfigurationError``).
"""

from __future__ import annotations

import hmac
import json
import re
import reprlib
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from . import _plugins
from ._config import Secret
from ._errors import ConfigurationError, InvalidNumber, InvalidPayload, OptOutError
from ._numbers import WILDCARD, normalize
from ._webhooks import (
    AuthenticateFunction,
    ConsentEvent,
    HandshakeFunction,
    HandshakeReply,
    InboundMessage,
    InboundParser,
    ParseFunction,
    Payload,
)

__all__ = [
    "AZURE",
    "RINGCENTRAL",
    "SMS_RECEIVED",
    "SUBSCRIPTION_VALIDATION",
    "AuthenticateFunction",
    "ConsentEvent",
    "HandshakeFunction",
    "HandshakeReply",
    "InboundMessage",
    "InboundParser",
    "InvalidNumberInPayload",
    "InvalidPayload",
    "ParseFunction",
    "Payload",
    "azure_handshake_headers",
    "azure_validation_response",
    "bearer_token",
    "each_object",
    "get_header",
    "get_parser",
    "load_json",
    "parse",
    "parse_azure_event_grid",
    "parse_ringcentral_notification",
    "parsers",
    "read_number",
    "read_timestamp",
    "receive",
    "ringcentral_validation_headers",
    "secret_matches",
    "shown",
]

# -- helpers for every vendor's parser --------------------------------------------------------

_SHORT_REPR = reprlib.Repr()
_SHORT_REPR.maxstring = 60
_SHORT_REPR.maxother = 60


def shown(value: object) -> str:
    """``value`` for an error message, kept short: a hostile body may be huge or deep.

    Strings, numbers, booleans and None are shown cut to about 60 characters; containers
    by their type's name only (``list``), since one may be nested 100,000 deep.
    """
    if isinstance(value, (str, bool, float)) or value is None:
        return _SHORT_REPR.repr(value)
    if isinstance(value, int):  # repr refuses past 4,300 digits
        return _SHORT_REPR.repr(value) if value.bit_length() <= 64 else "a very long number"
    return type(value).__name__


class InvalidNumberInPayload(InvalidNumber, InvalidPayload):
    """A webhook field that should hold a phone number and does not.

    An ``InvalidPayload`` like every other fault of a body, and an ``InvalidNumber`` as it
    always was, so either ``except`` catches it; ``value`` is what the field held.
    """

    def __init__(self, value: object, reason: str) -> None:
        self.value = value
        self.reason = reason
        # Not InvalidNumber's message: its repr of a deep or huge value could itself fail.
        OptOutError.__init__(self, f"{shown(value)}: {reason}")


def load_json(payload: Payload) -> Any:
    """The decoded body; bytes or text that are not UTF-8 JSON raise InvalidPayload.

    JSON nested too deeply for Python's parser is InvalidPayload too, never RecursionError.
    A payload already decoded (a dict, a list) is returned as it is.
    """
    if isinstance(payload, (bytes, bytearray, str)):
        try:
            return json.loads(payload)
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError alike
            raise InvalidPayload(f"the webhook body is not JSON: {exc}") from None
        except RecursionError:
            raise InvalidPayload("the webhook body is JSON nested too deeply to read") from None
    return payload


def each_object(payload: Payload, what: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Each object of a body that holds one ``what`` or a list of them, with its place.

    The place names the object for messages: ``what`` alone, or ``whats[2]`` in a list.
    Anything else (a number, a list holding a string) raises InvalidPayload.
    """
    data = load_json(payload)
    if isinstance(data, Mapping):
        yield what, data
        return
    if not isinstance(data, list):
        raise InvalidPayload(f"expected a {what} or a list of them, got {type(data).__name__}")
    for index, item in enumerate(data):
        where = f"{what}s[{index}]"
        if not isinstance(item, Mapping):
            raise InvalidPayload(f"{where} is {type(item).__name__}, not an object")
        yield where, item


_SHORT_CODE = re.compile(r"[0-9]{3,8}")


def read_number(
    value: object, field: str, *, ours: bool, wildcard: bool = False, bare_digits: bool = False
) -> str:
    """The phone number in ``field`` as E.164, or InvalidNumberInPayload naming the field.

    ``ours``: the field holds one of our numbers, which may also be a short code (and
    ``"*"``, every number of the account, with ``wildcard``). ``bare_digits``: the vendor
    writes E.164 without its "+" ("15555550123"). A missing field is InvalidPayload.
    """
    if value is None:
        raise InvalidPayload(f"{field} is missing")
    if not isinstance(value, str):
        raise InvalidNumberInPayload(value, f"{field}: expected a string, got {shown(value)}")
    text = value.strip()
    if ours and (_SHORT_CODE.fullmatch(text) or (wildcard and text == WILDCARD)):
        return text
    if bare_digits and text.isascii() and text.isdigit():
        text = "+" + text
    try:
        return normalize(text)
    except InvalidNumber as exc:
        raise InvalidNumberInPayload(value, f"{field}: {exc.reason}") from None


_TIMESTAMP = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?\s*"
    r"(Z|z|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)


def read_timestamp(value: object, field: str) -> datetime:
    """The ISO 8601 time in ``field`` as an aware UTC datetime, or InvalidPayload.

    Written out because vendors send what ``datetime.fromisoformat`` refuses before
    Python 3.11: a "Z", and seven fractional digits (Event Grid's .NET ticks). A time
    without an offset is taken as UTC, which every documented payload uses.
    """
    match = _TIMESTAMP.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise InvalidPayload(f"{field}: {shown(value)} is not an ISO 8601 time")
    date, clock, fraction, zone = match.groups()
    if len(clock) == 5:
        clock += ":00"
    micro = (fraction or "")[:6].ljust(6, "0")
    if zone is None or zone in "Zz":
        zone = "+00:00"
    elif len(zone) == 3:
        zone += ":00"
    elif ":" not in zone:
        zone = f"{zone[:3]}:{zone[3:]}"
    try:
        return datetime.fromisoformat(f"{date}T{clock}.{micro}{zone}").astimezone(timezone.utc)
    except (ValueError, OverflowError) as exc:  # month 13; year 1 less an offset
        raise InvalidPayload(f"{field}: {shown(value)} is not a valid time ({exc})") from None


def get_header(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header ``name`` in any letter case; None when absent or empty."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted and value:
            return value
    return None


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header; None for any other."""
    scheme, _, token = (get_header(headers, "Authorization") or "").strip().partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def secret_matches(given: str | None, secret: Secret | None) -> bool:
    """Whether a request carried ``secret``, compared in constant time (no timing tells an
    attacker how much of a guess was right). Nothing given, or no secret set, is False."""
    if given is None or not isinstance(secret, Secret) or not secret.reveal():
        return False
    return hmac.compare_digest(
        given.encode("utf-8", "surrogatepass"), secret.reveal().encode("utf-8", "surrogatepass")
    )


# -- the formats plugins register ------------------------------------------------------------


def parsers() -> Mapping[str, InboundParser]:
    """Every installed webhook format by name; two plugins registering one name is an error."""
    return _plugins.inbound_parsers()


_DISTRIBUTIONS = {"azure": "optouts-azure", "ringcentral": "optouts-ringcentral"}
"""Where the in-tree formats come from, for the message when one is missing."""


def get_parser(name: str) -> InboundParser:
    """The installed format ``name``; ConfigurationError listing the installed ones if none."""
    found = _plugins.inbound_parsers()
    if name in found:
        return found[name]
    hint = (
        f" (install {_DISTRIBUTIONS[name]}, or let OPTOUTS_LOAD_PLUGINS load it)"
        if name in _DISTRIBUTIONS
        else ""
    )
    broken = "".join(
        f"; plugin {plugin!r} failed to load ({why})" for plugin, why in _plugins._broken.items()
    )
    raise ConfigurationError(
        f"no webhook format named {shown(name)}{hint}; "
        f"installed: {', '.join(found) or 'none'}{broken}"
    )


def parse(
    name: str, payload: Payload, headers: Mapping[str, str] | None = None
) -> list[InboundMessage | ConsentEvent]:
    """The events of one delivery in webhook format ``name``, in order.

    ``payload`` is the request body (bytes, text or decoded JSON); ``headers`` the request's
    headers, for formats that read them. One malformed event fails the whole delivery
    (InvalidPayload naming it), so that the vendor delivers it again rather than an
    opt-out being dropped.
    """
    return list(get_parser(name).parse(payload, headers or {}))


def receive(
    name: str,
    body: Payload,
    headers: Mapping[str, str] | None = None,
    *,
    method: str = "POST",
    settings: Mapping[str, Any] | None = None,
) -> HandshakeReply | list[InboundMessage | ConsentEvent]:
    """What a webhook endpoint for format ``name`` makes of one request.

    A ``HandshakeReply`` when the request is the vendor's subscription check (answer it
    as it says), else the delivery's events (act on them, then answer 200). ``settings``
    are the endpoint's (``InboundParser.settings``), for a handshake that allows only
    what they name; without them, vetting the request is the caller's job. Raises
    InvalidPayload for a body the format cannot read, and for a request that is neither
    a handshake nor a POST; ConfigurationError when no plugin brings the format.
    Authenticating a delivery is the caller's job too (``get_parser(name).authenticate``).
    """
    parser = get_parser(name)
    given = headers or {}
    verb = method.upper()
    reply = parser.answer_handshake(verb, body, given, settings)
    if reply is not None:
        return reply
    if verb != "POST":
        raise InvalidPayload(
            f"a {shown(verb)} request is neither a handshake of webhook format {name!r} "
            "nor a delivery (a POST)"
        )
    return list(parser.parse(body, given))


# -- the functions of optouts 0.2, kept for its callers -----------------------------------------

AZURE = "azure"
RINGCENTRAL = "ringcentral"
SMS_RECEIVED = "Microsoft.Communication.SMSReceived"
SUBSCRIPTION_VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"


def _handshake(
    name: str, method: str, payload: Payload, headers: Mapping[str, str]
) -> HandshakeReply | None:
    return get_parser(name).answer_handshake(method, payload, headers)


def parse_azure_event_grid(payload: Payload) -> list[InboundMessage]:
    """The received SMS in an Event Grid delivery: ``parse("azure", payload)``."""
    return [event for event in parse(AZURE, payload) if isinstance(event, InboundMessage)]


def azure_validation_response(payload: Payload) -> dict[str, Any] | None:
    """The body answering an Event Grid ``SubscriptionValidationEvent``, None if not one."""
    reply = _handshake(AZURE, "POST", payload, {})
    return None if reply is None or reply.body is None else dict(reply.body)


def azure_handshake_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The headers answering a CloudEvents ``OPTIONS`` handshake, None if not one."""
    reply = _handshake(AZURE, "OPTIONS", b"", headers)
    return None if reply is None else dict(reply.headers)


def parse_ringcentral_notification(payload: Payload) -> list[ConsentEvent]:
    """The consent changes in a RingCentral notification: ``parse("ringcentral", payload)``."""
    return [event for event in parse(RINGCENTRAL, payload) if isinstance(event, ConsentEvent)]


def ringcentral_validation_headers(headers: Mapping[str, str]) -> dict[str, str] | None:
    """The headers confirming a new RingCentral webhook (``Validation-Token``), None if not."""
    reply = _handshake(RINGCENTRAL, "POST", b"", headers)
    return None if reply is None else dict(reply.headers)
