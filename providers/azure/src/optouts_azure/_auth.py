"""HMAC-SHA256 request signing for Azure Communication Services, as an ``httpx.Auth``.

The signature covers the verb, the path and query exactly as sent, the date, the host and
a hash of the exact body bytes, so the body must be read before signing
(``requires_request_body``). The date is formatted without the process locale, which the
vendor SDKs' strftime gets wrong under non-English locales.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Generator
from email.utils import formatdate

import httpx

__all__ = ["HMACAuth", "content_hash", "string_to_sign"]

SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"


def content_hash(body: bytes) -> str:
    """Base64 of the SHA-256 of ``body`` (the ``x-ms-content-sha256`` header)."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def string_to_sign(method: str, path_and_query: str, date: str, host: str, body_hash: str) -> str:
    return f"{method.upper()}\n{path_and_query}\n{date};{host};{body_hash}"


class HMACAuth(httpx.Auth):
    """Signs each request with the resource's access key.

    ``clock`` returns the Unix time to sign with; tests fix it to reproduce signatures.
    """

    requires_request_body = True

    def __init__(self, key: bytes, *, clock: Callable[[], float] = time.time) -> None:
        self._key = key
        self._clock = clock

    def __repr__(self) -> str:
        return "HMACAuth(key='********')"

    def sign(self, request: httpx.Request) -> None:
        """Add ``x-ms-date``, ``x-ms-content-sha256`` and ``Authorization`` to ``request``."""
        date = formatdate(self._clock(), usegmt=True)
        body_hash = content_hash(request.content)
        # The Host header is what the server sees: httpx writes it from the URL,
        # with the port only when it is not the scheme's default.
        host = request.headers.get("host") or request.url.netloc.decode("ascii")
        path_and_query = request.url.raw_path.decode("ascii")
        message = string_to_sign(request.method, path_and_query, date, host, body_hash)
        digest = hmac.new(self._key, message.encode("utf-8"), hashlib.sha256).digest()
        signature = base64.b64encode(digest).decode("ascii")
        request.headers["x-ms-date"] = date
        request.headers["x-ms-content-sha256"] = body_hash
        request.headers["Authorization"] = (
            f"HMAC-SHA256 SignedHeaders={SIGNED_HEADERS}&Signature={signature}"
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request
