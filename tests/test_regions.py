"""``_regions.placer`` places numbers of shared calling codes exactly as phonenumbers does."""

from __future__ import annotations

import random

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

from optouts._numbers import BY_NUMBER, countries_of, country_of, prefix_facts
from optouts._regions import place_all, placer

SHARED = sorted(code for code, regions in COUNTRY_CODE_TO_REGION_CODE.items() if len(regions) > 1)
TYPES = (
    "fixed_line",
    "mobile",
    "toll_free",
    "premium_rate",
    "shared_cost",
    "personal_number",
    "voip",
    "pager",
    "uan",
    "voicemail",
)


def phonenumbers_region(code: int, national: str) -> str | None:
    """The reference: phonenumbers' own answer for the E.164 number."""
    try:
        parsed = phonenumbers.parse(f"+{code}{national}", None)
    except phonenumbers.NumberParseException:
        pytest.skip("phonenumbers cannot parse it either")
    assert str(parsed.country_code) == str(code)
    return phonenumbers.region_code_for_number(parsed)


def lengths(code: int) -> list[int]:
    found: set[int] = set()
    for region in COUNTRY_CODE_TO_REGION_CODE[code]:
        general = PhoneMetadata.metadata_for_region(region).general_desc  # type: ignore[union-attr]
        found.update(n for n in general.possible_length if n > 0)  # type: ignore[union-attr]
    return sorted(found)


def test_the_shared_codes_are_the_ones_expected() -> None:
    assert {1, 7, 44, 61} <= set(SHARED)


@pytest.mark.parametrize("code", SHARED)
def test_every_three_digit_prefix_of_every_length_places_as_phonenumbers_does(code: int) -> None:
    """A sweep: each national prefix of three digits, at each length the code allows, with
    completions drawn at random (seeded), so every range of every region is met."""
    draw = random.Random(code)
    checked = 0
    for length in lengths(code):
        for prefix in range(1000):
            head = f"{prefix:03d}"[:length]
            for _ in range(2):
                national = head + "".join(draw.choice("0123456789") for _ in range(length - 3))
                try:
                    parsed = phonenumbers.parse(f"+{code}{national}", None)
                except phonenumbers.NumberParseException:
                    continue
                expected = phonenumbers.region_code_for_number(parsed)
                assert placer(code)(national) == expected, f"+{code} {national}"
                checked += 1
    assert checked > 1000


@pytest.mark.parametrize("code", SHARED)
def test_each_regions_example_numbers_place_in_that_region(code: int) -> None:
    """The metadata's example numbers, for every type of every region of the code: the
    numbers that tell the regions apart (Guernsey's, Jersey's and Man's among the UK's)."""
    met: set[str] = set()
    for region in COUNTRY_CODE_TO_REGION_CODE[code]:
        metadata = PhoneMetadata.metadata_for_region(region)
        for name in TYPES:
            desc = getattr(metadata, name)
            example = desc.example_number if desc is not None else None
            if example:
                placed = placer(code)(example)
                assert placed == phonenumbers_region(code, example), f"+{code} {example}"
                met.add(str(placed))
    if code in (7, 44, 61):  # the examples reach beyond the main region
        assert len(met) > 1


@settings(max_examples=400, deadline=None)
@given(
    code=st.sampled_from(SHARED),
    national=st.text(alphabet="0123456789", min_size=2, max_size=14),
)
def test_any_digits_place_as_phonenumbers_does(code: int, national: str) -> None:
    assert placer(code)(national) == phonenumbers_region(code, national)


@pytest.mark.parametrize(
    "number",
    [
        "+447700900123",
        "+447781123456",
        "+447797123456",
        "+447624123456",
        "+79123456789",
        "+77012345678",
        "+61412345678",
        "+61891621234",
        "+61891641234",
        "+440000000000",  # no region's: the calling code's main region
    ],
)
def test_country_of_a_shared_code_reads_the_whole_number(number: str) -> None:
    """As phonenumbers places it (its metadata moves between releases), or the code's
    main region where it places it nowhere."""
    code = 7 if number.startswith("+7") else int(number[1:3])
    national = number[len(str(code)) + 1 :]
    expected = phonenumbers_region(code, national) or COUNTRY_CODE_TO_REGION_CODE[code][0]
    assert country_of(number) == expected
    lengths_allowed, per_prefix = prefix_facts(number)
    assert per_prefix == BY_NUMBER
    assert len(number) in lengths_allowed


@pytest.mark.parametrize("region", ["GG", "JE", "IM", "KZ", "CX", "CC"])
def test_the_small_regions_of_a_shared_code_are_found(region: str) -> None:
    """Each region's own example mobile number (from the installed metadata) is placed there."""
    metadata = PhoneMetadata.metadata_for_region(region)
    assert metadata is not None
    assert metadata.mobile is not None
    assert metadata.country_code is not None
    example = str(metadata.mobile.example_number)
    number = f"+{metadata.country_code}{example}"
    assert country_of(number) == phonenumbers_region(metadata.country_code, example)
    assert countries_of([number, number]) == [country_of(number)] * 2


def test_a_prefix_that_decides_is_still_cached_whole() -> None:
    assert prefix_facts("+33612345678") == (prefix_facts("+33699999999")[0], "FR")
    assert prefix_facts("+12025550123")[1] == "US"


def test_a_leading_zero_is_read_as_phonenumbers_reads_it() -> None:
    """phonenumbers takes a 0 after +44 as the national prefix and places what follows."""
    assert placer(44)("01624123456") == "IM"
    assert placer(39)("0669812345") == "VA"  # Italy's keep their 0: this one is Rome's
    assert placer(39)("0212345678") == "IT"
    # hypothesis found this one: phonenumbers reads a 1 after +1 as the national prefix
    assert placer(1)("12012000000") == phonenumbers_region(1, "12012000000")


@pytest.mark.parametrize("code", SHARED)
def test_placing_in_bulk_is_placing_each(code: int) -> None:
    """``place_all`` runs the main region's pattern over lines of one string: the same
    answers as one number at a time, in order, whatever the other regions' numbers."""
    draw = random.Random(-code)
    nationals = []
    for length in lengths(code):
        for prefix in range(0, 1000, 7):
            head = f"{prefix:03d}"[:length]
            nationals.append(head + "".join(draw.choice("0123456789") for _ in range(length - 3)))
    for region in COUNTRY_CODE_TO_REGION_CODE[code]:
        desc = PhoneMetadata.metadata_for_region(region).mobile  # type: ignore[union-attr]
        if desc is not None and desc.example_number:
            nationals.append(desc.example_number)
    draw.shuffle(nationals)
    expected = [placer(code)(national) or "ZZ" for national in nationals]
    assert place_all(code, nationals, "ZZ") == expected


@settings(max_examples=200, deadline=None)
@given(
    code=st.sampled_from(SHARED),
    nationals=st.lists(st.text(alphabet="0123456789\n\x00 ", max_size=14), max_size=8),
)
def test_placing_in_bulk_survives_any_text(code: int, nationals: list[str]) -> None:
    """A cell holding a line break (or the mark) cannot shift the answers of the others."""
    assert place_all(code, nationals, None) == [placer(code)(n) for n in nationals]


def test_countries_in_bulk_are_country_of_each() -> None:
    uk = ["+447700900123", "+447781123456", "+447797123456", "+447624123456", "+441481256789"]
    mixed = [*uk, "+79123456789", "+12025550123", "+33612345678"]
    for numbers in (uk, mixed, ["+77012345678", "+79123456789"], []):
        for number in numbers:
            country_of(number)  # as the import learns each prefix first
        assert countries_of(numbers) == [country_of(number) for number in numbers]
    assert len(set(countries_of(uk))) > 1  # Guernsey's, Jersey's or Man's among them
