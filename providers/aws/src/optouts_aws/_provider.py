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
valid fails the whole request instead. A number AWS could not look up at all (the request
failed) is never reported as not opted out.
"""

from __future__ import annotations

import logging
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
    Sleep,
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
from ._settings import (
    Rates,
    parse_endpoint_url,
    parse_list_name,
    parse_rates,
    parse_region,
    parse_sender_lists,
)
from ._wire import AwsError, build_request, read_body, read_error, read_records

__all__ = ["AwsProvider"]

logger = logging.getLogger("optouts.aws")

PROVIDER = "aws"
_ADDED = Outcome(True, True, status_code=200)
_REMOVED = Outcome(True, False, status_code=200)
_IN_LIST = Outcome(True, True, status_code=200)
_NOT_IN_LIST = Outcome(True, False, status_code=200)
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
            "the service endpoint (default: https://sms-voice.<region>.amazonaws.com; "
            "an emulator's http://127.0.0.1:PORT)",
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
        delay = self.pacer.reserve(operation)
        if delay > 0:
            yield Sleep(delay, "pace")
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
        lists = self.lists.lists_to_write(sender)
        done = _ADDED if operation == "PutOptedOutNumber" else _REMOVED
        results: dict[str, Outcome] = {}
        for number in recipients:
            outcome = done
            for list_name in lists:
                answer = yield from self._write_one(operation, list_name, number)
                if not answer.ok:
                    where = f" (list {list_name})" if len(lists) > 1 else ""
                    outcome = Outcome.failure(f"{answer.error}{where}", answer.status_code)
                    break
            results[number] = outcome
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

        A ValidationException that is not about the list concerns the numbers: each is then
        looked up alone, so one refused number fails alone and the others are answered.
        """
        asked = set(numbers)
        present: set[str] = set()
        token: str | None = None
        seen: set[str] = set()
        while True:
            body: dict[str, Any] = {"OptOutListName": list_name, "OptedOutNumbers": numbers}
            if token is not None:
                body["NextToken"] = token
            response = yield from self._send("DescribeOptedOutNumbers", body)
            if not response.is_success:
                error = read_error(response)
                refused_numbers = error.code == "ValidationException" and not (
                    error.names_field("OptOutListName") or error.reason == "INVALID_ARN"
                )
                if not refused_numbers:
                    raise self._fail(error, "DescribeOptedOutNumbers", list_name)
                if len(numbers) == 1:
                    return {numbers[0]: Outcome.failure(error.describe(), error.status)}
                answers: dict[str, Outcome] = {}
                for number in numbers:
                    answers.update((yield from self._lookup(list_name, [number])))
                return answers
            records, token = read_records(response)
            present.update(record.number for record in records if record.number in asked)
            if token is None:
                break
            if token in seen:
                raise ProviderError(
                    "AWS returned a NextToken it had already returned", provider=PROVIDER
                )
            seen.add(token)
        return {number: _IN_LIST if number in present else _NOT_IN_LIST for number in numbers}

    # --- list -------------------------------------------------------------------------------

    def list_page(
        self, sender: str | None, status: StatusFilter, page_size: int, cursor: str | None
    ) -> Exchange[Page]:
        """AWS keeps only opted-out numbers: a removed number leaves no record behind."""
        plan = self.lists.plan(sender)
        position = Position.decode(cursor, plan)
        if status is Status.OPTED_IN:
            return Page((), None)
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
            position = following  # an empty list, or an empty page: read on

    # --- lists themselves -----------------------------------------------------------------

    def opt_out_lists(self) -> Exchange[list[dict[str, Any]]]:
        """Every opt-out list of the account in this Region (DescribeOptOutLists, all pages)."""
        found: list[dict[str, Any]] = []
        token: str | None = None
        while True:
            body: dict[str, Any] = {"MaxResults": MAX_RESULTS}
            if token is not None:
                body["NextToken"] = token
            response = yield from self._send("DescribeOptOutLists", body)
            if not response.is_success:
                raise self._fail(read_error(response), "DescribeOptOutLists", None)
            answer = read_body(response)
            items = answer.get("OptOutLists", [])
            found.extend(item for item in items if isinstance(item, dict))
            token = answer.get("NextToken") or None
            if token is None:
                return found

    def create_opt_out_list(self, list_name: str) -> Exchange[dict[str, Any]]:
        """Create an opt-out list (CreateOptOutList); AWS refuses a name already taken."""
        response = yield from self._send("CreateOptOutList", {"OptOutListName": list_name})
        if not response.is_success:
            raise self._fail(read_error(response), "CreateOptOutList", None)
        return read_body(response)


def _checked(name: str, parse: Callable[[Any], Any], value: Any) -> Any:
    """A constructor argument parsed as its setting is, refused as the settings refuse it."""
    try:
        return parse(value)
    except ValueError as error:
        raise ConfigurationError(
            f"setting {name!r} of provider 'aws' is malformed: {error}"
        ) from None
