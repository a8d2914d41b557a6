"""No cassette in the repository may hold a credential: keys, tokens, JWTs or signatures."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

CASSETTES = Path(__file__).resolve().parents[1] / "cassettes"
LEAKS = {
    "HMAC signature": re.compile(r"Signature=[A-Za-z0-9+/]{20,}={0,2}"),
    "bearer token": re.compile(r"[Bb]earer [A-Za-z0-9._~+/-]{20,}"),
    "OAuth token": re.compile(r'"(access_token|refresh_token)":\s*"[A-Za-z0-9._~+/-]{16,}"'),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "access key": re.compile(r"accesskey=[A-Za-z0-9+/]{20,}", re.IGNORECASE),
    "Basic credentials": re.compile(r"Basic [A-Za-z0-9+/]{16,}={0,2}"),
}


def cassette_files() -> list[Path]:
    return sorted(path for path in CASSETTES.rglob("*") if path.is_file())


def test_there_are_cassettes_to_check() -> None:
    assert cassette_files(), f"no cassettes under {CASSETTES}"


@pytest.mark.parametrize("path", cassette_files(), ids=lambda p: str(p.relative_to(CASSETTES)))
def test_cassette_holds_no_secret(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    for kind, pattern in LEAKS.items():
        match = pattern.search(text)
        assert match is None, f"{kind} in {path.name}: {match.group(0)[:24]}..."
