"""A throwaway vendor for client tests: a provider plugin and a scriptable HTTP backend.

The backend speaks a made-up JSON API through ``httpx.MockTransport``; tests queue faults
on it and read back what it received, so every client behaviour is observed on the wire.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import attrs
import httpx

import optouts
from optouts import (
    AuthenticationError,
    Capability,
    Exchange,
    Outcome,
    Page,
    ProviderError,
    RateLimited,
    Results,
    Setting,
    Settings,
    StatusFilter,
)

BASE_URL = "https://vendor.test"
KEY = "k3y-that-must-never-show"


class FakeVendor(optouts.Provider):
    """Adds, checks and lists; cannot remove (so the unsupported path is exercised)."""

    name: ClassVar[str] = "fakevendor"
    capabilities: ClassVar[frozenset[Capability]] = frozenset(
        {Capability.ADD, Capability.CHECK, Capability.LIST}
    )
    max_batch: ClassVar[int] = 3
    max_page_size: ClassVar[int] = 50
    settings: ClassVar[tuple[Setting, ...]] = (
        Setting("key", "API key", required=True, secret=True),
        Setting("url", "base URL", default=BASE_URL),
    )
    hints: ClassVar[dict[Capability, str]] = {Capability.REMOVE: "remove it in the vendor console"}

    def __init__(self, key: str, url: str) -> None:
        self._key = key
        self.url = url

    @classmethod
    def from_settings(cls, settings: Settings) -> FakeVendor:
        return cls(settings["key"].reveal(), settings["url"])

    def __repr__(self) -> str:
        return f"<FakeVendor url={self.url!r}>"

    def _post(self, path: str, body: dict[str, Any]) -> httpx.Request:
        return httpx.Request(
            "POST", f"{self.url}{path}", json=body, headers={"x-api-key": self._key}
        )

    def add(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        response = yield self._post("/add", {"from": sender, "to": list(recipients)})
        return _outcomes(_body(response), opted_out=True)

    def check(self, sender: str, recipients: Sequence[str]) -> Exchange[Results]:
        response = yield self._post("/check", {"from": sender, "to": list(recipients)})
        return _outcomes(_body(response), opted_out=None)

    def list_page(
        self, sender: str | None, status: StatusFilter, page_size: int, cursor: str | None
    ) -> Exchange[Page]:
        response = yield self._post("/list", {"from": sender, "size": page_size, "cursor": cursor})
        body = _body(response)
        records = [
            optouts.OptOut(item["from"], item["to"], optouts.Status.OPTED_OUT, provider=self.name)
            for item in body["records"]
        ]
        return Page(records, body.get("next"))


def _body(response: httpx.Response | None) -> Any:
    assert response is not None
    if response.status_code == 401:
        raise AuthenticationError("key refused", provider="fakevendor", status_code=401)
    if response.status_code == 429:
        after = response.headers.get("retry-after")
        raise RateLimited("slow down", retry_after=float(after) if after else None)
    if response.status_code >= 400:
        raise ProviderError(
            "vendor failed", provider="fakevendor", status_code=response.status_code
        )
    return response.json()


def _outcomes(body: Any, opted_out: bool | None) -> Results:
    results: dict[str, Outcome] = {}
    for number, item in body["results"].items():
        if item["status"] >= 300:
            results[number] = Outcome.failure(item.get("error", "failed"), item["status"])
        elif opted_out is not None:
            results[number] = Outcome(True, opted_out, status_code=item["status"])
        elif "opted_out" in item:
            results[number] = Outcome(True, item["opted_out"], status_code=item["status"])
        else:
            results[number] = Outcome.failure("vendor did not say", item["status"])
    return results


@attrs.define
class Backend:
    """The vendor's side: state, a log of request bodies, and faults to play in order."""

    opted_out: set[tuple[str, str]] = attrs.Factory(set)
    received: list[tuple[str, dict[str, Any]]] = attrs.Factory(list)
    faults: list[Callable[[dict[str, Any]], httpx.Response | None]] = attrs.Factory(list)
    silent: set[str] = attrs.Factory(set)
    """Recipients the vendor leaves out of its answers."""
    unflagged: set[str] = attrs.Factory(set)
    """Recipients whose check answer carries no opted_out flag."""
    item_errors: dict[str, list[int]] = attrs.Factory(dict)
    """Per recipient, statuses to answer with before answering normally."""
    pages: list[dict[str, Any]] | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.headers["x-api-key"] == KEY
        body = json.loads(request.content)
        path = request.url.path
        self.received.append((path, body))
        if self.faults:
            fault = self.faults.pop(0)(body)
            if fault is not None:
                return fault
        if path == "/list":
            assert self.pages is not None
            return httpx.Response(200, json=self.pages[int(body["cursor"] or 0)])
        results: dict[str, dict[str, Any]] = {}
        for number in body["to"]:
            if number in self.silent:
                continue
            pending = self.item_errors.get(number)
            if pending:
                results[number] = {"status": pending.pop(0), "error": "item failed"}
                continue
            pair = (body["from"], number)
            if path == "/add":
                self.opted_out.add(pair)
            item: dict[str, Any] = {"status": 200}
            if number not in self.unflagged:
                item["opted_out"] = pair in self.opted_out
            results[number] = item
        return httpx.Response(200, json={"results": results})

    def requests_to(self, path: str) -> list[dict[str, Any]]:
        return [body for sent, body in self.received if sent == path]


def status(
    code: int, headers: dict[str, str] | None = None
) -> Callable[[dict[str, Any]], httpx.Response]:
    return lambda body: httpx.Response(code, headers=headers, json={"error": "x"})


def disconnect(body: dict[str, Any]) -> httpx.Response:
    raise httpx.ConnectError("connection refused")


class Plugin:
    """What a third-party distribution's entry point would provide."""

    @optouts.hookimpl
    def register_providers(self, register: Callable[[type[optouts.Provider]], None]) -> None:
        register(FakeVendor)
