"""What inbound webhooks become, and what a plugin registers to read a vendor's webhooks.

The public names are ``optouts.inbound``'s; they live here so that the plugin machinery
(``_hookspecs``, ``_plugins``), which ``optouts.inbound`` asks for the registered formats,
can name them without importing ``optouts.inbound`` back.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, cast

import attrs

from ._config import Setting
from ._errors import quote_value
from ._models import OptOut, Status, _frozen_mapping
from ._numbers import country_of
from .keywords import Classification, Keywords, classify

__all__ = [
    "AuthenticateFunction",
    "ConsentEvent",
    "HandshakeFunction",
    "HandshakeReply",
    "InboundMessage",
    "InboundParser",
    "ParseFunction",
    "Payload",
]

Payload = bytes | bytearray | str | Mapping[str, Any] | list[Any]
"""A webhook body as received (JSON bytes or text) or already decoded."""


def _utc(value: datetime) -> datetime:
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise ValueError(f"expected an aware datetime, got {value!r}")
    return value.astimezone(timezone.utc)


def _utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else _utc(value)


@attrs.frozen
class InboundMessage:
    """A text a consumer sent to one of our numbers, not yet acted on.

    The pair is named as opt-outs name it, which is the message's own direction reversed:
    a text from consumer +15555550123 to our +18005550100 is ``sender="+18005550100"``
    (ours: it received the text and sends our campaigns) and ``recipient="+15555550123"``
    (theirs: they wrote it and receive our campaigns). ``sender`` may be a short code.
    """

    sender: str
    recipient: str
    text: str
    received_at: datetime = attrs.field(converter=_utc)
    provider: str
    message_id: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, eq=False)

    def classify(self, keywords: Keywords | None = None) -> Classification:
        """What the text asks for (see ``optouts.keywords.classify``)."""
        return classify(self.text, keywords)


@attrs.frozen
class ConsentEvent:
    """An opt-out or opt-in the vendor already applied, for carrying elsewhere.

    ``sender`` is our number, or ``"*"`` when the consent covers every number of the
    account; ``recipient`` is the consumer. ``at`` is when the vendor says the change
    happened (None when the payload does not say). ``source`` is who made it, in the
    common vocabulary ("recipient", "api", "upstream", "carrier"), None when unknown.
    ``notification_id`` is the vendor's id of the delivery, for spotting redeliveries.
    """

    sender: str
    recipient: str
    opted_out: bool
    at: datetime | None = attrs.field(converter=_utc_or_none)
    provider: str
    source: str | None = None
    notification_id: str | None = None
    raw: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping, eq=False)

    @property
    def status(self) -> Status:
        return Status.OPTED_OUT if self.opted_out else Status.OPTED_IN

    def as_opt_out(self) -> OptOut:
        """The same news as the record a provider would list."""
        return OptOut(
            sender=self.sender,
            recipient=self.recipient,
            status=self.status,
            country=country_of(self.recipient),
            source=self.source,
            updated_at=self.at,
            provider=self.provider,
            raw=self.raw,
        )


@attrs.frozen
class HandshakeReply:
    """How to answer a vendor's check that an endpoint wants its events: a 200 with these
    ``headers`` and, unless ``body`` is None, this JSON body. Nothing is parsed then.

    A ``status`` other than 200 refuses the check (403 for an origin the endpoint's
    settings do not allow), so the vendor never starts delivering.
    """

    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    body: Mapping[str, Any] | None = None
    status: int = 200


ParseFunction = Callable[[Payload, Mapping[str, str]], Sequence[InboundMessage | ConsentEvent]]
"""``parse(payload, headers)``: the events of one delivery, in order, or InvalidPayload."""
HandshakeFunction = Callable[
    [str, Payload, Mapping[str, str], Mapping[str, Any] | None], HandshakeReply | None
]
"""``handshake(method, payload, headers, settings)``: the reply when the request is the
vendor's subscription check, None for any other request (a delivery, to parse).
``settings`` are the endpoint's (see ``InboundParser.settings``), or None when the caller
keeps none and vets the request itself. A format that declares no settings may keep the
three-parameter ``handshake(method, payload, headers)`` of optouts 0.3."""
AuthenticateFunction = Callable[[Mapping[str, str], Mapping[str, str], Mapping[str, Any]], bool]
"""``authenticate(headers, query, settings)``: whether a delivery comes from the vendor, by
the secret in ``settings`` (an ``optouts.Secret``) that the request's headers or query
parameters must carry. Compare with ``optouts.inbound.secret_matches`` (constant time)."""
_LegacyHandshake = Callable[[str, Payload, Mapping[str, str]], HandshakeReply | None]

_FORMAT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def _format_name(_: object, __: attrs.Attribute[str], name: str) -> None:
    if not isinstance(name, str) or not _FORMAT_NAME.fullmatch(name):
        raise ValueError(
            f"a webhook format's name is lower-case letters, digits, '-' and '_' "
            f"(it goes in a URL path), not {quote_value(name)}"
        )


def _settings(value: Sequence[Setting]) -> tuple[Setting, ...]:
    declared = tuple(value)
    for setting in declared:
        if not isinstance(setting, Setting):
            raise TypeError(f"a webhook format's settings are optouts.Setting, not {setting!r}")
    return declared


@attrs.frozen
class InboundParser:
    """One webhook format a plugin reads, registered under the name that picks it.

    ``name`` is what callers and URLs use (``parse("azure", body)``, ``POST
    /webhooks/azure``). ``parse`` is called with the body and the request headers (empty
    when the caller has none) and returns the delivery's events; ``handshake``, when the
    vendor checks an endpoint before delivering to it, is asked first on every request,
    with the HTTP method in capitals. Both raise InvalidPayload for what they cannot read.

    What an endpoint needs to trust a request is vendor knowledge too, so the format says
    it: ``settings`` are what its endpoint reads (``optouts serve`` finds them under
    ``[serve.<name>]`` in optouts.toml or as ``OPTOUTS_SERVE_<NAME>_<SETTING>``; a
    ``secret`` one arrives as ``optouts.Secret``), and ``authenticate`` tells a delivery
    from the vendor by them. A format without ``authenticate``, or whose ``required``
    settings are not set, is never served: an open endpoint would let anyone opt anyone in.
    """

    name: str = attrs.field(validator=_format_name)
    parse: ParseFunction
    handshake: HandshakeFunction | _LegacyHandshake | None = None
    authenticate: AuthenticateFunction | None = attrs.field(default=None, kw_only=True)
    settings: tuple[Setting, ...] = attrs.field(default=(), converter=_settings, kw_only=True)

    @property
    def module(self) -> str:
        """Where ``parse`` is defined, to tell two plugins' formats apart in messages."""
        return str(getattr(self.parse, "__module__", None) or repr(self.parse))

    def answer_handshake(
        self,
        method: str,
        payload: Payload,
        headers: Mapping[str, str],
        settings: Mapping[str, Any] | None = None,
    ) -> HandshakeReply | None:
        """The handshake's reply to this request, None when it is no handshake.

        A format that declares no settings is called as optouts 0.3 called it, with three
        arguments; one that does gets ``settings`` too (None: the caller vets the request).
        """
        if self.handshake is None:
            return None
        if not self.settings:
            return cast("_LegacyHandshake", self.handshake)(method, payload, headers)
        return cast("HandshakeFunction", self.handshake)(method, payload, headers, settings)
