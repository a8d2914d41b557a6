"""Credentials travel over HTTPS, or over plain HTTP to this machine only."""

from __future__ import annotations

import pytest

from optouts import require_https


@pytest.mark.parametrize(
    "url",
    [
        "https://platform.ringcentral.com",
        "https://res.communication.azure.com/",
        "HTTPS://EXAMPLE.COM",
        "http://127.0.0.1:8080",
        "http://127.3.4.5",
        "http://localhost:9000/path",
        "http://LOCALHOST",
        "http://[::1]:8080",
    ],
)
def test_accepted(url: str) -> None:
    assert require_https(url) == url


@pytest.mark.parametrize(
    "url",
    [
        "http://platform.ringcentral.com",
        "http://10.0.0.5:8080",
        "http://192.168.1.2",
        "http://127.0.0.1.example.com",  # a name, not the address
        "http://localhost.example.com",
        "http://[::2]",
        "http://0.0.0.0:8080",
    ],
)
def test_plain_http_off_this_machine_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="must use https://"):
        require_https(url)


@pytest.mark.parametrize("url", ["ftp://example.com", "example.com", "https://", "", "http://[::1"])
def test_not_an_https_url(url: str) -> None:
    with pytest.raises(ValueError, match=r"https:// URL|not a URL"):
        require_https(url)


def test_message_never_quotes_the_url() -> None:
    with pytest.raises(ValueError, match="https") as caught:
        require_https("http://user:hunter2@vendor.example")
    assert "hunter2" not in str(caught.value)
