"""Provider ``ringcentral``: opt-outs through the v1 a2p-sms API or the v2 consents API.

Every operation is an exchange (see ``optouts.Provider``): it asks the pacer for a slot,
yields ``Sleep`` when it must wait, yields the request, and maps the answer. Retrying and
paging stay with the client. What this module decides is *how many requests* a call
costs, because at 50 requests a minute that is the real price:

- add/remove carry up to 1000 numbers per request;
- check picks the cheaper of two plans for the batch at hand: look recipients up (v1: one
  request per recipient, v2: one per 20) or list the opt-outs that can apply to the sender
  (one request per 1000 records). The listing plan stops as soon as it has cost as much as
  the lookups would have, and falls back to them, so a wrong guess about the list's size
  costs at most twice the better plan; the sizes it learns steer the next choice.

Whatever a plan reads, a record counts for sender S only when its own sender is S or the
account-wide ``*``: v1's ``from=*`` filter means *any* sender, so the v1 listing plan lists
``from=*`` once (every sender's opt-outs, S's included) and keeps S's and ``*``'s records.

The session may be kept across processes (``token_cache``): off for library clients unless
asked for, on by default while the ``optouts`` command line runs a command
(``optouts.plugin.keeps_sessions``). A kept session is not revoked on close; ``logout()``
revokes it.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar, Literal

import attrs
import httpx

from optouts import (
    AuthenticationError,
    Capability,
    ConfigurationError,
    Exchange,
    InvalidCursor,
    Note,
    OptOut,
    OptOutError,
    Outcome,
    Page,
    Provider,
    ProviderError,
    RateLimited,
    Results,
    Secret,
    Setting,
    Settings,
    Status,
    StatusFilter,
    UnsupportedOperation,
    require_https,
)
from optouts.plugin import WILDCARD, keeps_sessions

from . import _v1, _v2
from ._errors import OAUTH_PATH_PREFIX, PROVIDER, error_from_response, json_body
from ._oauth import DEFAULT_MAX_WAIT, REVOKE_PATH, RingCentralAuth
from ._ratelimit import AUTH_GROUP, Pacer
from ._tokencache import TokenCache

__all__ = ["API_CONSENTS", "API_V1", "CheckPlan", "RingCentralProvider"]

logger = logging.getLogger("optouts.ringcentral")

DEFAULT_SERVER = "https://platform.ringcentral.com"
API_V1 = "a2p-sms"
API_CONSENTS = "consents"
_API_ALIASES = {"a2p-sms": API_V1, "v1": API_V1, "consents": API_CONSENTS, "v2": API_CONSENTS}
_LIST_PAGE = 1000
_CURSOR_PREFIX = "rc1."

PlanName = Literal["lookup", "list"]

"""The key the ``optouts`` command line sets in its click context's ``meta``: there, an
unset ``token_cache`` means on (a person runs command after command); elsewhere, off."""
_FLAGS = {"true": True, "1": True, "yes": True, "on": True}
_FLAGS.update({"false": False, "0": False, "no": False, "off": False})


def _parse_server_url(value: object) -> str:
    """HTTPS, or plain HTTP to this machine (an emulator): the JWT and tokens travel there."""
    return require_https(str(value).strip().rstrip("/"))


def _parse_api(value: object) -> str:
    text = str(value).strip().lower()
    if text not in _API_ALIASES:
        raise ValueError("must be 'a2p-sms' (v1) or 'consents' (v2)")
    return _API_ALIASES[text]


def _parse_flag(value: object) -> bool:
    if isinstance(value, bool):
        return value
    flag = _FLAGS.get(str(value).strip().lower())
    if flag is None:
        raise ValueError("must be true or false")
    return flag


def _reveal(value: str | Secret) -> Secret:
    return value if isinstance(value, Secret) else Secret(value)


def _setting(name: str, parse: Callable[[object], str], value: object) -> str:
    """A constructor argument parsed as its setting is, refused as the settings refuse it."""
    try:
        return parse(value)
    except ValueError as error:
        raise ConfigurationError(f"setting {name!r} of provider {PROVIDER!r} {error}") from None


@attrs.frozen
class CheckPlan:
    """How the last check was answered, and what each plan was expected to cost."""

    plan: PlanName
    recipients: int
    lookup_requests: int
    """Requests the lookup plan needs for this batch."""
    list_requests: int
    """Requests the listing plan was expected to need (learned sizes, else one per list)."""
    requests: int = 0
    """Requests the check actually sent."""
    fell_back: bool = False
    """True when the listing ran over the lookup plan's cost and lookups finished the job."""


@attrs.define
class _Counter:
    requests: int = 0


def encode_cursor(api: str, token: str) -> str:
    raw = f"{api}\n{token}".encode()
    return _CURSOR_PREFIX + base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(api: str, cursor: str) -> str:
    """The pageToken inside a cursor this provider handed out for the same API."""
    if not cursor.startswith(_CURSOR_PREFIX):
        raise InvalidCursor(f"not a RingCentral cursor: {cursor[:40]!r}")
    data = cursor[len(_CURSOR_PREFIX) :]
    try:
        text = base64.urlsafe_b64decode(data + "=" * (-len(data) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor(f"not a RingCentral cursor: {cursor[:40]!r}") from None
    kind, _, token = text.partition("\n")
    if kind != api or not token:
        raise InvalidCursor(f"this cursor belongs to another RingCentral API than {api!r}")
    return token


class RingCentralProvider(Provider):
    """RingCentral High Volume SMS opt-outs (``api="a2p-sms"``) or SMS consents (``"consents"``)."""

    name: ClassVar[str] = "ringcentral"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    max_batch: ClassVar[int] = 10_000
    """Large on purpose: a big batch lets check list once instead of looking up each number.
    Requests themselves carry at most 1000 numbers (20 per v2 search filter)."""
    max_page_size: ClassVar[int] = 1000
    default_page_size: ClassVar[int] = 1000
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting(
            "server_url",
            "RingCentral API server",
            default=DEFAULT_SERVER,
            parse=_parse_server_url,
            env_aliases=("RC_SERVER_URL",),
        ),
        Setting("client_id", "app client ID", required=True, env_aliases=("RC_CLIENT_ID",)),
        Setting(
            "client_secret",
            "app client secret",
            required=True,
            secret=True,
            env_aliases=("RC_CLIENT_SECRET",),
        ),
        Setting(
            "jwt",
            "JWT credential from the developer console",
            required=True,
            secret=True,
            env_aliases=("RC_JWT",),
        ),
        Setting("account_id", "account ID ('~' is the authenticated account)", default="~"),
        Setting(
            "api", "'a2p-sms' (v1, default) or 'consents' (v2)", default=API_V1, parse=_parse_api
        ),
        Setting(
            "token_cache",
            "keep the session in the user cache directory across runs "
            "(default: on in the command line, off in the library)",
            parse=_parse_flag,
        ),
    )

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str | Secret,
        jwt: str | Secret,
        server_url: str = DEFAULT_SERVER,
        account_id: str = "~",
        api: str = API_V1,
        pacer: Pacer | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        auth_max_wait: float | None = DEFAULT_MAX_WAIT,
        token_cache: bool | TokenCache = False,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        """``auth_max_wait``: longest pause for the Auth group (a login, a refresh) taken
        inside the auth flow, out of the retry policy's sight; a longer one fails the
        request at once with RateLimited, which the policy then weighs. Keep it at most
        the ``RetryPolicy.deadline`` of the clients using this provider (None: no bound).

        ``token_cache``: True keeps the session in the user cache directory for later
        processes (a ``TokenCache`` keeps it there instead); False, the default, logs in
        for this provider alone and revokes on close."""
        self.server_url = _setting("server_url", _parse_server_url, server_url)
        self.account_id = account_id
        self.api = _setting("api", _parse_api, api)
        self.pacer = pacer or Pacer(clock=clock)
        self._token_cache = token_cache if isinstance(token_cache, TokenCache) else None
        if token_cache is True:
            self._token_cache = TokenCache()
        self._logout: list[httpx.Request] = []
        """Revokes ``logout()`` asked for, sent on close."""
        self._auth = RingCentralAuth(
            self.server_url,
            client_id,
            _reveal(client_secret),
            _reveal(jwt),
            pacer=self.pacer,
            clock=clock,
            sleep=sleep,
            async_sleep=async_sleep,
            max_wait=auth_max_wait,
            cache=self._token_cache,
            wall_clock=wall_clock,
        )
        self._list_pages: dict[str, int] = {}
        """The plan of the most recent check (also logged at debug level)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> RingCentralProvider:
        keep = settings["token_cache"]
        return cls(
            client_id=settings["client_id"],
            client_secret=settings["client_secret"],
            jwt=settings["jwt"],
            server_url=settings["server_url"],
            account_id=settings["account_id"],
            api=settings["api"],
            token_cache=keeps_sessions() if keep is None else keep,
        )

    def __repr__(self) -> str:
        return (
            f"<RingCentralProvider api={self.api!r} server_url={self.server_url!r} "
            f"client_id={self._auth.client_id!r}>"
        )

    @property
    def auth(self) -> RingCentralAuth:
        return self._auth

    @property
    def v1(self) -> bool:
        return self.api == API_V1

    # --- sending -----------------------------------------------------------------------

    def _send(
        self, request: httpx.Request, endpoint: str, counter: _Counter | None = None
    ) -> Exchange[httpx.Response]:
        """Wait for a slot in the endpoint's rate-limit group, send, learn from the headers.

        A wait the retry policy refuses (or a call cancelled during it) gives the slot back."""
        yield from self.pacer.wait(self.pacer.group_of(endpoint))
        if counter is not None:
            counter.requests += 1
        response = yield request
        if response is None:  # pragma: no cover - the runners always answer
            raise RuntimeError("no response to a RingCentral request")
        # A refused login answers in place of the request; its headers belong to the Auth group.
        if not response.request.url.path.startswith(OAUTH_PATH_PREFIX):
            self.pacer.observe(endpoint, response)
        return response

    def _call(
        self, request: httpx.Request, endpoint: str, counter: _Counter | None = None
    ) -> Exchange[Any]:
        response = yield from self._send(request, endpoint, counter)
        if response.status_code >= 400:
            raise error_from_response(response)
        return json_body(response)

    def _page(
        self,
        sender: str | None,
        status: StatusFilter,
        page_size: int,
        token: str | None,
        counter: _Counter | None = None,
        recipients: Sequence[str] = (),
    ) -> Exchange[tuple[list[OptOut], str | None]]:
        if self.v1:
            request = _v1.list_request(
                self.server_url,
                self.account_id,
                sender=sender,
                recipient=recipients[0] if recipients else None,
                status=status,
                per_page=page_size,
                page_token=token,
            )
            body = yield from self._call(request, _v1.LIST_ENDPOINT, counter)
            items, next_token = _v1.parse_list(body, status)
        else:
            request = _v2.search_request(
                self.server_url,
                self.account_id,
                sender=sender,
                recipients=recipients,
                status=status,
                per_page=page_size,
                page_token=token,
            )
            body = yield from self._call(request, _v2.SEARCH_ENDPOINT, counter)
            items, next_token = _v2.parse_search(body)
        if next_token is not None and next_token == token:
            raise ProviderError("RingCentral returned the same page token again", provider=PROVIDER)
        return items, next_token

    # --- operations --------------------------------------------------------------------

    def list_page(
        self, sender: str | None, status: StatusFilter, page_size: int, cursor: str | None
    ) -> Exchange[Page]:
        token = decode_cursor(self.api, cursor) if cursor is not None else None
        items, next_token = yield from self._page(sender, status, page_size, token)
        if sender == WILDCARD:
            # v1 answers ``from=*`` with every sender's records; ``*`` lists the account-wide.
            items = [item for item in items if item.sender == WILDCARD]
        return Page(tuple(items), encode_cursor(self.api, next_token) if next_token else None)

    def refuses(self, operation: str, sender: str) -> OptOutError | None:
        if operation in ("add", "remove") and not self.v1 and sender == WILDCARD:
            return UnsupportedOperation(
                self.name,
                operation,
                "the consents API needs a sender number; "
                "for account-wide ('*') changes use api='a2p-sms'",
            )
        return None

    def add(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        return (yield from self._assign(sender, recipients, opt_out=True))

    def remove(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        return (yield from self._assign(sender, recipients, opt_out=False))

    def _assign(
        self, sender: str, recipients: Sequence[str], *, opt_out: bool
    ) -> Exchange[Results]:
        refusal = self.refuses("add" if opt_out else "remove", sender)
        if refusal is not None:
            raise refusal
        results: dict[str, Outcome] = {}
        size = _v1.BULK_ASSIGN_MAX if self.v1 else _v2.PATCH_MAX
        for start in range(0, len(recipients), size):
            chunk = recipients[start : start + size]
            if self.v1:
                request = _v1.bulk_assign_request(
                    self.server_url, self.account_id, sender, chunk, opt_out=opt_out
                )
                endpoint = _v1.BULK_ENDPOINT
            else:
                request = _v2.patch_request(
                    self.server_url, self.account_id, sender, chunk, opt_out=opt_out
                )
                endpoint = _v2.PATCH_ENDPOINT
            response = yield from self._send(request, endpoint)
            if response.status_code >= 500:
                results.update(_server_failed(chunk, response))
                continue
            if response.status_code >= 400:
                raise error_from_response(response)
            body = json_body(response)
            try:
                if self.v1:
                    results.update(_v1.parse_bulk_assign(body, chunk, opt_out=opt_out))
                else:
                    results.update(_v2.parse_patch(body, chunk, opt_out=opt_out))
            except ProviderError as error:
                # An answer we cannot read vouches for none of its numbers, and raised from
                # here it would stop the whole call: the chunk's numbers fail, the rest stand.
                results.update(_failed(chunk, error))
        return results

    def check(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        lookup_cost = self.lookup_cost(len(recipients))
        list_cost = self.list_cost(sender)
        plan: PlanName = "lookup" if lookup_cost <= list_cost else "list"
        logger.debug(
            "check %d recipient(s) of %s by %s (lookup: %d requests, listing: ~%d)",
            len(recipients),
            sender,
            plan,
            lookup_cost,
            list_cost,
        )
        counter = _Counter()
        fell_back = False
        if plan == "list":
            results, rest = yield from self._check_by_listing(
                sender, recipients, lookup_cost, counter
            )
            if rest:
                fell_back = True
                logger.debug(
                    "listing exceeded %d requests; looking up %d recipient(s)",
                    lookup_cost,
                    len(rest),
                )
                results.update((yield from self._lookup(sender, rest, counter)))
        else:
            results = dict((yield from self._lookup(sender, recipients, counter)))
        yield Note(
            "check_plan",
            CheckPlan(plan, len(recipients), lookup_cost, list_cost, counter.requests, fell_back),
        )
        return results

    def lookup_cost(self, recipients: int) -> int:
        """Requests the lookup plan needs: one per recipient (v1) or per 20 (v2)."""
        return recipients if self.v1 else math.ceil(recipients / _v2.FILTER_MAX)

    def list_cost(self, sender: str) -> int:
        """Expected requests to list the opt-outs that can apply to ``sender``."""
        return sum(self._list_pages.get(key, 1) for key in self._listed_senders(sender))

    def _listed_senders(self, sender: str) -> tuple[str, ...]:
        """The lists the listing plan reads: v1 ``from=*`` is every sender's opt-outs, so that
        one list holds both ``sender``'s and the account-wide ones; v2 needs both searches."""
        if self.v1 or sender == WILDCARD:
            return (WILDCARD,)
        return (sender, WILDCARD)

    def _check_by_listing(
        self, sender: str, recipients: Sequence[str], budget: int, counter: _Counter
    ) -> Exchange[tuple[dict[str, Outcome], list[str]]]:
        """Answers from listing, and the recipients left to look up when it ran over budget.

        A page that cannot be read fails every recipient not yet seen opted out: the list
        cannot vouch for them, and looking each up would cost what listing was to save.
        """
        found: set[str] = set()
        try:
            complete = yield from self._opted_out_by_listing(
                sender, set(recipients), budget, counter, found
            )
        except ProviderError as error:
            if not _unreadable(error):
                raise
            results = dict.fromkeys(found, Outcome.OPTED_OUT)
            results.update(_failed([r for r in recipients if r not in found], error))
            return results, []
        results = dict.fromkeys(found, Outcome.OPTED_OUT)
        if complete:
            results.update((r, Outcome.NOT_OPTED_OUT) for r in recipients if r not in found)
            return results, []
        return results, [r for r in recipients if r not in found]

    def _opted_out_by_listing(
        self, sender: str, wanted: set[str], budget: int, counter: _Counter, found: set[str]
    ) -> Exchange[bool]:
        """Add to ``found`` the recipients in ``wanted`` opted out of ``sender``; True when
        the listing finished within ``budget`` requests."""
        for key in self._listed_senders(sender):
            token: str | None = None
            pages = 0
            seen: set[str] = set()
            while True:
                if counter.requests >= budget:
                    self._list_pages[key] = max(self._list_pages.get(key, 1), pages + 1)
                    return False
                items, token = yield from self._page(
                    key, Status.OPTED_OUT, _LIST_PAGE, token, counter
                )
                pages += 1
                found.update(
                    item.recipient
                    for item in items
                    if item.recipient in wanted and _v2.applies_to(item, sender)
                )
                if token is None:
                    break
                if token in seen:
                    raise ProviderError("RingCentral repeated a page token", provider=PROVIDER)
                seen.add(token)
            self._list_pages[key] = pages
        return True

    def _lookup(
        self, sender: str, recipients: Sequence[str], counter: _Counter
    ) -> Exchange[Results]:
        """Ask for each recipient's records over every sender and keep those for ``sender``.

        A lookup that draws a 5xx or an answer that cannot be read fails its own recipients
        (unknown, never "not opted out"); the others are still answered.
        """
        results: dict[str, Outcome] = {}
        group = 1 if self.v1 else _v2.FILTER_MAX
        for start in range(0, len(recipients), group):
            chunk = recipients[start : start + group]
            try:
                records = yield from self._all_pages(chunk, counter)
            except ProviderError as error:
                if not (_unreadable(error) or (error.status_code or 0) >= 500):
                    raise
                results.update(_failed(chunk, error))
                continue
            for number in chunk:
                mine = [r for r in records if r.recipient == number and _v2.applies_to(r, sender)]
                opted_out = any(record.opted_out for record in mine)
                results[number] = Outcome.OPTED_OUT if opted_out else Outcome.NOT_OPTED_OUT
        return results

    def _all_pages(self, recipients: Sequence[str], counter: _Counter) -> Exchange[list[OptOut]]:
        records: list[OptOut] = []
        token: str | None = None
        seen: set[str] = set()
        while True:
            items, token = yield from self._page(None, None, _LIST_PAGE, token, counter, recipients)
            records.extend(items)
            if token is None:
                return records
            if token in seen:
                raise ProviderError("RingCentral repeated a page token", provider=PROVIDER)
            seen.add(token)

    def logout(self) -> bool:
        """End the session kept across runs: its cache entry is deleted now, and it (with
        any session this provider holds) is revoked when the client closes. False when
        there was no session to end. Works whatever ``token_cache`` says, so a session
        cached by earlier runs can be ended after the cache was turned off."""
        self._logout = self._auth.end_sessions(self._token_cache or TokenCache())
        return bool(self._logout)

    def close(self) -> Exchange[None]:
        """Revoke what ``logout()`` asked for, waiting for the Auth group if need be; then,
        unless the session is kept in the cache for later runs, revoke it if the Auth group
        can take it now. Never raises.

        A revoke counts in the Auth group like a login. In a spent group the closing revoke
        would only draw a 429 (and restart the penalty for the next login), and the token
        dies on its own anyway, so then it is skipped.
        """
        revokes, self._logout = self._logout, []
        for request in revokes:
            slot = yield from self.pacer.wait(AUTH_GROUP, within=self._auth.max_wait)
            if not slot.taken:
                logger.debug("logout revoke skipped: the Auth group would wait %.0fs", slot.delay)
                continue
            yield from self._revoke(request)
        if self._auth.keeps_session:
            logger.debug("session kept in the token cache for later runs; not revoked")
            return
        closing = self._auth.revoke_request()
        if closing is None:
            return
        if not self.pacer.try_reserve(AUTH_GROUP):
            logger.debug("revoke skipped: the Auth rate-limit group has no request to spare")
            return
        yield from self._revoke(closing)

    def _revoke(self, request: httpx.Request) -> Exchange[None]:
        """Send one revoke; a failure is logged and ignored (the token expires anyway)."""
        try:
            response = yield request
        except (httpx.TransportError, OptOutError) as error:
            logger.debug("revoke failed (%s); ignored", type(error).__name__)
            return
        if response is None:  # pragma: no cover - the runners always answer
            return
        self.pacer.observe(REVOKE_PATH, response, AUTH_GROUP)
        if response.status_code >= 400:
            logger.debug("revoke answered HTTP %d; ignored", response.status_code)


def _unreadable(error: ProviderError) -> bool:
    """An answer we could not read (no HTTP error status), as opposed to a refusal or a wait
    (a RateLimited from the auth flow carries no status either: the retry policy decides)."""
    return error.status_code is None and not isinstance(error, (AuthenticationError, RateLimited))


def _failed(recipients: Sequence[str], error: ProviderError) -> dict[str, Outcome]:
    return dict.fromkeys(recipients, Outcome.failure(str(error), error.status_code))


def _server_failed(recipients: Sequence[str], response: httpx.Response) -> dict[str, Outcome]:
    """A 5xx for one request of a batch fails its numbers alone; the client re-sends them."""
    return _failed(recipients, error_from_response(response))
