"""Azure connection strings and endpoint/key pairs, parsed without ever echoing the key.

A connection string is ``endpoint=https://<resource>.communication.azure.com/;accesskey=<key>``.
Keys are case-insensitive and each part splits on its first ``=``: the key's base64 padding
contains ``=`` too, and the naive split of the vendor's samples drops it. The endpoint must be
``https://`` (plain ``http://`` only to a loopback address, where the emulator runs): every
request carries a signature made with the key.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import urlsplit

import attrs

from optouts import require_https

__all__ = ["Connection", "ConnectionStringError", "parse_connection_string"]


class ConnectionStringError(ValueError):
    """A malformed connection string, endpoint or key; the message never holds the key.

    ``part`` is "endpoint" or "accesskey" when one of them is at fault, so a caller can name
    the setting that holds it.
    """

    def __init__(self, message: str, part: str | None = None) -> None:
        super().__init__(message)
        self.part = part


@attrs.frozen(repr=False)
class Connection:
    """Where the resource is and the decoded key that signs requests to it."""

    endpoint: str = attrs.field()
    """Scheme and authority (plus any path prefix), without a trailing ``/``."""
    key: bytes = attrs.field(repr=False)

    @endpoint.validator
    def _endpoint_is_https(self, _attribute: attrs.Attribute[str], value: str) -> None:
        _https(value)  # also when built directly, not parsed

    def __repr__(self) -> str:
        return f"Connection(endpoint={self.endpoint!r}, key='********')"

    @classmethod
    def from_parts(cls, endpoint: str, access_key: str) -> Connection:
        return cls(_endpoint(endpoint), _decode_key(access_key))


def parse_connection_string(text: str) -> Connection:
    """Parse ``endpoint=...;accesskey=...``; raises ConnectionStringError saying what is wrong."""
    parts: dict[str, str] = {}
    for number, part in enumerate(text.split(";"), start=1):
        if not part.strip():
            continue  # a trailing or doubled ';'
        name, equals, value = part.partition("=")
        if not equals or not name.strip():
            # The part is not echoed: it could be the key itself.
            raise ConnectionStringError(f"part {number} is not name=value")
        parts[name.strip().lower()] = value.strip()
    missing = [name for name in ("endpoint", "accesskey") if not parts.get(name)]
    if missing:
        raise ConnectionStringError(
            f"it has no {' and no '.join(missing)} (expected endpoint=https://...;accesskey=...)"
        )
    return Connection(_endpoint(parts["endpoint"]), _decode_key(parts["accesskey"]))


def _endpoint(value: str) -> str:
    # Errors describe the endpoint without quoting it: a misplaced key would be echoed.
    text = value.strip().rstrip("/")
    expected = "expected an http(s) URL such as https://<resource>.communication.azure.com"
    try:
        split = urlsplit(text)
        split.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise ConnectionStringError(f"the endpoint is not a URL; {expected}", "endpoint") from None
    if split.scheme not in ("http", "https") or not split.hostname:
        raise ConnectionStringError(f"the endpoint is not a URL; {expected}", "endpoint")
    if split.query or split.fragment or split.username or split.password:
        raise ConnectionStringError(
            "the endpoint must not carry a query, fragment or user info", "endpoint"
        )
    _https(text)
    return text


def _https(endpoint: str) -> None:
    """Refuse plain http:// off this machine: each request carries a signature made with the key."""
    try:
        require_https(endpoint)
    except ValueError as exc:
        raise ConnectionStringError(f"the endpoint {exc}", "endpoint") from None


def _decode_key(value: str) -> bytes:
    try:
        key = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConnectionStringError("the access key is not valid base64", "accesskey") from None
    if not key:
        raise ConnectionStringError("the access key is empty", "accesskey")
    return key
