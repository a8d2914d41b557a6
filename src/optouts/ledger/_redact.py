"""Passwords out of text: a database URL or a driver's message must never show one.

libpq and psycopg quote what they were given when they cannot read it (``… in URI:
"postgresql://u:pw@[::1"``), so a message is scrubbed twice: of the passwords known from
the URL, as written and percent-decoded, and of anything shaped like one (the password of
a URL's user info, a ``…password=`` parameter of a URL or of a ``key=value`` string).
"""

from __future__ import annotations

import re
from urllib.parse import unquote

__all__ = ["looks_like_conninfo", "passwords_in", "scrub"]

_USERINFO = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/?#@\s\"']*):[^@\s\"']*@")
"""``scheme://user:password@``: the password may hold anything but ``@`` (libpq reads up
to the last one only in a well-formed URL; a message quotes the text as given)."""
_PARAMETER = re.compile(
    r"(?P<head>(?:^|[?&\s;,(\"'])[A-Za-z0-9_%]*?pass(?:%77|w)ord\s*=\s*)"
    r"(?:'(?:[^'\\]|\\.)*'?|\"(?:[^\"\\]|\\.)*\"?|[^&\s\"']*)",
    re.IGNORECASE,
)
"""``password=…`` (also ``sslpassword``, percent-encoded names), quoted or not."""
_CONNINFO_KEY = re.compile(r"\s*([A-Za-z_]+)\s*=")
_LIBPQ_KEYWORDS = frozenset(
    {
        "host",
        "hostaddr",
        "port",
        "dbname",
        "user",
        "password",
        "passfile",
        "require_auth",
        "channel_binding",
        "connect_timeout",
        "client_encoding",
        "options",
        "application_name",
        "fallback_application_name",
        "keepalives",
        "keepalives_idle",
        "keepalives_interval",
        "keepalives_count",
        "tcp_user_timeout",
        "replication",
        "gssencmode",
        "sslmode",
        "requiressl",
        "sslcompression",
        "sslcert",
        "sslkey",
        "sslpassword",
        "sslcertmode",
        "sslrootcert",
        "sslcrl",
        "sslcrldir",
        "sslsni",
        "requirepeer",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "krbsrvname",
        "gsslib",
        "gssdelegation",
        "service",
        "target_session_attrs",
        "load_balance_hosts",
    }
)
"""libpq's connection keywords (https://www.postgresql.org/docs/current/libpq-connect.html)."""


def passwords_in(url: str) -> list[str]:
    """The passwords ``url`` holds, as written and percent-decoded, longest first; found
    without parsing the URL, so that one too broken to parse is scrubbed as well."""
    found: list[str] = []
    rest = url.split("://", 1)[1] if "://" in url else ""
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    if "@" in authority:
        userinfo = authority.rsplit("@", 1)[0]
        if ":" in userinfo:
            found.append(userinfo.split(":", 1)[1])
    query = url.split("?", 1)[1].split("#", 1)[0] if "?" in url else ""
    for part in query.split("&"):
        name, eq, value = part.partition("=")
        if eq and unquote(name).strip().lower().endswith("password"):
            found.append(value)
    found += [unquote(secret) for secret in found]
    return sorted({secret for secret in found if secret}, key=len, reverse=True)


def scrub(text: str, secrets: list[str] | tuple[str, ...] = ()) -> str:
    """``text`` with ``secrets`` and anything shaped like a password as ``***``."""
    for secret in secrets:
        text = text.replace(secret, "***")
    text = _USERINFO.sub(r"\g<head>:***@", text)
    return _PARAMETER.sub(r"\g<head>***", text)


def looks_like_conninfo(text: str) -> bool:
    """Whether ``text`` is a libpq ``key=value`` connection string (``host=db port=5432``),
    which is not a file path: its first word is one of libpq's keywords, then ``=``."""
    match = _CONNINFO_KEY.match(text)
    return match is not None and match.group(1).lower() in _LIBPQ_KEYWORDS
