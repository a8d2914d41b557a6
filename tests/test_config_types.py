"""optouts.toml values as TOML types them: a wrong type is refused, a relative path is read
from the file's folder, and a table for a provider nobody installed is warned about."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from optouts import ConfigurationError, Setting
from optouts._config import load_config_file, resolve_settings
from optouts._plugins import check_provider_tables, get_provider_class
from optouts.cli import run

SENDER, RECIPIENT = "+18005550100", "+12025550101"


def write_config(folder: Path, text: str) -> Path:
    path = folder / "cfg" / "optouts.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """The command line as ``optouts`` runs it: its exit code, stdout and stderr."""
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def settings_of(
    provider: str, config: Path, explicit: dict[str, str] | None = None
) -> dict[str, Any]:
    declared = get_provider_class(provider).settings
    found = resolve_settings(provider, declared, explicit or {}, load_config_file(config), {})
    return dict(found)


# Item 6: wrong TOML types


@pytest.mark.parametrize(
    ("written", "kind"),
    [
        ("5", "an integer"),
        ("true", "a boolean"),
        ('["/tmp/a.db"]', "an array"),
        ("1.5", "a float"),
        ("{ path = 'a.db' }", "a table"),
        ("2026-05-01", "a date"),
    ],
)
def test_a_database_that_is_not_text_is_refused_at_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], written: str, kind: str
) -> None:
    config = write_config(tmp_path, f"[providers.local]\ndatabase = {written}\n")
    before = sorted(p.name for p in config.parent.iterdir())
    code, _, err = cli(capsys, "-c", str(config), "add", "--from", SENDER, RECIPIENT)
    assert code == 2, err
    assert err.startswith("optouts: error: setting 'database'")
    assert str(config) in err
    assert "OPTOUTS_LOCAL_DATABASE" in err
    assert kind in err
    assert sorted(p.name for p in config.parent.iterdir()) == before  # no file "5" or "True"


def test_tables_lists_and_numbers_a_setting_understands_still_pass(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        "[providers.aws]\n"
        'region = "us-east-1"\n'
        "requests_per_second = 5\n"
        'sender_lists = { "+18005550100" = "Marketing", "*" = "Default" }\n'
        "[providers.ringcentral]\n"
        'client_id = "id"\nclient_secret = "s"\njwt = "j"\n'
        "token_cache = false\n",
    )
    aws = settings_of("aws", config)
    assert aws["sender_lists"] == {SENDER: "Marketing", "*": "Default"}
    assert set(aws["requests_per_second"].values()) == {5.0}
    assert settings_of("ringcentral", config)["token_cache"] is False


def test_text_where_a_table_is_declared_still_passes(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, '[providers.aws]\nregion = "us-east-1"\nsender_lists = "*=Default"\n'
    )
    assert settings_of("aws", config)["sender_lists"] == {"*": "Default"}


@pytest.mark.parametrize(
    ("provider", "line", "variable"),
    [
        ("aws", "opt_out_list = 5", "OPTOUTS_AWS_OPT_OUT_LIST"),
        ("aws", "profile = true", "OPTOUTS_AWS_PROFILE"),
        ("aws", "sender_lists = 5", "OPTOUTS_AWS_SENDER_LISTS"),
        ("azure", "endpoint = ['https://a.communication.azure.com']", "OPTOUTS_AZURE_ENDPOINT"),
        ("local", "source = 7", "OPTOUTS_LOCAL_SOURCE"),
    ],
)
def test_wrong_types_name_the_setting_file_and_variable(
    tmp_path: Path, provider: str, line: str, variable: str
) -> None:
    config = write_config(tmp_path, f"[providers.{provider}]\n{line}\n")
    with pytest.raises(ConfigurationError) as caught:
        settings_of(provider, config, {"region": "us-east-1"} if provider == "aws" else {})
    message = str(caught.value)
    assert repr(line.split(" ")[0]) in message
    assert f"[providers.{provider}] in {config}" in message
    assert variable in message


def test_a_secret_of_the_wrong_type_is_not_shown(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[providers.ringcentral]\nclient_id = "id"\nclient_secret = 987654321\njwt = "j"\n',
    )
    with pytest.raises(ConfigurationError) as caught:
        settings_of("ringcentral", config)
    message = str(caught.value)
    assert "'client_secret'" in message
    assert "an integer" in message
    assert "OPTOUTS_RINGCENTRAL_CLIENT_SECRET" in message
    assert "987654321" not in message


def test_a_plugin_setting_without_a_parser_takes_the_type_of_its_default(tmp_path: Path) -> None:
    declared = (Setting("timeout", "seconds", default=5), Setting("name", "a name"))
    config = load_config_file(write_config(tmp_path, "[providers.acme]\ntimeout = 9\n"))
    assert resolve_settings("acme", declared, {}, config, {})["timeout"] == 9
    config = load_config_file(write_config(tmp_path, "[providers.acme]\nname = 9\n"))
    with pytest.raises(ConfigurationError, match="OPTOUTS_ACME_NAME"):
        resolve_settings("acme", declared, {}, config, {})


def test_values_from_the_environment_and_arguments_are_not_type_checked_as_toml(
    tmp_path: Path,
) -> None:
    declared = (Setting("name", "a name"),)
    found = resolve_settings("acme", declared, {"name": "9"}, load_config_file(), {})
    assert found["name"] == "9"


# Item 9: relative paths in the file


def test_a_relative_database_in_the_file_is_beside_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, '[providers.local]\ndatabase = "ledger.db"\n')
    elsewhere = tmp_path / "wd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    relative = os.path.relpath(config, elsewhere)  # as a cron job would write -c ../cfg/…
    code, _, err = cli(capsys, "-c", relative, "add", "--from", SENDER, RECIPIENT)
    assert code == 0, err
    assert (config.parent / "ledger.db").is_file()
    assert not (elsewhere / "ledger.db").exists()
    monkeypatch.chdir(tmp_path)  # another working directory finds the same ledger
    code, out, err = cli(capsys, "-c", str(config), "check", "--from", SENDER, RECIPIENT)
    assert code == 0, err
    assert "yes" in out
    assert not (tmp_path / "ledger.db").exists()


def test_arguments_and_the_environment_resolve_from_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, '[providers.local]\ndatabase = "ledger.db"\n')
    code, _, err = cli(
        capsys, "-c", str(config), "-s", "database=given.db", "add", "--from", SENDER, RECIPIENT
    )
    assert code == 0, err
    monkeypatch.setenv("OPTOUTS_LOCAL_DATABASE", "env.db")
    code, _, err = cli(capsys, "-c", str(config), "add", "--from", SENDER, RECIPIENT)
    assert code == 0, err
    assert (tmp_path / "given.db").is_file()
    assert (tmp_path / "env.db").is_file()
    assert not (config.parent / "ledger.db").exists()


def test_an_env_reference_in_the_file_is_read_as_the_environment_is(tmp_path: Path) -> None:
    declared = (Setting("file", "a file", path=True),)
    config = load_config_file(write_config(tmp_path, '[providers.acme]\nfile = "env:WHERE"\n'))
    found = resolve_settings("acme", declared, {}, config, {"WHERE": "x.db"})
    assert found["file"] == "x.db"


@pytest.mark.parametrize(
    "written",
    [
        "postgresql://optouts@db.internal/optouts",
        ":memory:",
        "file:ledger.db?mode=memory",
        "host=127.0.0.1 port=5432",
        "~/ledger.db",
        "/var/lib/optouts/ledger.db",
    ],
)
def test_what_is_no_relative_file_name_is_left_as_written(tmp_path: Path, written: str) -> None:
    declared = (Setting("file", "a file", path=True),)
    config = load_config_file(write_config(tmp_path, f"[providers.acme]\nfile = {written!r}\n"))
    assert resolve_settings("acme", declared, {}, config, {})["file"] == written


def test_only_settings_marked_as_paths_move(tmp_path: Path) -> None:
    declared = (Setting("file", "a file", path=True), Setting("name", "a name"))
    path = write_config(tmp_path, '[providers.acme]\nfile = "sub/a.db"\nname = "sub/a.db"\n')
    found = resolve_settings("acme", declared, {}, load_config_file(path), {})
    assert found["file"] == str(path.parent / "sub" / "a.db")
    assert found["name"] == "sub/a.db"


def test_the_ledger_database_is_a_path_setting(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[providers.local]\ndatabase = "ledger.db"\n')
    assert settings_of("local", config)["database"].reveal() == str(config.parent / "ledger.db")


# Unknown [providers.<name>] tables: a warning, since a shared file may name plugins that
# this machine does not have (or OPTOUTS_LOAD_PLUGINS leaves out)


def test_a_misspelt_provider_table_is_warned_about_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config_file(
        write_config(tmp_path, '[providers.azur]\nendpoint = "x"\n[providers.local]\n')
    )
    with caplog.at_level(logging.WARNING, logger="optouts"):
        check_provider_tables(config)
        check_provider_tables(config)
    warnings = [record.getMessage() for record in caplog.records]
    assert len(warnings) == 1
    assert "[providers.azur]" in warnings[0]
    assert str(config.path) in warnings[0]
    assert "did you mean azure?" in warnings[0]
    assert "installed: aws, azure, local, ringcentral" in warnings[0]


def test_tables_of_installed_providers_pass_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config_file(
        write_config(tmp_path, "[providers.local]\n[providers.aws]\n[providers.azure]\n")
    )
    with caplog.at_level(logging.WARNING, logger="optouts"):
        check_provider_tables(config)
    assert caplog.records == []


def test_tables_of_plugins_left_out_on_purpose_pass_quietly(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("optouts._plugins._skipped", {"acme"})
    config = load_config_file(write_config(tmp_path, "[providers.acme]\n"))
    with caplog.at_level(logging.WARNING, logger="optouts"):
        check_provider_tables(config)
    assert caplog.records == []


def test_the_cli_warns_on_stderr_about_a_misspelt_table_and_carries_on(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, '[providers.azur]\nendpoint = "x"\n[providers.local]\ndatabase = "l.db"\n'
    )
    command = [sys.executable, "-c", "from optouts.cli import main; main()", "-c", str(config)]
    done = subprocess.run(
        [*command, "add", "--from", SENDER, RECIPIENT], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "[providers.azur]" in done.stderr
    assert "did you mean azure?" in done.stderr
    assert (config.parent / "l.db").is_file()
