"""Phone numbers in, E.164 out.

Bulk checks push millions of numbers through here, so input that is already E.164 takes a
fast path (a regular expression and a table of possible lengths per country calling code,
built lazily from phonenumbers' metadata); everything else goes through phonenumbers.

A number is accepted when it is *possible* for its country (right length, known calling
code), not only when it is assigned: vendors answer unassigned numbers per recipient, and
fictional test ranges such as +1 555 01xx must stay usable.
"""

from __future__ import annotations

import functools
import operator
import re
from collections.abc import Callable

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, ValidationResult

from ._errors import InvalidNumber
from ._regions import place_all, placer

__all__ = [
    "BY_NUMBER",
    "WILDCARD",
    "all_e164",
    "countries_of",
    "country_of",
    "e164_flags",
    "is_e164",
    "normalize",
    "normalize_sender",
    "prefix_facts",
]

WILDCARD = "*"
"""The sender that stands for every number of the account (RingCentral's ``from=*``)."""

_SHORT_CODE = re.compile(r"[0-9]{3,8}")
_REASONS = {
    ValidationResult.INVALID_COUNTRY_CODE: "unknown country calling code",
    ValidationResult.TOO_SHORT: "too short for its country",
    ValidationResult.TOO_LONG: "too long for its country",
    ValidationResult.INVALID_LENGTH: "wrong length for its country",
}
_NON_GEOGRAPHIC = "001"


@functools.cache
def _possible_lengths(calling_code: str) -> frozenset[int]:
    """National-number lengths any region of this calling code allows (empty: unknown code)."""
    lengths: set[int] = set()
    for region in COUNTRY_CODE_TO_REGION_CODE.get(int(calling_code), ()):
        if region == _NON_GEOGRAPHIC:
            metadata = PhoneMetadata.metadata_for_nongeo_region(int(calling_code))
        else:
            metadata = PhoneMetadata.metadata_for_region(region)
        if metadata is not None and metadata.general_desc is not None:
            lengths.update(metadata.general_desc.possible_length or ())
    return frozenset(lengths)


def _calling_code(digits: str) -> str | None:
    """Calling codes are prefix-free, so the first known prefix of 1–3 digits is the one."""
    for size in (1, 2, 3):
        if digits[:size].isdigit() and int(digits[:size]) in COUNTRY_CODE_TO_REGION_CODE:
            return digits[:size]
    return None


class _LengthsByPrefix(dict[str, frozenset[int]]):
    """Allowed lengths of a whole E.164 string by its first four characters ("+" and 3
    digits, or fewer for a shorter string).

    Three digits always contain the calling code, so the answer depends on the prefix
    alone: after the first number of a prefix, the check is one dictionary lookup (made
    from C when ``e164_flags`` maps it over a list). The checks look up only strings
    shaped as E.164, so the table stays small (at most a few thousand prefixes).
    """

    def __missing__(self, prefix: str) -> frozenset[int]:
        code = _calling_code(prefix[1:])
        national = _possible_lengths(code) if code else frozenset()
        lengths = frozenset(1 + len(code) + n for n in national) if code else frozenset()
        self[prefix] = lengths
        return lengths


_LENGTHS = _LengthsByPrefix()
_PREFIX = operator.itemgetter(slice(0, 4))
_HEAD = operator.itemgetter(slice(0, 5))
_SHAPED = re.compile(r"\+[1-9][0-9]*").fullmatch
"""A plus, then ASCII digits (not other scripts' digits) not starting with 0."""


def is_e164(value: str) -> bool:
    """True for a string already in E.164 with a possible length for its country."""
    return _SHAPED(value) is not None and len(value) in _LENGTHS[value[:4]]


def all_e164(values: list[str]) -> bool:
    """Whether ``is_e164`` holds for every one of ``values`` (strings all).

    For a bulk call's recipients: the values as lines of one string, and one regular
    expression that removes every line holding an E.164 number; nothing may be left. No
    Python code runs per number. A value holding a line break of its own makes the count
    of lines wrong, and so the answer False.
    """
    lines = "\n".join(values) + "\n" if values else ""
    return lines.count("\n") == len(values) and not _number_line().sub("", lines)


def e164_flags(values: list[str]) -> list[bool]:
    """``is_e164`` of each of ``values`` (strings all), with no Python code run per number
    (a window holding some other input; ``all_e164`` is cheaper when all are E.164)."""
    if all(map(_SHAPED, values)):  # the matches are dropped at once: a list of them
        lengths = map(_LENGTHS.__getitem__, map(_PREFIX, values))  # would keep the GC busy
        return list(map(operator.contains, lengths, map(len, values)))
    return [is_e164(value) for value in values]


@functools.cache
def _number_line() -> re.Pattern[str]:
    """A plus, a calling code and a possible count of ASCII digits for it, and a line
    break: ``is_e164`` as a pattern, built once (from every code's metadata, some 50 ms).

    Calling codes are prefix-free, so they are laid out as a tree of digits and at most
    one branch can match. (Removing matches, rather than matching all lines with one
    repetition, keeps nothing for backtracking and needs no Python 3.11 possessive.)
    """
    codes = (str(code) for code in COUNTRY_CODE_TO_REGION_CODE)
    known = {code: lengths for code in codes if (lengths := _possible_lengths(code))}
    return re.compile(r"\+" + _code_tree(known) + r"\n")


def _code_tree(codes: dict[str, frozenset[int]]) -> str:
    """An alternation over calling codes (keyed by their digits still to match), each
    followed by the national lengths it allows."""
    by_digit: dict[str, dict[str, frozenset[int]]] = {}
    for code, lengths in sorted(codes.items()):
        by_digit.setdefault(code[:1], {})[code[1:]] = lengths
    branches = []
    for digit, rest in by_digit.items():
        # a code ending here wins over longer ones, as the shortest known prefix does in
        # _calling_code (there are none: the codes are prefix-free)
        tail = _lengths_pattern(rest[""]) if "" in rest else _code_tree(rest)
        branches.append(digit + tail)
    return "(?:" + "|".join(branches) + ")"


def _lengths_pattern(lengths: frozenset[int]) -> str:
    runs: list[tuple[int, int]] = []
    for length in sorted(lengths):
        if runs and runs[-1][1] == length - 1:
            runs[-1] = (runs[-1][0], length)
        else:
            runs.append((length, length))
    counts = (f"{low}" if low == high else f"{low},{high}" for low, high in runs)
    return "(?:" + "|".join(f"[0-9]{{{count}}}" for count in counts) + ")"


def normalize(value: object, default_region: str | None = None) -> str:
    """Return ``value`` as E.164, or raise InvalidNumber saying why not.

    ``default_region`` (ISO code such as "US") lets national formats through.
    """
    if isinstance(value, str) and is_e164(value):
        return value
    return _normalize_slow(value, default_region)


def _normalize_slow(value: object, default_region: str | None) -> str:
    if not isinstance(value, str):
        raise InvalidNumber(value, f"expected a string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise InvalidNumber(value, "empty")
    if not text.startswith("+") and default_region is None:
        if text.startswith("00"):
            text = "+" + text[2:]
        elif any(ch.isdigit() for ch in text):
            raise InvalidNumber(
                value,
                "no country code: write it in E.164 (like +15555550123) or set default_region",
            )
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidNumber(value, f"not a phone number ({_parse_reason(exc)})") from None
    verdict = phonenumbers.is_possible_number_with_reason(parsed)
    if verdict not in (ValidationResult.IS_POSSIBLE, ValidationResult.IS_POSSIBLE_LOCAL_ONLY):
        raise InvalidNumber(value, _REASONS.get(verdict, "not a possible number"))
    if verdict == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
        raise InvalidNumber(value, "a local number without its area code")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _parse_reason(exc: phonenumbers.NumberParseException) -> str:
    reasons = {
        phonenumbers.NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
        phonenumbers.NumberParseException.NOT_A_NUMBER: "no digits in the right places",
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
        phonenumbers.NumberParseException.TOO_SHORT_NSN: "too short",
        phonenumbers.NumberParseException.TOO_LONG: "too long",
    }
    return reasons.get(exc.error_type, "unparseable")


def normalize_sender(value: object, default_region: str | None = None) -> str:
    """A sender is E.164, a short code (3–8 digits), or ``*`` for every number of the account."""
    if isinstance(value, str):
        text = value.strip()
        if text == WILDCARD or _SHORT_CODE.fullmatch(text):
            return text
    try:
        return normalize(value, default_region)
    except InvalidNumber as exc:
        raise InvalidNumber(
            value, f"not a sender: {exc.reason}; use E.164, a short code or *"
        ) from None


_UNPLACED = "?"
_country_by_prefix: dict[str, str | None] = {}
"""The country of every number of a prefix (the first five characters), where it decides."""
_shared_by_prefix: dict[str, tuple[Callable[[str], str | None], int, str]] = {}
"""Where it does not (+44, +7 …): the code's placer, its calling code, and its main region."""

BY_NUMBER = "+"
"""``prefix_facts``'s country where the prefix does not decide it: ask ``country_of``."""


def country_of(number: str) -> str | None:
    """ISO 3166 code of an E.164 number's country, or None when the number has none.

    Where a calling code serves one region, that region. For the North American plan the
    area code decides, so answers are cached per "+1" and area code; for other shared codes
    (+44, +7, ...) the whole number does, by phonenumbers' rule (``_regions``). A number
    phonenumbers cannot place gets its calling code's main region (``+1 555…`` is "US").
    """
    prefix = number[:5]
    cached = _country_by_prefix.get(prefix, _UNPLACED)
    if cached != _UNPLACED:
        return cached
    shared = _shared_by_prefix.get(prefix)
    if shared is None:
        code = _calling_code(number[1:]) if number.startswith("+") else None
        if code is None:
            return None
        regions = COUNTRY_CODE_TO_REGION_CODE[int(code)]
        if len(regions) == 1 or code == "1":
            country: str | None = _nanp_region(number) if code == "1" else regions[0]
            if country == _NON_GEOGRAPHIC:
                country = None
            _country_by_prefix[prefix] = country
            return country
        shared = _shared_by_prefix[prefix] = (placer(int(code)), int(code), regions[0])
    place, code_number, main = shared
    return place(number[len(str(code_number)) + 1 :]) or main


def countries_of(numbers: list[str]) -> list[str | None]:
    """``country_of`` of each of ``numbers`` (E.164 strings): in bulk where all are of
    prefixes whose whole number decides, of one calling code (a UK file), else one by one."""
    heads = set(map(_HEAD, numbers))
    shared = {_shared_by_prefix.get(head) for head in heads}
    if len(shared) != 1 or None in shared:
        return list(map(country_of, numbers))
    _, code, main = shared.pop()  # type: ignore[misc]
    start = len(str(code)) + 1
    return place_all(code, list(map(operator.itemgetter(slice(start, None)), numbers)), main)


def _nanp_region(number: str) -> str:
    """The region of a +1 number's area code, asked with a typical number of that code.

    Never with the number itself: the answer is cached for the whole area code, and
    phonenumbers places some numbers of shared codes elsewhere (a few +1 800 numbers in
    the Dominican Republic), so the first number seen would decide for all that follow.
    """
    return _region_by_phonenumbers(f"{number[:5]}2345678", "US")


def _region_by_phonenumbers(number: str, fallback: str) -> str:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return fallback
    return phonenumbers.region_code_for_number(parsed) or fallback


def prefix_facts(number: str) -> tuple[frozenset[int], str | None]:
    """What all E.164 numbers sharing ``number``'s first five characters have in common.

    The allowed lengths and the country, for callers that validate millions of numbers
    against a dictionary of their own; the country is ``BY_NUMBER`` where it needs more
    digits (+44…): ``country_of`` each number.
    """
    country = country_of(number)
    if number[:5] in _shared_by_prefix:
        country = BY_NUMBER
    return _LENGTHS[number[:4]], country
