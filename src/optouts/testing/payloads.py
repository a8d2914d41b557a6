"""Hostile webhook bodies, for a provider's parser tests.

A webhook parser takes whatever a stranger posts. Its contract is narrow: parse, or raise
``InvalidPayload`` with a short message; never another exception, never a message that
repeats a megabyte of input. These helpers build the bodies that break parsers (a field
removed or replaced, JSON nested 100,000 deep, a 5,001-digit number) so each provider's
tests say only what is its own: its sample bodies and the fields worth replacing::

    BASES = {"v1": v1_notification()}
    FIELDS = [("v1", "body.to"), ("v1", "timestamp")]

    @given(st.sampled_from(FIELDS), any_json(PLAUSIBLE) | st.just(MISSING))
    def test_any_value_in_any_field(place, value):
        base, path = place
        each_parser_on([parse_notification], with_field(BASES[base], path, value))

``any_json`` needs hypothesis; the rest needs nothing beyond optouts.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .._errors import InvalidPayload

if TYPE_CHECKING:
    from hypothesis.strategies import SearchStrategy

__all__ = [
    "HUGE",
    "MISSING",
    "Parser",
    "any_json",
    "deeply_nested_bodies",
    "each_parser_on",
    "nested",
    "parses_or_refuses",
    "with_field",
]

Parser = Callable[[Any], object]
#: The longest refusal a parser may give: enough to name the field, never the whole body.
LONGEST_MESSAGE = 600


class _Missing:
    """In a field's place: the field left out."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class _Huge(int):
    """A number of 5,001 digits, past what ``repr`` of a plain int will show."""

    def __repr__(self) -> str:
        return "10**5000"


HUGE: int = _Huge(10**5000)


def nested(levels: int, leaf: Any = 0) -> Any:
    """A list nested ``levels`` deep, built without recursion."""
    value = leaf
    for _ in range(levels):
        value = [value]
    return value


def with_field(document: Any, path: str, value: Any) -> Any:
    """A copy of ``document`` with the field at dotted ``path`` set (``MISSING`` removes it).

    List indices are written as digits: ``body.records.0.to``.
    """
    copied = copy.deepcopy(document)
    target = copied
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    key: Any = int(last) if isinstance(target, list) else last
    if value is MISSING:
        if isinstance(target, list) or key in target:
            del target[key]
    else:
        target[key] = value
    return copied


def parses_or_refuses(parse: Parser, payload: Any) -> None:
    """Succeeds, or raises ``InvalidPayload`` with a short message; anything else fails."""
    try:
        parse(payload)
    except InvalidPayload as exc:
        message = str(exc)
    else:
        return
    assert len(message) < LONGEST_MESSAGE, message[:200]


def each_parser_on(parsers: Iterable[Parser], document: Any) -> None:
    """Each parser on ``document`` as decoded JSON, and again as its encoded bytes."""
    for parse in parsers:
        parses_or_refuses(parse, document)
        try:
            encoded = json.dumps(document).encode()
        except (ValueError, RecursionError):
            continue  # no JSON text holds it (a 5,000-digit number): decoded only
        parses_or_refuses(parse, encoded)


def deeply_nested_bodies(sample: Any) -> dict[str, bytes | str]:
    """Bodies nested 100,000 deep, by name: alone, as text, as objects, after ``sample``.

    Each must be refused as "nested too deeply" rather than exhaust the stack.
    """
    depth = 100_000
    after = json.dumps([sample])[:-1] + "," + "[" * depth + "]" * depth + "]"
    return {
        "bytes": b"[" * depth + b"]" * depth,
        "text": "[" * depth + "]" * depth,
        "objects": b'{"a":' * depth + b"1" + b"}" * depth,
        "after-an-event": after,
    }


def any_json(plausible: Sequence[object] = ()) -> SearchStrategy[Any]:
    """JSON-like values, mixed with ``plausible`` strings a parser looks for and ``HUGE``."""
    from hypothesis import strategies as st

    leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    keys = st.text(max_size=8)
    if plausible:
        leaves = leaves | st.sampled_from(list(plausible))
    names = [item for item in plausible if isinstance(item, str)]
    if names:
        keys = keys | st.sampled_from(names)
    return st.recursive(
        leaves | st.just(HUGE),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
        max_leaves=10,
    )
