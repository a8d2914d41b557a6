"""Settings: where values come from, what errors say, and that secrets never show."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from optouts import ConfigurationError, Secret, Setting
from optouts._config import core_setting, env_name, load_config_file, resolve_settings

DECLARED = (
    Setting("endpoint", "the service URL", required=True),
    Setting("token", "the API token", required=True, secret=True, env_aliases=("VENDOR_TOKEN",)),
    Setting("timeout", "seconds to wait", default=5.0, parse=float),
)


def write_config(folder: Path, text: str) -> Path:
    """Written outside the working directory, so only an explicit path finds it."""
    path = folder / "conf" / "optouts.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_env_names() -> None:
    assert env_name("local", "database") == "OPTOUTS_LOCAL_DATABASE"
    assert env_name("ring-central", "jwt") == "OPTOUTS_RING_CENTRAL_JWT"
    assert env_name(None, "provider") == "OPTOUTS_PROVIDER"


def test_precedence_is_arguments_then_environment_then_file_then_default(tmp_path: Path) -> None:
    config = load_config_file(
        write_config(
            tmp_path,
            '[providers.vendor]\nendpoint = "https://file"\ntoken = "t-file"\ntimeout = 9\n',
        )
    )
    environ = {"OPTOUTS_VENDOR_ENDPOINT": "https://env"}
    settings = resolve_settings("vendor", DECLARED, {"token": "t-arg"}, config, environ)
    assert settings["endpoint"] == "https://env"
    assert settings["token"].reveal() == "t-arg"
    assert settings["timeout"] == 9.0
    defaults = resolve_settings(
        "vendor", DECLARED, {"endpoint": "e", "token": "t"}, load_config_file(), {}
    )
    assert defaults["timeout"] == 5.0


def test_vendor_customary_variables_are_accepted() -> None:
    settings = resolve_settings(
        "vendor", DECLARED, {"endpoint": "e"}, load_config_file(), {"VENDOR_TOKEN": "abc"}
    )
    assert settings["token"].reveal() == "abc"


def test_our_variable_beats_the_vendor_alias() -> None:
    environ = {"VENDOR_TOKEN": "alias", "OPTOUTS_VENDOR_TOKEN": "ours"}
    settings = resolve_settings("vendor", DECLARED, {"endpoint": "e"}, load_config_file(), environ)
    assert settings["token"].reveal() == "ours"


def test_file_values_may_read_the_environment(tmp_path: Path) -> None:
    config = load_config_file(
        write_config(tmp_path, '[providers.vendor]\nendpoint = "e"\ntoken = "env:MY_TOKEN"\n')
    )
    settings = resolve_settings("vendor", DECLARED, {}, config, {"MY_TOKEN": "from-env"})
    assert settings["token"].reveal() == "from-env"
    with pytest.raises(ConfigurationError, match="MY_TOKEN, which is not set"):
        resolve_settings("vendor", DECLARED, {}, config, {})


def test_missing_setting_names_setting_variable_and_file() -> None:
    with pytest.raises(ConfigurationError) as raised:
        resolve_settings("vendor", DECLARED, {"token": "t"}, load_config_file(), {})
    message = str(raised.value)
    assert "'endpoint'" in message
    assert "OPTOUTS_VENDOR_ENDPOINT" in message
    assert "[providers.vendor]" in message


def test_a_missing_setting_names_every_variable_that_sets_it() -> None:
    """RingCentral's emulator prints RC_JWT: the error must name it beside ours."""
    with pytest.raises(ConfigurationError) as raised:
        resolve_settings("vendor", DECLARED, {"endpoint": "e"}, load_config_file(), {})
    assert "set OPTOUTS_VENDOR_TOKEN or VENDOR_TOKEN," in str(raised.value)


def test_malformed_value_is_named_and_secret_values_are_not_shown() -> None:
    with pytest.raises(ConfigurationError) as raised:
        resolve_settings(
            "vendor",
            DECLARED,
            {"endpoint": "e", "token": "t", "timeout": "soon"},
            load_config_file(),
            {},
        )
    assert "'timeout'" in str(raised.value)
    assert "soon" in str(raised.value)

    def refuse(value: str) -> str:
        raise ValueError(f"bad token {value}")

    secret = (Setting("token", "token", secret=True, parse=refuse),)
    with pytest.raises(ConfigurationError) as raised:
        resolve_settings("vendor", secret, {"token": "hunter2-secret"}, load_config_file(), {})
    assert "hunter2" not in str(raised.value)
    assert "OPTOUTS_VENDOR_TOKEN" in str(raised.value)


def test_unknown_settings_are_refused_with_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no setting 'tokn'.*endpoint, timeout, token"):
        resolve_settings("vendor", DECLARED, {"tokn": "x"}, load_config_file(), {})
    config = load_config_file(write_config(tmp_path, '[providers.vendor]\nendpont = "x"\n'))
    with pytest.raises(ConfigurationError, match="unknown setting 'endpont'"):
        resolve_settings("vendor", DECLARED, {}, config, {})


def test_secrets_are_masked_in_reprs() -> None:
    settings = resolve_settings(
        "vendor", DECLARED, {"endpoint": "e", "token": "hunter2-secret"}, load_config_file(), {}
    )
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in str(settings["token"])
    assert "hunter2" not in f"{settings['token']}"
    assert repr(Secret("x")) == "Secret('********')"


def test_config_file_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_config_file().path is None  # nothing in the (empty) working directory
    elsewhere = tmp_path / "elsewhere.toml"
    elsewhere.write_text('provider = "vendor"\n', encoding="utf-8")
    monkeypatch.setenv("OPTOUTS_CONFIG", str(elsewhere))
    assert core_setting("provider", None, load_config_file()) == "vendor"
    monkeypatch.delenv("OPTOUTS_CONFIG")
    (tmp_path / "optouts.toml").write_text('provider = "cwd"\n', encoding="utf-8")
    assert core_setting("provider", None, load_config_file()) == "cwd"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("provider = ", "not valid TOML"),
        ("provder = 'local'", "unknown top-level setting 'provder'"),
        ("providers = 3", "one table per provider"),
        ("provider = 3", "'provider' from provider in .* is malformed .*OPTOUTS_PROVIDER"),
        ("max_concurrency = 0", "'max_concurrency' .* >= 1.*OPTOUTS_MAX_CONCURRENCY"),
        ("retry_backoff = 'soon'", "'retry_backoff' .*malformed.*OPTOUTS_RETRY_BACKOFF"),
    ],
)
def test_broken_config_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    path = write_config(tmp_path, text)
    name = text.split("=")[0].strip() if "=" in text else "provider"
    name = name if name in {"max_concurrency", "retry_backoff"} else "provider"
    with pytest.raises(ConfigurationError, match=message):
        core_setting(name, None, load_config_file(path))


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        load_config_file(tmp_path / "nope.toml")


def test_core_settings_precedence(tmp_path: Path) -> None:
    config = load_config_file(write_config(tmp_path, 'provider = "file"\n'))
    assert core_setting("provider", "arg", config, {"OPTOUTS_PROVIDER": "env"}) == "arg"
    assert core_setting("provider", None, config, {"OPTOUTS_PROVIDER": "env"}) == "env"
    assert core_setting("provider", None, config, {}) == "file"
    assert core_setting("provider", None, load_config_file(), {}) == "local"


@pytest.mark.parametrize("region", ["ZZ", "XX", "001", "usa"])
def test_a_default_region_phonenumbers_does_not_know_is_refused(region: str) -> None:
    """Accepted, it made every national number fail one by one."""
    with pytest.raises(ConfigurationError, match="OPTOUTS_DEFAULT_REGION.*not a country code"):
        core_setting("default_region", None, load_config_file(), {"OPTOUTS_DEFAULT_REGION": region})


def test_a_default_region_is_upper_cased() -> None:
    assert core_setting("default_region", "gb", load_config_file(), {}) == "GB"


def test_a_config_file_that_is_not_utf8_is_named_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "optouts.toml"
    path.write_bytes(b'provider = "local"\n\n# \xff\n')
    with pytest.raises(ConfigurationError) as raised:
        load_config_file(path)
    assert str(raised.value) == f"config file {path} is not UTF-8 (line 3: byte 0xff)"


def test_retry_policy_comes_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import optouts

    monkeypatch.setenv("OPTOUTS_RETRY_ATTEMPTS", "7")
    monkeypatch.setenv("OPTOUTS_CONFIG", str(write_config(tmp_path, "retry_cap = 2.5\n")))
    with optouts.Client("local", database=str(tmp_path / "l.db")) as client:
        assert client.retry == optouts.RetryPolicy(attempts=7, cap=2.5)


def test_a_database_url_password_never_shows() -> None:
    from optouts.ledger import LocalProvider

    settings = resolve_settings(
        "local",
        LocalProvider.settings,
        {"database": "postgresql://u:hunter2@h/db"},
        load_config_file(),
        {},
    )
    assert "hunter2" not in repr(settings)


@pytest.mark.parametrize(
    "attempt",
    [
        lambda value, _: resolve_settings("vendor", DECLARED, {value: "x"}, load_config_file(), {}),
        lambda value, _: core_setting("retry_backoff", value, load_config_file(), {}),
        lambda value, _: core_setting("max_concurrency", value, load_config_file(), {}),
        lambda value, folder: load_config_file(write_config(folder, f'"{value}" = 1\n')),
        lambda value, _: resolve_settings(  # float's own message quotes the value again
            "vendor",
            DECLARED,
            {"endpoint": "e", "token": "t", "timeout": value},
            load_config_file(),
        ),
    ],
    ids=["setting name", "seconds", "whole number", "top-level name", "provider's parser"],
)
def test_a_5_mb_value_or_name_makes_a_short_message(
    tmp_path: Path, attempt: Callable[[str, Path], object]
) -> None:
    def message(value: str) -> str:
        with pytest.raises(ConfigurationError) as raised:
            attempt(value, tmp_path)
        return str(raised.value)

    short, huge = message("9x"), message("9x" * 2_500_000)
    assert "9x9x…' (5,000,000 characters)" in huge
    assert len(huge) < len(short) + 2 * 100  # at most two quotes of it, each cut short
    assert len(huge) < 500


def test_a_parser_quoting_a_5_mb_value_whole_is_cut_short_too() -> None:
    def fussy(value: str) -> str:
        raise ValueError(f"{value!r} is not a region; try 'US'. {value}")

    declared = (Setting("region", "where", parse=fussy),)
    with pytest.raises(ConfigurationError) as raised:
        resolve_settings("vendor", declared, {"region": "Q" * 5_000_000}, load_config_file(), {})
    message = str(raised.value)
    assert len(message) < 500
    assert f"'{'Q' * 60}…' (5,000,000 characters) is not a region; try 'US'. QQQ" in message
