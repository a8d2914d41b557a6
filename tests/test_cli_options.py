"""The global options: after the subcommand as before it, and never silently ignored.

An option a command would ignore is refused with one line and exit code 2; a ``--set``
of a core setting names the option that sets it, where it once ended in a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from optouts.cli import run
from optouts.emulators import serve_in_thread
from optouts_azure import AzureEmulator

SENDER = "+18005550100"
US = "+12025550123"


@pytest.fixture(autouse=True)
def ledger(monkeypatch: pytest.MonkeyPatch, empty_ledger: str) -> str:
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", empty_ledger)
    return empty_ledger


def optouts(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """The one error line of a run that must exit 2 and print nothing on stdout."""
    code, out, err = optouts(capsys, *argv)
    assert (code, out) == (2, ""), (code, out, err)
    assert len(err.splitlines()) == 1, err
    assert err.startswith("optouts: error: ")
    assert "Traceback" not in err
    return err


# After the subcommand


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "--format", "csv", "--from", SENDER, US],
        ["check", "--from", SENDER, US, "--format", "csv"],
        ["--format", "json", "check", "--format", "csv", "--from", SENDER, US],
    ],
    ids=["after the command", "at the end", "after wins"],
)
def test_format_after_the_subcommand(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, _ = optouts(capsys, *argv)
    assert code == 0
    assert out.splitlines() == ["sender,recipient,opted_out,ok,error", f"{SENDER},{US},false,true,"]


def test_every_global_option_after_the_subcommand(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, ledger: str
) -> None:
    config = tmp_path / "elsewhere.toml"  # says "nope": -p local must win over it
    config.write_text('provider = "nope"\n', encoding="utf-8")
    other = tmp_path / "other.db"
    code, _, err = optouts(
        capsys,
        "add",
        "--from",
        SENDER,
        "2025550123",
        "-p",
        "local",
        "-c",
        str(config),
        "-s",
        f"database={other}",
        "--default-region",
        "us",
        "--max-concurrency",
        "2",
    )
    assert code == 0, err
    code, out, _ = optouts(capsys, "list", "--format", "json", "--set", f"database={other}")
    assert [row["recipient"] for row in json.loads(out)] == [US]


def test_set_after_the_subcommand_adds_to_set_before_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = tmp_path / "other.db"
    code, _, err = optouts(
        capsys, "-s", "source=before", "add", "-s", f"database={other}", "--from", SENDER, US
    )
    assert code == 0, err
    code, out, _ = optouts(capsys, "-s", f"database={other}", "--format", "json", "list")
    assert [row["source"] for row in json.loads(out)] == ["before"]


# --set takes provider settings only


@pytest.mark.parametrize(
    ("name", "pointer"),
    [
        ("default_region", "--default-region"),
        ("max_concurrency", "--max-concurrency"),
        ("provider", "--provider"),
        ("config", "--config"),
        ("retry", "retry_*"),
        ("http_client", "Python"),
        ("retry_attempts", "OPTOUTS_RETRY_ATTEMPTS"),
        ("keywords_drop", "OPTOUTS_KEYWORDS_DROP"),
    ],
)
@pytest.mark.parametrize("provider", ["local", "azure"])
def test_set_of_a_core_setting_points_at_its_option(
    capsys: pytest.CaptureFixture[str], name: str, pointer: str, provider: str
) -> None:
    err = refused(capsys, "-p", provider, "-s", f"{name}=US", "check", "--from", SENDER, US)
    assert name in err
    assert pointer in err


# Options a command would ignore


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--format", "csv", "audit", US], "--format csv"),
        (["audit", "--format", "csv", US], "--format csv"),
        (["--format", "csv", "import", "-"], "--format csv"),
        (["--format", "json", "export"], "--format json"),
        (["-p", "azure", "audit", US], "--provider azure"),
        (["-p", "azure", "sync", "--source", "local", "--target", "azure"], "--provider azure"),
        (["-p", "local", "providers"], "--provider local"),
        (["--default-region", "US", "list"], "--default-region"),
        (["--default-region", "US", "import", "-"], "--default-region"),
        (["--max-concurrency", "4", "list"], "--max-concurrency"),
        (["-s", "database=x.db", "providers"], "--set"),
        (["-p", "azure", "emulate", "azure"], "--provider azure"),
        (["--format", "json", "serve"], "--format json"),
    ],
)
def test_an_option_the_command_ignores_is_refused(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: str
) -> None:
    assert said in refused(capsys, *argv)


def test_the_ledger_as_provider_is_fine_for_ledger_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = optouts(capsys, "-p", "local", "audit", US)
    assert code == 0, err
    assert "no record" in out


@pytest.fixture
def azure(monkeypatch: pytest.MonkeyPatch) -> Iterator[AzureEmulator]:
    """The Azure emulator on 127.0.0.1, and the CLI pointed at it."""
    emulator = AzureEmulator(seed=1)
    url, stop = serve_in_thread(emulator)
    monkeypatch.setenv("OPTOUTS_AZURE_CONNECTION_STRING", emulator.connection_string(url))
    yield emulator
    stop()


@pytest.mark.parametrize("where", ["before", "after"])
def test_sync_prints_csv(
    capsys: pytest.CaptureFixture[str], azure: AzureEmulator, where: str
) -> None:
    """``--format csv`` on sync was ignored; now it is the targets' table as CSV."""
    optouts(capsys, "add", "--from", SENDER, US)
    sync = ["sync", "--source", "local", "--target", "azure"]
    argv = ["--format", "csv", *sync] if where == "before" else [*sync, "--format", "csv"]
    code, out, err = optouts(capsys, *argv)
    assert code == 0, err
    assert out.splitlines() == [
        "target,added,removed,skipped,failed,requests,notes",
        "azure,1,0,0,0,1,",
    ]
    assert err.startswith("sync:")  # the heading keeps stdout pure CSV


def test_sync_from_the_ledger_says_what_it_did(
    capsys: pytest.CaptureFixture[str], azure: AzureEmulator
) -> None:
    """Not "local listed 0 records in 0 requests": the ledger is not listed, it is read."""
    optouts(capsys, "add", "--from", SENDER, US)
    code, out, err = optouts(capsys, "sync", "--source", "local", "--target", "azure")
    assert code == 0, err
    heading = out.splitlines()[0]
    assert "listed" not in heading
    assert heading.startswith("sync: from the ledger")
    assert "got what it had not confirmed" in heading


def test_import_prints_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    listing = tmp_path / "in.csv"
    listing.write_text(
        f"sender,recipient,status\n{SENDER},{US},opted-out\n{SENDER},nope,opted-out\n",
        encoding="utf-8",
    )
    code, out, err = optouts(capsys, "import", str(listing), "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert {k: report[k] for k in ("rows", "recorded", "already", "failed")} == {
        "rows": 2,
        "recorded": 1,
        "already": 0,
        "failed": 1,
    }
    assert [e["line"] for e in report["errors"]] == [3]
    assert err == ""


# Values that would make every number fail, or load nothing


@pytest.mark.parametrize("region", ["ZZ", "XX", "usa", "1"])
def test_an_unknown_default_region_is_refused(
    capsys: pytest.CaptureFixture[str], region: str
) -> None:
    err = refused(capsys, "--default-region", region, "check", "--from", SENDER, "2025550123")
    assert "--default-region" in err


def test_an_unknown_default_region_in_the_environment_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTOUTS_DEFAULT_REGION", "ZZ")
    err = refused(capsys, "check", "--from", SENDER, "2025550123")
    assert "OPTOUTS_DEFAULT_REGION" in err


def test_a_known_default_region_in_lower_case_works(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = optouts(
        capsys, "check", "--from", SENDER, "2025550123", "--default-region", "us", "--format", "csv"
    )
    assert (code, out.splitlines()[1]) == (0, f"{SENDER},{US},false,true,")


def test_plugins_named_that_are_not_installed_are_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTOUTS_LOAD_PLUGINS", "nope")
    err = refused(capsys, "providers")
    assert "OPTOUTS_LOAD_PLUGINS" in err
    assert "'nope'" in err
    assert "azure" in err  # what is installed, to choose from


@pytest.mark.parametrize("value", ["", "azure", "optouts-azure, ringcentral"])
def test_plugins_named_that_are_installed_are_fine(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("OPTOUTS_LOAD_PLUGINS", value)
    code, _, err = optouts(capsys, "--format", "json", "providers")
    assert (code, err) == (0, "")
