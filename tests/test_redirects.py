"""A vendor's redirect is never followed: it would carry credentials wherever it points.

The caller's ``httpx.Client`` may have ``follow_redirects=True`` (it is the caller's
client to configure); the runners still send each request once, and the provider sees
the 3xx as the vendor's answer.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

import httpx
import pytest

import optouts
from optouts import Capability, Exchange, Outcome, ProviderError, Results
from optouts.testing import AnyClient, blocking

SENDER = "+18005550100"
A = "+12025550101"
SECRET = "Bearer s3cret-token"


class SignedVendor(optouts.Provider):
    """Sends one authorised request per check; anything but a 200 fails the batch."""

    name: ClassVar[str] = "signed"
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.CHECK})

    def check(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        request = httpx.Request(
            "POST",
            "https://vendor.test/check",
            json=list(recipients),
            headers={"authorization": SECRET},
        )
        response = yield request
        assert response is not None
        if response.status_code != 200:
            raise ProviderError("refused", status_code=response.status_code, retryable=False)
        return dict.fromkeys(recipients, Outcome(True, False))


@pytest.fixture(params=["sync", "async"])
def setup(request: pytest.FixtureRequest) -> Iterator[tuple[AnyClient, list[httpx.Request]]]:
    seen: list[httpx.Request] = []

    def vendor(sent: httpx.Request) -> httpx.Response:
        seen.append(sent)
        if sent.url.host == "vendor.test":
            return httpx.Response(307, headers={"location": "http://evil.test/steal"})
        return httpx.Response(200, json={})

    transport = httpx.MockTransport(vendor)
    client: AnyClient
    if request.param == "sync":
        http = httpx.Client(transport=transport, follow_redirects=True)
        client = optouts.Client(SignedVendor(), http_client=http)
    else:
        ahttp = httpx.AsyncClient(transport=transport, follow_redirects=True)
        client = blocking(optouts.AsyncClient(SignedVendor(), http_client=ahttp))
    yield client, seen
    client.close()


def test_a_redirect_is_the_answer_never_followed(
    setup: tuple[AnyClient, list[httpx.Request]],
) -> None:
    client, seen = setup
    with pytest.raises(ProviderError, match="status=307"):
        client.check(SENDER, [A])
    assert [request.url.host for request in seen] == ["vendor.test"]
