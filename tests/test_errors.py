"""How errors show the values they name: cut short, and safe to print on a terminal."""

from __future__ import annotations

import pytest

from optouts import RecipientResult, RecipientsFailed
from optouts._errors import clip, printable, quote_value

HUGE = 5_000_000


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("1" * HUGE, id="digits"),
        pytest.param("\x1b" * HUGE, id="escapes"),
        pytest.param("\U0010ffff" * HUGE, id="widest escapes"),
        pytest.param(b"\xff" * HUGE, id="bytes"),
        pytest.param(list(range(HUGE // 10)), id="list"),
        pytest.param(10**5000, id="int too long to print"),
    ],
)
def test_a_quoted_value_is_cut_short_whatever_it_is(value: object) -> None:
    shown = quote_value(value)
    assert len(shown) < 160  # escapes may widen it to twice the 60 characters shown
    assert "\x1b" not in shown


def test_a_quoted_value_says_how_long_it_was_and_short_ones_are_plain_repr() -> None:
    assert quote_value("x" * 100) == f"'{'x' * 60}…' (100 characters)"
    assert quote_value(b"y" * 61) == f"b'{'y' * 60}…' (61 bytes)"
    assert quote_value("+1 202 555 0101") == "'+1 202 555 0101'"
    assert quote_value("tab\there") == "'tab\\there'"
    escapes = "\x1b]8;;http://evil\x07click\x1b]8;;\x07" * 2  # short, if wide once escaped
    assert quote_value(escapes) == repr(escapes)
    assert quote_value(None) == "None"


def test_clip_keeps_short_text_and_counts_long_text() -> None:
    assert clip("short") == "short"
    assert clip("z" * 70) == f"{'z' * 60}… (70 characters)"


def test_printable_escapes_what_a_terminal_would_act_on() -> None:
    link = "\x1b]8;;http://evil\x07click\x1b]8;;\x07"
    assert printable(link) == "\\x1b]8;;http://evil\\x07click\\x1b]8;;\\x07"
    assert printable("a\rb\nc\td\x9be\x7f") == "a\\rb\\nc\\td\\x9be\\x7f"
    assert printable("\u202egnp.exe") == "\\u202egnp.exe"
    assert printable("caf\udce9") == "caf\\udce9"
    assert printable("[bold red]café 📵 日本[/]") == "[bold red]café 📵 日本[/]"
    assert len(printable("\x1b" * HUGE)) < 5_000


def test_recipients_failed_names_the_first_failure_briefly() -> None:
    failed = RecipientsFailed([RecipientResult("9" * HUGE, ok=False, error="e" * HUGE)])
    assert len(str(failed)) < 400
    assert str(failed).startswith("1 recipient(s) failed; first: 999")


def test_a_deeply_nested_value_is_named_by_its_type() -> None:
    nested: list[object] = []
    for _ in range(100_000):
        nested = [nested]
    assert quote_value(nested) == "<list>"
