"""The audit page (``GET /audit``): who may see it, what it refuses, and what a person sees.

Most tests ask the page in-process (ASGI) and read its HTML as a browser would, by its
captions and cells. The last ones serve it on 127.0.0.1 and load it in headless Chromium,
logging in as a person does, with the key as the password in the address: Chromium asks
without it, gets the Basic challenge, and asks again with it. They skip, saying why, when
Chromium is not installed (``apt-get install chromium``), except under CI, where they fail.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from optouts import ConfigurationError, Ledger, Secret
from optouts.cli import run
from optouts.emulators import serve_in_thread
from optouts.ledger import Change, micros_of
from optouts.server._audit_page import audit_route

KEY = "audit-key-8c1f0e"
SENDER = "+18005550100"
SHORT_CODE = "12345"
US = "+12025550123"
DIGITS = int(US[1:])
HOSTILE = "<script>alert(1)</script>"
CHROMIUM = Path("/usr/bin/chromium")
IN_CI = bool(os.environ.get("CI"))

T1 = micros_of(datetime(2024, 3, 1, 12, 0, 5, 250_000, tzinfo=timezone.utc))
T2 = micros_of(datetime(2024, 3, 2, 8, 30, 0, tzinfo=timezone.utc))


class Seen(HTMLParser):
    """What a person sees of a page: its tables (caption, header, rows of cell text), its
    paragraphs, its text, and which elements it has."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.paragraphs: list[str] = []
        self.tags: set[str] = set()
        self.text = ""
        self._rows: list[list[str]] = []
        self._caption: list[str] | None = None
        self._cell: list[str] | None = None
        self._paragraph: list[str] | None = None
        self.feed(html)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag == "table":
            self._rows = []
        elif tag == "caption":
            self._caption = []
        elif tag == "tr":
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "p":
            self._paragraph = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "caption" and self._caption is not None:
            self.tables["".join(self._caption).strip()] = self._rows
            self._caption = None
        elif tag in ("td", "th") and self._cell is not None:
            self._rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "p" and self._paragraph is not None:
            self.paragraphs.append(" ".join("".join(self._paragraph).split()))
            self._paragraph = None

    def handle_data(self, data: str) -> None:
        self.text += data
        for part in (self._caption, self._cell, self._paragraph):
            if part is not None:
                part.append(data)


def when(micros: int) -> str:
    """A ledger time as every output writes it, worked out here rather than asked of optouts."""
    moment = datetime.fromtimestamp(micros // 1_000_000, tz=timezone.utc)
    fraction = f".{micros % 1_000_000:06d}" if micros % 1_000_000 else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A ledger holding US's trail with two senders and two vendors: the short code's
    opt-in from a file, then a STOP whose source is markup; the long number's opt-out
    through the API; and what Azure and RingCentral confirmed."""
    with Ledger.open(tmp_path / "ledger.db") as opened:
        received = [
            Change(SHORT_CODE, DIGITS, False, "import:optins.csv", T1, "US"),
            Change(SHORT_CODE, DIGITS, True, HOSTILE, T2, "US"),
        ]
        assert opened.record(received) == 2
        with opened.client() as client:
            assert client.add(SENDER, [US]).ok
        opened.confirm("azure", SENDER, [DIGITS], opted_out=True)
        opened.confirm("ringcentral", SHORT_CODE, [DIGITS], opted_out=False)
        yield opened


def app_of(ledger: Callable[[], Ledger], keys: list[Secret | str]) -> Starlette:
    return Starlette(routes=[audit_route(ledger, keys)])


@pytest.fixture
async def web(ledger: Ledger) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client asking the page in-process, the key not yet given."""
    transport = httpx.ASGITransport(app_of(lambda: ledger, [Secret("other"), Secret(KEY)]))
    async with httpx.AsyncClient(transport=transport, base_url="http://audit.test") as client:
        yield client


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


BEARER = {"Authorization": f"Bearer {KEY}"}


# Who may look


@pytest.mark.parametrize(
    "headers",
    [BEARER, basic("anyone", KEY), basic("", KEY)],
    ids=["bearer", "basic", "basic without a user name"],
)
async def test_the_key_as_a_bearer_token_or_basic_password_opens_the_page(
    web: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await web.get("/audit", params={"number": US}, headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "Current state" in Seen(response.text).tables


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {KEY}x"},
        {"Authorization": f"Bearer {KEY[:-1]}"},
        {"Authorization": "Bearer "},
        basic("anyone", "wrong"),
        basic(KEY, ""),
        {"Authorization": "Basic " + base64.b64encode(KEY.encode()).decode()},  # no colon
        {"Authorization": "Basic not*base64"},
        {"Authorization": f"Token {KEY}"},
        {"Authorization": KEY},
    ],
    ids=[
        "none",
        "wrong bearer",
        "longer",
        "shorter",
        "empty bearer",
        "wrong password",
        "key as user name",
        "no colon",
        "not base64",
        "other scheme",
        "bare key",
    ],
)
async def test_without_the_key_the_browser_is_asked_for_it(
    web: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    response = await web.get("/audit", params={"number": US}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Basic realm="optouts audit"'
    assert response.headers["cache-control"] == "no-store"
    seen = Seen(response.text)
    assert not seen.tables
    assert US not in response.text
    assert "API key" in seen.text


@pytest.mark.parametrize("keys", [[], [""], [Secret("")]], ids=["none", "blank", "blank secret"])
async def test_with_no_key_configured_there_is_no_page(
    ledger: Ledger, keys: list[Secret | str]
) -> None:
    transport = httpx.ASGITransport(app_of(lambda: ledger, keys))
    async with httpx.AsyncClient(transport=transport, base_url="http://audit.test") as client:
        for headers in ({}, BEARER, {"Authorization": "Bearer "}, basic("a", "")):
            response = await client.get("/audit", params={"number": US}, headers=headers)
            assert response.status_code == 404
            assert "www-authenticate" not in response.headers


async def test_a_plain_string_key_works_too(ledger: Ledger) -> None:
    transport = httpx.ASGITransport(app_of(lambda: ledger, [KEY]))
    async with httpx.AsyncClient(transport=transport, base_url="http://audit.test") as client:
        response = await client.get("/audit", params={"number": US}, headers=BEARER)
    assert response.status_code == 200


# What it refuses


@pytest.mark.parametrize(
    ("number", "says"),
    [
        (None, "Enter a phone number"),
        ("", "Enter a phone number"),
        ("  ", "Enter a phone number"),
        ("banana", "Not a number to audit: 'banana'"),
        ("+1202", "Not a number to audit: '+1202'"),
        ("<b>x</b>", "Not a number to audit: '<b>x</b>'"),
    ],
)
async def test_a_missing_or_bad_number_is_400_saying_why(
    web: httpx.AsyncClient, number: str | None, says: str
) -> None:
    params = {} if number is None else {"number": number}
    response = await web.get("/audit", params=params, headers=BEARER)
    assert response.status_code == 400
    seen = Seen(response.text)
    assert any(says in p for p in seen.paragraphs), seen.paragraphs
    assert "b" not in seen.tags  # the number typed is shown, not obeyed
    assert "form" in seen.tags  # with the form, to try again
    assert not seen.tables


async def test_a_very_long_number_is_shown_cut_short(web: httpx.AsyncClient) -> None:
    response = await web.get("/audit", params={"number": "9" * 60_000}, headers=BEARER)
    assert response.status_code == 400
    assert len(response.text) < 10_000


async def test_a_missing_ledger_is_503_saying_so(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "<ledger>.db"
    with Ledger.open(missing) as ledger:
        transport = httpx.ASGITransport(app_of(lambda: ledger, [KEY]))
        async with httpx.AsyncClient(transport=transport, base_url="http://a.test") as client:
            response = await client.get("/audit", params={"number": US}, headers=BEARER)
    assert response.status_code == 503
    seen = Seen(response.text)
    assert "ledger" not in seen.tags  # the path is text
    [said] = [p for p in seen.paragraphs if "cannot be read" in p]
    assert str(missing) in said
    assert not missing.parent.exists()  # a read never creates one


async def test_a_ledger_that_cannot_be_opened_is_503() -> None:
    def unconfigured() -> Ledger:
        raise ConfigurationError("OPTOUTS_LOCAL_DATABASE: <not> a database")

    transport = httpx.ASGITransport(app_of(unconfigured, [KEY]))
    async with httpx.AsyncClient(transport=transport, base_url="http://a.test") as client:
        response = await client.get("/audit", params={"number": US}, headers=BEARER)
    assert response.status_code == 503
    assert "<not> a database" in Seen(response.text).text
    assert "not" not in Seen(response.text).tags


@pytest.mark.parametrize("status", [200, 400, 401, 503])
async def test_every_answer_forbids_scripts_caching_and_referrers(
    tmp_path: Path, status: int
) -> None:
    with Ledger.open(tmp_path / ("ledger.db" if status != 503 else "none/ledger.db")) as ledger:
        if status != 503:
            ledger.require(write=True)
        transport = httpx.ASGITransport(app_of(lambda: ledger, [KEY]))
        async with httpx.AsyncClient(transport=transport, base_url="http://a.test") as client:
            response = await client.get(
                "/audit",
                params={"number": "x" if status == 400 else US},
                headers={} if status == 401 else BEARER,
            )
    assert response.status_code == status
    policy = response.headers["content-security-policy"]
    assert policy.startswith("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "script" not in Seen(response.text).tags


# What a person sees


async def test_the_page_shows_what_optouts_audit_shows(
    web: httpx.AsyncClient,
    ledger: Ledger,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Row for row what ``optouts --format json audit`` prints of the same ledger."""
    response = await web.get("/audit", params={"number": US}, headers=BEARER)
    assert response.status_code == 200
    seen = Seen(response.text)

    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", ledger.location)
    assert run(["--format", "json", "audit", US]) == 0
    printed = json.loads(capsys.readouterr().out)

    def when_of(row: dict[str, str]) -> list[str]:
        return [row["first_received"], row["updated_at"]]

    assert list(seen.tables) == ["Current state", "History", "Vendor confirmations"]
    assert seen.tables["Current state"] == [
        ["sender", "status", "country", "source", "first received", "last change"],
        *(
            [r["sender"], r["status"], r["country"] or "", r["source"], *when_of(r)]
            for r in printed["current"]
        ),
    ]
    assert seen.tables["History"] == [
        ["time", "sender", "action", "source"],
        *([r["at"], r["sender"], r["action"], r["source"]] for r in printed["history"]),
    ]
    assert seen.tables["Vendor confirmations"] == [
        ["sender", "vendor", "state confirmed", "at"],
        *([r["sender"], r["target"], r["status"], r["at"]] for r in printed["confirmations"]),
    ]


async def test_the_tables_hold_the_trail(web: httpx.AsyncClient, ledger: Ledger) -> None:
    trail = ledger.audit(US)
    added = next(last for s, _, _, _, _, last in trail.current if s == SENDER)
    azure, ringcentral = (at for _, _, _, at in trail.confirmations)
    response = await web.get("/audit", params={"number": US}, headers=BEARER)
    tables = Seen(response.text).tables
    assert tables["Current state"][1:] == [
        ["+18005550100", "opted-out", "US", "api", when(added), when(added)],
        [
            "12345",
            "opted-out",
            "US",
            HOSTILE,
            "2024-03-01T12:00:05.250000Z",
            "2024-03-02T08:30:00Z",
        ],
    ]
    assert tables["History"][1:] == [
        ["2024-03-01T12:00:05.250000Z", "12345", "opt-in", "import:optins.csv"],
        ["2024-03-02T08:30:00Z", "12345", "opt-out", HOSTILE],
        [when(added), "+18005550100", "opt-out", "api"],
    ]
    assert tables["Vendor confirmations"][1:] == [
        ["+18005550100", "azure", "opted-out", when(azure)],
        ["12345", "ringcentral", "opted-in", when(ringcentral)],
    ]


async def test_times_are_written_as_everywhere_else(web: httpx.AsyncClient) -> None:
    """ISO 8601 UTC to the microsecond (the fraction left out when zero), as the command
    line, exports and JSON write them; the same text in ``<time datetime>`` for machines."""
    response = await web.get("/audit", params={"number": US}, headers=BEARER)
    exact = "2024-03-01T12:00:05.250000Z"
    assert f'<time datetime="{exact}">{exact}</time>' in response.text
    assert '<time datetime="2024-03-02T08:30:00Z">2024-03-02T08:30:00Z</time>' in response.text


async def test_a_hostile_source_is_shown_as_text(web: httpx.AsyncClient) -> None:
    response = await web.get("/audit", params={"number": US}, headers=BEARER)
    assert HOSTILE not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    seen = Seen(response.text)
    assert "script" not in seen.tags
    assert HOSTILE in seen.text


async def test_controls_and_bidi_overrides_are_written_out(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        ledger.record([Change(SENDER, DIGITS, True, "evil\u202etxt.exe\x1b[2J", T1)])
        transport = httpx.ASGITransport(app_of(lambda: ledger, [KEY]))
        async with httpx.AsyncClient(transport=transport, base_url="http://a.test") as client:
            response = await client.get("/audit", params={"number": US}, headers=BEARER)
    [[_, _, _, source, *_]] = Seen(response.text).tables["Current state"][1:]
    assert source == "evil\\u202etxt.exe\\x1b[2J"


async def test_a_number_the_ledger_never_heard_of_says_so(web: httpx.AsyncClient) -> None:
    response = await web.get("/audit", params={"number": "+1 (202) 555-0199"}, headers=BEARER)
    assert response.status_code == 200
    seen = Seen(response.text)
    assert not seen.tables
    assert "The ledger has no record of +12025550199." in seen.paragraphs


async def test_no_confirmation_yet_is_said_in_its_table(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        with ledger.client() as client:
            assert client.add(SENDER, [US]).ok
        transport = httpx.ASGITransport(app_of(lambda: ledger, [KEY]))
        async with httpx.AsyncClient(transport=transport, base_url="http://a.test") as client:
            response = await client.get("/audit", params={"number": US}, headers=BEARER)
    assert Seen(response.text).tables["Vendor confirmations"][1:] == [
        ["No vendor has confirmed a state for this number yet."]
    ]


async def test_the_form_asks_again_with_the_number_filled_in(web: httpx.AsyncClient) -> None:
    response = await web.get("/audit", params={"number": "(202) 555 0123"}, headers=BEARER)
    assert response.status_code == 400  # no default region: a national number is not enough
    assert 'value="(202) 555 0123"' in response.text
    response = await web.get("/audit", params={"number": " +1 202 555 0123 "}, headers=BEARER)
    assert '<form method="get">' in response.text
    assert 'name="number"' in response.text
    assert f'value="{US}"' in response.text  # normalised


async def test_a_default_region_takes_national_numbers(ledger: Ledger) -> None:
    app = Starlette(routes=[audit_route(lambda: ledger, [KEY], default_region="US")])
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://a.test") as client:
        response = await client.get("/audit", params={"number": "(202) 555-0123"}, headers=BEARER)
    assert response.status_code == 200
    assert len(Seen(response.text).tables["Current state"]) == 3


# In a real browser


def chromium_run(url: str, profile: Path) -> tuple[str, str]:
    """The DOM headless Chromium builds of ``url`` once it has loaded, and its log."""
    if not CHROMIUM.exists():
        message = f"no {CHROMIUM} to load the page in (apt-get install chromium)"
        if IN_CI:
            pytest.fail(f"{message} (CI is set: a missing browser fails)", pytrace=False)
        pytest.skip(message)
    done = subprocess.run(
        [
            str(CHROMIUM),
            "--headless",
            "--no-sandbox",  # tests run as root in CI's containers
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2_000:]
    return done.stdout, done.stderr


class Answers:
    """An ASGI wrapper noting the status of each response the page gave, by path."""

    def __init__(self, app: Starlette) -> None:
        self.app = app
        self.statuses: list[tuple[str, int]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def noting(message: Any) -> None:
            if message["type"] == "http.response.start":
                self.statuses.append((scope["path"], message["status"]))
            await send(message)

        await self.app(scope, receive, noting)


@pytest.fixture
def answers(ledger: Ledger) -> Answers:
    return Answers(app_of(lambda: ledger, [KEY]))


@pytest.fixture
def served(answers: Answers) -> Iterator[str]:
    """The page on 127.0.0.1, as ``host:port``."""
    url, stop = serve_in_thread(answers)
    try:
        yield url.removeprefix("http://")
    finally:
        stop()


def test_a_person_with_the_key_sees_the_trail_in_chromium(served: str, tmp_path: Path) -> None:
    dom, _ = chromium_run(f"http://user:{KEY}@{served}/audit?number=%2B12025550123", tmp_path)
    seen = Seen(dom)
    assert list(seen.tables) == ["Current state", "History", "Vendor confirmations"]
    current = seen.tables["Current state"]
    assert current[0] == ["sender", "status", "country", "source", "first received", "last change"]
    assert [row[:4] for row in current[1:]] == [
        ["+18005550100", "opted-out", "US", "api"],
        ["12345", "opted-out", "US", HOSTILE],
    ]
    assert current[2][4:] == ["2024-03-01T12:00:05.250000Z", "2024-03-02T08:30:00Z"]
    assert [row[1:] for row in seen.tables["History"][1:]] == [
        ["12345", "opt-in", "import:optins.csv"],
        ["12345", "opt-out", HOSTILE],
        ["+18005550100", "opt-out", "api"],
    ]
    assert [row[:3] for row in seen.tables["Vendor confirmations"][1:]] == [
        ["+18005550100", "azure", "opted-out"],
        ["12345", "ringcentral", "opted-in"],
    ]
    assert HOSTILE in seen.text  # shown as the text it is,
    assert "script" not in seen.tags  # never an element of the page


@pytest.mark.parametrize("login", ["user:wrong@", ""], ids=["wrong key", "no key"])
def test_without_the_key_chromium_shows_nothing_of_the_trail(
    served: str, answers: Answers, tmp_path: Path, login: str
) -> None:
    """Chromium takes the 401 as a login challenge; headless, it has no prompt to show,
    so the load fails as a refused login (a person's Chromium would ask for the key).
    What its log says of that differs between versions; the page's answers do not."""
    dom, _ = chromium_run(f"http://{login}{served}/audit?number=%2B12025550123", tmp_path)
    asked = [status for path, status in answers.statuses if path == "/audit"]
    assert asked, "Chromium never asked for the page"
    assert set(asked) == {401}
    seen = Seen(dom)
    assert not seen.tables
    assert "12345" not in seen.text
