"""An emulator of the RingCentral APIs optouts uses, as a plain ASGI app (no framework).

Written from the public OpenAPI excerpt in ``shared/reference/specs/ringcentral/``: the
OAuth token and revoke endpoints (JWT bearer grant with HTTP Basic client credentials,
single-use refresh tokens, ``OAU-128`` once a token expired or was replaced), v1 a2p-sms
opt-outs (list, bulk-assign) and v2 SMS consents (list, search, patch, export, history).

It behaves like the vendor where the library's correctness depends on it:

- paging tokens are real (keyset tokens bound to the query, so a token from another
  query is refused) and ``nextPageToken`` is absent on the last page;
- every response of a throttled group carries ``X-Rate-Limit-Group/Limit/Remaining/Window``;
  over the limit it answers 429 with ``Retry-After``, and a request during the penalty
  restarts the penalty;
- query values are decoded as a server does, so an unencoded ``+`` arrives as a space;
- the v1 list's ``from=*`` means any sender of the account (every record, each with its
  own ``from``), not only the records stored for ``*``;
- a session can end on the server side (``end_sessions``): its token then draws a 401
  ``OAU-149``, not the ``OAU-128`` of an expired one;
- faults on demand: latency, 5xx answers and dropped connections, at a rate or scheduled.

Time comes from an injectable ``clock`` so tests can expire tokens and windows without
sleeping. ``counts`` tallies requests per operationId, ``throttled`` the 429s per group.
Error codes the spec does not pin down (which OAU- code for a bad assertion, say) are the
emulator's own choice; the library keys on the codes it documents (``OAU-128``, CMN-).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import collections
import csv
import hashlib
import io
import itertools
import json
import random
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, MutableMapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

import attrs
import httpx

__all__ = [
    "DEFAULT_CLIENT_ID",
    "DEFAULT_CLIENT_SECRET",
    "DEFAULT_JWT",
    "Emulator",
    "RateLimit",
    "parse_rate_limit",
]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

DEFAULT_CLIENT_ID = "optouts-emulator-client"
DEFAULT_CLIENT_SECRET = "optouts-emulator-secret"
DEFAULT_JWT = (
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0."
    "eyJzdWIiOiJvcHRvdXRzLWVtdWxhdG9yIiwiYXVkIjoicmluZ2NlbnRyYWwifQ.emulator"
)
"""A JWT-shaped credential; the emulator accepts exactly the one it was given."""
ACCESS_PREFIX = "rcemu-at-"
REFRESH_PREFIX = "rcemu-rt-"

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_SHORT_CODE = re.compile(r"[0-9]{3,8}")
_STATUS_FILTER = {"optout": {"OptOut"}, "optin": {"OptIn"}, "all": {"OptOut", "OptIn"}}
_OPT_STATUSES = ("OptOut", "OptIn")
_SOURCES = ("Recipient", "Api", "Upstream", "Carrier")
_COVERAGES = ("PhoneNumber", "Account", "CampaignType")
_CAMPAIGN_TYPES = ("Conversational", "Informational", "Promotional")
_V1_SOURCE = {"Api": "Account"}
"""v1 says ``Account`` where v2 says ``Api``."""
WILDCARD = "*"
REJECTED_CODE = "EMU-101"
"""Code the emulator gives a record it refuses to change (see ``Emulator.rejected``)."""

Key = tuple[str, str]


@attrs.frozen
class RateLimit:
    """``limit`` requests per ``window`` seconds; ``penalty`` seconds of 429s beyond it."""

    limit: int
    window: float = 60.0
    penalty: float | None = None

    @property
    def penalty_seconds(self) -> float:
        return self.window if self.penalty is None else self.penalty


def parse_rate_limit(text: str) -> RateLimit:
    """``"50/60s"`` (or ``"50/60"``) as a RateLimit."""
    match = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*", text)
    if not match or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
        raise ValueError(f"expected LIMIT/WINDOWs such as 50/60s, not {text!r}")
    return RateLimit(int(match.group(1)), float(match.group(2)))


@attrs.define
class _Record:
    status: str
    source: str
    modified: datetime
    coverage: str = "PhoneNumber"


@attrs.define
class _Session:
    access: str
    refresh: str | None
    expires_at: float
    refresh_expires_at: float


@attrs.define
class _Group:
    limit: RateLimit
    arrivals: collections.deque[float] = attrs.field(factory=collections.deque)
    penalty_until: float = 0.0


@attrs.frozen
class _Call:
    """What a handler gets of a request."""

    query: str
    headers: dict[str, str]
    body: bytes


class _Reply(Exception):
    """Raised by handlers to answer with an error; caught by the dispatcher."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


@attrs.frozen
class _Route:
    method: str
    pattern: re.Pattern[str]
    operation: str
    group: str
    style: str
    """Error body shape: "v1", "v2" or "oauth"."""


_ACCOUNT = r"(?P<account>[^/]+)"
_ROUTES = (
    _Route("POST", re.compile(r"/restapi/oauth/token"), "getToken", "Auth", "oauth"),
    _Route("POST", re.compile(r"/restapi/oauth/revoke"), "revokeToken", "Auth", "oauth"),
    _Route(
        "GET",
        re.compile(rf"/restapi/v1\.0/account/{_ACCOUNT}/a2p-sms/opt-outs"),
        "readA2PSMSOptOuts",
        "Light",
        "v1",
    ),
    _Route(
        "POST",
        re.compile(rf"/restapi/v1\.0/account/{_ACCOUNT}/a2p-sms/opt-outs/bulk-assign"),
        "addA2PSMSOptOuts",
        "Light",
        "v1",
    ),
    _Route(
        "GET",
        re.compile(rf"/restapi/v2/accounts/{_ACCOUNT}/sms/consents"),
        "listSmsConsentRecords",
        "Light",
        "v2",
    ),
    _Route(
        "PATCH",
        re.compile(rf"/restapi/v2/accounts/{_ACCOUNT}/sms/consents"),
        "editSmsConsentRecords",
        "Light",
        "v2",
    ),
    _Route(
        "POST",
        re.compile(rf"/restapi/v2/accounts/{_ACCOUNT}/sms/consents/search"),
        "searchSmsConsentRecords",
        "Light",
        "v2",
    ),
    _Route(
        "GET",
        re.compile(rf"/restapi/v2/accounts/{_ACCOUNT}/sms/consents/export"),
        "exportSmsConsentRecords",
        "Light",
        "v2",
    ),
    _Route(
        "GET",
        re.compile(rf"/restapi/v2/accounts/{_ACCOUNT}/sms/consents/history"),
        "listSmsConsentHistoryRecords",
        "Light",
        "v2",
    ),
)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Emulator:
    """The RingCentral emulator; an instance is the ASGI app (``await emulator(scope, ...)``)."""

    def __init__(
        self,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        jwt: str = DEFAULT_JWT,
        account_id: str = "400123456008",
        account_number: str = "+16505550100",
        token_lifetime: float = 3600.0,
        refresh_tokens: bool = True,
        refresh_token_lifetime: float = 604800.0,
        rate_limit: RateLimit | None = RateLimit(50, 60.0),
        auth_rate_limit: RateLimit | None = RateLimit(5, 60.0),
        latency: float = 0.0,
        fault_rate: float = 0.0,
        drop_rate: float = 0.0,
        seed: int | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.jwt = jwt
        self.account_id = account_id
        self.account_number = account_number
        self.token_lifetime = token_lifetime
        self.refresh_tokens = refresh_tokens
        self.refresh_token_lifetime = refresh_token_lifetime
        self.latency = latency
        self.fault_rate = fault_rate
        self.drop_rate = drop_rate
        self.clock = clock
        self.now = now
        self._random = random.Random(seed)
        self._groups: dict[str, _Group] = {}
        if rate_limit is not None:
            self._groups["Light"] = _Group(rate_limit)
        if auth_rate_limit is not None:
            self._groups["Auth"] = _Group(auth_rate_limit)
        self._records: dict[Key, _Record] = {}
        self._keys: list[Key] = []
        self._by_recipient: dict[str, set[str]] = collections.defaultdict(set)
        self._history: list[tuple[str, dict[str, Any]]] = []
        self._sessions: dict[str, _Session] = {}
        self._access: dict[str, str] = {}
        """Access token -> session id, for live tokens."""
        self._dead: set[str] = set()
        """Access tokens replaced by a refresh: answered with OAU-128, like expired ones."""
        self._refresh: dict[str, str] = {}
        self._scheduled: collections.deque[str] = collections.deque()
        self._request_ids = itertools.count(1)
        self.counts: collections.Counter[str] = collections.Counter()
        """Requests per operationId (429s and faults included)."""
        self.throttled: collections.Counter[str] = collections.Counter()
        """429 answers per rate-limit group."""
        self.rejected: set[str] = set()
        """Recipients whose changes the emulator refuses, to produce partial failures."""

    # --- test helpers ------------------------------------------------------------------

    def put(
        self,
        sender: str,
        recipient: str,
        status: str = "OptOut",
        source: str = "Recipient",
        *,
        coverage: str | None = None,
    ) -> None:
        """Store a record directly (as a recipient's STOP would), bypassing the API."""
        self._upsert(sender, recipient, status, source, coverage)

    def put_many(self, pairs: Iterable[tuple[str, str]], status: str = "OptOut") -> None:
        """Store many records at once (sorting once), for large fixtures and benchmarks."""
        moment = self.now()
        for sender, recipient in pairs:
            key = (sender, recipient)
            if key not in self._records:
                self._keys.append(key)
                self._by_recipient[recipient].add(sender)
            coverage = "Account" if sender == WILDCARD else "PhoneNumber"
            self._records[key] = _Record(status, "Recipient", moment, coverage)
        self._keys.sort()

    def records(self) -> dict[Key, str]:
        """Every stored pair with its status, for assertions."""
        return {key: record.status for key, record in self._records.items()}

    def fail_next(self, kind: str = "503", count: int = 1) -> None:
        """Answer the next ``count`` API requests with a fault: "500", "503" or "drop"."""
        if kind not in ("500", "503", "drop"):
            raise ValueError("kind must be '500', '503' or 'drop'")
        self._scheduled.extend([kind] * count)

    def expire_tokens(self) -> None:
        """Make every live access token expired (as if its lifetime had passed)."""
        for session in self._sessions.values():
            session.expires_at = self.clock() - 1

    def end_sessions(self) -> None:
        """End every session on the server (an admin's sign-out, a password change): their
        access tokens draw 401 ``OAU-149`` and their refresh tokens are refused."""
        for session_id in list(self._sessions):
            self._end_session(session_id, replaced=False)

    def issue_token(self) -> str:
        """A valid access token without going through the token endpoint (for tests)."""
        return self._issue()["access_token"]  # type: ignore[no-any-return]

    @property
    def live_sessions(self) -> int:
        return len(self._sessions)

    # --- ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {
            name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope["headers"]
        }
        path = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        if self.latency > 0:
            await asyncio.sleep(self.latency)
        status, payload, extra, content_type = self._dispatch(
            scope["method"], path, query, headers, body
        )
        if status == -1:
            await self._drop(send)
            return
        out = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        response_headers = [
            (b"content-type", content_type.encode()),
            (b"content-length", str(len(out)).encode()),
            (b"rcrequestid", f"emu-{next(self._request_ids)}".encode()),
            *((name.encode(), value.encode()) for name, value in extra.items()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": out})

    async def _drop(self, send: Send) -> None:
        """Start an answer and break off: the client sees a connection that died mid-response."""
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"64")],
            }
        )
        raise httpx.RemoteProtocolError("emulated dropped connection")

    def _dispatch(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, Any, dict[str, str], str]:
        route, account, allowed = self._route(method, path)
        if route is None:
            if allowed:
                return (
                    405,
                    _v1_error("CMN-103", f"Method {method} is not allowed"),
                    {},
                    "application/json",
                )
            return (
                404,
                _v1_error("CMN-102", "Resource for parameter [path] is not found"),
                {},
                "application/json",
            )
        self.counts[route.operation] += 1
        extra: dict[str, str] = {}
        try:
            self._throttle(route, extra)
            if route.style != "oauth":
                fault = self._fault()
                if fault == "drop":
                    return -1, b"", {}, ""
                if fault:
                    raise _Reply(
                        int(fault), _error(route.style, "CMN-203", "Internal Server Error")
                    )
                self._authenticate(route, headers)
                if account not in ("~", self.account_id):
                    raise _Reply(
                        404,
                        _error(
                            route.style,
                            "CMN-102",
                            "Resource for parameter [accountId] is not found",
                            "accountId",
                        ),
                    )
            handler = getattr(self, f"_op_{route.operation}")
            result = handler(_Call(query, headers, body))
        except _Reply as reply:
            extra.update(reply.headers)
            return reply.status, reply.body, extra, "application/json"
        status, payload, content_type = result
        if route.style == "v2" and status == 200:
            extra["ETag"] = f'W/"{hashlib.sha256(repr(payload).encode()).hexdigest()[:16]}"'
        return status, payload, extra, content_type

    def _route(self, method: str, path: str) -> tuple[_Route | None, str, bool]:
        allowed = False
        for route in _ROUTES:
            match = route.pattern.fullmatch(path)
            if match:
                if route.method == method:
                    return route, match.groupdict().get("account") or "", True
                allowed = True
        return None, "", allowed

    def _throttle(self, route: _Route, extra: dict[str, str]) -> None:
        group = self._groups.get(route.group)
        if group is None:
            return
        now = self.clock()
        limit = group.limit
        extra.update(
            {
                "X-Rate-Limit-Group": route.group,
                "X-Rate-Limit-Limit": str(limit.limit),
                "X-Rate-Limit-Window": str(int(limit.window)),
            }
        )
        while group.arrivals and group.arrivals[0] <= now - limit.window:
            group.arrivals.popleft()
        if now < group.penalty_until or len(group.arrivals) >= limit.limit:
            # A request during the penalty restarts it, as RingCentral documents.
            group.penalty_until = now + limit.penalty_seconds
            group.arrivals.clear()
            self.throttled[route.group] += 1
            extra["X-Rate-Limit-Remaining"] = "0"
            retry = (
                str(int(limit.penalty_seconds))
                if limit.penalty_seconds >= 1
                else str(limit.penalty_seconds)
            )
            raise _Reply(
                429,
                _error(route.style, "CMN-301", "Request rate exceeded"),
                {"Retry-After": retry},
            )
        group.arrivals.append(now)
        extra["X-Rate-Limit-Remaining"] = str(limit.limit - len(group.arrivals))

    def _fault(self) -> str | None:
        if self._scheduled:
            return self._scheduled.popleft()
        if self.drop_rate and self._random.random() < self.drop_rate:
            return "drop"
        if self.fault_rate and self._random.random() < self.fault_rate:
            return self._random.choice(("500", "503"))
        return None

    # --- OAuth ---------------------------------------------------------------------------

    def _authenticate(self, route: _Route, headers: dict[str, str]) -> None:
        value = headers.get("authorization", "")
        if not value.lower().startswith("bearer "):
            raise _Reply(
                401, _error(route.style, "OAU-123", "Authorization header is not specified")
            )
        token = value[7:].strip()
        session_id = self._access.get(token)
        if session_id is None:
            if token in self._dead:
                raise _Reply(401, _error(route.style, "OAU-128", "Access token expired"))
            raise _Reply(401, _error(route.style, "OAU-149", "Invalid token"))
        session = self._sessions[session_id]
        if self.clock() >= session.expires_at:
            raise _Reply(401, _error(route.style, "OAU-128", "Access token expired"))

    def _client_ok(self, headers: dict[str, str]) -> bool:
        value = headers.get("authorization", "")
        if not value.lower().startswith("basic "):
            return False
        try:
            decoded = base64.b64decode(value[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return False
        client_id, _, client_secret = decoded.partition(":")
        return secrets.compare_digest(
            f"{client_id}:{client_secret}".encode(),
            f"{self.client_id}:{self.client_secret}".encode(),
        )

    def _form(self, headers: dict[str, str], query: str, body: bytes) -> dict[str, str]:
        if not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise _Reply(415, _oauth_error("invalid_request", "OAU-101", "Unsupported Media Type"))
        form = dict(parse_qsl(query))
        form.update(parse_qsl(body.decode("utf-8", "replace")))
        return form

    def _issue(self, session_id: str | None = None) -> dict[str, Any]:
        session_id = session_id or secrets.token_hex(8)
        now = self.clock()
        access = ACCESS_PREFIX + secrets.token_urlsafe(24)
        refresh = REFRESH_PREFIX + secrets.token_urlsafe(24) if self.refresh_tokens else None
        self._sessions[session_id] = _Session(
            access, refresh, now + self.token_lifetime, now + self.refresh_token_lifetime
        )
        self._access[access] = session_id
        if refresh:
            self._refresh[refresh] = session_id
        info: dict[str, Any] = {
            "access_token": access,
            "token_type": "bearer",
            "expires_in": int(self.token_lifetime),
            "scope": "A2PSMS SMS",
            "owner_id": "400123456008",
            "endpoint_id": "emulator-endpoint",
            "session_id": session_id,
        }
        if refresh:
            info["refresh_token"] = refresh
            info["refresh_token_expires_in"] = int(self.refresh_token_lifetime)
        return info

    def _end_session(self, session_id: str, *, replaced: bool) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            return
        self._access.pop(session.access, None)
        if replaced:
            self._dead.add(session.access)
        if session.refresh:
            self._refresh.pop(session.refresh, None)

    def _op_getToken(self, call: _Call) -> tuple[int, Any, str]:
        form = self._form(call.headers, "", call.body)
        if not self._client_ok(call.headers):
            raise _Reply(
                400, _oauth_error("invalid_client", "OAU-146", "Invalid client credentials")
            )
        grant = form.get("grant_type")
        if grant == JWT_GRANT:
            if not secrets.compare_digest(form.get("assertion", "").encode(), self.jwt.encode()):
                raise _Reply(400, _oauth_error("invalid_grant", "OAU-140", "Invalid JWT assertion"))
            return 200, self._issue(), "application/json"
        if grant == "refresh_token":
            session_id = self._refresh.pop(form.get("refresh_token", ""), None)
            session = self._sessions.get(session_id) if session_id else None
            if session is None or session_id is None or self.clock() >= session.refresh_expires_at:
                raise _Reply(
                    400, _oauth_error("invalid_grant", "OAU-211", "Token is revoked or expired")
                )
            self._end_session(session_id, replaced=True)
            return 200, self._issue(session_id), "application/json"
        raise _Reply(
            400, _oauth_error("unsupported_grant_type", "OAU-250", "Unsupported grant type")
        )

    def _op_revokeToken(self, call: _Call) -> tuple[int, Any, str]:
        form = self._form(call.headers, call.query, call.body)
        if not self._client_ok(call.headers):
            raise _Reply(
                400, _oauth_error("invalid_client", "OAU-146", "Invalid client credentials")
            )
        token = form.get("token", "")
        session_id = self._access.get(token) or self._refresh.get(token)
        if session_id is not None:
            self._end_session(session_id, replaced=False)
        return 200, b"", "application/json"

    # --- storage -----------------------------------------------------------------------

    def _upsert(
        self, sender: str, recipient: str, status: str, source: str, coverage: str | None
    ) -> None:
        account_wide = sender == WILDCARD or coverage == "Account"
        key = (WILDCARD if account_wide else sender, recipient)
        if key not in self._records:
            bisect.insort(self._keys, key)
            self._by_recipient[recipient].add(key[0])
        record = _Record(status, source, self.now(), "Account" if account_wide else "PhoneNumber")
        self._records[key] = record
        self._history.append((recipient, self._v2_record(key, record)))

    def _select(
        self,
        *,
        senders: set[str] | None,
        recipients: set[str] | None,
        statuses: set[str],
        coverages: set[str] | None,
        after: Key | None,
        limit: int,
    ) -> tuple[list[tuple[Key, _Record]], bool]:
        """Up to ``limit`` matching records after ``after`` in key order, and whether more match."""
        found: list[tuple[Key, _Record]] = []
        for key in self._candidates(senders, recipients, after):
            record = self._records[key]
            if record.status not in statuses:
                continue
            if senders is not None and key[0] not in senders:
                continue
            if recipients is not None and key[1] not in recipients:
                continue
            if coverages is not None and record.coverage not in coverages:
                continue
            if len(found) == limit:
                return found, True
            found.append((key, record))
        return found, False

    def _candidates(
        self, senders: set[str] | None, recipients: set[str] | None, after: Key | None
    ) -> Iterator[Key]:
        if recipients is not None:
            keys = sorted(
                (sender, to) for to in recipients for sender in self._by_recipient.get(to, ())
            )
            start = bisect.bisect_right(keys, after) if after else 0
            yield from keys[start:]
            return
        if senders is not None:
            for sender in sorted(senders):
                if after is not None and sender < after[0]:
                    continue
                low = (sender, "")
                start = (
                    bisect.bisect_right(self._keys, after)
                    if after and after[0] == sender
                    else bisect.bisect_left(self._keys, low)
                )
                for index in range(start, len(self._keys)):
                    key = self._keys[index]
                    if key[0] != sender:
                        break
                    yield key
            return
        start = bisect.bisect_right(self._keys, after) if after else 0
        yield from itertools.islice(self._keys, start, None)

    # --- paging tokens -------------------------------------------------------------------

    @staticmethod
    def _query_hash(query: Any) -> str:
        return hashlib.sha256(
            json.dumps(query, sort_keys=True, default=sorted).encode()
        ).hexdigest()[:12]

    @staticmethod
    def _token(after: Key | None, query_hash: str) -> str:
        """``<query hash>|<last from>|<last to>``, base64url: bound to its query, keyset."""
        return _pack(query_hash, *(after or ("", "")))

    def _read_token(self, token: str | None, query_hash: str, style: str) -> Key | None:
        if token is None:
            return None
        parts = _unpack(token)
        if parts is None or len(parts) != 3 or parts[0] != query_hash:
            raise _Reply(400, _invalid(style, "pageToken"))
        return (parts[1], parts[2]) if parts[1] else None

    def _paging(
        self,
        token: str | None,
        query_hash: str,
        per_page: int,
        rows: list[tuple[Key, _Record]],
        more: bool,
    ) -> dict[str, Any]:
        paging: dict[str, Any] = {
            "perPage": per_page,
            "pageToken": token or self._token(None, query_hash),
            "firstPageToken": self._token(None, query_hash),
        }
        if more and rows:
            paging["nextPageToken"] = self._token(rows[-1][0], query_hash)
        return paging

    # --- v1 ----------------------------------------------------------------------------

    @staticmethod
    def _v1_record(key: Key, record: _Record) -> dict[str, Any]:
        return {
            "from": key[0],
            "to": key[1],
            "status": record.status,
            "source": _V1_SOURCE.get(record.source, record.source),
        }

    def _op_readA2PSMSOptOuts(self, call: _Call) -> tuple[int, Any, str]:
        params = dict(parse_qsl(call.query, keep_blank_values=True))
        sender = params.get("from")
        if sender is not None and not _is_sender(sender):
            raise _Reply(400, _invalid("v1", "from"))
        recipient = params.get("to")
        if recipient is not None and not _E164.fullmatch(recipient):
            raise _Reply(400, _invalid("v1", "to"))
        status = params.get("status", "optout")
        if status not in _STATUS_FILTER:
            raise _Reply(400, _invalid("v1", "status"))
        per_page = _per_page(params.get("perPage"), default=1000, style="v1")
        query_hash = self._query_hash(["v1", sender, recipient, status, per_page])
        token = params.get("pageToken")
        after = self._read_token(token, query_hash, "v1")
        rows, more = self._select(
            # As a filter, ``*`` is any sender: RingCentral answers with every record.
            senders={sender} if sender is not None and sender != WILDCARD else None,
            recipients={recipient} if recipient is not None else None,
            statuses=_STATUS_FILTER[status],
            coverages=None,
            after=after,
            limit=per_page,
        )
        records = [self._v1_record(key, record) for key, record in rows]
        if "text/csv" in call.headers.get("accept", ""):
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["from", "to", "status", "source"])
            for item in records:
                writer.writerow([item["from"], item["to"], item["status"], item["source"]])
            return 200, out.getvalue().encode(), "text/csv"
        return (
            200,
            {"records": records, "paging": self._paging(token, query_hash, per_page, rows, more)},
            "application/json",
        )

    def _op_addA2PSMSOptOuts(self, call: _Call) -> tuple[int, Any, str]:
        data = _json(call.body, "v1")
        sender = data.get("from")
        if not isinstance(sender, str) or not _is_sender(sender):
            raise _Reply(400, _invalid("v1", "from"))
        opt_outs = data.get("optOuts") or []
        opt_ins = data.get("optIns") or []
        if (
            not isinstance(opt_outs, list)
            or not isinstance(opt_ins, list)
            or not (opt_outs or opt_ins)
        ):
            raise _Reply(400, _invalid("v1", "optOuts"))
        answer: dict[str, Any] = {}
        for field, status in (("optOuts", "OptOut"), ("optIns", "OptIn")):
            successful: list[str] = []
            failed: list[dict[str, str]] = []
            for number in data.get(field) or []:
                if not isinstance(number, str) or not _E164.fullmatch(number):
                    failed.append({"to": str(number), "errorMessage": "Phone number is invalid"})
                elif number in self.rejected:
                    failed.append({"to": number, "errorMessage": "Phone number cannot be changed"})
                else:
                    self._upsert(sender, number, status, "Api", None)
                    successful.append(number)
            answer[field] = {"successful": successful, "failed": failed}
        return 200, answer, "application/json"

    # --- v2 ----------------------------------------------------------------------------

    def _v2_record(self, key: Key, record: _Record) -> dict[str, Any]:
        sender = self.account_number if key[0] == WILDCARD else key[0]
        return {
            "from": sender,
            "to": key[1],
            "optStatus": record.status,
            "source": record.source,
            "coverage": record.coverage,
            "lastModifiedTime": _iso(record.modified),
        }

    def _search(
        self, filters: dict[str, Any], *, default_status: list[str] | None
    ) -> dict[str, Any]:
        senders = _numbers(filters.get("from"), "from")
        recipients = _numbers(filters.get("to"), "to")
        statuses = filters.get("optStatus", default_status)
        if statuses is None:
            statuses = list(_OPT_STATUSES)
        if isinstance(statuses, str):
            statuses = [statuses]
        if not isinstance(statuses, list) or not all(s in _OPT_STATUSES for s in statuses):
            raise _Reply(400, _invalid("v2", "optStatus"))
        coverages = _enum_list(filters.get("coverage"), _COVERAGES, "coverage")
        campaigns = _enum_list(filters.get("campaignType"), _CAMPAIGN_TYPES, "campaignType")
        per_page = _per_page(filters.get("perPage"), default=100, style="v2")
        token = filters.get("pageToken")
        if token is not None and not isinstance(token, str):
            raise _Reply(400, _invalid("v2", "pageToken"))
        query_hash = self._query_hash(
            [
                "v2",
                sorted(senders or []),
                sorted(recipients or []),
                sorted(statuses),
                sorted(coverages or []),
                sorted(campaigns or []),
                per_page,
            ]
        )
        after = self._read_token(token, query_hash, "v2")
        if campaigns is not None:
            rows: list[tuple[Key, _Record]] = []
            more = False  # no stored record has a campaign type
        else:
            rows, more = self._select(
                senders=senders,
                recipients=recipients,
                statuses=set(statuses),
                coverages=coverages,
                after=after,
                limit=per_page,
            )
        return {
            "records": [self._v2_record(key, record) for key, record in rows],
            "paging": self._paging(token, query_hash, per_page, rows, more),
        }

    def _op_searchSmsConsentRecords(self, call: _Call) -> tuple[int, Any, str]:
        data = _json(call.body, "v2")
        unknown = sorted(
            set(data)
            - {"from", "to", "optStatus", "coverage", "campaignType", "pageToken", "perPage"}
        )
        if unknown:
            raise _Reply(400, _invalid("v2", unknown[0]))
        return 200, self._search(data, default_status=None), "application/json"

    def _op_listSmsConsentRecords(self, call: _Call) -> tuple[int, Any, str]:
        filters: dict[str, Any] = {}
        for name, value in parse_qsl(call.query, keep_blank_values=True):
            if name in ("from", "to", "optStatus", "coverage", "campaignType"):
                filters.setdefault(name, []).append(value)
            elif name in ("pageToken", "perPage"):
                filters[name] = value
        return 200, self._search(filters, default_status=["OptOut"]), "application/json"

    def _op_editSmsConsentRecords(self, call: _Call) -> tuple[int, Any, str]:
        data = _json(call.body, "v2")
        records = data.get("records")
        if not isinstance(records, list) or not 1 <= len(records) <= 1000:
            raise _Reply(400, _invalid("v2", "records"))
        failed: list[dict[str, Any]] = []
        for record in records:
            problem = _record_problem(record)
            if problem is None and record["to"] in self.rejected:
                problem = (REJECTED_CODE, "Consent for this number cannot be changed")
            if problem is not None:
                echo = dict(record) if isinstance(record, dict) else {"record": record}
                echo["error"] = {"errorCode": problem[0], "message": problem[1]}
                failed.append(echo)
                continue
            self._upsert(
                record["from"],
                record["to"],
                record["optStatus"],
                record["source"],
                record.get("coverage"),
            )
        return 200, ({"failedRecords": failed} if failed else {}), "application/json"

    def _op_exportSmsConsentRecords(self, call: _Call) -> tuple[int, Any, str]:
        del call  # the export takes no filters
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["from", "to", "optStatus", "source", "coverage", "lastModifiedTime"])
        for key in self._keys:
            item = self._v2_record(key, self._records[key])
            writer.writerow(
                [
                    item[name]
                    for name in (
                        "from",
                        "to",
                        "optStatus",
                        "source",
                        "coverage",
                        "lastModifiedTime",
                    )
                ]
            )
        return 200, out.getvalue().encode(), "text/csv"

    def _op_listSmsConsentHistoryRecords(self, call: _Call) -> tuple[int, Any, str]:
        params = parse_qsl(call.query, keep_blank_values=True)
        recipients = {value for name, value in params if name == "to"}
        if len(recipients) > 20 or not all(_E164.fullmatch(number) for number in recipients):
            raise _Reply(400, _invalid("v2", "to"))
        single = dict(params)
        per_page = _per_page(single.get("perPage"), default=100, style="v2")
        query_hash = self._query_hash(["history", sorted(recipients), per_page])
        token = single.get("pageToken")
        offset = 0
        if token is not None:
            parts = _unpack(token)
            if parts is None or len(parts) != 2 or parts[0] != query_hash or not parts[1].isdigit():
                raise _Reply(400, _invalid("v2", "pageToken"))
            offset = int(parts[1])
        matching = [entry for to, entry in self._history if not recipients or to in recipients]
        page = matching[offset : offset + per_page]

        def make(at: int) -> str:
            return _pack(query_hash, str(at))

        paging: dict[str, Any] = {
            "perPage": per_page,
            "pageToken": token or make(0),
            "firstPageToken": make(0),
        }
        if offset + per_page < len(matching):
            paging["nextPageToken"] = make(offset + per_page)
        records = [
            {key: value for key, value in entry.items() if key != "lastModifiedTime"}
            | {"createdAt": entry["lastModifiedTime"]}
            for entry in page
        ]
        return 200, {"records": records, "paging": paging}, "application/json"


# --- helpers -----------------------------------------------------------------------------


def _pack(*parts: str) -> str:
    """An opaque paging token (plain text inside, so it never looks like a JWT)."""
    return base64.urlsafe_b64encode("|".join(parts).encode()).decode().rstrip("=")


def _unpack(token: str) -> list[str] | None:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode().split("|")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def _is_sender(value: str) -> bool:
    return value == WILDCARD or bool(_E164.fullmatch(value) or _SHORT_CODE.fullmatch(value))


def _v1_error(code: str, message: str, parameter: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"errorCode": code, "message": message}
    if parameter:
        entry["parameterName"] = parameter
    return {"errorCode": code, "message": message, "errors": [entry]}


def _v2_error(code: str, message: str, parameter: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"errorCode": code, "message": message}
    if parameter:
        entry["parameterName"] = parameter
    return {"errors": [entry]}


def _oauth_error(error: str, code: str, message: str) -> dict[str, Any]:
    return {
        "error": error,
        "error_description": message,
        "errors": [{"errorCode": code, "message": message}],
    }


def _error(style: str, code: str, message: str, parameter: str | None = None) -> dict[str, Any]:
    if style == "oauth":
        return _oauth_error("invalid_request", code, message)
    return (_v1_error if style == "v1" else _v2_error)(code, message, parameter)


def _invalid(style: str, parameter: str) -> dict[str, Any]:
    return _error(style, "CMN-101", f"Parameter [{parameter}] value is invalid.", parameter)


def _json(body: bytes, style: str) -> dict[str, Any]:
    try:
        data = json.loads(body or b"null")
    except ValueError:
        raise _Reply(400, _error(style, "CMN-100", "Request body is not valid JSON")) from None
    if not isinstance(data, dict):
        raise _Reply(400, _error(style, "CMN-100", "Request body must be a JSON object"))
    return data


def _per_page(value: Any, *, default: int, style: str) -> int:
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _Reply(400, _invalid(style, "perPage")) from None
    if isinstance(value, bool) or not 1 <= number <= 1000:
        raise _Reply(400, _invalid(style, "perPage"))
    return number


def _numbers(value: Any, name: str) -> set[str] | None:
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or not 1 <= len(value) <= 20
        or len(set(map(str, value))) != len(value)
        or not all(isinstance(number, str) and _E164.fullmatch(number) for number in value)
    ):
        raise _Reply(400, _invalid("v2", name))
    return set(value)


def _enum_list(value: Any, allowed: tuple[str, ...], name: str) -> set[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not value or not all(item in allowed for item in value):
        raise _Reply(400, _invalid("v2", name))
    return set(value)


def _record_problem(record: Any) -> tuple[str, str] | None:
    if not isinstance(record, dict):
        return "CMN-101", "Record must be an object"
    for field in ("from", "to"):
        if not isinstance(record.get(field), str) or not _E164.fullmatch(record[field]):
            return "CMN-101", f"Parameter [{field}] value is invalid."
    if record.get("optStatus") not in _OPT_STATUSES:
        return "CMN-101", "Parameter [optStatus] value is invalid."
    if record.get("source") not in _SOURCES:
        return "CMN-101", "Parameter [source] value is invalid."
    if record.get("coverage", "PhoneNumber") not in ("PhoneNumber", "Account"):
        return "CMN-101", "Parameter [coverage] value is invalid."
    return None
