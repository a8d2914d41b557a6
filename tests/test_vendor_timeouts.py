"""A vendor that takes the connection and never answers cannot hold a call forever.

Providers build bare ``httpx.Request`` objects, which carry no timeout, and
``httpx.Client.send`` adds none: such a request waited forever on a silent server. The
runners now give each request the HTTP client's timeouts (the client's own HTTP client
uses ``VENDOR_TIMEOUT``), unless the provider set its own.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Sequence
from typing import ClassVar

import httpx
import pytest

import optouts
from optouts import Capability, Exchange, Outcome, Results, RetryPolicy
from optouts._http import VENDOR_TIMEOUT
from optouts.testing import blocking

SENDER = "+18005550100"
A = "+12025550101"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A TCP server on 127.0.0.1 that accepts connections, reads, and never answers."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                continue
            held.append(connection)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        listener.close()


class SilentVendor(optouts.Provider):
    name: ClassVar[str] = "silent"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHECK})

    def __init__(self, url: str, timeout: float | None = None) -> None:
        self.url = url
        self.timeout = timeout

    def check(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        extensions = {} if self.timeout is None else {"timeout": {"read": self.timeout}}
        request = httpx.Request("GET", self.url, extensions=extensions)
        reply = yield request
        assert reply is not None
        reply.raise_for_status()
        return dict.fromkeys(recipients, Outcome.NOT_OPTED_OUT)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_silent_vendor_fails_the_recipient_after_the_clients_timeout(
    kind: str, silent_server: str
) -> None:
    policy = RetryPolicy(attempts=2, backoff=0.01)
    started = time.monotonic()
    if kind == "sync":
        with optouts.Client(
            SilentVendor(silent_server), retry=policy, http_client=httpx.Client(timeout=0.3)
        ) as client:
            (result,) = client.check(SENDER, [A])
    else:
        http = httpx.AsyncClient(timeout=0.3)
        wrapped = blocking(
            optouts.AsyncClient(SilentVendor(silent_server), retry=policy, http_client=http)
        )
        try:
            (result,) = wrapped.check(SENDER, [A])
        finally:
            wrapped.close()
    assert (result.ok, result.opted_out) == (False, None)  # unknown, never a guess
    assert (result.error or "").startswith("ReadTimeout")
    assert time.monotonic() - started < 10


def test_a_providers_own_timeout_wins(silent_server: str) -> None:
    policy = RetryPolicy(attempts=1)
    started = time.monotonic()
    with optouts.Client(
        SilentVendor(silent_server, timeout=0.2),
        retry=policy,
        http_client=httpx.Client(timeout=30),
    ) as client:
        (result,) = client.check(SENDER, [A])
    assert not result.ok
    assert time.monotonic() - started < 10


def test_the_clients_own_http_client_waits_a_bounded_time(silent_server: str) -> None:
    for timeout in (VENDOR_TIMEOUT.connect, VENDOR_TIMEOUT.read, VENDOR_TIMEOUT.write):
        assert timeout is not None
        assert 0 < timeout <= 120
    with optouts.Client(SilentVendor(silent_server)) as client:
        assert client._http is not None
        assert client._http.timeout == VENDOR_TIMEOUT
