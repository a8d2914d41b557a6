"""Taking credentials out of AWS's own words before they reach an exception or a log.

AWS's signature errors may quote the request back: ``IncompleteSignatureException`` can
repeat the ``Authorization`` header (``Credential=<key id>/<scope>``, ``Signature=<hex>``),
and ``InvalidSignatureException`` the canonical request, session-token header included.
Every text read from an AWS answer passes through ``redact`` before it is kept, and before
it is cut to length (a cut could leave half a signature that no pattern would know).
``SignedHeaders=`` names headers, not values, and stays.
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "redact"]

REDACTED = "<redacted>"

_VALUE = r"[^\s,;'\"&]+"
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # Credential=AKIA…/20261201/us-east-1/sms-voice/aws4_request, X-Amz-Credential=…
    (re.compile(rf"(?i)(credential=)({_VALUE})"), rf"\g<1>{REDACTED}"),
    # Signature=<64 hex>, X-Amz-Signature=… (SignedHeaders= is another word and stays)
    (re.compile(rf"(?i)(signature=)({_VALUE})"), rf"\g<1>{REDACTED}"),
    # the session token as a header line, a query parameter or a JSON member
    (
        re.compile(
            rf"(?i)((?:x-amz-security-token|security[_-]?token|session[_-]?token)"
            rf"['\"]?\s*[=:]\s*['\"]?)({_VALUE})"
        ),
        rf"\g<1>{REDACTED}",
    ),
    # an access key id wherever it stands (long-term AKIA…, temporary ASIA…)
    (re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"), REDACTED),
    # a bare SHA-256 in hex: a signature quoted without its name, or a canonical hash
    (re.compile(r"(?<![0-9A-Fa-f])[0-9A-Fa-f]{64}(?![0-9A-Fa-f])"), REDACTED),
)


def redact(text: str) -> str:
    """``text`` with key ids, signatures, credential scopes and session tokens taken out."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
