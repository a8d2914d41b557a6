"""``GET /audit?number=E164``: what ``optouts audit`` shows, as a page a person reads in a browser.

Someone asks "when did this number opt out, and did every vendor get it?" and the person
answering has a browser, not a shell on the ledger's host. The page answers with the same
three parts as the command: the state per sender, every change received (when and from
where), and what each vendor confirmed. It is plain server-rendered HTML: no script at all,
so there is nothing to build and nothing a hostile value could run.

Access is the service's API key, as a bearer token or as the password of HTTP Basic (any
user name): a browser asks for Basic itself when the page answers 401 with a Basic
challenge, so a person needs nothing but the key. With no key configured the page does
not exist (404): an audit trail names people's numbers and is never open.

Sources come from vendors and files, so every value is escaped, and shown through
``printable`` as the command line shows it (controls and bidi overrides written out).
The headers forbid scripts, framing, sniffing, caching and referrers.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Sequence
from html import escape

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Route

from .._config import Secret
from .._errors import ConfigurationError, InvalidNumber, ProviderError, printable
from .._numbers import normalize
from ..ledger import AuditTrail, Ledger
from ..ledger._base import iso_utc

__all__ = ["audit_route"]

REALM = "optouts audit"
"""What a browser's login prompt names."""

HEADERS = {
    # No script may run, no other origin is loaded, and the form posts only here; the
    # page's own <style> is the one thing allowed inline.
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    # A number's trail must not stay in a shared cache or leak through a link followed.
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}

_ENTERED = 64
"""Characters of what was typed that the form shows back (a query may be megabytes)."""

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 1.5rem auto; max-width: 72rem;
       padding: 0 1rem; color: #1b1b1b; }
form { margin-bottom: 1.5rem; }
input { font: inherit; padding: .2rem .4rem; }
table { border-collapse: collapse; margin: 1rem 0 2rem; width: 100%; }
caption { text-align: left; font-weight: 600; font-size: 1.1rem; padding-bottom: .4rem; }
th, td { text-align: left; padding: .3rem .6rem; border-bottom: 1px solid #ddd;
         vertical-align: top; overflow-wrap: anywhere; }
.opted-out { color: #a40000; font-weight: 600; }
.problem { color: #a40000; }
"""


def audit_route(
    get_ledger: Callable[[], Ledger],
    api_keys: Sequence[Secret | str],
    *,
    default_region: str | None = None,
) -> Route:
    """The audit page's route (``GET /audit``), for the service to mount.

    ``get_ledger`` is called for each request, in a worker thread (opening or reading a
    ledger blocks); a ``ConfigurationError`` from it or from the read (no ledger there)
    answers 503 saying so. ``api_keys`` are read once, here. ``default_region`` lets a
    number be typed without its country code, as the command line's setting does.
    """
    revealed = (key.reveal() if isinstance(key, Secret) else key for key in api_keys)
    keys = tuple(key.encode() for key in revealed if key)  # a blank key is no key

    async def audit_page(request: Request) -> Response:
        if not keys:
            return PlainTextResponse("Not Found", status_code=404)
        if not _authorized(request.headers.get("authorization", ""), keys):
            return _page(
                401,
                "optouts audit",
                '<p class="problem">This page needs the service\'s API key: as the password '
                "(any user name), or as a bearer token.</p>",
                headers={"WWW-Authenticate": f'Basic realm="{REALM}"'},
            )
        entered = request.query_params.get("number", "")
        if not entered.strip():
            return _page(
                400,
                "optouts audit",
                _form("") + '<p class="problem">Enter a phone number to audit, in E.164 '
                "form such as +12025550123.</p>",
            )
        try:
            number = normalize(entered, default_region)
        except InvalidNumber as exc:
            return _page(
                400,
                "optouts audit",
                _form(entered) + f'<p class="problem">Not a number to audit: {_text(exc)}</p>',
            )
        try:
            trail = await run_in_threadpool(_read, get_ledger, number)
        except ConfigurationError as exc:
            return _unavailable(number, f"The ledger cannot be read: {_text(exc)}")
        except ProviderError as exc:
            if not exc.retryable:
                raise
            return _unavailable(number, "The ledger's database cannot be reached now; try again.")
        return _page(200, f"optouts audit: {number}", _form(number) + _trail(number, trail))

    return Route("/audit", audit_page, methods=["GET"], name="audit")


def _read(get_ledger: Callable[[], Ledger], number: str) -> AuditTrail:
    return get_ledger().audit(number)


# Who may look


def _authorized(header: str, keys: Sequence[bytes]) -> bool:
    """Whether ``header`` carries one of ``keys``, compared in constant time with every key
    (no early exit), so how long a refusal takes says nothing of which key came close."""
    presented = _presented_key(header)
    if presented is None:
        return False
    found = False
    for key in keys:
        found |= hmac.compare_digest(presented, key)
    return found


def _presented_key(header: str) -> bytes | None:
    """The key in an ``Authorization`` header: a bearer token, or Basic's password.

    Header text arrives decoded as Latin-1, so encoding it back gives the bytes sent.
    """
    scheme, _, credentials = header.strip().partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials.encode("latin-1")
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.encode("latin-1"), validate=True)
        except (binascii.Error, ValueError):
            return None
        _, colon, password = decoded.partition(b":")
        return password if colon else None
    return None


# What they see


def _page(status: int, title: str, body: str, headers: dict[str, str] | None = None) -> Response:
    html = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_text(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{_text(title)}</h1>{body}</body></html>\n"
    )
    return HTMLResponse(html, status_code=status, headers={**HEADERS, **(headers or {})})


def _unavailable(number: str, why: str) -> Response:
    return _page(503, "optouts audit", _form(number) + f'<p class="problem">{why}</p>')


def _form(number: str) -> str:
    # No action: the form asks the page's own address, wherever the service mounts it.
    shown = number if len(number) <= _ENTERED else number[:_ENTERED]
    return (
        '<form method="get"><label for="number">Phone number (E.164)</label> '
        f'<input id="number" name="number" type="tel" value="{_text(shown)}" '
        'required autocomplete="off"> <button type="submit">Audit</button></form>'
    )


def _trail(number: str, trail: AuditTrail) -> str:
    """The three tables; every cell is built as HTML here, vendor and file text escaped."""
    if not trail.current:
        return f"<p>The ledger has no record of {_text(number)}.</p>"
    current = [
        (
            _text(s),
            _state(out, "opted-out", "opted-in"),
            _text(c or ""),
            _text(src),
            _when(first),
            _when(last),
        )
        for s, out, c, src, first, last in trail.current
    ]
    history = [
        (_when(at), _text(s), _state(out, "opt-out", "opt-in"), _text(src))
        for s, out, src, at in trail.history
    ]
    confirmed = [
        (_text(s), _text(t), _state(out, "opted-out", "opted-in"), _when(at))
        for s, t, out, at in trail.confirmations
    ]
    return (
        _table(
            "Current state",
            ("sender", "status", "country", "source", "first received", "last change"),
            current,
        )
        + _table("History", ("time", "sender", "action", "source"), history)
        + _table(
            "Vendor confirmations",
            ("sender", "vendor", "state confirmed", "at"),
            confirmed,
            empty="No vendor has confirmed a state for this number yet.",
        )
    )


def _state(opted_out: bool, out: str, into: str) -> str:
    return f'<span class="opted-out">{out}</span>' if opted_out else into


def _when(micros: int) -> str:
    """ISO 8601 UTC, exactly as ``optouts audit`` and every other output write a time."""
    exact = iso_utc(micros)
    return f'<time datetime="{exact}">{exact}</time>'


def _table(
    caption: str, columns: Sequence[str], rows: Sequence[Sequence[str]], *, empty: str = ""
) -> str:
    """A table of cells that are already HTML."""
    head = "".join(f'<th scope="col">{name}</th>' for name in columns)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not rows:
        body = f'<tr><td colspan="{len(columns)}">{empty}</td></tr>'
    return (
        f"<table><caption>{caption}</caption><thead><tr>{head}</tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _text(value: object) -> str:
    """``value`` as page text: shown as written, never read as markup (controls, bidi
    overrides and lone surrogates written out as escapes, as on a terminal)."""
    return escape(printable(str(value)))
