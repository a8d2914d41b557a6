"""Where credentials may go: HTTPS anywhere, plain HTTP only to this machine.

Providers sign or authorise every request; over plain HTTP a key, a token or a signature
would cross the network readable. Emulators listen on loopback, so that is the one
exception, and it is decided from the address itself, never from a name that DNS resolves.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

__all__ = ["is_loopback_host", "require_https"]


def is_loopback_host(host: str) -> bool:
    """True for ``localhost``, 127.0.0.0/8 and ``::1``: addresses that never leave the host."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def require_https(url: str) -> str:
    """Return ``url`` when it may carry credentials; raise ``ValueError`` saying why not.

    ``https://`` is always accepted; ``http://`` only for a loopback host (an emulator).
    The message never quotes the URL, which a misplaced secret could be part of.
    """
    try:
        split = urlsplit(url.strip())
        host = split.hostname or ""
    except ValueError:
        raise ValueError("is not a URL") from None
    scheme = split.scheme.lower()
    if scheme == "https" and host:
        return url
    if scheme == "http" and host:
        if is_loopback_host(host):
            return url
        raise ValueError(
            "must use https://: credentials are never sent over plain http:// "
            "except to this machine (localhost, 127.0.0.0/8, ::1), where the emulators run"
        )
    raise ValueError("must be an https:// URL")
