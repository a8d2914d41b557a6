"""The provider's settings: where each comes from, how it is read, and what a bad one says.

Also the mapping of senders to lists (``ListMap``), which decides which list every
operation reads or writes, and the endpoint a Region gets.
"""

from __future__ import annotations

from typing import Any

import pytest
from botocore.session import Session  # type: ignore[import-untyped]

import optouts
from optouts.plugin import settings_for
from optouts_aws import PUBLISHED_RATES, AwsProvider, ListMap
from optouts_aws._endpoint import default_endpoint
from optouts_aws._settings import parse_rates, parse_sender_lists

ENV = {"AWS_REGION": "us-east-1"}


def resolved(explicit: dict[str, Any] | None = None, **environ: str) -> Any:
    return settings_for(AwsProvider, explicit, environ={**ENV, **environ})


def test_defaults() -> None:
    settings = resolved()
    assert settings["region"] == "us-east-1"
    assert settings["opt_out_list"] == "Default"
    assert settings["sender_lists"] is None
    assert settings["requests_per_second"] == PUBLISHED_RATES
    assert settings["endpoint_url"] is None
    assert settings["profile"] is None


@pytest.mark.parametrize(
    ("environ", "region"),
    [
        ({"AWS_REGION": "eu-west-1"}, "eu-west-1"),
        ({"AWS_REGION": "", "AWS_DEFAULT_REGION": "ap-south-1"}, "ap-south-1"),
        ({"AWS_REGION": "eu-west-1", "OPTOUTS_AWS_REGION": "ca-central-1"}, "ca-central-1"),
    ],
)
def test_region_comes_from_the_standard_variables(environ: dict[str, str], region: str) -> None:
    assert resolved(None, **environ)["region"] == region


def test_a_malformed_region_names_the_setting() -> None:
    with pytest.raises(optouts.ConfigurationError, match="'region'.*AWS Region code"):
        resolved(AWS_REGION="https://example.com")


def test_the_endpoint_comes_from_aws_variables_too() -> None:
    url = "http://127.0.0.1:4566"
    assert resolved(AWS_ENDPOINT_URL=url)["endpoint_url"] == url
    specific = resolved(
        AWS_ENDPOINT_URL="http://127.0.0.1:1", AWS_ENDPOINT_URL_PINPOINT_SMS_VOICE_V2=url
    )
    assert specific["endpoint_url"] == url


def test_plain_http_goes_only_to_this_machine() -> None:
    with pytest.raises(optouts.ConfigurationError, match="endpoint_url.*https"):
        resolved({"endpoint_url": "http://sms-voice.example.com"})


@pytest.mark.parametrize(
    ("region", "endpoint"),
    [
        ("us-east-1", "https://sms-voice.us-east-1.amazonaws.com"),
        ("eu-central-1", "https://sms-voice.eu-central-1.amazonaws.com"),
        ("cn-north-1", "https://sms-voice.cn-north-1.amazonaws.com.cn"),
        ("us-gov-west-1", "https://sms-voice.us-gov-west-1.amazonaws.com"),
    ],
)
def test_the_endpoint_of_a_region(region: str, endpoint: str) -> None:
    assert default_endpoint(region, Session()) == endpoint


def test_the_client_uses_the_regions_endpoint() -> None:
    with optouts.Client("aws", region="eu-west-1") as client:
        assert isinstance(client.provider, AwsProvider)
        assert client.provider.endpoint_url == "https://sms-voice.eu-west-1.amazonaws.com"


@pytest.mark.parametrize(
    "value",
    [
        {"+1 (800) 555-0100": "Marketing", "*": "Default"},
        "+18005550100=Marketing, *=Default",
        '{"+18005550100": "Marketing", "*": "Default"}',
    ],
)
def test_sender_lists_from_a_table_text_or_json(value: object) -> None:
    assert parse_sender_lists(value) == {"+18005550100": "Marketing", "*": "Default"}


def test_sender_lists_from_the_environment() -> None:
    settings = resolved(OPTOUTS_AWS_SENDER_LISTS="+18005550100=Marketing,12345=Shortcodes")
    assert settings["sender_lists"] == {"+18005550100": "Marketing", "12345": "Shortcodes"}


def test_sender_lists_take_arns() -> None:
    arn = "arn:aws:sms-voice:us-east-1:123456789012:opt-out-list/Marketing"
    assert parse_sender_lists({"*": arn}) == {"*": arn}


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ({"not a number": "Marketing"}, "is not '\\*', a short code or an E.164 number"),
        ({"+18005550100": "has spaces"}, "opt-out list name or ARN"),
        ({"+18005550100": ""}, "opt-out list name or ARN"),
        ("+18005550100", "KEY=VALUE"),
        ("+18005550100=A,+1 800 555 0100=B", "two lists"),
        (42, "table"),
    ],
)
def test_bad_sender_lists_say_why(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_sender_lists(value)


def test_bad_sender_lists_are_a_configuration_error() -> None:
    with pytest.raises(optouts.ConfigurationError, match="sender_lists.*OPTOUTS_AWS_SENDER_LISTS"):
        resolved(OPTOUTS_AWS_SENDER_LISTS="+18005550100")


def test_rates() -> None:
    assert parse_rates("quotas") == PUBLISHED_RATES
    assert set(parse_rates("off").values()) == {None}
    assert set(parse_rates(20).values()) == {20.0}
    assert set(parse_rates("2.5").values()) == {2.5}
    mixed = parse_rates("DescribeOptedOutNumbers=50, putoptedoutnumber=off")
    assert mixed["DescribeOptedOutNumbers"] == 50.0
    assert mixed["PutOptedOutNumber"] is None
    assert mixed["DeleteOptedOutNumber"] == PUBLISHED_RATES["DeleteOptedOutNumber"]
    assert parse_rates({"CreateOptOutList": 3})["CreateOptOutList"] == 3.0


@pytest.mark.parametrize("value", ["0", -1, "fast", "SendTextMessage=5", True, "inf"])
def test_bad_rates(value: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each value fails for its own reason
        parse_rates(value)


def test_published_quotas_pace_by_default() -> None:
    with optouts.Client("aws") as client:
        assert isinstance(client.provider, AwsProvider)
        assert client.provider.pacer.rates == PUBLISHED_RATES
        assert client.max_concurrency == AwsProvider.default_concurrency


def test_the_toml_file(tmp_path: Any) -> None:
    (tmp_path / "optouts.toml").write_text(
        '[providers.aws]\nopt_out_list = "Everyone"\nrequests_per_second = 25\n'
        '[providers.aws.sender_lists]\n"+18005550100" = "Marketing"\n',
        encoding="utf-8",
    )
    with optouts.Client("aws") as client:
        provider = client.provider
    assert isinstance(provider, AwsProvider)
    assert provider.lists == ListMap("Everyone", {"+18005550100": "Marketing"})
    assert set(provider.pacer.rates.values()) == {25.0}


def test_which_list_answers_for_which_sender() -> None:
    lists = ListMap.of("Default", {"+18005550100": "Marketing", "+18005550111": "Marketing"})
    assert lists.list_for("+18005550100") == "Marketing"
    assert lists.list_for("+18005550199") == "Default"
    assert lists.list_for("*") == "Default"
    assert lists.in_use == ("Default", "Marketing")
    assert lists.lists_to_write("*") == ("Default", "Marketing")
    assert lists.lists_to_write("+18005550199") == ("Default",)
    assert lists.senders_of("Marketing") == ("+18005550100", "+18005550111")
    assert lists.senders_of("Default") == ("*",)
    assert lists.plan(None) == (
        ("Default", ("*",)),
        ("Marketing", ("+18005550100", "+18005550111")),
    )
    assert lists.plan("+18005550199") == (("Default", ("+18005550199",)),)


def test_the_wildcard_entry_names_the_default_list() -> None:
    lists = ListMap.of("Default", {"*": "Everyone", "+18005550100": "Everyone"})
    assert lists.default == "Everyone"
    assert lists.in_use == ("Everyone",)
    assert lists.senders_of("Everyone") == ("+18005550100", "*")
    assert lists.setting_of("Everyone") == "sender_lists"
    assert ListMap.of("Mine", {}).setting_of("Mine") == "opt_out_list"
