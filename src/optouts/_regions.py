"""The region of a number whose calling code several regions share (+44, +7, +61 …).

phonenumbers answers this (``region_code_for_number``) after parsing the number again and
looking each pattern up by its text, some 40 µs a number: a UK-heavy import spent most of
its time there. ``placer`` applies phonenumbers' own rule to the same metadata with the
patterns compiled once into one regular expression a calling code. The rule, as phonenumbers
applies it to the code's regions in their order: a region with ``leading_digits`` takes a
number that starts with them; any other takes a number of a known type (the general
pattern matches, and so does one type's, each within that type's possible lengths). No
region: None. A national number starting with what phonenumbers might read as a national
prefix (0, or 1 after +1, 8 after +7 …) goes to phonenumbers itself, which may read past
it and place the rest. ``tests/test_regions.py`` holds the
two equal over every shared code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable

import phonenumbers
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

__all__ = ["place_all", "placer"]

_TYPES = (
    # after "mobile" (see _branch), fixed line first: most numbers are one of the two, and
    # any type's match will do, so the order changes nothing but the time
    "fixed_line",
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
)


@functools.cache
def placer(calling_code: int) -> Callable[[str], str | None]:
    """What places a national significant number of ``calling_code`` (the E.164 digits
    after it) in a region, as phonenumbers places it; None for no region."""
    match = _pattern(calling_code).match
    strippable = re.compile(_strippable(calling_code)).match
    regions = _REGIONS

    def place(national: str) -> str | None:
        if strippable(national):  # phonenumbers may read a national prefix off it: ask it
            return _by_phonenumbers(calling_code, national)
        placed = match(national)
        return None if placed is None else regions[placed.lastgroup or ""]

    return place


def place_all(calling_code: int, nationals: list[str], default: str | None) -> list[str | None]:
    """``placer(calling_code)`` of each of ``nationals`` (``default`` for no region), in
    bulk: the main region's pattern runs over them all as lines of one string, in C, and
    only the numbers it does not take are placed one by one. It goes first in phonenumbers'
    order, so what it takes is that region's whatever the others say."""
    place = placer(calling_code)
    lines = "\n".join(nationals)
    if lines.count("\n") != len(nationals) - 1 or _TAKEN in lines:  # a value holds one
        return [place(national) or default for national in nationals]
    main, taken = _main_lines(calling_code)
    marks = taken.sub(_TAKEN, lines).split("\n") if nationals else []
    return [main if mark == _TAKEN else place(mark) or default for mark in marks]


_TAKEN = "\x00"
"""What ``place_all`` writes over a line the main region takes (no number holds it)."""


@functools.cache
def _main_lines(calling_code: int) -> tuple[str | None, re.Pattern[str]]:
    """The code's main region, and its alternative of ``_pattern`` for whole lines (but
    those ``_strippable`` takes, which phonenumbers may read otherwise)."""
    for region in COUNTRY_CODE_TO_REGION_CODE.get(calling_code, ())[:1]:
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        branch = None if metadata is None else _branch(metadata, end="$")
        if branch is not None:
            strippable = _strippable(calling_code)
            return region, re.compile(f"^(?!{strippable})(?:{branch})$", re.MULTILINE)
    return None, re.compile("(?!)")


@functools.cache
def _strippable(calling_code: int) -> str:
    """What a national number may start with that phonenumbers' parse could take for a
    national prefix and read past (``0`` after +44, ``1`` after +1, ``8`` after +7, each
    region's ``national_prefix_for_parsing``), or any leading 0: such numbers are rare
    and go to phonenumbers itself, so the answer stays its answer."""
    parts = ["0"]
    for region in COUNTRY_CODE_TO_REGION_CODE.get(calling_code, ()):
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        if metadata is None:
            continue
        if metadata.national_prefix_for_parsing:
            parts.append(f"(?:{metadata.national_prefix_for_parsing})")
        if metadata.national_prefix:
            parts.append(re.escape(metadata.national_prefix))
    return "(?:" + "|".join(dict.fromkeys(parts)) + ")"


def _by_phonenumbers(calling_code: int, national: str) -> str | None:
    try:
        parsed = phonenumbers.parse(f"+{calling_code}{national}", None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(parsed)


_REGIONS: dict[str, str] = {}
"""Group name in a code's pattern -> region ("r_GB" -> "GB")."""


@functools.cache
def _pattern(calling_code: int) -> re.Pattern[str]:
    """One alternative a region, in the code's order: the first that matches is the one
    phonenumbers' loop would return. Each is anchored at the end, but for a region placed
    by ``leading_digits``, which phonenumbers matches as a prefix."""
    branches = []
    for region in COUNTRY_CODE_TO_REGION_CODE.get(calling_code, ()):
        metadata = PhoneMetadata.metadata_for_region(region.upper(), None)
        branch = None if metadata is None else _branch(metadata, end=r"\Z")
        if branch is not None:
            name = f"r_{region}"
            _REGIONS[name] = region
            branches.append(f"(?P<{name}>{branch})")
    return re.compile("|".join(branches) or "(?!)", re.DOTALL)


def _branch(metadata: PhoneMetadata, *, end: str) -> str | None:
    """A region's test as a pattern, each match anchored by ``end`` (the end of the string,
    or of a line)."""
    if metadata.leading_digits is not None:
        return f"(?:{metadata.leading_digits}).*"
    general = _desc(metadata.general_desc, end)
    names = ("mobile", *_TYPES) if not metadata.same_mobile_and_fixed_line_pattern else _TYPES
    types = [d for name in names if (d := _desc(getattr(metadata, name), end)) is not None]
    if general is None or not types:
        return None
    return f"(?={general})(?:{'|'.join(types)})"


def _desc(desc: object, end: str) -> str | None:
    """phonenumbers' ``_is_number_matching_desc`` for one description, as a pattern: the
    length among its possible lengths (when it lists any; -1 lists none), and the whole
    number matching its pattern. None: it matches nothing."""
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None
    listed = getattr(desc, "possible_length", None) or ()
    if not listed:
        return f"(?:{pattern}){end}"
    lengths = [n for n in listed if n >= 0]
    if not lengths:
        return None
    return f"(?=(?:{'|'.join(f'.{{{n}}}' for n in lengths)}){end})(?:{pattern}){end}"
