"""Plugins use only public names: ``optouts``, ``optouts.plugin`` and the other public modules.

The in-tree providers are held to it by walking their source, so a private import slipping
in (``optouts._numbers``, ``optouts.ledger._base``) fails here, not in a later release.
"""

from __future__ import annotations

import ast
import inspect
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import optouts
import optouts.plugin
from optouts import ConfigurationError, Exchange, Note, RetryPolicy, Secret, Setting, Sleep
from optouts import Provider as BaseProvider

PROVIDERS = Path(__file__).resolve().parents[1] / "providers"


def _private(dotted: str) -> bool:
    """True for ``optouts.<...>._x``: a name below optouts with a leading underscore."""
    root, *rest = dotted.split(".")
    return root == "optouts" and any(
        part.startswith("_") and not (part.startswith("__") and part.endswith("__"))
        for part in rest
    )


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for an attribute chain on a plain name, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def private_uses(source: str) -> Iterator[tuple[int, str]]:
    """Line and name of each private optouts module or name ``source`` imports or reaches."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Attribute):
            names = [name] if (name := _dotted(node)) else []
        else:
            continue
        for name in names:
            if _private(name):
                yield node.lineno, name
                break


def provider_files() -> list[Path]:
    return sorted(PROVIDERS.rglob("*.py"))


def test_the_walk_sees_every_provider_and_its_tests() -> None:
    seen = {path.relative_to(PROVIDERS).parts[:2] for path in provider_files()}
    assert {("azure", "src"), ("azure", "tests")} <= seen
    assert {("ringcentral", "src"), ("ringcentral", "tests")} <= seen


def test_providers_import_no_private_optouts_module() -> None:
    found = [
        f"{path.relative_to(PROVIDERS.parent)}:{line}: {name}"
        for path in provider_files()
        for line, name in private_uses(path.read_text(encoding="utf-8"))
    ]
    assert not found, "plugins must use optouts.plugin or optouts, not:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "source",
    [
        "import optouts._numbers",
        "import optouts._numbers as numbers",
        "from optouts._numbers import WILDCARD",
        "from optouts import _plugins",
        "from optouts import Provider, _retry",
        "from optouts.ledger._base import LedgerStore",
        "from optouts.ledger import _base",
        "def f():\n    from optouts._config import ConfigFile",
        "import optouts\noptouts._plugins._manager = None",
    ],
)
def test_private_uses_are_found(source: str) -> None:
    assert list(private_uses(source))


@pytest.mark.parametrize(
    "source",
    [
        "import optouts",
        "from optouts import Provider, __version__",
        "from optouts.plugin import WILDCARD, country_of",
        "from optouts.testing import ProviderContract",
        "from optouts_ringcentral._emulator import Emulator",
        "from ._provider import RingCentralProvider",
        "import optouts\noptouts.plugin.run_exchange",
    ],
)
def test_public_uses_pass(source: str) -> None:
    assert not list(private_uses(source))


def test_plugin_names_are_sorted_importable_and_documented() -> None:
    names = optouts.plugin.__all__
    assert names == sorted(names)
    for name in names:
        value = getattr(optouts.plugin, name)
        assert name not in optouts.__all__, f"{name} is already public in optouts"
        if inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def _job() -> Exchange[str]:
    yield Sleep(2.5)
    yield Note("plan", "fast")
    reply = yield httpx.Request("GET", "https://vendor.test/ping")
    assert reply is not None
    return reply.text


def test_run_exchange_sends_with_auth_and_sleeps_through_the_given_sleep() -> None:
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(200, text="pong")

    slept: list[float] = []
    http = httpx.Client(transport=httpx.MockTransport(answer))
    auth = httpx.BasicAuth("user", "pass")
    assert optouts.plugin.run_exchange(_job(), http, auth, sleep=slept.append) == "pong"
    assert slept == [2.5]
    assert seen == ["Basic dXNlcjpwYXNz"]


def test_with_retry_sends_a_failed_exchange_again() -> None:
    answers = iter([httpx.Response(503), httpx.Response(200, text="ok")])
    http = httpx.Client(transport=httpx.MockTransport(lambda request: next(answers)))

    def start() -> Exchange[str]:
        reply = yield httpx.Request("GET", "https://vendor.test/ping")
        assert reply is not None
        if reply.status_code >= 500:
            raise optouts.ProviderError("try again", status_code=reply.status_code)
        return reply.text

    policy = RetryPolicy(attempts=2, backoff=0)
    job = optouts.plugin.with_retry(start, policy)
    assert optouts.plugin.run_exchange(job, http, sleep=lambda seconds: None) == "ok"


class _Vendor(BaseProvider):
    """A provider with one setting of each kind the resolution distinguishes."""

    name = "vendor"
    settings = (
        Setting("key", "API key", required=True, secret=True, env_aliases=("VENDOR_KEY",)),
        Setting("region", "region", default="eu"),
    )


def test_settings_for_reads_only_what_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPTOUTS_VENDOR_REGION", "us")
    settings = optouts.plugin.settings_for(_Vendor, environ={"VENDOR_KEY": "s3cret"})
    assert isinstance(settings["key"], Secret)
    assert settings["key"].reveal() == "s3cret"
    assert settings["region"] == "eu"
    assert "s3cret" not in repr(settings)
    assert optouts.plugin.settings_for(_Vendor, {"key": "k", "region": "ap"})["region"] == "ap"
    with pytest.raises(ConfigurationError, match="key"):
        optouts.plugin.settings_for(_Vendor)


def test_wildcard_and_country_of() -> None:
    assert optouts.plugin.WILDCARD == "*"
    assert optouts.plugin.country_of("+442071838750") == "GB"
