"""The session kept across processes: reused, refreshed, replaced, revoked only on logout.

Each "run" is a client lifetime of its own (a new provider, auth and pacer, as a new
process has), sharing only the cache directory with the others; the emulator counts the
token endpoint calls. The command-line tests run ``optouts`` against the emulator on
127.0.0.1, in-process and as subprocesses.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

import optouts
from optouts import AuthenticationError, BatchResult, Secret
from optouts.cli import run
from optouts_ringcentral import Emulator, RateLimit, RingCentralProvider
from optouts_ringcentral._tokencache import CachedToken, TokenCache, cache_key
from optouts_ringcentral.testing import (
    CREDENTIALS,
    FakeClock,
    SyncASGITransport,
    fake_clock_provider,
    make_provider,
    numbers,
    serve_in_thread,
)

SENDER = "+16505550100"
RECIPIENTS = numbers(3)
EPOCH = 1_700_000_000.0
"""Wall-clock seconds at the fake clock's zero, for the dates the cache stores."""


def token_calls(emulator: Emulator) -> int:
    return emulator.counts["getToken"]


def grants(transport: SyncASGITransport) -> list[str]:
    """The grant type of each token request the transport carried, in order."""
    return [
        parse_qs(request.content.decode())["grant_type"][0]
        for request, _ in transport.exchanges
        if request.url.path.endswith("/oauth/token")
    ]


class Runs:
    """Client lifetimes against one emulator, each with a fresh provider over ``cache``."""

    def __init__(self, emulator: Emulator, cache: TokenCache | bool, clock: FakeClock | None):
        self.emulator = emulator
        self.cache = cache
        self.clock = clock
        self.transport = SyncASGITransport(emulator)

    def provider(self, **options: Any) -> Any:
        options.setdefault("token_cache", self.cache)
        if self.clock is None:
            return make_provider(**options)
        clock = self.clock
        return fake_clock_provider(clock, wall_clock=lambda: EPOCH + clock(), **options)

    def check(self, **options: Any) -> BatchResult:
        with (
            httpx.Client(transport=self.transport) as http,
            optouts.Client(self.provider(**options), http_client=http) as client,
        ):
            return client.check(SENDER, RECIPIENTS)


@pytest.fixture
def cache(tmp_path: Path) -> TokenCache:
    return TokenCache(tmp_path / "tokens")


@pytest.fixture
def runs(emulator: Emulator, cache: TokenCache) -> Runs:
    return Runs(emulator, cache, None)


@pytest.fixture
def timed() -> tuple[Runs, FakeClock]:
    """Runs on a fake clock shared with the emulator, whose tokens live 600 s."""
    clock = FakeClock()
    emulator = Emulator(
        clock=clock,
        token_lifetime=600,
        rate_limit=RateLimit(100_000, 60.0),
        auth_rate_limit=RateLimit(1000, 60.0),
    )
    return Runs(emulator, TokenCache(Path(os.environ["XDG_CACHE_HOME"]) / "timed"), clock), clock


def entries(cache: TokenCache) -> list[Path]:
    return sorted(cache.directory.glob("*.json")) if cache.directory.exists() else []


# Reuse


def test_back_to_back_runs_cost_one_login_and_no_revoke(runs: Runs) -> None:
    first = runs.check()
    second = runs.check()
    assert first.ok
    assert second.ok
    assert token_calls(runs.emulator) == 1
    assert runs.emulator.counts["revokeToken"] == 0
    assert (first.auth_requests, second.auth_requests) == (1, 0)
    assert runs.emulator.live_sessions == 1


async def test_a_session_cached_by_a_blocking_client_serves_an_async_one(
    runs: Runs, emulator: Emulator
) -> None:
    runs.check()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator))
    async with optouts.AsyncClient(runs.provider(), http_client=http) as client:
        result = await client.check(SENDER, RECIPIENTS)
    await http.aclose()
    assert result.ok
    assert token_calls(emulator) == 1


async def test_a_session_an_async_client_cached_serves_the_next_run(
    runs: Runs, emulator: Emulator
) -> None:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator))
    async with optouts.AsyncClient(runs.provider(), http_client=http) as client:
        assert (await client.check(SENDER, RECIPIENTS)).ok
    await http.aclose()
    assert runs.check().auth_requests == 0
    assert token_calls(emulator) == 1
    assert emulator.counts["revokeToken"] == 0


def test_the_entry_is_0600_in_a_0700_directory_and_holds_no_credential(
    runs: Runs, cache: TokenCache, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    provider = runs.provider()
    with (
        httpx.Client(transport=runs.transport) as http,
        optouts.Client(provider, http_client=http) as client,
    ):
        client.check(SENDER, RECIPIENTS)
        shown = [repr(client), repr(provider), repr(provider.auth), repr(cache)]
    (entry,) = entries(cache)
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.directory.stat().st_mode) == 0o700
    text = entry.read_text()
    for credential in (CREDENTIALS["client_secret"], CREDENTIALS["jwt"]):
        assert credential not in text
        assert credential not in entry.name
    stored = json.loads(text)
    tokens = [stored["access_token"], stored["refresh_token"]]
    assert all(token.startswith("rcemu-") for token in tokens)
    loaded = cache.load(entry.stem, stored["server_url"], stored["client_id"])
    shown.append(repr(loaded))
    said = "\n".join([*shown, caplog.text, *(str(r.args) for r in caplog.records)])
    for secret in (*tokens, CREDENTIALS["client_secret"], CREDENTIALS["jwt"]):
        assert secret not in said
    assert not [p for p in cache.directory.iterdir() if p.name.endswith(".tmp")]


def test_the_entry_is_keyed_by_server_app_secret_and_jwt(
    emulator: Emulator, cache: TokenCache
) -> None:
    jwt, secret = Secret(CREDENTIALS["jwt"]), Secret(CREDENTIALS["client_secret"])
    base = cache_key("http://127.0.0.1:9", "app", secret, jwt)
    assert base == cache_key("http://127.0.0.1:9/", "app", secret, jwt)
    others = {
        cache_key("http://127.0.0.1:8", "app", secret, jwt),
        cache_key("http://127.0.0.1:9", "other app", secret, jwt),
        cache_key("http://127.0.0.1:9", "app", secret, Secret(CREDENTIALS["jwt"] + "x")),
        cache_key("http://127.0.0.1:9", "app", Secret("another secret"), jwt),
    }
    assert base not in others
    assert len(others) == 4
    # A new JWT never rides on the old one's session: it logs in, and is refused here.
    runs = Runs(emulator, cache, None)
    runs.check()
    with pytest.raises(AuthenticationError):
        runs.check(jwt=CREDENTIALS["jwt"] + "-rotated")
    assert token_calls(emulator) == 2
    assert len(entries(cache)) == 1
    # Nor does a wrong client secret: it fails now, not when the cached session ends.
    with pytest.raises(AuthenticationError):
        runs.check(client_secret="a mistyped secret")
    assert token_calls(emulator) == 3
    assert len(entries(cache)) == 1


def test_an_unreadable_entry_is_ignored_and_replaced(runs: Runs, cache: TokenCache) -> None:
    runs.check()
    (entry,) = entries(cache)
    entry.write_text("{not json")
    assert runs.check().ok
    assert token_calls(runs.emulator) == 2
    assert json.loads(entry.read_text())["version"] == 1


def test_a_cache_that_cannot_be_written_costs_nothing_but_the_reuse(
    emulator: Emulator, tmp_path: Path
) -> None:
    """The session could not be kept, so it is revoked on close as without a cache."""
    (tmp_path / "a file").write_text("")
    runs = Runs(emulator, TokenCache(tmp_path / "a file" / "tokens"), None)
    assert runs.check().ok
    assert runs.check().ok
    assert (token_calls(emulator), emulator.counts["revokeToken"]) == (2, 2)


# Renewal across runs


def test_a_token_near_expiry_is_refreshed_not_logged_in_again(
    timed: tuple[Runs, FakeClock],
) -> None:
    runs, clock = timed
    runs.check()
    (entry,) = entries(runs.cache)  # type: ignore[arg-type]
    before = json.loads(entry.read_text())["access_token"]
    clock.advance(580)  # within the last minute of its 600 s
    assert runs.check().ok
    assert grants(runs.transport) == [
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "refresh_token",
    ]
    assert json.loads(entry.read_text())["access_token"] != before
    assert runs.check().ok  # and the refreshed one is reused in turn
    assert token_calls(runs.emulator) == 2


def test_a_refused_refresh_token_falls_back_to_the_jwt(timed: tuple[Runs, FakeClock]) -> None:
    runs, clock = timed
    runs.check()
    runs.emulator.end_sessions()  # an admin's sign-out: the refresh token is dead too
    clock.advance(580)
    assert runs.check().ok
    jwt = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert grants(runs.transport) == [jwt, "refresh_token", jwt]
    assert runs.check().ok
    assert token_calls(runs.emulator) == 3


def test_a_cached_session_the_server_ended_is_replaced_by_a_login(runs: Runs) -> None:
    runs.check()
    runs.emulator.end_sessions()  # the cached token is not due, but dead: 401 OAU-149
    result = runs.check()
    assert result.ok
    assert token_calls(runs.emulator) == 2
    assert runs.check().ok  # the new session was cached
    assert token_calls(runs.emulator) == 2


def test_an_expired_cached_session_logs_in_again(timed: tuple[Runs, FakeClock]) -> None:
    runs, clock = timed
    runs.check()
    clock.advance(604_800 + 1)  # past the refresh token's lifetime too
    assert runs.check().ok
    jwt = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert grants(runs.transport) == [jwt, jwt]


def test_a_run_that_finds_a_newer_session_in_the_cache_takes_it(runs: Runs) -> None:
    """Another process refreshed while this one held the old token: no request is wasted."""
    provider = runs.provider()
    with (
        httpx.Client(transport=runs.transport) as http,
        optouts.Client(provider, http_client=http) as client,
    ):
        client.check(SENDER, RECIPIENTS)
        runs.check()  # nothing to do: the same session
        runs.emulator.expire_tokens()
        runs.check()  # "another process" refreshes and stores the new session
        calls = token_calls(runs.emulator)
        assert client.check(SENDER, RECIPIENTS).ok  # OAU-128, then the cached session
    assert token_calls(runs.emulator) == calls == 2


# Without the cache


def test_without_the_cache_each_run_logs_in_and_revokes(runs: Runs, cache: TokenCache) -> None:
    runs.check(token_cache=False)
    runs.check(token_cache=False)
    assert token_calls(runs.emulator) == 2
    assert runs.emulator.counts["revokeToken"] == 2
    assert runs.emulator.live_sessions == 0
    assert entries(cache) == []


def cache_of(client: optouts.Client) -> TokenCache | None:
    provider = client.provider
    assert isinstance(provider, RingCentralProvider)
    return provider.auth.cache


def test_library_clients_keep_no_session_unless_asked(
    monkeypatch: pytest.MonkeyPatch, isolated_cache: Path
) -> None:
    settings: dict[str, Any] = {**CREDENTIALS, "server_url": "http://127.0.0.1:9"}
    with optouts.Client("ringcentral", **settings) as client:
        assert cache_of(client) is None
    with optouts.Client("ringcentral", token_cache=True, **settings) as client:
        cache = cache_of(client)
        assert cache is not None
        assert cache.directory == isolated_cache / "optouts" / "ringcentral"
    monkeypatch.setenv("OPTOUTS_RINGCENTRAL_TOKEN_CACHE", "yes")
    with optouts.Client("ringcentral", **settings) as client:
        assert cache_of(client) is not None
    monkeypatch.setenv("OPTOUTS_RINGCENTRAL_TOKEN_CACHE", "maybe")
    with pytest.raises(optouts.ConfigurationError, match="token_cache"):
        optouts.Client("ringcentral", **settings)


# Processes at once


def test_runs_starting_at_once_log_in_once(emulator: Emulator, cache: TokenCache) -> None:
    transport = SyncASGITransport(emulator, token_delay=0.3)  # logins overlap for sure
    start = threading.Barrier(4)
    results: list[BatchResult] = []

    def one_run() -> None:
        with httpx.Client(transport=transport) as http:
            provider = make_provider(token_cache=cache)
            with optouts.Client(provider, http_client=http) as client:
                start.wait()
                results.append(client.check(SENDER, RECIPIENTS))

    threads = [threading.Thread(target=one_run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 4
    assert all(result.ok for result in results)
    assert token_calls(emulator) == 1
    (entry,) = entries(cache)
    assert json.loads(entry.read_text())["version"] == 1


def test_a_save_is_atomic_and_a_lost_race_still_leaves_a_whole_entry(cache: TokenCache) -> None:
    key = "k" * 32
    tokens = [CachedToken(f"access-{n}", 1.0, 2.0, f"refresh-{n}", 3.0) for n in range(40)]
    writers = [
        threading.Thread(target=cache.save, args=(key, token, "http://h", "app"))
        for token in tokens
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    loaded = cache.load(key, "http://h", "app")
    assert loaded is not None
    assert loaded.access_token in {t.access_token for t in tokens}
    assert [p.name for p in cache.directory.iterdir()] == [f"{key}.json"]


# The command line: on by default, `token_cache = false`, and `optouts logout`


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Emulator]]:
    """The emulator on 127.0.0.1, and the environment that points ``optouts`` at it."""
    emulator = Emulator(rate_limit=RateLimit(100_000, 60.0), auth_rate_limit=RateLimit(1000, 60))
    url, stop = serve_in_thread(emulator)
    for name in list(os.environ):
        if name.startswith("OPTOUTS_") and name != "OPTOUTS_LOAD_PLUGINS":
            monkeypatch.delenv(name)
    monkeypatch.setenv("OPTOUTS_PROVIDER", "ringcentral")
    monkeypatch.setenv("RC_SERVER_URL", url)
    monkeypatch.setenv("RC_CLIENT_ID", CREDENTIALS["client_id"])
    monkeypatch.setenv("RC_CLIENT_SECRET", CREDENTIALS["client_secret"])
    monkeypatch.setenv("RC_JWT", CREDENTIALS["jwt"])
    yield url, emulator
    stop()


def cli_entries(isolated_cache: Path) -> list[Path]:
    return sorted((isolated_cache / "optouts" / "ringcentral").glob("*.json"))


def test_the_command_line_keeps_the_session_and_logout_ends_it(
    served: tuple[str, Emulator], isolated_cache: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _, emulator = served
    for _ in range(3):
        assert run(["--format", "csv", "check", "--from", SENDER, *RECIPIENTS]) == 0
    assert token_calls(emulator) == 1
    assert emulator.counts["revokeToken"] == 0
    (entry,) = cli_entries(isolated_cache)
    capsys.readouterr()
    assert run(["logout", "ringcentral"]) == 0
    assert "logged out of ringcentral" in capsys.readouterr().err
    assert emulator.counts["revokeToken"] == 1
    assert emulator.live_sessions == 0
    assert not entry.exists()
    assert run(["logout", "ringcentral"]) == 0
    assert "no ringcentral session was kept" in capsys.readouterr().err
    assert emulator.counts["revokeToken"] == 1
    assert token_calls(emulator) == 1  # logging out never logs in


def test_token_cache_false_logs_in_and_revokes_each_run(
    served: tuple[str, Emulator],
    isolated_cache: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, emulator = served
    monkeypatch.setenv("OPTOUTS_RINGCENTRAL_TOKEN_CACHE", "false")
    for _ in range(2):
        assert run(["--format", "csv", "check", "--from", SENDER, *RECIPIENTS]) == 0
    assert (token_calls(emulator), emulator.counts["revokeToken"]) == (2, 2)
    assert cli_entries(isolated_cache) == []
    # A session cached before the cache was turned off can still be ended.
    monkeypatch.delenv("OPTOUTS_RINGCENTRAL_TOKEN_CACHE")
    assert run(["--format", "csv", "check", "--from", SENDER, *RECIPIENTS]) == 0
    monkeypatch.setenv("OPTOUTS_RINGCENTRAL_TOKEN_CACHE", "false")
    capsys.readouterr()
    assert run(["logout"]) == 0  # the configured provider
    assert "logged out of ringcentral" in capsys.readouterr().err
    assert cli_entries(isolated_cache) == []
    assert emulator.live_sessions == 0


def test_logout_of_a_provider_without_sessions_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert run(["logout", "local"]) == 2
    assert "keeps no session" in capsys.readouterr().err


def optouts_process(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "optouts.cli", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_separate_processes_share_one_login(served: tuple[str, Emulator]) -> None:
    """Two runs at once, then one after: a single token request among the three."""
    _, emulator = served
    argv = ("--format", "csv", "check", "--from", SENDER, *RECIPIENTS)
    together = [optouts_process(*argv) for _ in range(2)]
    outcomes = [process.communicate(timeout=60) for process in together]
    assert [process.returncode for process in together] == [0, 0], outcomes
    after = optouts_process(*argv)
    out, err = after.communicate(timeout=60)
    assert after.returncode == 0, err
    assert len(out.splitlines()) == 1 + len(RECIPIENTS)
    assert token_calls(emulator) == 1
    assert emulator.counts["revokeToken"] == 0
