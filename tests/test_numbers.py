"""Numbers: E.164 in and out, clear reasons for bad input, countries."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from optouts import InvalidNumber
from optouts._numbers import _country_by_prefix, country_of, is_e164, normalize, normalize_sender


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+15555550101", None, "+15555550101"),
        ("+1 (202) 555-0101", None, "+12025550101"),
        ("  +44 20 7946 0958 ", None, "+442079460958"),
        ("0044 20 7946 0958", None, "+442079460958"),
        ("(202) 555-0101", "US", "+12025550101"),
        ("020 7946 0958", "GB", "+442079460958"),
        ("+4915123456789", None, "+4915123456789"),
    ],
)
def test_formats_become_e164(raw: str, region: str | None, expected: str) -> None:
    assert normalize(raw, region) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("not-a-number", "not a phone number"),
        ("", "empty"),
        ("   ", "empty"),
        ("+1555", "too short"),
        ("+1202555010199999", "too long"),
        ("2025550101", "no country code"),
        ("+999123456", "country"),
        (15555550101, "expected a string"),
        (None, "expected a string"),
    ],
)
def test_bad_input_says_why(raw: object, reason: str) -> None:
    with pytest.raises(InvalidNumber) as raised:
        normalize(raw)
    assert reason in raised.value.reason
    assert raised.value.value == raw


def test_fast_path_rejects_non_ascii_digits() -> None:
    """Arabic-Indic digits pass str.isdigit(); they must not pass as E.164."""
    assert not is_e164("+١٢٠٢٥٥٥٠١٠١")
    assert not is_e164("+012025550101")
    assert not is_e164("+")


@given(st.text(max_size=20))
def test_any_text_is_either_e164_or_refused(text: str) -> None:
    try:
        number = normalize(text)
    except InvalidNumber as exc:
        assert exc.reason  # noqa: PT017 - either outcome is checked
    else:
        assert is_e164(number)


@st.composite
def real_numbers(draw: st.DrawFn) -> phonenumbers.PhoneNumber:
    region = draw(st.sampled_from(["US", "CA", "GB", "DE", "FR", "IN", "BR", "AU", "JP", "MX"]))
    kind = draw(st.sampled_from([phonenumbers.PhoneNumberType.MOBILE, None]))
    example = (
        phonenumbers.example_number_for_type(region, kind)
        if kind is not None
        else phonenumbers.example_number(region)
    )
    assert example is not None
    return example


@given(real_numbers(), st.sampled_from(["e164", "international", "national"]))
def test_every_format_of_a_number_normalizes_alike(
    number: phonenumbers.PhoneNumber, style: str
) -> None:
    expected = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    region = phonenumbers.region_code_for_number(number)
    formats = {
        "e164": phonenumbers.PhoneNumberFormat.E164,
        "international": phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        "national": phonenumbers.PhoneNumberFormat.NATIONAL,
    }
    written = phonenumbers.format_number(number, formats[style])
    assert normalize(written, region if style == "national" else None) == expected


@pytest.mark.parametrize(
    ("sender", "expected"),
    [("*", "*"), ("12345", "12345"), (" 45678 ", "45678"), ("+1 800 555 0100", "+18005550100")],
)
def test_senders_may_be_short_codes_or_the_wildcard(sender: str, expected: str) -> None:
    assert normalize_sender(sender) == expected


@pytest.mark.parametrize("sender", ["12", "123456789", "**", "CONTOSO", ""])
def test_bad_senders_are_refused(sender: str) -> None:
    with pytest.raises(InvalidNumber, match="not a sender"):
        normalize_sender(sender)


@pytest.mark.parametrize(
    ("number", "country"),
    [
        ("+12025550101", "US"),
        ("+14165550101", "CA"),
        ("+18765550101", "JM"),
        ("+15555550101", "US"),
        ("+442079460958", "GB"),
        ("+447400123456", "GB"),
        ("+447781123456", "GG"),
        ("+4915123456789", "DE"),
        ("+79123456789", "RU"),
        ("+77012345678", "KZ"),
        ("+80012345678", None),
    ],
)
def test_country_of(number: str, country: str | None) -> None:
    assert country_of(number) == country


def test_the_country_of_an_area_code_does_not_depend_on_the_first_number_seen() -> None:
    # phonenumbers places this toll-free number in DO; the code +1 800 itself is US
    _country_by_prefix.pop("+1800", None)
    assert country_of("+18001049746") == "US"
    assert country_of("+18004008599") == "US"


@pytest.mark.parametrize(
    "huge",
    [
        pytest.param("+1" + "2" * 5_000_000, id="long E.164"),
        pytest.param("\x1b[31m" * 1_000_000, id="escapes"),
        pytest.param(b"+1" * 2_500_000, id="bytes"),
    ],
)
def test_a_5_mb_value_makes_a_short_message(huge: object) -> None:
    for check in (normalize, normalize_sender):
        with pytest.raises(InvalidNumber) as raised:
            check(huge)
        assert raised.value.value is huge  # kept whole for the caller
        assert len(str(raised.value)) < 300
        assert "5,000,00" in str(raised.value)  # says how long it was
