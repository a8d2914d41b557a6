"""Recorded exchanges, replayed offline with the network blocked.

Recorded from the emulator over real HTTP on 127.0.0.1 with
``pytest providers/ringcentral/tests/test_ringcentral_cassettes.py --record-mode=rewrite``;
credentials and tokens are scrubbed as they are written (see ``conftest.scrub_*``). In
replay (``--record-mode=none``, the default) no emulator runs: every answer comes from
``cassettes/ringcentral/test_ringcentral_cassettes/``. The emulator and the provider share
a fake clock, so token expiry replays identically.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import optouts
from optouts import AuthenticationError, ProviderError, RateLimited, RetryPolicy
from optouts_ringcentral import Emulator, RateLimit, RingCentralProvider
from optouts_ringcentral._emulator import ACCESS_PREFIX, DEFAULT_CLIENT_SECRET, REFRESH_PREFIX
from optouts_ringcentral.testing import FakeClock, fake_clock_provider, numbers, serve_in_thread

CASSETTES = Path(__file__).resolve().parents[3] / "cassettes" / "ringcentral"
SENDER = "+16505550100"
OTHER = "+16505550199"
REPLAY_URL = "http://127.0.0.1:9"
"""Where replayed requests pretend to go; nothing listens there, and nothing is asked."""

pytestmark = [pytest.mark.vcr, pytest.mark.block_network]


class Recording:
    """The emulator when recording, None when replaying; the URL and clock either way."""

    def __init__(self, url: str, clock: FakeClock, emulator: Emulator | None) -> None:
        self.url = url
        self.clock = clock
        self.emulator = emulator

    def provider(self, api: str = "a2p-sms", **kwargs: object) -> RingCentralProvider:
        return fake_clock_provider(self.clock, api, server_url=self.url, **kwargs)

    def client(self, api: str = "a2p-sms", **kwargs: object) -> optouts.Client:
        return optouts.Client(self.provider(api, **kwargs), retry=RetryPolicy(attempts=1))


@pytest.fixture
def recording(record_mode: str) -> Iterator[Recording]:
    clock = FakeClock()
    if record_mode == "none":
        yield Recording(REPLAY_URL, clock, None)
        return
    emulator = Emulator(
        clock=clock,
        token_lifetime=600,
        rate_limit=RateLimit(50, 60),
        now=lambda: __import__("datetime").datetime(
            2025, 6, 1, tzinfo=__import__("datetime").timezone.utc
        ),
    )
    emulator.put_many((SENDER, number) for number in numbers(25))
    emulator.put("*", "+13125550100")
    url, stop = serve_in_thread(emulator)
    yield Recording(url, clock, emulator)
    stop()


def test_login_list_pages_and_revoke(recording: Recording) -> None:
    with recording.client() as client:
        listed = [record.recipient for record in client.list(SENDER, page_size=10)]
    assert listed == numbers(25)


def test_refresh_before_expiry(recording: Recording) -> None:
    with recording.client() as client:
        client.list_page(SENDER, page_size=5)
        recording.clock.advance(590)
        page = client.list_page(SENDER, page_size=5)
    assert len(page.items) == 5


def test_bulk_assign_with_partial_failure(recording: Recording) -> None:
    if recording.emulator:
        recording.emulator.rejected.add("+14155550002")
    with recording.client() as client:
        result = client.add(SENDER, ["+14155550001", "+14155550002", "+14155550003"])
        removed = client.remove(SENDER, ["+14155550003"])
    assert [item.ok for item in result] == [True, False, True]
    assert [item.opted_out for item in removed] == [False]


def test_v2_search_and_patch(recording: Recording) -> None:
    if recording.emulator:
        recording.emulator.rejected.add("+14155550002")
    with recording.client("consents") as client:
        result = client.add(SENDER, ["+14155550001", "+14155550002"])
        checked = client.check(SENDER, ["+14155550001", "+14155550009", "+13125550100"])
        listed = client.list_page(SENDER, page_size=20)
    assert [item.ok for item in result] == [True, False]
    assert [item.opted_out for item in checked] == [True, False, True]
    assert len(listed.items) == 20
    assert listed.next_cursor is not None


def test_expired_token_is_renewed_once(recording: Recording) -> None:
    with recording.client() as client:
        client.list_page(SENDER, page_size=1)
        if recording.emulator:
            recording.emulator.expire_tokens()
        page = client.list_page(SENDER, page_size=1)
    assert len(page.items) == 1


def test_429_blocks_the_group(recording: Recording) -> None:
    if recording.emulator:
        recording.emulator._groups["Light"].limit = RateLimit(2, 60)
    with recording.client() as client:
        client.list_page(SENDER, page_size=1)
        provider = client.provider
        assert isinstance(provider, RingCentralProvider)
        # Another program with the same credentials takes the last request of the window.
        token = recording.emulator.issue_token() if recording.emulator else "replayed"
        with httpx.Client() as other:
            other.get(
                f"{recording.url}/restapi/v1.0/account/~/a2p-sms/opt-outs",
                headers={"Authorization": f"Bearer {token}"},
            )
        provider.pacer._groups["Light"].sends.clear()  # we could not have known
        with pytest.raises(RateLimited) as raised:
            client.list_page(SENDER, page_size=1)
        assert raised.value.retry_after == 60
        assert raised.value.code == "CMN-301"
        assert provider.pacer.blocked_for("Light") == pytest.approx(60)


def test_error_shapes(recording: Recording) -> None:
    with recording.client(account_id="999") as client, pytest.raises(ProviderError) as v1:
        client.list_page(SENDER)
    assert (v1.value.status_code, v1.value.code) == (404, "CMN-102")
    with (
        recording.client("consents", account_id="999") as client,
        pytest.raises(ProviderError) as v2,
    ):
        client.list_page(SENDER)
    assert (v2.value.status_code, v2.value.code) == (404, "CMN-102")
    with recording.client(jwt="not-the-jwt") as client, pytest.raises(AuthenticationError) as oauth:
        client.list_page(SENDER)
    assert (oauth.value.status_code, oauth.value.code) == (400, "OAU-140")


def test_v1_from_star_means_any_sender(recording: Recording) -> None:
    """v1 ``from=*`` answers with every sender's records, each with its own ``from``: check
    lists it once and counts only the sender's and the account-wide ones."""
    if recording.emulator:
        recording.emulator.put(OTHER, "+14155550100")
    asked = [numbers(25)[0], "+13125550100", "+14155550100", "+14155550109"]
    with recording.client() as client:
        checked = client.check(SENDER, asked)
        starred = client.list_page("*")
    assert checked.info["check_plan"].plan == "list"
    assert [item.opted_out for item in checked] == [True, True, False, False]
    assert [(r.sender, r.recipient) for r in starred.items] == [("*", "+13125550100")]


@pytest.mark.vcr("seed_004_documented_list.yaml", match_on=("method", "path"))
def test_seed_documented_exchange() -> None:
    """Seed 004's documented call and answer: a last page (no nextPageToken), no status."""
    provider = fake_clock_provider(FakeClock(), server_url=REPLAY_URL)
    with optouts.Client(provider) as client:
        page = client.list_page(SENDER)
    assert [(r.sender, r.recipient, r.opted_out) for r in page.items] == [
        (SENDER, "+12125550100", True)
    ]
    assert page.next_cursor is None


SECRETS = [
    re.compile(r"Bearer (?!<ACCESS_TOKEN>)\S+"),
    re.compile(r"Basic (?!<CLIENT_CREDENTIALS>)\S+"),
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}"),
    re.compile(r"\"(access_token|refresh_token|id_token)\": \"(?!<)"),
    re.compile(r"assertion=(?!%3CJWT%3E)"),
    re.compile(re.escape(ACCESS_PREFIX)),
    re.compile(re.escape(REFRESH_PREFIX)),
    re.compile(re.escape(DEFAULT_CLIENT_SECRET)),
]


def test_no_cassette_holds_a_secret() -> None:
    files = sorted(CASSETTES.rglob("*.yaml"))
    assert len(files) >= 9, "the recorded cassettes are missing"
    for path in files:
        text = path.read_text()
        for pattern in SECRETS:
            match = pattern.search(text)
            assert match is None, (
                f"{path.name} holds a secret: {match.group(0)[:24] if match else ''}"
            )
