"""Reads never invent a ledger: a missing one is an error naming it and its setting, only
writes create one (the command line says so), and a ledger that may only be read is read
without writing anything.

Root ignores file modes, so the read-only tests check what root can see (the file's bytes
and time unchanged, a read connection that refuses to write, a -wal SQLite cannot create)
and run the real read-only case as an unprivileged user.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import optouts
from optouts import Client, ConfigurationError, Ledger
from optouts._csvio import export_csv, import_csv
from optouts.cli import run
from optouts.ledger import SQLiteLedger
from pgserver import postgresql_url

SENDER = "+18005550100"
US = "+12025550123"
CA = "+14165550123"
SETTING = "OPTOUTS_LOCAL_DATABASE"


@pytest.fixture
def missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A mistyped OPTOUTS_LOCAL_DATABASE: neither the file nor its folder exists."""
    path = tmp_path / "typo" / "ledger.db"
    monkeypatch.setenv(SETTING, str(path))
    return path


@pytest.fixture
def held(tmp_path: Path) -> Path:
    """A ledger holding one opt-out (SENDER, US), its writer closed."""
    path = tmp_path / "held" / "ledger.db"
    with Client("local", database=str(path)) as client:
        assert client.add(SENDER, [US]).ok
    return path


def assert_names_the_ledger(message: str, path: Path) -> None:
    assert str(path) in message
    assert f"setting database, {SETTING}" in message


def assert_one_error_line(err: str) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("optouts: error: ")


# A ledger that is not there


READS: dict[str, Callable[[Client], object]] = {
    "check": lambda client: client.check(SENDER, [US]),
    "list": lambda client: list(client.list(status="all")),
    "list_page": lambda client: client.list_page(),
}


@pytest.mark.parametrize("read", READS.values(), ids=list(READS))
def test_a_read_of_a_missing_ledger_names_it_and_creates_nothing(
    missing: Path, read: Callable[[Client], object]
) -> None:
    with Client("local") as client, pytest.raises(ConfigurationError) as raised:
        read(client)
    assert_names_the_ledger(str(raised.value), missing)
    assert not missing.exists()
    assert not missing.parent.exists()


def _rehearse(ledger: Ledger) -> None:
    with ledger.rehearsal():
        pass


LEDGER_READS: dict[str, Callable[[Ledger], object]] = {
    "require": lambda ledger: ledger.require(),
    "opted_out": lambda ledger: ledger.opted_out(SENDER, [US]),
    "audit": lambda ledger: ledger.audit(US),
    "rows": lambda ledger: ledger.rows(),
    "pending": lambda ledger: list(ledger.pending("azure")),
    "checkpoint": lambda ledger: ledger.checkpoint("sync:azure"),
    "rehearsal": _rehearse,
    "dry run": lambda ledger: optouts.sync("local", ["local"], ledger=ledger, dry_run=True),
}


@pytest.mark.parametrize("read", LEDGER_READS.values(), ids=list(LEDGER_READS))
def test_a_read_of_a_missing_ledger_object_names_it_and_creates_nothing(
    missing: Path, read: Callable[[Ledger], object]
) -> None:
    with Ledger.from_settings() as ledger, pytest.raises(ConfigurationError) as raised:
        read(ledger)
    assert_names_the_ledger(str(raised.value), missing)
    assert not missing.exists()
    assert not missing.parent.exists()


def test_a_ledger_opened_at_a_missing_path_says_which_and_its_setting(tmp_path: Path) -> None:
    """Opened by path, not by the setting: the error still names both."""
    path = tmp_path / "nowhere" / "ledger.db"
    with Ledger.open(path) as ledger:
        assert ledger.location == str(path)
        with pytest.raises(ConfigurationError) as raised:
            ledger.opted_out(SENDER, [US])
    assert_names_the_ledger(str(raised.value), path)
    assert not path.parent.exists()


def test_an_export_of_a_missing_ledger_writes_nothing(missing: Path) -> None:
    out = io.StringIO()
    with Ledger.from_settings() as ledger, pytest.raises(ConfigurationError) as raised:
        export_csv(ledger, out)
    assert_names_the_ledger(str(raised.value), missing)
    assert out.getvalue() == ""  # not even the header
    assert not missing.parent.exists()


def test_an_export_through_a_client_of_a_missing_ledger_writes_nothing(missing: Path) -> None:
    out = io.StringIO()
    with Client("local") as client, pytest.raises(ConfigurationError) as raised:
        export_csv(client, out)
    assert_names_the_ledger(str(raised.value), missing)
    assert out.getvalue() == ""  # not even the header
    assert not missing.parent.exists()


async def test_an_async_check_of_a_missing_ledger_fails_too(missing: Path) -> None:
    async with optouts.AsyncClient("local") as client:
        with pytest.raises(ConfigurationError) as raised:
            await client.check(SENDER, [US])
    assert_names_the_ledger(str(raised.value), missing)
    assert not missing.parent.exists()


def test_a_mistyped_path_never_answers_not_opted_out(
    held: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's case: the real ledger holds the opt-out; a typo must not say "no"."""
    typo = held.with_name("ledgr.db")
    monkeypatch.setenv(SETTING, str(typo))
    with Client("local") as client, pytest.raises(ConfigurationError, match="ledgr.db"):
        client.check(SENDER, [US])
    with Ledger.from_settings() as ledger, pytest.raises(ConfigurationError, match="ledgr.db"):
        ledger.opted_out(SENDER, [US])
    assert not typo.exists()
    monkeypatch.setenv(SETTING, str(held))
    with Client("local") as client:
        assert client.check(SENDER, [US])[0].opted_out is True
    with Ledger.from_settings() as ledger:
        assert ledger.opted_out(SENDER, [US]) == [True]


@pytest.mark.parametrize("content", ["empty", "another program's tables"])
def test_a_file_without_the_ledger_is_not_read_as_an_empty_one(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "other.db"
    path.touch()
    if content != "empty":
        with contextlib.closing(sqlite3.connect(path)) as db:
            db.execute("CREATE TABLE notes (text)")
            db.commit()
    before = path.read_bytes()
    with Client("local", database=str(path)) as client:
        with pytest.raises(ConfigurationError, match="no ledger") as raised:
            client.check(SENDER, [US])
        assert_names_the_ledger(str(raised.value), path)
        assert path.read_bytes() == before
        assert client.add(SENDER, [US]).ok  # a write makes it a ledger
        assert client.check(SENDER, [US])[0].opted_out is True


COMMANDS_THAT_READ = {
    "check": ["check", "--from", SENDER, US],
    "check json": ["--format", "json", "check", "--from", SENDER, US],
    "check csv": ["--format", "csv", "check", "--from", SENDER, US],
    "list": ["list"],
    "list json": ["--format", "json", "list"],
    "list csv": ["--format", "csv", "list"],
    "export": ["export"],
    "audit": ["audit", US],
    "audit json": ["--format", "json", "audit", US],
    "sync dry run": ["sync", "--source", "local", "--target", "local", "--dry-run"],
}


@pytest.mark.parametrize("argv", COMMANDS_THAT_READ.values(), ids=list(COMMANDS_THAT_READ))
def test_a_command_reading_a_missing_ledger_exits_2_with_one_line(
    missing: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    code = run(argv)
    captured = capsys.readouterr()
    assert (code, captured.out) == (2, "")
    assert_one_error_line(captured.err)
    assert_names_the_ledger(captured.err, missing)
    assert not missing.exists()
    assert not missing.parent.exists()


# Writes create it


def _through_a_client(ledger: Ledger, opted_out: bool) -> object:
    with ledger.client() as client:
        return (client.add if opted_out else client.remove)(SENDER, [US])


WRITES: dict[str, Callable[[Ledger], object]] = {
    "add": lambda ledger: _through_a_client(ledger, True),
    "remove": lambda ledger: _through_a_client(ledger, False),
    "import": lambda ledger: import_csv(
        ledger, ["sender,recipient,status\n", f"{SENDER},{US},opted-out\n"]
    ),
    "sync": lambda ledger: optouts.sync("local", ["local"], ledger=ledger),
    "inbound STOP": lambda ledger: optouts.handle_inbound(ledger, SENDER, US, "STOP"),
}


@pytest.mark.parametrize("write", WRITES.values(), ids=list(WRITES))
def test_a_write_creates_the_ledger_and_tells_once(
    missing: Path, write: Callable[[Ledger], object]
) -> None:
    created: list[str] = []
    with Ledger.from_settings() as ledger:
        ledger.on_create = created.append
        assert ledger.on_create == created.append
        assert not missing.exists()  # opening the ledger created nothing
        write(ledger)
        write(ledger)
        assert len(ledger.opted_out(SENDER, [US])) == 1  # it reads now
    assert created == [str(missing)]
    with Ledger.from_settings() as again:
        again.on_create = created.append
        write(again)
    assert created == [str(missing)]  # an existing ledger is not created again
    assert (missing.parent.stat().st_mode & 0o777, missing.stat().st_mode & 0o777) == (
        0o700,
        0o600,
    )


def test_a_text_asking_for_nothing_creates_no_ledger(missing: Path) -> None:
    with Ledger.from_settings() as ledger:
        assert optouts.handle_inbound(ledger, SENDER, US, "HELP").opted_out is None
    assert not missing.parent.exists()


def test_a_write_through_a_client_of_its_own_creates_the_ledger(missing: Path) -> None:
    """``Client("local")`` opens a ledger of its own from the settings; only a write makes it."""
    with Client("local") as client:
        assert not missing.exists()
        assert client.add(SENDER, [US]).ok
    assert missing.exists()
    with Ledger.from_settings() as ledger:
        assert ledger.opted_out(SENDER, [US]) == [True]


@pytest.mark.parametrize("command", ["add", "remove", "import", "sync"])
def test_a_command_that_writes_creates_the_ledger_and_says_so_once(
    missing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    listing = tmp_path / "in.csv"
    listing.write_text(f"sender,recipient,status\n{SENDER},{US},opted-out\n", encoding="utf-8")
    argv = {
        "add": ["add", "--from", SENDER, US],
        "remove": ["remove", "--from", SENDER, US],
        "import": ["import", str(listing)],
        "sync": ["sync", "--source", "local", "--target", "local"],
    }[command]
    said = f"optouts: created a new ledger at {missing}\n"
    assert run(argv) == 0
    first = capsys.readouterr()
    assert first.err.count(said) == 1
    assert said not in first.out
    assert missing.exists()
    assert run(argv) == 0
    assert "created" not in capsys.readouterr().err
    assert run(["--format", "json", "check", "--from", SENDER, US]) == 0
    assert capsys.readouterr().err == ""


# The Ledger object


def test_from_settings_reads_the_database_setting_and_arguments_win(
    held: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SETTING, str(held))
    monkeypatch.setenv("OPTOUTS_LOCAL_SOURCE", "crm")
    with Ledger.from_settings() as ledger:
        assert ledger.location == str(held)
        assert ledger.source == "crm"
        assert ledger.opted_out(SENDER, [US, CA]) == [True, False]
    other = tmp_path / "other.db"
    with Ledger.from_settings(database=str(other), source="form") as ledger:
        assert (ledger.location, ledger.source) == (str(other), "form")
        with ledger.client() as client:
            assert client.add(SENDER, [CA]).ok  # recorded with the ledger's source
        assert [row[3] for rows in ledger.rows() for row in rows] == ["form"]
    with Ledger.open(held) as ledger:
        assert ledger.opted_out(SENDER, [CA]) == [False]  # the setting's ledger untouched


def test_from_settings_reads_the_config_file(tmp_path: Path, held: Path) -> None:
    config = tmp_path / "conf" / "optouts.toml"
    config.parent.mkdir()
    config.write_text(
        f'[providers.local]\ndatabase = "{held}"\nsource = "toml"\n', encoding="utf-8"
    )
    with Ledger.from_settings(config=config) as ledger:
        assert (ledger.location, ledger.source, ledger.config_path) == (str(held), "toml", config)
        assert ledger.opted_out(SENDER, [US]) == [True]


def test_from_settings_without_any_setting_is_the_default_file(tmp_path: Path) -> None:
    default = tmp_path / "data" / "optouts" / "ledger.db"  # XDG_DATA_HOME, set by conftest
    with Ledger.from_settings() as ledger, Ledger.open() as plain:
        assert ledger.location == plain.location == str(default)
        with pytest.raises(ConfigurationError):
            ledger.audit(US)
    assert not default.exists()


def test_closing_a_client_of_the_ledger_leaves_the_ledger_open(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        with ledger.client() as client:
            assert client.add(SENDER, [US]).ok
        assert ledger.opted_out(SENDER, [US]) == [True]  # still open
        with ledger.client() as again:  # and another client may come and go
            assert again.check(SENDER, [US])[0].opted_out is True
            assert again.remove(SENDER, [US]).ok
        assert ledger.opted_out(SENDER, [US]) == [False]
        assert [action for _, action, _, _ in ledger.audit(US).history] == [True, False]


async def test_closing_an_async_client_of_the_ledger_leaves_the_ledger_open(
    tmp_path: Path,
) -> None:
    with Ledger.open(tmp_path / "ledger.db") as ledger:
        async with ledger.async_client() as client:
            assert (await client.add(SENDER, [US])).ok
        assert ledger.opted_out(SENDER, [US]) == [True]
        async with ledger.async_client() as again:
            assert (await again.check(SENDER, [US]))[0].opted_out is True


def test_a_closed_ledger_refuses_work(tmp_path: Path) -> None:
    ledger = Ledger.open(tmp_path / "ledger.db")
    with ledger.client() as client:
        assert client.add(SENDER, [US]).ok
    ledger.close()
    with pytest.raises(optouts.ProviderError, match="closed"):
        ledger.opted_out(SENDER, [US])


def test_sync_takes_a_ledger_not_a_client(tmp_path: Path) -> None:
    with Ledger.open(tmp_path / "ledger.db") as ledger, ledger.client() as client:
        with pytest.raises(TypeError, match=r"optouts\.Ledger, not Client"):
            optouts.sync("local", ["local"], ledger=client)  # type: ignore[arg-type]
        with (
            Client("local", database=str(tmp_path / "other.db")) as local,
            pytest.raises(TypeError, match="optouts.Ledger"),
        ):
            optouts.sync("local", ["local"], ledger=local)  # type: ignore[arg-type]
    assert not (tmp_path / "ledger.db").exists()  # refused before anything was created
    assert not (tmp_path / "other.db").exists()


def test_the_repr_of_a_postgresql_ledger_holds_no_password() -> None:
    url = postgresql_url()  # or skip, as every PostgreSQL test does
    password = urlsplit(url).password
    if not password:
        pytest.skip("OPTOUTS_TEST_POSTGRESQL_URL carries no password to hide")
    with Ledger.open(url) as ledger:
        shown = repr(ledger)
        assert shown.startswith("<Ledger postgresql://")
        assert f":{password}@" not in shown
        assert f":{password}@" not in ledger.location
        assert ":***@" in shown
        with ledger.client() as client:
            assert f":{password}@" not in repr(client.provider)


# A ledger that may only be read


def fingerprint(path: Path) -> tuple[str, int, int]:
    """The file's content, modification time and inode: what any write would change."""
    found = path.stat()
    return hashlib.sha256(path.read_bytes()).hexdigest(), found.st_mtime_ns, found.st_ino


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """The file 0444 in a folder 0555, as the test found them afterwards (so it can be removed)."""
    path.chmod(0o444)
    path.parent.chmod(0o555)
    try:
        yield
    finally:
        path.parent.chmod(0o700)
        path.chmod(0o600)


def test_reads_write_nothing_to_the_file_or_its_folder(
    held: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Checked by what root sees too: no byte, time or new file (beyond SQLite's empty
    -wal and -shm, which a read-only connection may leave) comes of a read."""
    before = fingerprint(held)
    names = {p.name for p in held.parent.iterdir()}
    monkeypatch.setenv(SETTING, str(held))
    with read_only(held):
        with Client("local") as client:
            assert [r.opted_out for r in client.check(SENDER, [US, CA])] == [True, False]
            assert [r.recipient for r in client.list()] == [US]
            exported = io.StringIO()
            assert export_csv(client, exported) == 1
        with Ledger.from_settings() as ledger:
            assert ledger.opted_out(SENDER, [US, CA]) == [True, False]
            assert [row[1] for rows in ledger.rows() for row in rows] == [US]
            exported = io.StringIO()
            assert export_csv(ledger, exported) == 1
            assert len(ledger.audit(US).history) == 1
            assert list(ledger.pending("azure")) == [(SENDER, True, [int(US[1:])])]
            plan = optouts.sync("local", ["local"], ledger=ledger, dry_run=True)
            assert plan.dry_run
        for argv in (
            ["--format", "json", "check", "--from", SENDER, US],
            ["--format", "json", "list"],
            ["export"],
            ["audit", US],
            ["sync", "--source", "local", "--target", "local", "--dry-run"],
        ):
            assert run(argv) == 0, capsys.readouterr().err
            captured = capsys.readouterr()
            assert US in captured.out or "plan" in captured.out
            assert captured.err == ""
    assert fingerprint(held) == before
    added = {p.name for p in held.parent.iterdir()} - names
    assert added <= {"ledger.db-wal", "ledger.db-shm"}
    wal = held.with_name("ledger.db-wal")
    assert not wal.exists() or wal.stat().st_size == 0


def test_a_read_connection_refuses_to_write_and_the_first_write_opens_another(
    held: Path,
) -> None:
    """SQLite's mode=ro, which holds for root as for anyone."""
    ledger = SQLiteLedger(held)
    try:
        assert ledger.opted_out([SENDER], [int(US[1:])]) == {int(US[1:])}
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            ledger._db.execute("CREATE TABLE invented (x)")  # type: ignore[union-attr]
        ledger.set_state(SENDER, {"CA": [int(CA[1:])]}, opted_out=True, source="api")
        assert ledger.opted_out([SENDER], [int(CA[1:])]) == {int(CA[1:])}
    finally:
        ledger.close()


@pytest.fixture
def wal_blocked(held: Path) -> Iterator[Path]:
    """``held`` where SQLite cannot create the -wal file (a folder has its name), as in a
    folder the user may not write; root cannot be kept out by modes, so this is the way."""
    blocker = held.with_name("ledger.db-wal")
    blocker.mkdir()
    try:
        yield held
    finally:
        if blocker.is_dir():  # a test may have let a writer in
            blocker.rmdir()


def test_a_ledger_whose_wal_cannot_be_created_is_read_from_the_file_alone(
    wal_blocked: Path,
) -> None:
    before = fingerprint(wal_blocked)
    with Client("local", database=str(wal_blocked)) as client:
        assert [r.opted_out for r in client.check(SENDER, [US, CA])] == [True, False]
        assert [r.recipient for r in client.list()] == [US]
        with pytest.raises(ConfigurationError) as raised:
            client.add(SENDER, [CA])  # a write cannot happen there, and says where
        assert_names_the_ledger(str(raised.value), wal_blocked)
    assert fingerprint(wal_blocked) == before


def test_a_reader_of_the_file_alone_sees_a_later_write(wal_blocked: Path) -> None:
    """SQLite's immutable reading never notices a change itself: the store must."""
    with Client("local", database=str(wal_blocked)) as reader:
        assert reader.check(SENDER, [CA])[0].opted_out is False
        wal_blocked.with_name("ledger.db-wal").rmdir()  # a writer comes along
        with Client("local", database=str(wal_blocked)) as writer:
            assert writer.add(SENDER, [CA]).ok
            assert reader.check(SENDER, [CA])[0].opted_out is True  # through its -wal
        assert reader.check(SENDER, [CA])[0].opted_out is True  # the writer gone


_UNPRIVILEGED = """
import io, json, sys
import optouts
from optouts._csvio import export_csv

folder, sender, us, ca = sys.argv[1:]
found = {}


def attempt(name, work):
    try:
        found[name] = work()
    except optouts.OptOutError as error:
        found[name] = "error: " + str(error)


for case in ("read-only-folder", "read-only-file", "waiting-wal"):
    database = f"{folder}/{case}/ledger.db"

    def reads():
        with optouts.Client("local", database=database) as client:
            answers = {
                "check": [r.opted_out for r in client.check(sender, [us, ca])],
                "list": [r.recipient for r in client.list()],
            }
        with optouts.Ledger.open(database) as ledger:
            exported = io.StringIO()
            export_csv(ledger, exported)
            answers["export"] = exported.getvalue().splitlines()[1:]
            answers["audit"] = len(ledger.audit(us).history)
            answers["opted_out"] = ledger.opted_out(sender, [us, ca])
        return answers

    def write():
        with optouts.Client("local", database=database) as client:
            client.add(sender, [ca])
            return "written"

    attempt(case + " reads", reads)
    attempt(case + " write", write)
print(json.dumps(found))
"""


def _unprivileged(*argv: str) -> list[str]:
    """The command run as a user that file modes bind: this one, or nobody under root."""
    command = [sys.executable, *argv]
    if os.geteuid() != 0:
        return command
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root, and no setpriv to run as an unprivileged user")
    return [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", *command]


@pytest.fixture
def shared_folder() -> Iterator[Path]:
    """A folder an unprivileged user can reach (pytest's own are private to root)."""
    folder = Path(tempfile.mkdtemp(prefix="optouts-read-only-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        for path in folder.rglob("*"):
            with contextlib.suppress(OSError):
                path.chmod(0o700 if path.is_dir() else 0o600)
        shutil.rmtree(folder)


def _ledger_with_a_waiting_wal(folder: Path) -> None:
    """A copy taken while a writer was open: the opt-out of US is only in its -wal."""
    source = folder / "source" / "ledger.db"
    with Client("local", database=str(source)) as client:
        client.add(SENDER, [CA])
    holder = sqlite3.connect(source, isolation_level=None)  # so closing the client keeps the -wal
    try:
        holder.execute("SELECT count(*) FROM optouts").fetchone()
        with Client("local", database=str(source)) as client:
            client.add(SENDER, [US])
        target = folder / "waiting-wal"
        target.mkdir()
        for name in ("ledger.db", "ledger.db-wal"):
            shutil.copy(source.with_name(name), target / name)
        assert (target / "ledger.db-wal").stat().st_size > 0
    finally:
        holder.close()
    shutil.rmtree(source.parent)


def test_a_read_only_ledger_is_read_by_a_user_who_cannot_write(shared_folder: Path) -> None:
    """A 0444 file in a 0555 folder (and in a folder the user may write), read by a user
    file modes bind; and a -wal holding changes it cannot replay is refused, not ignored."""
    for case in ("read-only-folder", "read-only-file"):
        with Client("local", database=str(shared_folder / case / "ledger.db")) as client:
            client.add(SENDER, [US])
    _ledger_with_a_waiting_wal(shared_folder)
    owner = 65534 if os.geteuid() == 0 else -1
    os.chown(shared_folder / "read-only-file", owner, -1)  # the user may write the folder
    for path in shared_folder.rglob("ledger.db*"):
        os.chown(path, owner, -1)
        path.chmod(0o444)
    for case in ("read-only-folder", "waiting-wal"):
        (shared_folder / case).chmod(0o555)
    probe = subprocess.run(
        _unprivileged("-c", "import optouts"),
        capture_output=True,
        text=True,
        check=False,
        cwd=shared_folder,
    )
    if probe.returncode != 0:
        pytest.skip(f"the unprivileged user cannot import optouts: {probe.stderr[-300:]}")

    ran = subprocess.run(
        _unprivileged("-c", _UNPRIVILEGED, str(shared_folder), SENDER, US, CA),
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("OPTOUTS_")},
        cwd=shared_folder,  # where optouts.toml is looked for: the test's folder is private
    )
    assert ran.returncode == 0, ran.stderr
    found: dict[str, Any] = json.loads(ran.stdout)
    for case in ("read-only-folder", "read-only-file"):
        reads = found[f"{case} reads"]
        assert isinstance(reads, dict), reads
        assert reads["check"] == [True, False]
        assert reads["list"] == [US]
        assert [row.split(",")[:3] for row in reads["export"]] == [[SENDER, US, "opted-out"]]
        assert reads["audit"] == 1
        assert reads["opted_out"] == [True, False]
        refused = found[f"{case} write"]
        assert refused.startswith("error: the ledger at "), refused
        assert "is read-only" in refused
        assert_names_the_ledger(refused, shared_folder / case / "ledger.db")
    waiting = found["waiting-wal reads"]
    assert isinstance(waiting, str), f"answered from the file without its -wal: {waiting}"
    assert "ledger.db-wal" in waiting
    assert_names_the_ledger(waiting, shared_folder / "waiting-wal" / "ledger.db")


def test_a_ledger_reopened_has_a_connection_of_its_own(tmp_path: Path) -> None:
    """The service's outbox reads on its own connection, so webhooks never wait behind it."""
    with optouts.Ledger.open(tmp_path / "ledger.db") as ledger, ledger.client() as client:
        client.add("+18005550100", ["+12025550101"])
        with ledger.reopen() as again:
            assert again._store is not ledger._store
            assert again.location == ledger.location
            assert again.opted_out("+18005550100", ["+12025550101"]) == [True]
            client.add("+18005550100", ["+12025550102"])
            assert again.opted_out("+18005550100", ["+12025550102"]) == [True]
        assert ledger.opted_out("+18005550100", ["+12025550101"]) == [True]  # still open
    made = optouts.Ledger(SQLiteLedger(tmp_path / "made.db"))  # from a store: no database
    with made, pytest.raises(optouts.ConfigurationError, match="cannot be opened twice"):
        made.reopen()
