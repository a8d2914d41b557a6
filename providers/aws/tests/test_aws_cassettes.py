"""Recorded exchanges with the emulator, replayed offline with the network blocked.

Recorded over real HTTP on 127.0.0.1 with
``pytest providers/aws/tests/test_aws_cassettes.py --record-mode=rewrite``; in replay (the
default, ``--record-mode=none``) no emulator runs and every answer comes from
``cassettes/aws/test_aws_cassettes/``. Requests are matched on what the provider decided
to send (operation, path, body); the signature, the date and the session token change on
every run, and ``conftest.scrub_request`` blanks them before anything is written.
``tests/test_cassettes_clean.py`` scans the files for keys and signatures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import optouts
from optouts_aws import AwsEmulator
from optouts_aws.testing import OTHER, SENDER, emulator_settings

pytestmark = [pytest.mark.vcr, pytest.mark.block_network]

REPLAY_URL = "http://127.0.0.1:9"
"""Where replayed requests pretend to go; nothing listens there, and nothing is asked."""
RETRY = optouts.RetryPolicy(backoff=0.001, cap=0.01)


class Recording:
    """The emulator when recording, None when replaying; the URL either way."""

    def __init__(self, url: str, emulator: AwsEmulator | None) -> None:
        self.url = url
        self.emulator = emulator

    def client(self, **overrides: Any) -> optouts.Client:
        # One batch at a time: the recorded order is the order replayed.
        return optouts.Client(
            "aws",
            retry=RETRY,
            max_concurrency=1,
            **emulator_settings(endpoint_url=self.url, **overrides),
        )


@pytest.fixture
def recording(record_mode: str, request: pytest.FixtureRequest) -> Iterator[Recording]:
    if record_mode == "none":
        yield Recording(REPLAY_URL, None)
        return
    server: Any = request.getfixturevalue("emulator_server")
    emulator = AwsEmulator(seed=0)
    for name in ("Marketing", "Alerts"):
        emulator.create_list(name)
    server.app = emulator
    yield Recording(server.url, emulator)


def test_add_check_remove_list(recording: Recording) -> None:
    numbers = [f"+1503555{i:04d}" for i in range(7)]
    with recording.client() as client:
        assert client.add(SENDER, numbers).ok
        checked = client.check(SENDER, [*numbers, "+15035559999"])
        removed = client.remove(SENDER, numbers[:2])
        listed = sorted(r.recipient for r in client.list(SENDER))
    assert [r.opted_out for r in checked] == [True] * 7 + [False]
    assert checked.requests == 2
    assert [r.opted_out for r in removed] == [False, False]
    assert listed == numbers[2:]


def test_the_wildcard_writes_every_list(recording: Recording) -> None:
    with recording.client() as client:
        added = client.add("*", ["+15035550100"])
        seen = {(r.sender, r.recipient) for r in client.list()}
    assert added.requests == 3
    assert seen == {("*", "+15035550100"), (SENDER, "+15035550100"), (OTHER, "+15035550100")}


def test_pages_follow_next_token(recording: Recording) -> None:
    numbers = [f"+1503556{i:04d}" for i in range(9)]
    with recording.client() as client:
        client.add(OTHER, numbers).raise_for_failures()
        first = client.list_page(OTHER, page_size=4)
        second = client.list_page(OTHER, page_size=4, cursor=first.next_cursor)
        third = client.list_page(OTHER, page_size=4, cursor=second.next_cursor)
    assert [len(p.items) for p in (first, second, third)] == [4, 4, 1]
    assert third.next_cursor is None
    assert [r.recipient for p in (first, second, third) for r in p.items] == numbers


def test_throttled_then_served(recording: Recording) -> None:
    if recording.emulator:
        recording.emulator.inject("throttle")
    with recording.client() as client:
        result = client.check(SENDER, ["+15035570000"])
    assert [r.opted_out for r in result] == [False]
    assert result.retries == 1


def test_a_refused_number_fails_alone(recording: Recording) -> None:
    if recording.emulator:
        recording.emulator.rejected.add("+15035580001")
    with recording.client() as client:
        result = client.check(SENDER, ["+15035580000", "+15035580001"])
    assert [(r.ok, r.opted_out) for r in result] == [(True, False), (False, None)]
    assert "ValidationException" in str(result[1].error)


def test_an_unknown_list(recording: Recording) -> None:
    with (
        recording.client(sender_lists={SENDER: "Nowhere"}) as client,
        pytest.raises(optouts.ConfigurationError, match="'Nowhere'"),
    ):
        client.add(SENDER, ["+15035590000"])


def test_a_wrong_secret(recording: Recording, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not/the/right/secret/at/all/000000000000")
    with recording.client() as client, pytest.raises(optouts.AuthenticationError) as raised:
        client.check(SENDER, ["+15035600000"])
    assert raised.value.code == "InvalidSignatureException"
    assert raised.value.status_code == 403
