"""The ledger tells the truth: no ledger that forgets, no password shown, one tie rule,
and a remove that says what still applies.

What a black-box review of the command line found: ``:memory:`` answered reads from
nothing and lost every write; a database password showed in a driver's message; an opt-in
at the same time as an opt-out undid it; ``remove`` said "not opted out" while a ``*``
opt-out still held the number; a folder or a locked file blamed the setting wrongly.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from optouts import Client, ConfigurationError, Ledger, ProviderError
from optouts.cli import run
from optouts.ledger import Change, SQLiteLedger
from optouts.ledger._base import takes
from optouts.ledger._redact import looks_like_conninfo, passwords_in, scrub

SENDER = "+18005550100"
OTHER = "+18005550199"
US = "+12025550101"
US_2 = "+12025550102"
DIGITS = int(US[1:])
SECRET = "SECRETPW"
SETTING = "(setting database, OPTOUTS_LOCAL_DATABASE)"


# 1. a ledger is a file or a PostgreSQL database


@pytest.mark.parametrize("database", [":memory:", "file::memory:", "file:ledger.db?mode=memory"])
def test_a_ledger_that_would_forget_is_refused_everywhere(
    database: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ConfigurationError, match="postgresql://") as caught:
        Ledger.open(database)
    assert SETTING in str(caught.value)
    with pytest.raises(ConfigurationError, match="OPTOUTS_LOCAL_DATABASE"):
        Client("local", database=database)
    for argv in (["check", "--from", SENDER, US], ["add", "--from", SENDER, US]):
        assert run(["-s", f"database={database}", *argv]) == 2
        assert "OPTOUTS_LOCAL_DATABASE" in capsys.readouterr().err
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", database)
    assert run(["add", "--from", SENDER, US]) == 2
    assert "setting database" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing made on disk either


def test_a_store_made_in_code_may_still_live_in_memory() -> None:
    """Tests and benchmarks build one on purpose; only settings never name one."""
    with Ledger(SQLiteLedger(":memory:")) as ledger, ledger.client() as client:
        client.add(SENDER, [US])
        assert ledger.opted_out(SENDER, [US]) == [True]


# 5. no password in any message


@pytest.mark.parametrize(
    "database",
    [
        f"host=127.0.0.1 port=1 password={SECRET}",
        f"  dbname=ledger user=bob password='{SECRET}'",
        f"password={SECRET}",
    ],
)
def test_a_key_value_connection_string_is_refused_never_shown(
    database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert looks_like_conninfo(database)
    with pytest.raises(ConfigurationError, match="postgresql://user:password@") as caught:
        Ledger.open(database)
    assert SECRET not in str(caught.value)
    assert run(["-s", f"database={database}", "add", "--from", SENDER, US]) == 2
    shown = capsys.readouterr()
    assert SECRET not in shown.err + shown.out
    assert "key=value" in shown.err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("path", ["ledger.db", "/tmp/a=b.db", "data/host.db", "hostname=x"])
def test_a_file_path_is_not_taken_for_a_connection_string(path: str) -> None:
    assert not looks_like_conninfo(path)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{SECRET}@[::1",  # psycopg quotes it back: "… in URI: \"postgresql://…\""
        f"postgresql://u:{SECRET}@[::1/db?password={SECRET}",
        f"postgres://u@[::1?sslpassword={SECRET}",
        f"postgresql://u:{SECRET}@127.0.0.1:1/x?connect_timeout=2",  # refused: port 1
        f"postgresql://u@127.0.0.1:1/x?password={SECRET}&connect_timeout=2",
        f"postgresql://u@127.0.0.1:1/x?pass%77ord={SECRET}&connect_timeout=2",
    ],
)
def test_no_password_in_the_message_of_a_url_that_cannot_be_used(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(ConfigurationError) as caught:
        Ledger.open(url)
    assert SECRET not in str(caught.value)
    assert "***" in str(caught.value)
    assert run(["-s", f"database={url}", "add", "--from", SENDER, US]) == 2
    shown = capsys.readouterr()
    assert SECRET not in shown.err + shown.out


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (f'in URI: "postgresql://u:{SECRET}@[::1"', 'in URI: "postgresql://u:***@[::1"'),
        (f"invalid option in host=x password={SECRET} port=1", "host=x password=*** port=1"),
        (f"missing quote: password='{SECRET} host=x", "password=***"),
        (f'password = "{SECRET} 2" dbname=x', "password = *** dbname=x"),
        (f"postgresql://h/d?SSLPassword={SECRET}&x=1", "postgresql://h/d?SSLPassword=***&x=1"),
    ],
)
def test_driver_messages_are_scrubbed_of_anything_shaped_like_a_password(
    text: str, shown: str
) -> None:
    scrubbed = scrub(text)
    assert SECRET not in scrubbed
    assert shown in scrubbed


def test_known_passwords_are_found_in_a_url_too_broken_to_parse() -> None:
    assert passwords_in(f"postgresql://u:{SECRET}@[::1") == [SECRET]
    assert scrub(f"said {SECRET}%21 and {SECRET}!", passwords_in(f"x://u:{SECRET}%21@h")) == (
        "said *** and ***"
    )


# 7. one tie rule: an opt-in replaces an opt-out only when strictly newer


def change(recipient: int, opted_out: bool, at: int, *, dated: bool = True) -> Change:
    return Change(SENDER, recipient, opted_out, "import:f.csv", at, "US", dated)


@pytest.fixture
def ledger(ledger_database: str) -> Ledger:
    opened = Ledger.open(ledger_database)
    opened.require(write=True)
    return opened


def test_an_opt_out_wins_a_tie_across_batches(ledger: Ledger) -> None:
    with ledger:
        assert ledger.record([change(DIGITS, True, 1_000)]) == 1
        assert ledger.record([change(DIGITS, False, 1_000)]) == 0  # same time: loses
        assert ledger.opted_out(SENDER, [US]) == [True]
        assert ledger.record([change(DIGITS, False, 1_001)]) == 1  # strictly newer: wins
        assert ledger.opted_out(SENDER, [US]) == [False]
        assert ledger.record([change(DIGITS, True, 1_001)]) == 1  # an opt-out wins the tie
        assert ledger.opted_out(SENDER, [US]) == [True]


@pytest.mark.parametrize("dated", [True, False])
@pytest.mark.parametrize("opt_out_first", [True, False])
def test_an_opt_out_wins_a_tie_inside_one_batch_in_either_order(
    ledger: Ledger, dated: bool, opt_out_first: bool
) -> None:
    rows = [change(DIGITS, True, 5_000, dated=dated), change(DIGITS, False, 5_000, dated=dated)]
    if not opt_out_first:
        rows.reverse()
    with ledger:
        # the opt-in is taken only when it comes first, and then undone by the opt-out
        assert ledger.record(rows) == (1 if opt_out_first else 2)
        assert ledger.opted_out(SENDER, [US]) == [True]


@pytest.mark.parametrize(
    ("held", "incoming", "taken"),
    [
        ((1, "a", 10), Change(SENDER, 1, False, "a", 10, None, True), False),
        ((1, "a", 10), Change(SENDER, 1, False, "a", 10, None, False), False),
        ((1, "a", 10), Change(SENDER, 1, False, "a", 11, None, True), True),
        ((1, "a", 10), Change(SENDER, 1, False, "a", 11, None, False), True),  # same source
        ((1, "a", 10), Change(SENDER, 1, False, "b", 11, None, False), False),
        ((0, "a", 10), Change(SENDER, 1, True, "b", 10, None, True), True),
        ((0, "a", 10), Change(SENDER, 1, True, "b", 10, None, False), True),
        ((0, "a", 10), Change(SENDER, 1, True, "b", 9, None, True), False),
    ],
)
def test_takes_writes_the_tie_rule(
    ledger: Ledger, held: tuple[int, str, int], incoming: Change, taken: bool
) -> None:
    """``takes`` (the dry run's and the recorder's rule) and each store's SQL agree."""
    assert takes(held, incoming) is taken
    opted_out, source, at = held
    with ledger:
        ledger.record([Change(SENDER, 1, bool(opted_out), source, at, None, True)])
        assert ledger.record([incoming]) == int(taken)


def test_an_import_of_an_opt_in_as_old_as_the_opt_out_leaves_it_opted_out(
    ledger_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    header = "sender,recipient,status,source,updated_at\n"
    d1, d2 = tmp_path / "d1.csv", tmp_path / "d2.csv"
    d1.write_text(header + f"{SENDER},{US},opted-out,,2026-05-01T00:00:00Z\n")
    d2.write_text(header + f"{SENDER},{US},opted-in,,2026-05-01T00:00:00Z\n")
    base = ["-s", f"database={ledger_database}"]
    assert run([*base, "import", str(d1)]) == 0
    assert run([*base, "import", str(d2)]) == 0
    assert "0 recorded" in capsys.readouterr().err
    assert run([*base, "--format", "json", "check", "--from", SENDER, US]) == 0
    assert '"opted_out": true' in capsys.readouterr().out


# 10. remove says what applies to the sender afterwards


def test_remove_for_one_sender_reports_a_star_opt_out_still_standing(ledger: Ledger) -> None:
    with ledger, ledger.client() as client:
        client.add("*", [US])
        client.add(SENDER, [US_2])
        removed = client.remove(OTHER, [US, US_2])
        assert [(r.recipient, r.ok, r.opted_out) for r in removed] == [
            (US, True, True),  # "*" still holds it
            (US_2, True, False),  # only SENDER's opt-out: not OTHER's
        ]
        assert [r.opted_out for r in client.check(OTHER, [US, US_2])] == [True, False]
        removed = client.remove("*", [US])
        assert [(r.ok, r.opted_out) for r in removed] == [(True, False)]
        assert [(r.ok, r.opted_out) for r in client.remove(OTHER, [US])] == [(True, False)]


def test_remove_on_the_command_line_says_yes_while_star_holds(
    database: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["-s", f"database={database}", "--format", "json"]
    assert run([*base, "add", "--from", "*", US]) == 0
    capsys.readouterr()
    assert run([*base, "remove", "--from", OTHER, US]) == 0
    assert '"opted_out": true' in capsys.readouterr().out


# smaller: a folder, a lock


def test_a_folder_named_as_the_ledger_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "ledgers"
    folder.mkdir()
    with pytest.raises(ConfigurationError, match="is a directory") as caught:
        Ledger.open(folder)  # there already: opened to read at once
    assert str(folder / "ledger.db") in str(caught.value)
    assert SETTING in str(caught.value)
    for write in (False, True):  # a folder that appeared after the store was made
        later = tmp_path / f"later-{write}"
        store = SQLiteLedger(later)
        later.mkdir()
        with pytest.raises(ConfigurationError, match="is a directory, not a file"):
            store.open(write=write)
        store.close()


def test_a_ledger_locked_past_the_busy_timeout_blames_the_other_process(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    SQLiteLedger(path).open(write=True)
    with closing(sqlite3.connect(path, isolation_level=None)) as other:
        other.execute("BEGIN EXCLUSIVE")  # held, as a stuck writer would
        fresh = SQLiteLedger(path, busy_timeout=0.1)  # the first write opens the file
        with pytest.raises(ProviderError, match="is busy: another process") as caught:
            fresh.set_state(SENDER, {"US": [DIGITS]}, opted_out=True, source="t")
        assert caught.value.retryable
        assert "setting database" not in str(caught.value)
        fresh.close()
        other.execute("ROLLBACK")
        writer = SQLiteLedger(path, busy_timeout=0.1)
        writer.open(write=True)  # opened for writing before the lock is taken
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(ProviderError, match="busy") as caught:
            writer.set_state(SENDER, {"US": [DIGITS]}, opted_out=True, source="t")
        assert caught.value.retryable
        other.execute("ROLLBACK")
        writer.set_state(SENDER, {"US": [DIGITS]}, opted_out=True, source="t")  # fine now
        writer.close()
