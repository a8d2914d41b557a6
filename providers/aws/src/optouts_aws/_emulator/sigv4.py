"""Checking a request's Signature Version 4 as AWS does, with botocore's own signer.

The ``Authorization`` header names a key, a credential scope (date, Region, service), the
signed headers and the signature. The verifier looks the key up, checks the scope and
the clock (AWS refuses a request signed more than 15 minutes off), rebuilds the request
from the signed headers, the path and the exact body bytes, and has botocore's
``SigV4Auth`` compute what the signature must be; a mismatch is a 403
``InvalidSignatureException``, an unknown key a 403 ``UnrecognizedClientException``.
Temporary keys must come with their session token (``X-Amz-Security-Token``).
"""

from __future__ import annotations

import hmac
import re
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone

from botocore.auth import SigV4Auth  # type: ignore[import-untyped]
from botocore.awsrequest import AWSRequest  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]

from .._model import SIGNING_NAME
from .wire import Reply, plain_error

__all__ = ["MAX_SKEW", "Key", "Verifier"]

MAX_SKEW = 15 * 60
"""Seconds a request's ``X-Amz-Date`` may be off the server's clock."""

_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})"
)
_AMZ_DATE = "%Y%m%dT%H%M%SZ"
_MISMATCH = (
    "The signature given does not match the one computed for this request. Check the "
    "secret access key and how the request is signed."
)


Key = tuple[str, "str | None"]
"""A secret access key and, for temporary credentials, its session token."""


class Verifier:
    """Verifies requests signed with one of ``keys`` (access key id → Key) for ``region``."""

    def __init__(
        self,
        keys: Mapping[str, Key],
        region: str,
        *,
        max_skew: float = MAX_SKEW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.keys = dict(keys)
        self.region = region
        self.max_skew = max_skew
        self._clock = clock

    def __repr__(self) -> str:
        return f"Verifier(region={self.region!r}, keys={len(self.keys)})"

    def verify(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes
    ) -> str:
        """The access key id that signed the request, or a ``Reply`` raised as AWS answers."""
        authorization = headers.get("authorization")
        if not authorization:
            raise plain_error(
                403, "MissingAuthenticationTokenException", "Missing Authentication Token"
            )
        match = _AUTHORIZATION.fullmatch(authorization.strip())
        if match is None:
            raise plain_error(
                400,
                "IncompleteSignatureException",
                "The Authorization header must hold AWS4-HMAC-SHA256 Credential=..., "
                "SignedHeaders=... and Signature=...",
            )
        parts = match["credential"].split("/")
        if len(parts) != 5 or parts[4] != "aws4_request":
            raise plain_error(
                400,
                "IncompleteSignatureException",
                "The credential must read KEY/DATE/REGION/SERVICE/aws4_request.",
            )
        key_id, day, region, service, _ = parts
        key = self.keys.get(key_id)
        if key is None:
            raise _unrecognized()
        _secret, token = key
        given_token = headers.get("x-amz-security-token")
        if token is not None and (
            given_token is None or not hmac.compare_digest(given_token, token)
        ):
            raise _unrecognized()
        if token is None and given_token is not None:
            raise _unrecognized()
        signed = match["signed"].split(";")
        if "host" not in signed or "x-amz-date" not in signed:
            raise plain_error(
                400,
                "IncompleteSignatureException",
                "SignedHeaders must include host and x-amz-date.",
            )
        if any(name not in headers for name in signed):
            raise plain_error(
                400, "IncompleteSignatureException", "A signed header is missing from the request."
            )
        stamp = headers["x-amz-date"]
        self._check_time(stamp)
        if day != stamp[:8]:
            raise _invalid("The date of the credential scope is not the date of X-Amz-Date.")
        if region != self.region:
            raise _invalid(
                f"The credential scope names Region {region!r}; this endpoint serves "
                f"{self.region!r}."
            )
        if service != SIGNING_NAME:
            raise _invalid(f"The credential scope must name the service {SIGNING_NAME!r}.")
        expected = self.signature(
            method, path, query, {n: headers[n] for n in signed}, body, stamp, key_id, key
        )
        if not hmac.compare_digest(expected, match["signature"]):
            raise _invalid(_MISMATCH)
        return key_id

    def _check_time(self, stamp: str) -> None:
        try:
            sent = datetime.strptime(stamp, _AMZ_DATE).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            raise plain_error(
                400, "IncompleteSignatureException", "X-Amz-Date must read YYYYMMDDTHHMMSSZ."
            ) from None
        now = self._clock()
        if sent < now - self.max_skew:
            raise _invalid("Signature expired: the request was signed more than 15 minutes ago.")
        if sent > now + self.max_skew:
            raise _invalid("Signature not yet current: the request is dated in the future.")

    def signature(
        self,
        method: str,
        path: str,
        query: str,
        signed_headers: Mapping[str, str],
        body: bytes,
        stamp: str,
        key_id: str,
        key: Key,
    ) -> str:
        """What the signature of this request must be, computed by botocore."""
        url = f"https://{signed_headers['host']}{path}" + (f"?{query}" if query else "")
        request = AWSRequest(method=method, url=url, data=body, headers=dict(signed_headers))
        request.context["timestamp"] = stamp
        signer = SigV4Auth(Credentials(key_id, key[0], key[1]), SIGNING_NAME, self.region)
        canonical = signer.canonical_request(request)
        return str(signer.signature(signer.string_to_sign(request, canonical), request))


def _invalid(message: str) -> Reply:
    return plain_error(403, "InvalidSignatureException", message)


def _unrecognized() -> Reply:
    return plain_error(
        403,
        "UnrecognizedClientException",
        "The access key or session token of the request is not one this account knows.",
    )
