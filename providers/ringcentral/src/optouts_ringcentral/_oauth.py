"""OAuth 2.0 for RingCentral as an ``httpx.Auth``: JWT bearer grant, proactive renewal, revoke.

The Auth group allows about five requests a minute and five live sessions per user, so a
login per request would lock an account out within seconds. One ``RingCentralAuth`` holds
one token for every request a provider sends, renews it shortly before it expires (with
the refresh token when one was issued, else by presenting the JWT again) and lets exactly
one renewal run at a time, whether the callers are threads, asyncio tasks or both.

The renewal logic is a pure generator (``_renewal``) shared by the two flows httpx drives:
``sync_auth_flow`` waits on a ``threading.Lock``; ``async_auth_flow`` queues tasks on an
``asyncio.Lock`` of their loop and then takes the same thread lock without blocking the
loop. Every renewal bumps a *generation*: a caller that finds the generation moved on while
it waited uses the new token instead of asking for another.

A 401 on a bearer request means the token is no good, whatever the code says: ``OAU-128``
(expired) renews it, any other (``OAU-149``: the session died on the server) logs in again
with the JWT. Either way it is one renewal under the same guard, then one more try; a 401
after that is the caller's AuthenticationError.

If the token endpoint refuses, the flow stops and its answer becomes the response of the
request that needed the token, so the provider maps it (AuthenticationError, RateLimited,
a retryable 5xx) exactly like any other error. A success without an access token raises
AuthenticationError from the flow: handed on, it would read as the API's empty answer.

Waits for a slot in the Auth group happen inside the flow, where the client's retry policy
cannot see them; a wait longer than ``max_wait`` (a 429 penalty of hours, say) is not
started: the flow raises RateLimited with the wait as ``retry_after``, the runner throws it
into the exchange, and the policy fails the batch at once if its deadline cannot hold it.
A wait that is started is announced on ``optouts.wait``.

With a ``TokenCache`` the session outlives the process: a renewal first looks at the cache
(another process may hold a usable token, or a newer refresh token) under a lock shared
with the other processes, and stores what the token endpoint gives. Only a token other
than the one being renewed is taken from the cache, so a session the server ended is not
picked up again.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import threading
import time
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any

import attrs
import httpx

from optouts import AuthenticationError, RateLimited, Secret, require_https
from optouts.plugin import clip

from ._errors import (
    LOGGED,
    OAUTH_PATH_PREFIX,
    PROVIDER,
    TOKEN_EXPIRED,
    error_code,
    json_body,
    request_id,
)
from ._ratelimit import AUTH_GROUP, Pacer, announce_wait
from ._tokencache import CachedToken, RenewalLock, TokenCache, cache_key

__all__ = [
    "DEFAULT_MAX_WAIT",
    "JWT_GRANT",
    "RingCentralAuth",
    "TokenState",
    "basic_authorization",
]

logger = logging.getLogger("optouts.ringcentral")

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_PATH = "/restapi/oauth/token"
REVOKE_PATH = "/restapi/oauth/revoke"
_FORM = "application/x-www-form-urlencoded"
_MAX_EARLY = 60.0
"""Renew at most this many seconds before expiry (a tenth of the lifetime when shorter)."""
_DEFAULT_LIFETIME = 3600.0
_POLL = 0.005
DEFAULT_MAX_WAIT = 300.0
"""Longest Auth-group wait the flow takes by default: the default retry deadline."""
_LOCK_POLL = 0.05
_LOCK_WAIT = 30.0
"""Longest wait for another process's renewal; then this one renews on its own."""


def basic_authorization(user_id: str, password: str) -> str:
    """An RFC 7617 ``Authorization`` value: ``Basic`` and base64 of ``user_id:password`` in
    UTF-8. Built here because httpx keeps its own builder private."""
    credentials = f"{user_id}:{password}".encode()
    return "Basic " + base64.b64encode(credentials).decode("ascii")


def _lifetime(value: Any, default: float) -> float:
    """Seconds from the token endpoint; ``default`` unless a positive finite number."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return default
    return seconds if math.isfinite(seconds) and seconds > 0 else default


@attrs.define(repr=False)
class TokenState:
    """The live token and when to stop using it; never printed."""

    access_token: str
    renew_at: float
    expires_at: float
    refresh_token: str | None = None
    refresh_expires_at: float = 0.0

    def __repr__(self) -> str:
        return f"<TokenState renew_at={self.renew_at:.1f} refresh={self.refresh_token is not None}>"


class RingCentralAuth(httpx.Auth):
    """Bearer tokens for API requests; HTTP Basic client credentials for the OAuth endpoints."""

    def __init__(
        self,
        server_url: str,
        client_id: str,
        client_secret: Secret,
        jwt: Secret,
        *,
        pacer: Pacer | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        max_wait: float | None = DEFAULT_MAX_WAIT,
        cache: TokenCache | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``cache``: keep the session there across processes (None: in memory only);
        ``wall_clock`` dates what is stored, since ``clock`` means nothing to another process."""
        self.server_url = require_https(server_url.strip()).rstrip("/")
        if max_wait is not None and not (math.isfinite(max_wait) and max_wait >= 0):
            raise ValueError(f"max_wait must be seconds (>= 0) or None, not {max_wait!r}")
        self.client_id = client_id
        self._client_secret = client_secret
        self._jwt = jwt
        self._pacer = pacer or Pacer(clock=clock)
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self.max_wait = max_wait
        """Longest wait for the Auth group the flow sleeps through (None: any)."""
        self._state_lock = threading.Lock()
        self._renewing = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
            weakref.WeakKeyDictionary()
        )
        self._token: TokenState | None = None
        self._generation = 0
        self.token_requests = 0
        """Token endpoint calls made (logins and refreshes), for tests and diagnostics."""
        self.cache = cache
        """Where the session is kept across processes; None when it lives in memory only."""
        self._wall_clock = wall_clock
        self._cache_key = cache_key(self.server_url, client_id, client_secret, jwt)
        self._saved = False
        """Whether the token held is the one in the cache (so another run may use it)."""

    def __repr__(self) -> str:
        return (
            f"<RingCentralAuth server_url={self.server_url!r} client_id={self.client_id!r} "
            f"logged_in={self._token is not None} cached={self.cache is not None}>"
        )

    @property
    def keeps_session(self) -> bool:
        """Whether the token held is in the cache for later runs: then closing leaves it be."""
        with self._state_lock:
            return self.cache is not None and self._saved and self._token is not None

    # --- token state (pure, under the state lock) -------------------------------------

    def _usable(self) -> tuple[str | None, int]:
        """The current token if it is not due for renewal, with its generation."""
        with self._state_lock:
            token = self._token
            if token is not None and self._clock() < token.renew_at:
                return token.access_token, self._generation
            return None, self._generation

    def _current(self) -> tuple[str, int]:
        """The token just stored, even if already due (a lifetime shorter than a request)."""
        with self._state_lock:
            token = self._token
            generation = self._generation
        if token is None:  # revoked by a close running meanwhile
            raise AuthenticationError("the RingCentral session was closed", provider=PROVIDER)
        return token.access_token, generation

    def _store(self, body: dict[str, Any], now: float) -> None:
        lifetime = _lifetime(body.get("expires_in"), _DEFAULT_LIFETIME)
        refresh = body.get("refresh_token")
        refresh_lifetime = _lifetime(body.get("refresh_token_expires_in"), 0.0)
        with self._state_lock:
            self._token = TokenState(
                access_token=str(body["access_token"]),
                renew_at=now + lifetime - min(_MAX_EARLY, lifetime / 10),
                expires_at=now + lifetime,
                refresh_token=str(refresh) if refresh else None,
                refresh_expires_at=now + refresh_lifetime if refresh_lifetime else now + lifetime,
            )
            self._generation += 1
            self._saved = False

    # --- the cache (other processes' view of the session) --------------------------------

    def _offset(self) -> float:
        """Wall-clock seconds minus ``clock`` seconds: what turns one into the other."""
        return self._wall_clock() - self._clock()

    def _save(self) -> None:
        """Store the token held, for the next run (nothing without a cache)."""
        if self.cache is None:
            return
        offset = self._offset()
        with self._state_lock:
            token = self._token
            if token is None:
                return
            cached = CachedToken(
                token.access_token,
                token.renew_at + offset,
                token.expires_at + offset,
                token.refresh_token,
                token.refresh_expires_at + offset,
            )
        saved = self.cache.save(self._cache_key, cached, self.server_url, self.client_id)
        with self._state_lock:
            if self._token is token:
                self._saved = saved

    def _load(self, cache: TokenCache) -> CachedToken | None:
        return cache.load(self._cache_key, self.server_url, self.client_id)

    def _from_cache(self) -> bool:
        """Take the cached session if it is not the one being renewed; True when it can be
        used as it is (else the renewal goes on, with its refresh token if it has one)."""
        if self.cache is None:
            return False
        cached = self._load(self.cache)
        if cached is None:
            return False
        offset = self._offset()
        with self._state_lock:
            if self._token is not None and self._token.access_token == cached.access_token:
                return False
            self._token = TokenState(
                access_token=cached.access_token,
                renew_at=cached.renew_at - offset,
                expires_at=cached.expires_at - offset,
                refresh_token=cached.refresh_token,
                refresh_expires_at=cached.refresh_expires_at - offset,
            )
            self._generation += 1
            self._saved = True
            usable = self._clock() < self._token.renew_at
        logger.debug("took the session from the token cache (%s)", "usable" if usable else "due")
        return usable

    def _cache_lock(self) -> Generator[float, httpx.Response, RenewalLock | None]:
        """The cache's renewal lock, polled (so no thread or loop blocks on another process)."""
        if self.cache is None:
            return None
        deadline = self._clock() + _LOCK_WAIT
        while True:
            lock = self.cache.try_lock(self._cache_key)
            if lock is not None:
                return lock
            if self._clock() >= deadline:
                logger.debug("another process holds the token cache lock; renewing anyway")
                return None
            yield _LOCK_POLL

    def end_sessions(self, cache: TokenCache) -> list[httpx.Request]:
        """Forget the token held and the one ``cache`` keeps (its entry is deleted now); the
        requests that revoke them, for the caller to send."""
        with self._state_lock:
            token, self._token = self._token, None
            self._generation += 1
            self._saved = False
        tokens = [token.access_token] if token is not None else []
        cached = self._load(cache)
        cache.delete(self._cache_key)
        if cached is not None and cached.access_token not in tokens:
            # The refresh token outlives the access token, and revoking it ends the session.
            tokens.append(cached.refresh_token or cached.access_token)
        return [self._revoke(value) for value in tokens]

    def _grant(self) -> tuple[str, dict[str, str]]:
        """Refresh when a live refresh token is held, otherwise present the JWT again."""
        with self._state_lock:
            token = self._token
            if token and token.refresh_token and self._clock() < token.refresh_expires_at - 1:
                return "refresh", {
                    "grant_type": "refresh_token",
                    "refresh_token": token.refresh_token,
                }
        return "jwt", {"grant_type": JWT_GRANT, "assertion": self._jwt.reveal()}

    def _forget_refresh_token(self) -> None:
        with self._state_lock:
            if self._token is not None:
                self._token.refresh_token = None

    def _basic(self, request: httpx.Request) -> None:
        header = basic_authorization(self.client_id, self._client_secret.reveal())
        request.headers["Authorization"] = header

    def _token_request(self, form: dict[str, str]) -> httpx.Request:
        request = httpx.Request(
            "POST",
            self.server_url + TOKEN_PATH,
            data=form,
            headers={"Accept": "application/json", "Content-Type": _FORM},
        )
        self._basic(request)
        return request

    def _renewal(
        self, generation: int
    ) -> Generator[httpx.Request | float, httpx.Response, httpx.Response | None]:
        """Get a new token unless someone did since ``generation``; returns a failed answer.

        Runs with the renewal lock held (and, with a cache, the cache's lock, so another
        process's renewal is seen rather than repeated). Yields seconds to wait (Auth-group
        pacing, the cache lock) and requests to send; the driver reads each response body
        before sending it back. A wait over ``max_wait`` raises RateLimited instead, and
        takes no slot. The driver closes it whatever happens, which releases the locks.
        """
        with self._state_lock:
            fresh = self._token is not None and self._clock() < self._token.renew_at
            if self._generation != generation and fresh:
                return None
        lock = yield from self._cache_lock()
        try:
            if self._from_cache():
                return None
            return (yield from self._token_exchange())
        finally:
            if lock is not None:
                lock.release()

    def _token_exchange(
        self,
    ) -> Generator[httpx.Request | float, httpx.Response, httpx.Response | None]:
        """Ask the token endpoint (refresh, else the JWT); store and cache what it gives."""
        for _ in range(2):
            kind, form = self._grant()
            slot = self._pacer.take(AUTH_GROUP, within=self.max_wait)
            if not slot.taken and self.max_wait is not None:
                raise _too_long(slot.delay, self.max_wait)
            if slot.delay > 0:
                announce_wait(slot.delay, self._pacer.why(AUTH_GROUP))
                try:
                    yield slot.delay
                except BaseException:  # closed during the wait (a cancelled call)
                    self._pacer.give_back(slot)
                    raise
            self.token_requests += 1
            logger.debug("requesting a token (%s grant)", kind)
            response = yield self._token_request(form)
            self._pacer.observe(TOKEN_PATH, response, AUTH_GROUP)
            body = json_body(response)
            if response.status_code < 400:
                self._store(_token_body(response, body), self._clock())
                self._save()
                return None
            if kind == "refresh" and response.status_code in (400, 401):
                # Refresh tokens are single-use and may be revoked: fall back to the JWT.
                code = error_code(body)
                logger.debug(
                    "refresh refused (%s); presenting the JWT again",
                    clip(code, LOGGED) if code else None,
                )
                self._forget_refresh_token()
                continue
            return response
        return response

    def _authorize(self, request: httpx.Request, token: str) -> None:
        request.headers["Authorization"] = f"Bearer {token}"

    @staticmethod
    def _is_oauth(request: httpx.Request) -> bool:
        return request.url.path.startswith(OAUTH_PATH_PREFIX)

    def _refused(self, response: httpx.Response, generation: int) -> None:
        """After a 401, make the token of ``generation`` due, so the next pass renews it once.

        Only ``OAU-128`` (expired) leaves the session alive to refresh; any other 401 means
        the server ended it, refresh token and all, so the renewal presents the JWT.
        """
        ended = error_code(json_body(response)) != TOKEN_EXPIRED
        with self._state_lock:
            if self._generation == generation and self._token is not None:
                self._token.renew_at = self._clock() - 1
                if ended:
                    self._token.refresh_token = None

    # --- revoke --------------------------------------------------------------------------

    def revoke_request(self) -> httpx.Request | None:
        """The request that ends the session, or None when there is none; forgets the token."""
        with self._state_lock:
            token, self._token = self._token, None
            self._generation += 1
            self._saved = False
        if token is None:
            return None
        return self._revoke(token.access_token)

    def _revoke(self, token: str) -> httpx.Request:
        return httpx.Request(
            "POST",
            self.server_url + REVOKE_PATH,
            data={"token": token},
            headers={"Content-Type": _FORM},
        )

    # --- the two flows httpx drives -----------------------------------------------------

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        if self._is_oauth(request):
            self._basic(request)
            yield request
            return
        for attempt in range(2):
            token, generation = self._usable()
            if token is None:
                with self._renewing:
                    failure = yield from self._drive_sync(self._renewal(generation))
                if failure is not None:
                    return
                token, generation = self._current()
            self._authorize(request, token)
            response = yield request
            if attempt or response.status_code != 401:
                return
            response.read()
            self._refused(response, generation)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        if self._is_oauth(request):
            self._basic(request)
            yield request
            return
        for attempt in range(2):
            token, generation = self._usable()
            if token is None:
                failure: httpx.Response | None = None
                async with self._loop_lock():
                    await self._acquire_thread_lock()
                    renewal = self._renewal(generation)
                    try:
                        reply: httpx.Response | None = None
                        while True:
                            try:
                                step = renewal.send(reply) if reply is not None else next(renewal)
                            except StopIteration as stop:
                                failure = stop.value
                                break
                            if isinstance(step, float):
                                await self._async_sleep(step)
                                reply = None
                                continue
                            reply = yield step
                            await reply.aread()
                    finally:
                        renewal.close()
                        self._renewing.release()
                if failure is not None:
                    return
                token, generation = self._current()
            self._authorize(request, token)
            response = yield request
            if attempt or response.status_code != 401:
                return
            await response.aread()
            self._refused(response, generation)

    def _drive_sync(
        self, renewal: Generator[httpx.Request | float, httpx.Response, httpx.Response | None]
    ) -> Generator[httpx.Request, httpx.Response, httpx.Response | None]:
        reply: httpx.Response | None = None
        try:
            while True:
                try:
                    step = renewal.send(reply) if reply is not None else next(renewal)
                except StopIteration as stop:
                    failure: httpx.Response | None = stop.value
                    return failure
                if isinstance(step, float):
                    self._sleep(step)
                    reply = None
                    continue
                reply = yield step
                reply.read()
        finally:
            renewal.close()

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._state_lock:
            lock = self._loop_locks.get(loop)
            if lock is None:
                lock = self._loop_locks[loop] = asyncio.Lock()
            return lock

    async def _acquire_thread_lock(self) -> None:
        """Take the cross-thread renewal lock without blocking the event loop."""
        while not self._renewing.acquire(blocking=False):
            await asyncio.sleep(_POLL)


def _token_body(response: httpx.Response, body: Any) -> dict[str, Any]:
    """A token endpoint's success, which must carry an access token to be one."""
    if isinstance(body, dict):
        token = body.get("access_token")
        if isinstance(token, str) and token:
            return body
    raise AuthenticationError(
        f"RingCentral's token endpoint answered HTTP {response.status_code} without an access "
        "token",
        provider=PROVIDER,
        status_code=response.status_code,
        code=error_code(body),
        request_id=request_id(response),
    )


def _too_long(delay: float, most: float) -> RateLimited:
    """The refusal of an Auth-group wait no caller agreed to sit through inside the flow."""
    return RateLimited(
        f"a RingCentral login must wait {delay:.0f}s for the Auth rate-limit group, "
        f"longer than the auth flow waits ({most:g}s)",
        retry_after=delay,
        provider=PROVIDER,
        status_code=None,
    )
