"""The app that composes the parts: it reads an ASGI request, routes it, counts it, applies
the rate limits, faults and authentication, then hands it to its operation's handler."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import itertools
import json
import random
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from optouts.emulators import read_body

from .faults import _Faults
from .oauth import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_JWT, _OAuth, _Session
from .ratelimits import RateLimit, _Group, _RateLimits
from .routes import _ROUTES, _Route
from .store import Key, _Record, _utcnow
from .v1 import _V1Routes
from .v2 import _V2Routes
from .wire import Receive, Scope, Send, _Call, _error, _Reply, _v1_error


class Emulator(_OAuth, _RateLimits, _Faults, _V1Routes, _V2Routes):
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
        rate_limit: RateLimit | None = RateLimit(50, 60.0),  # noqa: B008 - frozen, shared safely
        auth_rate_limit: RateLimit | None = RateLimit(5, 60.0),  # noqa: B008
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await read_body(receive)
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
