"""``ServeSettings``: the ``[serve]`` table of optouts.toml and the ``OPTOUTS_SERVE_*``
variables, with each webhook format's settings named by the format itself."""

from __future__ import annotations

from pathlib import Path

import pytest

import optouts
from optouts import ConfigurationError, Secret
from optouts.server import ServeSettings

installed = optouts.inbound.parsers()
pytestmark = pytest.mark.skipif(
    not {"azure", "ringcentral"} <= set(installed),
    reason="optouts-azure and optouts-ringcentral bring the formats these tests configure",
)
KEY = "an-api-key-of-some-length"


def write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_the_environment_names_every_setting() -> None:
    environ = {
        "OPTOUTS_SERVE_RINGCENTRAL_VERIFICATION_TOKEN": "rc-token",
        "OPTOUTS_SERVE_AZURE_TOKEN": "az-token",
        "OPTOUTS_SERVE_AZURE_ALLOWED_ORIGINS": "eventgrid.azure.net, Other.Example ",
        "OPTOUTS_SERVE_API_KEYS": f"{KEY}, {KEY}-2",
        "OPTOUTS_SERVE_TARGETS": "azure,ringcentral",
    }
    found = ServeSettings.from_settings(environ=environ)
    assert [key.reveal() for key in found.api_keys] == [KEY, f"{KEY}-2"]
    assert found.targets == ("azure", "ringcentral")
    assert found.webhooks["ringcentral"]["verification_token"] == Secret("rc-token")
    assert found.webhooks["azure"]["token"] == Secret("az-token")
    assert found.webhooks["azure"]["allowed_origins"] == ("eventgrid.azure.net", "other.example")
    assert found.not_served == {}


def test_nothing_configured_serves_no_webhook_and_says_what_each_needs() -> None:
    found = ServeSettings.from_settings(environ={})
    assert found.api_keys == ()
    assert found.webhooks == {}
    assert "OPTOUTS_SERVE_RINGCENTRAL_VERIFICATION_TOKEN" in found.not_served["ringcentral"]
    assert "[serve.azure]" in found.not_served["azure"]
    assert "OPTOUTS_SERVE_AZURE_TOKEN" in found.not_served["azure"]


def test_origins_alone_do_not_serve_azure() -> None:
    found = ServeSettings.from_settings(
        environ={"OPTOUTS_SERVE_AZURE_ALLOWED_ORIGINS": "eventgrid.azure.net"}
    )
    assert "azure" not in found.webhooks


def test_the_serve_table_of_optouts_toml(tmp_path: Path) -> None:
    config = write(
        tmp_path / "optouts.toml",
        f"""
provider = "local"

[providers.local]
database = "{tmp_path / "ledger.db"}"

[serve]
api_keys = ["{KEY}"]
targets = ["azure"]

[serve.ringcentral]
verification_token = "env:RC_VERIFICATION"

[serve.azure]
token = "from-the-file"
allowed_origins = ["eventgrid.azure.net"]
""",
    )
    found = ServeSettings.from_settings(config=config, environ={"RC_VERIFICATION": "rc-env"})
    assert found.api_keys == (Secret(KEY),)
    assert found.targets == ("azure",)
    assert found.webhooks["ringcentral"]["verification_token"].reveal() == "rc-env"
    assert found.webhooks["azure"]["token"].reveal() == "from-the-file"
    # the rest of optouts reads the same file, [serve] and all
    with optouts.Ledger.from_settings(config=config) as ledger:
        assert ledger.location.endswith("ledger.db")


def test_arguments_win_over_the_environment_which_wins_over_the_file(tmp_path: Path) -> None:
    config = write(tmp_path / "optouts.toml", '[serve.azure]\ntoken = "file"\n')
    environ = {"OPTOUTS_SERVE_AZURE_TOKEN": "environment"}
    assert ServeSettings.from_settings(config=config).webhooks["azure"]["token"] == Secret("file")
    found = ServeSettings.from_settings(config=config, environ=environ)
    assert found.webhooks["azure"]["token"] == Secret("environment")
    found = ServeSettings.from_settings(
        config=config, environ=environ, webhooks={"azure": {"token": "argument"}}
    )
    assert found.webhooks["azure"]["token"] == Secret("argument")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[serve]\nport = 8080\n", r"\[serve\] in .*: unknown setting 'port'"),
        (
            '[serve.azure]\ntokn = "x"\n',
            r"\[serve.azure\] in .*: unknown setting 'tokn' of webhook format 'azure'",
        ),
        ('[serve.acme]\nkey = "x"\n', r"\[serve\]: no webhook format named 'acme'"),
        ('serve = "on"\n', "serve must be a table"),
        ('[serve]\napi_keys = ["short"]\n', "at least 16 characters"),
        ("[serve]\ntargets = 3\n", "setting 'targets' from .* is malformed"),
        ('[serve.azure]\ntoken = "env:NOT_SET_ANYWHERE"\n', "reads variable NOT_SET_ANYWHERE"),
        ("[serve.azure]\ntoken = 12\n", "'token' of webhook format 'azure' .* is malformed"),
    ],
    ids=["unknown", "misspelt", "no-format", "not-table", "short-key", "targets", "env", "int"],
)
def test_mistakes_are_configuration_errors_naming_the_setting(
    tmp_path: Path, text: str, message: str
) -> None:
    config = write(tmp_path / "optouts.toml", text)
    with pytest.raises(ConfigurationError, match=message):
        ServeSettings.from_settings(config=config, environ={})


def test_an_unknown_format_in_the_argument_is_an_error() -> None:
    with pytest.raises(ConfigurationError, match="webhooks argument: no webhook format named"):
        ServeSettings.from_settings(environ={}, webhooks={"acme": {"key": "x"}})
    with pytest.raises(
        ConfigurationError,
        match="argument: unknown setting 'key' of webhook format 'azure'; "
        "its settings are: allowed_origins, token",
    ):
        ServeSettings.from_settings(environ={}, webhooks={"azure": {"key": "x"}})


def test_a_malformed_secret_is_never_quoted() -> None:
    with pytest.raises(ConfigurationError) as raised:
        ServeSettings.from_settings(environ={"OPTOUTS_SERVE_API_KEYS": "tiny-secret"})
    assert "tiny-secret" not in str(raised.value)
    assert "OPTOUTS_SERVE_API_KEYS" in str(raised.value)


def test_the_repr_masks_every_secret() -> None:
    found = ServeSettings.from_settings(
        environ={
            "OPTOUTS_SERVE_API_KEYS": KEY,
            "OPTOUTS_SERVE_AZURE_TOKEN": "az-secret-token",
            "OPTOUTS_SERVE_RINGCENTRAL_VERIFICATION_TOKEN": "rc-secret-token",
        }
    )
    shown = repr(found)
    for secret in (KEY, "az-secret-token", "rc-secret-token"):
        assert secret not in shown
    assert "Secret('********')" in shown


def test_the_instance_name_defaults_and_is_found_like_every_setting(tmp_path: Path) -> None:
    assert ServeSettings.from_settings(environ={}).instance == "serve"
    config = write(tmp_path / "optouts.toml", '[serve]\ninstance = "east-1"\n')
    assert ServeSettings.from_settings(config=config, environ={}).instance == "east-1"
    environ = {"OPTOUTS_SERVE_INSTANCE": "west.2"}
    assert ServeSettings.from_settings(config=config, environ=environ).instance == "west.2"
    assert ServeSettings.from_settings(environ=environ, instance="x").instance == "x"


@pytest.mark.parametrize("name", ["", "two words", "-leading", "a/b", "x" * 65, 7])
def test_an_instance_name_that_could_not_name_a_lease_owner_is_refused(name: object) -> None:
    with pytest.raises(ConfigurationError, match="instance"):
        ServeSettings.from_settings(environ={}, instance=name)
