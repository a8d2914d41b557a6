"""Client and AsyncClient: validate, dedupe, chunk, retry and page, once for every provider.

Both clients share ``_ClientCore`` for everything but waiting: choosing the provider,
checking capabilities, normalising numbers, building retrying jobs and putting answers
back in input order. Each client only drives jobs, one with ``httpx.Client`` on a thread
pool, the other with ``httpx.AsyncClient`` as tasks; both keep up to ``max_concurrency``
batches in flight and start the next window's batches before the current one is done.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import threading
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, Literal

import httpx

from ._batch import Answered, Batch, failed, rows_for, windows
from ._config import ConfigFile, core_setting, load_config_file, resolve_settings
from ._errors import ConfigurationError, OptOutError, ProviderError, clip
from ._http import VENDOR_TIMEOUT, Stats, run_async, run_sync
from ._models import (
    BatchResult,
    Capability,
    OptOut,
    Page,
    RecipientResult,
    Row,
    Status,
)
from ._numbers import normalize_sender
from ._plugins import check_provider_tables, get_provider_class
from ._provider import Exchange, Provider, Results, StatusFilter
from ._retry import RetryPolicy, is_retryable, retry_items, with_retry

__all__ = ["AsyncClient", "Client"]

Operation = Literal["add", "remove", "check"]
_OPERATIONS: dict[str, Capability] = {
    "add": Capability.ADD,
    "remove": Capability.REMOVE,
    "check": Capability.CHECK,
}
_WINDOW_CHUNKS = 2
"""Provider batches one window of input holds at least."""
_MIN_WINDOW = 10_000
"""Recipients one window holds at least: the span within which duplicates are sent once."""
_SLICE = 1_000
"""Recipients an async client normalises between two looks at the event loop."""
_AHEAD = 50_000
"""Recipients that may be in flight or waiting behind the oldest unfinished window."""


def _limits(concurrency: int) -> httpx.Limits:
    """Connections for the client's own HTTP client: one per batch in flight."""
    return httpx.Limits(max_connections=max(concurrency, 10))


class _ClientCore:
    """Everything the two clients share; no waiting happens here."""

    def __init__(
        self,
        provider: str | Provider | None,
        *,
        config: str | os.PathLike[str] | None,
        default_region: str | None,
        retry: RetryPolicy | None,
        max_concurrency: int | None,
        settings: dict[str, Any],
    ) -> None:
        self.config_path = config
        """The optouts.toml this client was configured from, for clients it opens itself."""
        config_file = load_config_file(config)
        check_provider_tables(config_file)
        if isinstance(provider, Provider):
            if settings:
                raise ConfigurationError("settings cannot be passed with a Provider instance")
            self.provider = provider
        else:
            name = core_setting("provider", provider, config_file)
            provider_class = get_provider_class(name)
            resolved = resolve_settings(name, provider_class.settings, settings, config_file)
            self.provider = provider_class.from_settings(resolved)
        self.default_region: str | None = core_setting(
            "default_region", default_region, config_file
        )
        self.retry = retry or _retry_policy(config_file)
        self._config_file = config_file
        concurrency = core_setting("max_concurrency", max_concurrency, config_file)
        blocking = self.provider.blocking  # the ledger does one thing at a time
        self.max_concurrency: int = (
            1 if blocking else concurrency or self.provider.default_concurrency
        )
        self._closed = False

    def __repr__(self) -> str:
        return f"<{type(self).__name__} provider={self.provider.name!r}>"

    @property
    def provider_name(self) -> str:
        return self.provider.name

    def _require(self, capability: Capability) -> None:
        if capability not in self.provider.capabilities:
            raise self.provider.unsupported(capability)

    def _ensure_open(self) -> None:
        """A closed client refuses work in words, not with its HTTP pool's own error."""
        if self._closed:
            raise OptOutError(f"the {self.provider.name} client is closed")

    def _start(self, operation: str, sender: str) -> tuple[str, Capability]:
        self._ensure_open()
        capability = _OPERATIONS.get(operation)
        if capability is None:
            raise ValueError(
                f"operation must be one of {', '.join(_OPERATIONS)}, not {operation!r}"
            )
        self._require(capability)
        return normalize_sender(sender, self.default_region), capability

    def _window_size(self) -> int:
        """Recipients prepared at a time: duplicates are sent once within a window."""
        return max(_MIN_WINDOW, self.provider.max_batch * _WINDOW_CHUNKS)

    def _windows(self, recipients: Iterable[object]) -> Iterator[Batch]:
        size = self.provider.max_batch
        for items in windows(recipients, self._window_size()):
            yield Batch.prepare(items, size, self.default_region)

    def _windows_ahead(self) -> int:
        """Windows that may be in flight behind the oldest unfinished one, so one batch
        waiting out a Retry-After does not idle every other slot."""
        return max(2, _AHEAD // self._window_size())

    def _job(self, operation: str, sender: str, chunk: Sequence[str]) -> Exchange[Results]:
        method = getattr(self.provider, operation)
        return retry_items(lambda recipients: method(sender, recipients), chunk, self.retry)

    def _page_args(
        self,
        sender: str | None,
        status: Status | str | None,
        page_size: int | None,
        cursor: str | None,
    ) -> tuple[str | None, StatusFilter, int, str | None]:
        self._ensure_open()
        self._require(Capability.LIST)
        normalized = normalize_sender(sender, self.default_region) if sender is not None else None
        size = self.provider.default_page_size if page_size is None else page_size
        if not 1 <= size <= self.provider.max_page_size:
            raise ValueError(
                f"page_size must be between 1 and {self.provider.max_page_size}, not {size}"
            )
        return normalized, _status_filter(status), size, cursor

    def _page_job(
        self, sender: str | None, status: StatusFilter, size: int, cursor: str | None
    ) -> Exchange[Page]:
        job = with_retry(lambda: self.provider.list_page(sender, status, size, cursor), self.retry)
        return _reaching(job, self.provider.name)

    def _result(self, rows: list[Row], operation: str, sender: str, stats: Stats) -> BatchResult:
        return BatchResult(
            rows,
            operation,
            sender,
            self.provider.name,
            requests=stats.requests,
            auth_requests=stats.auth_requests,
            retries=stats.retries,
            waited=stats.waited,
            rate_limit_wait=stats.rate_limit_wait,
            info=stats.notes,
        )

    def _chunk_failed(self, chunk: Sequence[str], error: Exception) -> Results:
        """A chunk whose retries ran out fails per recipient; anything else stops the call."""
        if is_retryable(error):
            return failed(chunk, error)
        raise error

    @staticmethod
    def _assemble(batch: Batch, done: Iterable[Answered], stats: Stats) -> list[Row]:
        answered: list[list[Row]] = []
        for rows, spent in done:
            answered.append(rows)
            stats.merge(spent)
        return batch.assemble(answered)


class _Halted(Exception):
    """A batch not sent because an earlier one failed the whole call."""


def _cause(*groups: Iterable[Future[Any]]) -> BaseException:
    """The error that halted a call, found among its batches."""
    for group in groups:
        for future in group:
            if future.done() and not future.cancelled():
                error = future.exception()
                if error is not None and not isinstance(error, _Halted):
                    return error
    return ProviderError("the call stopped after an earlier batch failed")


def _done(work: Sequence[Future[Any] | asyncio.Task[Any]]) -> bool:
    return all(item.done() for item in work)


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel unfinished batches and wait for them, so none outlives the call."""
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)


def _retry_policy(config: ConfigFile) -> RetryPolicy:
    """The default policy, with whatever retry_* settings the environment or file give."""
    given = {
        field: core_setting(f"retry_{field}", None, config)
        for field in ("attempts", "backoff", "cap", "deadline")
    }
    return RetryPolicy(**{field: value for field, value in given.items() if value is not None})


def _reaching(job: Exchange[Page], provider: str) -> Exchange[Page]:
    """``job``, with a vendor that stayed unreachable through every retry made a
    ``ProviderError``: a listing has no recipients to fail one by one, so it fails whole,
    in words that name the vendor (a check or an add fails each recipient instead)."""
    try:
        return (yield from job)
    except httpx.TransportError as error:
        raise _unreachable(provider, error) from error


def _unreachable(provider: str, error: httpx.TransportError) -> ProviderError:
    """The error of a vendor that could not be reached: its name and the transport's cause
    (a socket's or TLS's reason; httpx puts no URL, header or body in it)."""
    kind = type(error).__name__
    reason = clip(" ".join(str(error).split()), 200)
    return ProviderError(
        f"could not reach {provider}: {reason} ({kind})"
        if reason
        else f"could not reach {provider} ({kind})",
        provider=provider,
        retryable=True,
    )


def _status_filter(status: Status | str | None) -> StatusFilter:
    if status is None or status == "all":
        return None
    try:
        return Status(status)
    except ValueError:
        raise ValueError(f"status must be opted-out, opted-in or all, not {status!r}") from None


def _check_cursor(seen: set[str], cursor: str | None, provider: str) -> None:
    if cursor is not None and cursor in seen:
        raise ProviderError(
            "the provider returned a page cursor it had already returned", provider=provider
        )
    if cursor is not None:
        seen.add(cursor)


class Client(_ClientCore):
    """Manage opt-outs through one provider, blocking.

    ``Client("local", database="optouts.db")`` names the provider and its settings;
    ``Client()`` takes both from the environment and optouts.toml. Batches go out on up to
    ``max_concurrency`` threads at once; results keep input order.
    """

    def __init__(
        self,
        provider: str | Provider | None = None,
        *,
        config: str | os.PathLike[str] | None = None,
        default_region: str | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int | None = None,
        http_client: httpx.Client | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(
            provider,
            config=config,
            default_region=default_region,
            retry=retry,
            max_concurrency=max_concurrency,
            settings=settings,
        )
        self._owns_http = http_client is None and not self.provider.blocking
        self._http = (
            http_client
            if http_client is not None or self.provider.blocking
            else httpx.Client(limits=_limits(self.max_concurrency), timeout=VENDOR_TIMEOUT)
        )
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Let the provider release what it holds, then close the HTTP client."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)
            run_sync(self.provider.close(), self._http, self.provider.auth, Stats())
        finally:
            if self._owns_http and self._http is not None:
                self._http.close()

    def add(self, sender: str, recipients: Iterable[str]) -> BatchResult:
        """Opt ``recipients`` out of messages from ``sender``."""
        return self._collect("add", sender, recipients)

    def remove(self, sender: str, recipients: Iterable[str]) -> BatchResult:
        """Opt ``recipients`` back in to messages from ``sender``."""
        return self._collect("remove", sender, recipients)

    def check(self, sender: str, recipients: Iterable[str]) -> BatchResult:
        """Whether each recipient opted out of ``sender``: True, False, or None (unknown)."""
        return self._collect("check", sender, recipients)

    def stream(
        self, operation: Operation, sender: str, recipients: Iterable[str]
    ) -> Iterator[RecipientResult]:
        """Like add/remove/check, yielding results in input order as each window completes.

        Memory stays bounded however long ``recipients`` is (a file, a generator).
        """
        sender, _ = self._start(operation, sender)
        windows = self._stream_windows(operation, sender, recipients, Stats())
        # a window at a time, so a window's last results never wait for the next window
        return itertools.chain.from_iterable(map(RecipientResult._from_rows, windows))

    def _collect(self, operation: Operation, sender: str, recipients: Iterable[str]) -> BatchResult:
        sender, _ = self._start(operation, sender)
        stats = Stats()
        rows: list[Row] = []
        for window in self._stream_windows(operation, sender, recipients, stats):
            rows.extend(window)
        return self._result(rows, operation, sender, stats)

    def _stream_windows(
        self, operation: str, sender: str, recipients: Iterable[str], stats: Stats
    ) -> Iterator[list[Row]]:
        """Windows of rows in input order, while later windows' batches are in flight.

        A fatal error (refused credentials, say) stops the call: batches not yet sent are
        never sent, so one 401 is not repeated a thousand times.
        """
        halt = threading.Event()
        pending: deque[tuple[Batch, list[Future[Answered]]]] = deque()
        ahead = self._windows_ahead()

        def finish(batch: Batch, futures: list[Future[Answered]]) -> list[Row]:
            try:
                return self._assemble(batch, (f.result() for f in futures), stats)
            except _Halted:
                # A later window failed first: raise what stopped the call, not the stop.
                raise _cause(futures, [f for _, later in pending for f in later]) from None
            except BaseException:
                halt.set()
                for future in futures:
                    future.cancel()
                raise

        try:
            for batch in self._windows(recipients):
                chunks = batch.chunks()
                pending.append((batch, [self._submit(operation, sender, c, halt) for c in chunks]))
                while pending and (len(pending) > ahead or _done(pending[0][1])):
                    yield finish(*pending.popleft())
            while pending:
                yield finish(*pending.popleft())
        finally:
            halt.set()
            for _, futures in pending:
                for future in futures:
                    future.cancel()

    def _submit(
        self, operation: str, sender: str, chunk: Sequence[str], halt: threading.Event
    ) -> Future[Answered]:
        if self.max_concurrency > 1:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.max_concurrency, thread_name_prefix="optouts")
            return self._pool.submit(self._run_chunk, operation, sender, chunk, halt)
        future: Future[Answered] = Future()
        try:
            future.set_result(self._run_chunk(operation, sender, chunk, halt))
        except Exception as error:
            future.set_exception(error)
        return future

    def _run_chunk(
        self, operation: str, sender: str, chunk: Sequence[str], halt: threading.Event
    ) -> Answered:
        if halt.is_set():
            raise _Halted
        spent = Stats()
        try:
            results = self._run(self._job(operation, sender, chunk), spent)
        except Exception as error:
            try:
                results = self._chunk_failed(chunk, error)
            except BaseException:
                halt.set()
                raise
        return rows_for(chunk, results), spent

    def _run(self, job: Exchange[Any], stats: Stats) -> Any:
        return run_sync(job, self._http, self.provider.auth, stats)

    def list_page(
        self,
        sender: str | None = None,
        *,
        status: Status | str | None = Status.OPTED_OUT,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        """One page of records; pass ``page.next_cursor`` back for the next."""
        args = self._page_args(sender, status, page_size, cursor)
        page: Page = self._run(self._page_job(*args), Stats())
        return page

    def list(
        self,
        sender: str | None = None,
        *,
        status: Status | str | None = Status.OPTED_OUT,
        page_size: int | None = None,
    ) -> Iterator[OptOut]:
        """Every record, page after page. ``status="all"`` includes opt-ins."""
        sender, status_filter, size, _ = self._page_args(
            sender, status, self.provider.max_page_size if page_size is None else page_size, None
        )
        return self._iterate(sender, status_filter, size)

    def _iterate(self, sender: str | None, status: StatusFilter, size: int) -> Iterator[OptOut]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page: Page = self._run(self._page_job(sender, status, size, cursor), Stats())
            yield from page.items
            if page.next_cursor is None:
                return
            _check_cursor(seen, page.next_cursor, self.provider.name)
            cursor = page.next_cursor


class AsyncClient(_ClientCore):
    """Manage opt-outs through one provider, with asyncio. Same API as Client, awaited.

    Batches run as up to ``max_concurrency`` concurrent tasks; results keep input order.
    """

    def __init__(
        self,
        provider: str | Provider | None = None,
        *,
        config: str | os.PathLike[str] | None = None,
        default_region: str | None = None,
        retry: RetryPolicy | None = None,
        max_concurrency: int | None = None,
        http_client: httpx.AsyncClient | None = None,
        **settings: Any,
    ) -> None:
        super().__init__(
            provider,
            config=config,
            default_region=default_region,
            retry=retry,
            max_concurrency=max_concurrency,
            settings=settings,
        )
        self._owns_http = http_client is None and not self.provider.blocking
        limits = _limits(self.max_concurrency)
        self._http = (
            http_client
            if http_client is not None or self.provider.blocking
            else httpx.AsyncClient(limits=limits, timeout=VENDOR_TIMEOUT)
        )

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Let the provider release what it holds, then close the HTTP client."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._run(self.provider.close(), Stats())
        finally:
            if self._owns_http and self._http is not None:
                await self._http.aclose()

    async def add(self, sender: str, recipients: Iterable[str]) -> BatchResult:
        """Opt ``recipients`` out of messages from ``sender``."""
        return await self._collect("add", sender, recipients)

    async def remove(self, sender: str, recipients: Iterable[str]) -> BatchResult:
        """Opt ``recipients`` back in to messages from ``sender``."""
        return await self._collect("remove", sender, recipients)

    async def check(self, sender: str, recipients: Iterable[str]) -> BatchResult:
        """Whether each recipient opted out of ``sender``: True, False, or None (unknown)."""
        return await self._collect("check", sender, recipients)

    def stream(
        self, operation: Operation, sender: str, recipients: Iterable[str]
    ) -> AsyncIterator[RecipientResult]:
        """Like add/remove/check, yielding results in input order as each window completes."""
        sender, _ = self._start(operation, sender)
        return self._stream(operation, sender, recipients)

    async def _stream(
        self, operation: str, sender: str, recipients: Iterable[str]
    ) -> AsyncIterator[RecipientResult]:
        async for rows in self._stream_windows(operation, sender, recipients, Stats()):
            for result in RecipientResult._from_rows(rows):
                yield result

    async def _collect(
        self, operation: Operation, sender: str, recipients: Iterable[str]
    ) -> BatchResult:
        sender, _ = self._start(operation, sender)
        stats = Stats()
        rows: list[Row] = []
        async for window in self._stream_windows(operation, sender, recipients, stats):
            rows.extend(window)
        return self._result(rows, operation, sender, stats)

    async def _stream_windows(
        self, operation: str, sender: str, recipients: Iterable[str], stats: Stats
    ) -> AsyncIterator[list[Row]]:
        """Windows of rows in input order, while later windows' batches are in flight."""
        slots = asyncio.Semaphore(self.max_concurrency)
        pending: deque[tuple[Batch, list[asyncio.Task[Answered]]]] = deque()

        def start(batch: Batch) -> None:
            tasks = [
                asyncio.ensure_future(self._run_chunk(operation, sender, chunk, slots))
                for chunk in batch.chunks()
            ]
            pending.append((batch, tasks))

        ahead = self._windows_ahead()
        try:
            async for batch in self._windows_in_slices(recipients):
                start(batch)
                await asyncio.sleep(0)  # let batches in flight read their answers
                while pending and (len(pending) > ahead or _done(pending[0][1])):
                    yield await self._finish(*pending.popleft(), stats)
            while pending:
                yield await self._finish(*pending.popleft(), stats)
        finally:
            await _cancel([task for _, tasks in pending for task in tasks])

    async def _windows_in_slices(self, recipients: Iterable[object]) -> AsyncIterator[Batch]:
        """Like ``_windows``, letting the loop read answers between slices of a window:
        preparing 10,000 numbers in one go would hold up every answer in flight."""
        for items in windows(recipients, self._window_size()):
            batch = Batch([], [], self.provider.max_batch)
            for start in range(0, len(items), _SLICE):
                batch.extend(items[start : start + _SLICE], self.default_region)
                await asyncio.sleep(0)
            yield batch.seal()

    async def _finish(
        self, batch: Batch, tasks: list[asyncio.Task[Answered]], stats: Stats
    ) -> list[Row]:
        try:
            done = [await task for task in tasks]
        except BaseException:
            await _cancel(tasks)
            raise
        return self._assemble(batch, done, stats)

    async def _run_chunk(
        self, operation: str, sender: str, chunk: Sequence[str], slots: asyncio.Semaphore
    ) -> Answered:
        spent = Stats()
        async with slots:
            try:
                results = await self._run(self._job(operation, sender, chunk), spent)
            except Exception as error:
                results = self._chunk_failed(chunk, error)
        # Rows are made here, a chunk at a time, after the slot is free: made for a whole
        # window at once, they held up every answer in flight for milliseconds.
        return rows_for(chunk, results), spent

    async def _run(self, job: Exchange[Any], stats: Stats) -> Any:
        if self.provider.blocking:
            return await asyncio.to_thread(run_sync, job, None, None, stats)
        return await run_async(job, self._http, self.provider.auth, stats)

    async def list_page(
        self,
        sender: str | None = None,
        *,
        status: Status | str | None = Status.OPTED_OUT,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> Page:
        """One page of records; pass ``page.next_cursor`` back for the next."""
        args = self._page_args(sender, status, page_size, cursor)
        page: Page = await self._run(self._page_job(*args), Stats())
        return page

    def list(
        self,
        sender: str | None = None,
        *,
        status: Status | str | None = Status.OPTED_OUT,
        page_size: int | None = None,
    ) -> AsyncIterator[OptOut]:
        """Every record, page after page. ``status="all"`` includes opt-ins."""
        sender, status_filter, size, _ = self._page_args(
            sender, status, self.provider.max_page_size if page_size is None else page_size, None
        )
        return self._iterate(sender, status_filter, size)

    async def _iterate(
        self, sender: str | None, status: StatusFilter, size: int
    ) -> AsyncIterator[OptOut]:
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page: Page = await self._run(self._page_job(sender, status, size, cursor), Stats())
            for item in page.items:
                yield item
            if page.next_cursor is None:
                return
            _check_cursor(seen, page.next_cursor, self.provider.name)
            cursor = page.next_cursor
