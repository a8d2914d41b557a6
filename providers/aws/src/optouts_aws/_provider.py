"""Provider ``aws``: AWS End User Messaging SMS opt-out lists (``pinpoint-sms-voice-v2``).

What a call costs is set by the API: ``PutOptedOutNumber`` and ``DeleteOptedOutNumber``
take one number per request, ``DescribeOptedOutNumbers`` looks up at most
``MAX_LOOKUP`` (5) numbers or lists at most ``MAX_RESULTS`` (100) records a page. So a
batch is ``MAX_LOOKUP`` numbers: one lookup for a check, one request per number (and per
list, for ``*``) for add and remove, sent one after another inside the exchange while the
client keeps ``max_concurrency`` batches in flight. Every request first takes its slot
from the pacer, which keeps each operation under its per-second quota.

A check is authoritative for the numbers AWS leaves out of a lookup's answer: the API
reference says a lookup's output covers the specified numbers only, so an asked number
missing from a complete answer (every page read) is not in the list; a number that is not
valid fails the whole request instead. AWS may also answer a number it does not hold with
``ResourceNotFoundException`` (``ResourceType`` ``opted-out-number``): the batch is then
looked up a number at a time, and that answer about the one number asked reads as not in
the list. A number AWS could not look up at all (the request failed, or its answer was
not one: no ``OptedOutNumbers``, or a record of a number not asked) is never reported as
not opted out.

A write batch that fails part way in a way the client retries keeps what it finished
(``_resume``): the retry sends only the requests that had not succeeded.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import httpx

from optouts import (
    Capability,
    ConfigurationError,
    Exchange,
    InvalidCursor,
    Outcome,
    Page,
    Provider,
    ProviderError,
    Results,
    Setting,
    Settings,
    Status,
    StatusFilter,
)
from optouts.plugin import clip

from ._auth import SigV4, load_credentials
from ._endpoint import default_endpoint
from ._errors import is_list_missing, whole_call_error
from ._listing import Position, to_opt_outs
from ._lists import ListMap
from ._model import DEFAULT_LIST, MAX_LOOKUP, MAX_RESULTS, Operation
from ._pacer import Pacer
from ._paging import LOOKUP_PAGES, Trail
from ._resume import Done, Unfinished
from ._settings import (
    Rates,
    parse_endpoint_url,
    parse_list_name,
    parse_rates,
    parse_region,
    parse_sender_lists,
)
from ._wire import (
    AwsError,
    build_request,
    protocol_error,
    read_body,
    read_error,
    read_records,
    same_number,
)

__all__ = ["AwsProvider"]

logger = logging.getLogger("optouts.aws")

PROVIDER = "aws"
_ADDED = Outcome(True, True, status_code=200)
_REMOVED = Outcome(True, False, status_code=200)
_IN_LIST = Outcome(True, True, status_code=200)
_NOT_IN_LIST = Outcome(True, False, status_code=200)
_EMPTY_PAGES = 10
"""AWS pages without a record one ``list_page`` reads before it hands back an empty page
(with its cursor), so one call does bounded work whatever AWS answers."""
_MISSING_REGION = (
    "missing setting 'region' for provider 'aws' (the AWS Region of the opt-out lists, "
    "such as us-east-1): pass region=..., set OPTOUTS_AWS_REGION, AWS_REGION or "
    "AWS_DEFAULT_REGION, add region under [providers.aws] in optouts.toml, or give the "
    "AWS profile a region"
)


class AwsProvider(Provider):
    """AWS End User Messaging SMS: opt-out lists, signed with SigV4 from botocore's chain."""

    name: ClassVar[str] = PROVIDER
    capabilities: ClassVar[frozenset[Capability]] = frozenset(Capability)
    max_batch: ClassVar[int] = MAX_LOOKUP
    max_page_size: ClassVar[int] = MAX_RESULTS
    default_page_size: ClassVar[int] = MAX_RESULTS
    default_concurrency: ClassVar[int] = 10
    """AWS's largest default quota among these operations is 10 requests a second
    (DeleteOptedOutNumber); ten in flight reach it at a tenth of a second each, and the
    pacer holds every operation to its own quota whatever the concurrency."""
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting(
            "region",
            "the AWS Region of the opt-out lists, such as us-east-1 "
            "(default: the AWS profile's region)",
            parse=parse_region,
            env_aliases=("AWS_REGION", "AWS_DEFAULT_REGION"),
        ),
        Setting(
            "profile",
            "a profile of the shared AWS files (default: AWS_PROFILE, else botocore's chain)",
        ),
        Setting(
            "endpoint_url",
            "the service endpoint (default: botocore's, as the AWS CLI finds it, FIPS and "
            "dual-stack included; an emulator's http://127.0.0.1:PORT)",
            parse=parse_endpoint_url,
            env_aliases=("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2", "AWS_ENDPOINT_URL"),
        ),
        Setting(
            "opt_out_list",
            "the opt-out list (name or ARN) of senders sender_lists does not name",
            default=DEFAULT_LIST,
            parse=parse_list_name,
        ),
        Setting(
            "sender_lists",
            "the opt-out list each sender uses: a table, or SENDER=LIST pairs separated by "
            "commas ('*' for senders without one of their own)",
            parse=parse_sender_lists,
        ),
        Setting(
            "requests_per_second",
            "pace per operation: 'quotas' (AWS's published defaults), 'off', a number, or "
            "Operation=N pairs",
            default="quotas",
            parse=parse_rates,
        ),
    )
    hints: ClassVar[dict[Capability, str]] = {}

    def __init__(
        self,
        *,
        region: str,
        credentials: Any,
        endpoint_url: str | None = None,
        opt_out_list: str = DEFAULT_LIST,
        sender_lists: Mapping[str, str] | None = None,
        rates: Rates | str | float | None = "quotas",
        clock: Callable[[], float] | None = None,
    ) -> None:
        """``credentials``: a botocore ``Credentials``; ``rates``: what the
        ``requests_per_second`` setting takes (None: no pacing)."""
        self.region = _checked("region", parse_region, region)
        if endpoint_url is None:
            from botocore.session import Session  # type: ignore[import-untyped]

            endpoint_url = default_endpoint(self.region, Session())
        self.endpoint_url = _checked("endpoint_url", parse_endpoint_url, endpoint_url)
        self.lists = ListMap.of(
            _checked("opt_out_list", parse_list_name, opt_out_list),
            _checked("sender_lists", parse_sender_lists, sender_lists or {}),
        )
        if rates is None:
            rates = "off"
        parsed = (
            rates
            if isinstance(rates, Mapping)
            else _checked("requests_per_second", parse_rates, rates)
        )
        self.pacer = Pacer(parsed) if clock is None else Pacer(parsed, clock)
        self._auth = SigV4(credentials, self.region)
        self._url = httpx.URL(self.endpoint_url + "/")
        self._unfinished = Unfinished()

    @classmethod
    def from_settings(cls, settings: Settings) -> AwsProvider:
        from botocore.exceptions import BotoCoreError  # type: ignore[import-untyped]

        profile = settings.get("profile") or None
        session, credentials = load_credentials(profile)
        region = settings.get("region")
        if region is None:
            try:
                configured = session.get_config_variable("region")
            except BotoCoreError:
                configured = None
            if not configured:
                raise ConfigurationError(_MISSING_REGION)
            region = _checked("region", parse_region, configured)
        endpoint_url = settings.get("endpoint_url") or default_endpoint(region, session)
        return cls(
            region=region,
            credentials=credentials,
            endpoint_url=endpoint_url,
            opt_out_list=settings.get("opt_out_list") or DEFAULT_LIST,
            sender_lists=settings.get("sender_lists") or {},
            rates=settings.get("requests_per_second") or "quotas",
        )

    def __repr__(self) -> str:
        return (
            f"<AwsProvider region={self.region!r} endpoint_url={self.endpoint_url!r} "
            f"lists={list(self.lists.in_use)!r}>"
        )

    @property
    def auth(self) -> SigV4:
        return self._auth

    # --- sending -----------------------------------------------------------------------

    def _send(self, operation: Operation, body: Mapping[str, Any]) -> Exchange[httpx.Response]:
        """Wait for the operation's slot, then send one request and hand back the answer."""
        yield from self.pacer.wait(operation)
        response = yield build_request(self._url, operation, body)
        if response is None:  # pragma: no cover - the runners always answer a request
            raise RuntimeError("no response to an AWS request")
        return response

    def _fail(self, error: AwsError, operation: Operation, list_name: str | None) -> Exception:
        return whole_call_error(error, operation, self.lists, list_name)

    # --- add and remove ------------------------------------------------------------------

    def add(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        return self._write("PutOptedOutNumber", sender, recipients)

    def remove(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        return self._write("DeleteOptedOutNumber", sender, recipients)

    def _write(
        self, operation: Operation, sender: str, recipients: Sequence[str]
    ) -> Exchange[Results]:
        """One request per number and list; a retry of this batch sends only what failed.

        The outcome of every finished request is kept in ``done``; when a request fails
        in a way the client retries, ``done`` is left for that retry (``_resume``), so a
        throttle on the tenth request of ten costs one request more, not ten.
        """
        lists = self.lists.lists_to_write(sender)
        success = _ADDED if operation == "PutOptedOutNumber" else _REMOVED
        done: Done = self._unfinished.take(operation, sender, recipients)
        results: dict[str, Outcome] = {}
        try:
            for number in recipients:
                outcome = success
                for list_name in lists:
                    answer = done.get((number, list_name))
                    if answer is None:
                        answer = yield from self._write_one(operation, list_name, number)
                        done[number, list_name] = answer
                    if not answer.ok:
                        where = f" (list {list_name})" if len(lists) > 1 else ""
                        outcome = Outcome.failure(f"{answer.error}{where}", answer.status_code)
                        break
                results[number] = outcome
        except Exception as error:
            if done and _retried(error):
                self._unfinished.keep(operation, sender, recipients, done)
            raise
        return results

    def _write_one(self, operation: Operation, list_name: str, number: str) -> Exchange[Outcome]:
        body = {"OptOutListName": list_name, "OptedOutNumber": number}
        response = yield from self._send(operation, body)
        if response.is_success:
            read_body(response)  # a 200 without a JSON object is not an answer
            return _ADDED if operation == "PutOptedOutNumber" else _REMOVED
        error = read_error(response)
        if (
            operation == "DeleteOptedOutNumber"
            and error.code == "ResourceNotFoundException"
            and not is_list_missing(error, list_name)
        ):
            # The number is not in the list: it already is where a remove puts it.
            return _REMOVED
        if error.code in ("ValidationException", "ConflictException") and not (
            error.names_field("OptOutListName") or error.reason == "INVALID_ARN"
        ):
            # One number per request: what AWS refuses here is this number (an invalid one,
            # or one deleted less than 30 days ago), never the others of the batch.
            return Outcome.failure(error.describe(), error.status)
        raise self._fail(error, operation, list_name)

    # --- check ----------------------------------------------------------------------------

    def check(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        return self._lookup(self.lists.list_for(sender), list(recipients))

    def _lookup(self, list_name: str, numbers: list[str]) -> Exchange[Results]:
        """Look ``numbers`` (at most MAX_LOOKUP) up in ``list_name``, every page of the answer.

        An error that is not about the list but about the numbers (a ValidationException,
        or a ResourceNotFoundException of an opted-out number) makes each number be looked
        up alone: a refused number then fails alone, and AWS's "not found" for the one
        number asked is its word that the number is not in the list.
        """
        asked = set(numbers)
        present: set[str] = set()
        token: str | None = None
        trail = Trail(
            f"a lookup of {len(numbers)} number(s) in list {list_name!r}", most=LOOKUP_PAGES
        )
        while True:
            body: dict[str, Any] = {"OptOutListName": list_name, "OptedOutNumbers": numbers}
            if token is not None:
                body["NextToken"] = token
            response = yield from self._send("DescribeOptedOutNumbers", body)
            if not response.is_success:
                return (yield from self._lookup_refused(list_name, numbers, read_error(response)))
            records, token = read_records(response)
            strays = sum(1 for record in records if record.number not in asked)
            if strays:
                raise protocol_error(
                    f"AWS answered a lookup of {len(numbers)} number(s) in list "
                    f"{list_name!r} with {strays} record(s) of numbers it was not asked "
                    "about: an answer that ignored the lookup vouches for none of them",
                    response,
                )
            present.update(record.number for record in records)
            if token is None:
                break
            trail.follow(token, response)
        return {number: _IN_LIST if number in present else _NOT_IN_LIST for number in numbers}

    def _lookup_refused(
        self, list_name: str, numbers: list[str], error: AwsError
    ) -> Exchange[Results]:
        """What a lookup AWS answered with an error says, number by number if need be."""
        about_list = error.names_field("OptOutListName") or error.reason == "INVALID_ARN"
        refused = error.code == "ValidationException" and not about_list
        not_found = (
            error.code == "ResourceNotFoundException" and error.resource_type == "opted-out-number"
        )
        if not (refused or not_found):
            raise self._fail(error, "DescribeOptedOutNumbers", list_name)
        if len(numbers) > 1:
            answers: dict[str, Outcome] = {}
            for number in numbers:
                answers.update((yield from self._lookup(list_name, [number])))
            return answers
        (number,) = numbers
        if not_found and same_number(error.resource_id, number):
            # AWS's word that the number is not in the list, read as a Delete's is (status
            # 200, as for a number left out: the answer is a success for this recipient).
            return {number: _NOT_IN_LIST}
        return {number: Outcome.failure(error.describe(), error.status)}

    # --- list -------------------------------------------------------------------------------

    def list_page(
        self, sender: str | None, status: StatusFilter, page_size: int, cursor: str | None
    ) -> Exchange[Page]:
        """AWS keeps only opted-out numbers: a removed number leaves no record behind."""
        plan = self.lists.plan(sender)
        position = Position.decode(cursor, plan)
        if status is Status.OPTED_IN:
            return Page((), None)
        trail = Trail(f"one page of a listing of {len(plan)} list(s)")
        if position.token is not None:
            trail.start(f"{position.index}:{position.token}")
        empty = 0
        while True:
            list_name, senders = plan[position.index]
            size = position.size or min(MAX_RESULTS, max(1, page_size // len(senders)))
            body: dict[str, Any] = {"OptOutListName": list_name, "MaxResults": size}
            if position.token is not None:
                body["NextToken"] = position.token
            response = yield from self._send("DescribeOptedOutNumbers", body)
            if not response.is_success:
                error = read_error(response)
                if error.reason == "INVALID_NEXT_TOKEN" and position.token is not None:
                    raise InvalidCursor(
                        f"AWS no longer accepts this cursor's NextToken: {clip(error.message)}"
                    )
                raise self._fail(error, "DescribeOptedOutNumbers", list_name)
            records, token = read_records(response)
            pairs = [item for record in records for item in to_opt_outs(record, senders, list_name)]
            end = position.skip + page_size
            items = pairs[position.skip : end]
            if end < len(pairs):
                following: Position | None = Position(position.index, position.token, end, size)
            elif token is not None:
                following = Position(position.index, token)
            elif position.index + 1 < len(plan):
                following = Position(position.index + 1)
            else:
                following = None
            if items or following is None:
                return Page(items, None if following is None else following.encode(plan))
            if following.token is not None:
                trail.follow(f"{following.index}:{following.token}", response)
            empty += 1
            if empty >= _EMPTY_PAGES:
                return Page((), following.encode(plan))  # enough for one call: go on from here
            position = following  # an empty list, or an empty page: read on

    # --- lists themselves -----------------------------------------------------------------

    def opt_out_lists(self) -> Exchange[list[dict[str, Any]]]:
        """Every opt-out list of the account in this Region (DescribeOptOutLists, all pages)."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        trail = Trail("the opt-out lists of the account")
        while True:
            body: dict[str, Any] = {"MaxResults": MAX_RESULTS}
            if token is not None:
                body["NextToken"] = token
            response = yield from self._send("DescribeOptOutLists", body)
            if not response.is_success:
                raise self._fail(read_error(response), "DescribeOptOutLists", None)
            answer = read_body(response)
            items = answer.get("OptOutLists")
            if not isinstance(items, list):
                raise protocol_error(
                    "AWS answered DescribeOptOutLists without a list of OptOutLists", response
                )
            found.extend(item for item in items if isinstance(item, dict))
            token = answer.get("NextToken") or None
            if token is None:
                return found
            if not isinstance(token, str):
                raise protocol_error(
                    "AWS answered DescribeOptOutLists with a NextToken that is not a string",
                    response,
                )
            trail.follow(token, response)

    def create_opt_out_list(
        self, list_name: str, *, client_token: str | None = None
    ) -> Exchange[dict[str, Any]]:
        """Create an opt-out list (CreateOptOutList); AWS refuses a name already taken.

        ``ClientToken`` (the model's idempotency token) makes a create that is sent again
        after a lost answer the same create, answered as the first was, not a
        ConflictException. One create is one token: a caller that retries passes the same
        ``client_token`` to each try (``token = str(uuid.uuid4())``); without one, each
        call is a create of its own. A ConflictException stays an error: its reasons
        (``RESOURCE_ALREADY_EXISTS`` among some forty) say a list of that name exists,
        not that this create made it.
        """
        body = {"OptOutListName": list_name, "ClientToken": client_token or str(uuid.uuid4())}
        response = yield from self._send("CreateOptOutList", body)
        if not response.is_success:
            raise self._fail(read_error(response), "CreateOptOutList", None)
        return read_body(response)


def _retried(error: Exception) -> bool:
    """Whether the client's policy sends a batch that failed with ``error`` again."""
    if isinstance(error, httpx.TransportError):
        return True
    return isinstance(error, ProviderError) and error.retryable


def _checked(name: str, parse: Callable[[Any], Any], value: Any) -> Any:
    """A constructor argument parsed as its setting is, refused as the settings refuse it."""
    try:
        return parse(value)
    except ValueError as error:
        raise ConfigurationError(
            f"setting {name!r} of provider 'aws' is malformed: {error}"
        ) from None
