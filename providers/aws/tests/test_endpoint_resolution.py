"""The endpoint is the one botocore (so the AWS CLI and boto3) would send to.

FIPS and dual-stack (from the environment or the profile), endpoint URLs configured for
the service or the profile, and each partition's DNS suffix are botocore's to decide; the
provider's own ``endpoint_url`` setting wins over all of them. Every case is also held
equal to the URL a botocore client of the service sends a request to (caught before it
leaves), and finding the endpoint touches no network.
"""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from typing import Any

import botocore.configprovider  # type: ignore[import-untyped]
import pytest
from botocore.awsrequest import AWSResponse  # type: ignore[import-untyped]
from botocore.credentials import Credentials  # type: ignore[import-untyped]
from botocore.session import Session  # type: ignore[import-untyped]

import optouts
from optouts_aws import DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, AwsProvider

SERVICE = "pinpoint-sms-voice-v2"
CREDENTIALS = (
    f"aws_access_key_id = {DEFAULT_ACCESS_KEY_ID}\n"
    f"aws_secret_access_key = {DEFAULT_SECRET_ACCESS_KEY}\n"
)


CONFIGURED_ENDPOINTS = pytest.mark.skipif(
    not hasattr(botocore.configprovider, "ConfiguredEndpointProvider"),
    reason="this botocore predates endpoints configured per service or profile "
    "(AWS_ENDPOINT_URL_<SERVICE>, [services]): it, and the AWS CLI of its day, ignore them",
)


def config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, text: str) -> None:
    path = tmp_path / "aws-config"
    path.write_text(text)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(path))


def endpoint(region: str = "us-east-1", **settings: Any) -> str:
    """The endpoint of a client made from settings, as ``optouts.Client("aws")`` makes it."""
    with optouts.Client("aws", region=region, **settings) as client:
        assert isinstance(client.provider, AwsProvider)
        return str(client.provider.endpoint_url)


def constructed(region: str = "us-east-1") -> str:
    """The endpoint of a provider made directly, with credentials and no session."""
    credentials = Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY)
    return str(AwsProvider(region=region, credentials=credentials).endpoint_url)


def botocore_sends_to(region: str, profile: str | None = None) -> str:
    """Where a botocore client of the service sends DescribeOptedOutNumbers (never sent)."""
    client = Session(profile=profile).create_client(SERVICE, region_name=region)
    seen: list[str] = []

    def caught(request: Any, **_: Any) -> AWSResponse:
        seen.append(request.url)
        return AWSResponse(request.url, 200, {}, None)

    client.meta.events.register("before-send", caught)
    with contextlib.suppress(Exception):  # an empty answer does not parse; the URL is caught
        client.describe_opted_out_numbers(OptOutListName="Default")
    return seen[0].rstrip("/")


# --- as botocore decides --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("us-gov-west-1", "https://sms-voice-fips.us-gov-west-1.amazonaws.com"),
        ("us-east-1", "https://sms-voice-fips.us-east-1.amazonaws.com"),
    ],
)
def test_fips_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, region: str, expected: str
) -> None:
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    assert endpoint(region) == expected
    assert constructed(region) == expected
    assert botocore_sends_to(region) == expected


def test_dual_stack_from_the_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config_file(monkeypatch, tmp_path, "[default]\nuse_dualstack_endpoint = true\n")
    expected = "https://sms-voice.us-east-1.api.aws"
    assert endpoint() == expected
    assert constructed() == expected
    assert botocore_sends_to("us-east-1") == expected


def test_fips_from_the_profile_the_setting_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config_file(
        monkeypatch,
        tmp_path,
        f"[profile gov]\nuse_fips_endpoint = true\nregion = us-gov-east-1\n{CREDENTIALS}",
    )
    monkeypatch.delenv("AWS_REGION")
    expected = "https://sms-voice-fips.us-gov-east-1.amazonaws.com"
    with optouts.Client("aws", profile="gov") as client:
        assert isinstance(client.provider, AwsProvider)
        assert client.provider.endpoint_url == expected
    assert botocore_sends_to("us-gov-east-1", profile="gov") == expected


@CONFIGURED_ENDPOINTS
def test_the_service_specific_endpoint_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "https://everything.example.com")
    monkeypatch.setenv("AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2", "https://sms.example.com")
    assert endpoint() == "https://sms.example.com"
    assert constructed() == "https://sms.example.com"
    assert botocore_sends_to("us-east-1") == "https://sms.example.com"


@CONFIGURED_ENDPOINTS
def test_the_services_section_of_the_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config_file(
        monkeypatch,
        tmp_path,
        "[default]\nservices = proxied\n"
        "[services proxied]\npinpoint_sms_voice_v2 =\n"
        "  endpoint_url = https://sms-proxy.example.com\n",
    )
    assert endpoint() == "https://sms-proxy.example.com"
    assert constructed() == "https://sms-proxy.example.com"
    assert botocore_sends_to("us-east-1") == "https://sms-proxy.example.com"


@CONFIGURED_ENDPOINTS
def test_the_endpoint_url_of_the_profile(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config_file(monkeypatch, tmp_path, "[default]\nendpoint_url = https://aws.example.com\n")
    assert endpoint() == "https://aws.example.com"
    assert botocore_sends_to("us-east-1") == "https://aws.example.com"


# --- the provider's own setting wins ----------------------------------------------------------


def test_the_setting_wins_over_botocore(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config_file(
        monkeypatch,
        tmp_path,
        "[default]\nuse_fips_endpoint = true\nservices = proxied\n"
        "[services proxied]\npinpoint_sms_voice_v2 =\n"
        "  endpoint_url = https://sms-proxy.example.com\n",
    )
    monkeypatch.setenv("AWS_USE_FIPS_ENDPOINT", "true")
    assert endpoint(endpoint_url="https://chosen.example.com") == "https://chosen.example.com"
    monkeypatch.setenv("OPTOUTS_AWS_ENDPOINT_URL", "https://from-env.example.com")
    assert endpoint() == "https://from-env.example.com"
    credentials = Credentials(DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY)
    direct = AwsProvider(
        region="us-east-1", credentials=credentials, endpoint_url="http://127.0.0.1:4566"
    )
    assert direct.endpoint_url == "http://127.0.0.1:4566"


# --- unchanged by default ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "expected"),
    [
        ("us-east-1", "https://sms-voice.us-east-1.amazonaws.com"),
        ("eu-west-1", "https://sms-voice.eu-west-1.amazonaws.com"),
        ("ap-southeast-2", "https://sms-voice.ap-southeast-2.amazonaws.com"),
        ("cn-north-1", "https://sms-voice.cn-north-1.amazonaws.com.cn"),
        ("cn-northwest-1", "https://sms-voice.cn-northwest-1.amazonaws.com.cn"),
        ("us-gov-west-1", "https://sms-voice.us-gov-west-1.amazonaws.com"),
        ("us-gov-east-1", "https://sms-voice.us-gov-east-1.amazonaws.com"),
    ],
)
def test_the_default_endpoint_of_each_partition(region: str, expected: str) -> None:
    assert endpoint(region) == expected
    assert constructed(region) == expected
    assert botocore_sends_to(region) == expected


# --- no network, and a failure in words ---------------------------------------------------------


def test_finding_the_endpoint_sends_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Not even in the ``auto`` defaults mode, where botocore asks the instance metadata
    service for the Region when it makes a client (the provider's endpoint client does not)."""
    config_file(monkeypatch, tmp_path, "[default]\ndefaults_mode = auto\n")
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED")
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("no network in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    assert endpoint() == "https://sms-voice.us-east-1.amazonaws.com"
    assert constructed() == "https://sms-voice.us-east-1.amazonaws.com"
    assert attempts == []


def test_a_profile_botocore_cannot_read_is_a_configuration_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "nowhere")
    with pytest.raises(optouts.ConfigurationError, match="endpoint_url"):
        constructed()
