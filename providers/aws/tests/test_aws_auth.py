"""Credentials the AWS way, and Signature Version 4 that AWS (here: its emulator) accepts.

Every credential source is botocore's: the environment, the shared files with a profile,
temporary credentials with a session token, refreshable credentials. The emulator checks
each signature with botocore's signer, and the AWS SDK itself (a botocore client) is held
to the same emulator, so both ends agree with AWS's own implementation.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from botocore.credentials import RefreshableCredentials  # type: ignore[import-untyped]
from botocore.session import Session  # type: ignore[import-untyped]

import optouts
from optouts.testing import BlockingASGITransport
from optouts_aws import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_SECRET_ACCESS_KEY,
    AwsEmulator,
    AwsProvider,
    SigV4,
)
from optouts_aws.testing import FAST, SENDER

SIGNATURE = re.compile(r"[0-9a-f]{64}")
NUMBER = "+12025550142"


def _write_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, **keys: str) -> None:
    """A shared credentials file and config file holding profile ``name``."""
    credentials = tmp_path / "aws-credentials"
    config = tmp_path / "aws-config"
    region = keys.pop("region", None)
    credentials.write_text(
        f"[{name}]\n" + "".join(f"{key} = {value}\n" for key, value in keys.items()),
        encoding="utf-8",
    )
    section = "default" if name == "default" else f"profile {name}"
    config.write_text(
        f"[{section}]\n" + (f"region = {region}\n" if region else ""), encoding="utf-8"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))


def _without_environment_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)


def test_a_wrong_secret_is_refused_as_aws_refuses_it(
    client_for: Callable[..., optouts.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not/the/secret/the/emulator/knows/000000")
    with pytest.raises(optouts.AuthenticationError) as raised:
        client_for().check(SENDER, [NUMBER])
    assert raised.value.status_code == 403
    assert raised.value.code == "InvalidSignatureException"
    assert "secret key may be wrong" in str(raised.value)
    assert "not/the/secret" not in str(raised.value)


def test_an_unknown_key_is_refused(
    client_for: Callable[..., optouts.Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
    with pytest.raises(optouts.AuthenticationError) as raised:
        client_for().add(SENDER, [NUMBER])
    assert raised.value.code == "UnrecognizedClientException"


def test_refused_credentials_stop_the_call_after_one_request(
    emulator: AwsEmulator,
    client_for: Callable[..., optouts.Client],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong/wrong/wrong/wrong/wrong/wrong/0000")
    with pytest.raises(optouts.AuthenticationError):
        client_for(max_concurrency=1).add(SENDER, [f"+1202555{i:04d}" for i in range(50)])
    assert emulator.requests == 1


def test_a_profile_from_the_shared_files(
    emulator: AwsEmulator,
    client_for: Callable[..., optouts.Client],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    _without_environment_credentials(monkeypatch)
    _write_profile(
        tmp_path,
        monkeypatch,
        "optouts-test",
        aws_access_key_id=DEFAULT_ACCESS_KEY_ID,
        aws_secret_access_key=DEFAULT_SECRET_ACCESS_KEY,
        region="us-east-1",
    )
    monkeypatch.setenv("AWS_PROFILE", "optouts-test")
    client = client_for()
    assert isinstance(client.provider, AwsProvider)
    assert client.provider.region == "us-east-1"  # the profile's region
    assert client.add(SENDER, [NUMBER]).ok
    assert emulator.numbers("Marketing") == {NUMBER}


def test_the_profile_setting_wins_over_the_default_profile(
    client_for: Callable[..., optouts.Client], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _without_environment_credentials(monkeypatch)
    credentials = tmp_path / "aws-credentials"
    credentials.write_text(
        "[default]\naws_access_key_id = AKIAWRONGWRONGWRONG0\n"
        "aws_secret_access_key = wrong\n"
        f"[sms]\naws_access_key_id = {DEFAULT_ACCESS_KEY_ID}\n"
        f"aws_secret_access_key = {DEFAULT_SECRET_ACCESS_KEY}\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert client_for(profile="sms").check(SENDER, [NUMBER]).ok
    with pytest.raises(optouts.AuthenticationError):
        client_for().check(SENDER, [NUMBER])  # the default profile's wrong key


@pytest.mark.parametrize("how", ["setting", "AWS_PROFILE"])
def test_an_unknown_profile_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    _without_environment_credentials(monkeypatch)
    extra: dict[str, Any] = {}
    if how == "setting":
        extra["profile"] = "nowhere"
    else:
        monkeypatch.setenv("AWS_PROFILE", "nowhere")
    with pytest.raises(optouts.ConfigurationError) as raised:
        optouts.Client("aws", region="us-east-1", **extra)
    assert "nowhere" in str(raised.value)
    assert ("OPTOUTS_AWS_PROFILE" if how == "setting" else "AWS_PROFILE") in str(raised.value)


def test_no_credentials_anywhere_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    _without_environment_credentials(monkeypatch)
    with pytest.raises(optouts.ConfigurationError) as raised:
        optouts.Client("aws", region="us-east-1")
    message = str(raised.value)
    for hint in ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "aws sso login", "role"):
        assert hint in message


def test_a_missing_region_names_the_setting_and_its_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_REGION")
    with pytest.raises(optouts.ConfigurationError) as raised:
        optouts.Client("aws")
    message = str(raised.value)
    for name in ("'region'", "OPTOUTS_AWS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"):
        assert name in message


def test_temporary_credentials_send_their_session_token(monkeypatch: pytest.MonkeyPatch) -> None:
    emulator = AwsEmulator(
        access_key_id="ASIAOPTOUTSTEMPORARY",
        secret_access_key="temporary/secret/for/the/emulator/000000",
        session_token="session-token-of-the-test",
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAOPTOUTSTEMPORARY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "temporary/secret/for/the/emulator/000000")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token-of-the-test")
    sent: list[httpx.Request] = []

    def keep(request: httpx.Request) -> None:
        sent.append(request)

    http = httpx.Client(transport=BlockingASGITransport(emulator), event_hooks={"request": [keep]})
    with optouts.Client(
        "aws", endpoint_url="http://127.0.0.1:9", requests_per_second="off", http_client=http
    ) as client:
        assert client.add("*", [NUMBER]).ok
    assert sent[0].headers["x-amz-security-token"] == "session-token-of-the-test"
    assert "x-amz-security-token" in sent[0].headers["authorization"]
    monkeypatch.delenv("AWS_SESSION_TOKEN")
    with (
        optouts.Client(
            "aws", endpoint_url="http://127.0.0.1:9", requests_per_second="off", http_client=http
        ) as client,
        pytest.raises(optouts.AuthenticationError),
    ):
        client.check("*", [NUMBER])
    http.close()


def test_refreshable_credentials_are_refreshed_when_due(emulator: AwsEmulator) -> None:
    """Role and SSO credentials expire: botocore refreshes them as a request is signed."""
    later = {
        "access_key": "ASIAREFRESHEDKEY0000",
        "secret_key": "refreshed/secret/0000000000000000000000",
    }
    emulator.verifier.keys["ASIAREFRESHEDKEY0000"] = (later["secret_key"], "token-2")
    refreshes: list[str] = []

    def refresh() -> dict[str, str]:
        refreshes.append("called")
        expiry = datetime.now(timezone.utc) + timedelta(hours=1)
        return {**later, "token": "token-2", "expiry_time": expiry.isoformat()}

    soon = datetime.now(timezone.utc) + timedelta(seconds=30)  # inside botocore's window
    credentials = RefreshableCredentials.create_from_metadata(
        metadata={
            "access_key": "ASIAEXPIRINGKEY00000",
            "secret_key": "expiring/secret/00000000000000000000000",
            "token": "token-1",
            "expiry_time": soon.isoformat(),
        },
        refresh_using=refresh,
        method="test",
    )
    provider = AwsProvider(
        region="us-east-1", credentials=credentials, endpoint_url="http://127.0.0.1:9", rates="off"
    )
    http = httpx.Client(transport=BlockingASGITransport(emulator))
    with optouts.Client(provider, http_client=http, retry=FAST) as client:
        assert client.add("*", [NUMBER]).ok
    http.close()
    assert refreshes
    assert emulator.numbers("Default") == {NUMBER}


def test_a_failed_refresh_is_an_authentication_error() -> None:
    def refresh() -> dict[str, str]:
        raise __import__("botocore.exceptions").exceptions.CredentialRetrievalError(
            provider="sso", error_msg="the SSO session has expired"
        )

    gone = datetime.now(timezone.utc) - timedelta(minutes=1)
    credentials = RefreshableCredentials.create_from_metadata(
        metadata={
            "access_key": "a",
            "secret_key": "b",
            "token": "c",
            "expiry_time": gone.isoformat(),
        },
        refresh_using=refresh,
        method="test",
    )
    auth = SigV4(credentials, "us-east-1")
    with pytest.raises(optouts.AuthenticationError, match="aws sso login"):
        auth.sign(httpx.Request("POST", "https://sms-voice.us-east-1.amazonaws.com/"))


def test_the_aws_sdk_itself_passes_the_emulator(served: Any, emulator: AwsEmulator) -> None:
    """botocore's own client signs and parses: the emulator must take and answer it as AWS."""
    sdk = Session().create_client(
        "pinpoint-sms-voice-v2",
        region_name="us-east-1",
        endpoint_url=served.url,
        aws_access_key_id=DEFAULT_ACCESS_KEY_ID,
        aws_secret_access_key=DEFAULT_SECRET_ACCESS_KEY,
    )
    try:
        put = sdk.put_opted_out_number(OptOutListName="Marketing", OptedOutNumber=NUMBER)
        assert put["OptedOutNumber"] == NUMBER
        assert put["EndUserOptedOut"] is False
        found = sdk.describe_opted_out_numbers(
            OptOutListName="Marketing", OptedOutNumbers=[NUMBER, "+12025550143"]
        )
        assert [item["OptedOutNumber"] for item in found["OptedOutNumbers"]] == [NUMBER]
        names = {item["OptOutListName"] for item in sdk.describe_opt_out_lists()["OptOutLists"]}
        assert names == {"Default", "Marketing", "Alerts"}
        with pytest.raises(sdk.exceptions.ResourceNotFoundException):
            sdk.delete_opted_out_number(OptOutListName="Nowhere", OptedOutNumber=NUMBER)
        with pytest.raises(sdk.exceptions.ConflictException):
            sdk.create_opt_out_list(OptOutListName="Marketing")
    finally:
        sdk.close()


def test_keys_and_signatures_never_show(
    client_for: Callable[..., optouts.Client],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    client = client_for()
    client.add(SENDER, [NUMBER])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong/wrong/wrong/wrong/wrong/wrong/0000")
    with pytest.raises(optouts.AuthenticationError) as raised:
        client_for().check(SENDER, [NUMBER])
    shown = "\n".join(
        [
            repr(client),
            repr(client.provider),
            repr(client.provider.auth),
            str(raised.value),
            caplog.text,
        ]
    )
    assert DEFAULT_SECRET_ACCESS_KEY not in shown
    assert DEFAULT_ACCESS_KEY_ID not in shown
    assert "wrong/wrong" not in shown
    assert SIGNATURE.search(shown) is None
