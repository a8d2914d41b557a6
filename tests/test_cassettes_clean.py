"""No cassette in the repository may hold a credential: keys, tokens, JWTs or signatures.

Every provider under ``providers/`` records its cassettes under ``cassettes/<provider>``;
each must have some, and each file is scanned, AWS's SigV4 credentials (key ids, session
tokens, signatures, secrets) included.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CASSETTES = REPO / "cassettes"
PROVIDERS = REPO / "providers"
LEAKS = {
    "HMAC signature": re.compile(r"Signature=[A-Za-z0-9+/]{20,}={0,2}"),
    "bearer token": re.compile(r"[Bb]earer [A-Za-z0-9._~+/-]{20,}"),
    "OAuth token": re.compile(r'"(access_token|refresh_token)":\s*"[A-Za-z0-9._~+/-]{16,}"'),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    "access key": re.compile(r"accesskey=[A-Za-z0-9+/]{20,}", re.IGNORECASE),
    "Basic credentials": re.compile(r"Basic [A-Za-z0-9+/]{16,}={0,2}"),
    "AWS access key id": re.compile(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b"),
    "SigV4 credential scope": re.compile(r"Credential=[A-Za-z0-9]{16,}/"),
    "SigV4 signature": re.compile(r"Signature=[0-9a-f]{64}"),
    "AWS session token": re.compile(
        r"(?i)x-amz-security-token['\"]?:\s*-?\s*['\"]?(?!<scrubbed>)[A-Za-z0-9/+=]{16,}"
    ),
    "AWS secret access key": re.compile(r"(?i)(aws_)?secret_?access_?key['\"]?\s*[=:]\s*\S{20,}"),
}


def cassette_files() -> list[Path]:
    return sorted(path for path in CASSETTES.rglob("*") if path.is_file())


def test_there_are_cassettes_to_check() -> None:
    assert cassette_files(), f"no cassettes under {CASSETTES}"


@pytest.mark.parametrize(
    "provider", sorted(p.name for p in PROVIDERS.iterdir() if (p / "pyproject.toml").is_file())
)
def test_every_provider_has_cassettes_here(provider: str) -> None:
    assert any(path.is_file() for path in (CASSETTES / provider).rglob("*")), (
        f"providers/{provider} has no cassettes under cassettes/{provider}"
    )


@pytest.mark.parametrize(
    ("kind", "leak"),
    [
        ("AWS access key id", "      - AKIAOPTOUTSEMULATOR0"),
        (
            "SigV4 credential scope",
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLEEXAMPLE/20261201/us-east-1/sms-voice/aws4",
        ),
        ("SigV4 signature", "SignedHeaders=host;x-amz-date, Signature=" + "0a" * 32),
        ("AWS session token", "      x-amz-security-token:\n      - IQoJb3JpZ2luX2VjEXAMPLETOKEN"),
        ("AWS secret access key", "aws_secret_access_key = wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY"),
    ],
)
def test_the_check_catches_aws_credentials(kind: str, leak: str) -> None:
    assert LEAKS[kind].search(leak), kind
    assert LEAKS[kind].search("      x-amz-security-token:\n      - <scrubbed>") is None


@pytest.mark.parametrize("path", cassette_files(), ids=lambda p: str(p.relative_to(CASSETTES)))
def test_cassette_holds_no_secret(path: Path) -> None:
    text = path.read_text(encoding="utf-8", errors="replace")
    for kind, pattern in LEAKS.items():
        match = pattern.search(text)
        assert match is None, f"{kind} in {path.name}: {match.group(0)[:24]}..."
