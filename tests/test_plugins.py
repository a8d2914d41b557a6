"""The provider registry: in-tree and entry-point plugins, restrictions, broken plugins."""

from __future__ import annotations

import importlib.metadata
import logging
from collections.abc import Iterator

import httpx
import pytest

import optouts
import optouts.inbound
from fakevendor import KEY, Backend, FakeVendor, Plugin
from optouts import Capability, ConfigurationError, _plugins
from optouts.ledger import LocalProvider


@pytest.fixture
def fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test builds the plugin manager anew (it reads the environment once)."""
    monkeypatch.setattr(_plugins, "_manager", None)
    monkeypatch.setattr(_plugins, "_broken", {})
    yield
    _plugins._manager = None


@pytest.fixture
def fake_plugin(fresh_registry: None) -> Iterator[None]:
    manager = _plugins.get_plugin_manager()
    manager.register(Plugin(), name="fakevendor-plugin")
    yield
    manager.unregister(name="fakevendor-plugin")


def test_a_registered_plugin_is_used_through_client(fake_plugin: None) -> None:
    backend = Backend()
    transport = httpx.MockTransport(backend)
    with optouts.Client(
        "fakevendor", key=KEY, http_client=httpx.Client(transport=transport)
    ) as client:
        assert isinstance(client.provider, FakeVendor)
        client.add("+18005550100", ["+12025550101"]).raise_for_failures()
        result = client.check("+18005550100", ["+12025550101", "+12025550102"])
    assert [item.opted_out for item in result] == [True, False]


def test_providers_lists_names_and_capabilities(fake_plugin: None) -> None:
    infos = {info.name: info for info in optouts.providers()}
    assert infos["local"].capabilities == frozenset(Capability)
    assert infos["fakevendor"].capabilities == {Capability.ADD, Capability.CHECK, Capability.LIST}
    assert infos["fakevendor"].max_batch == 3
    assert list(infos) == sorted(infos)


def test_two_providers_with_one_name_is_an_error(fresh_registry: None) -> None:
    class Impostor(LocalProvider):
        pass

    class ImpostorPlugin:
        @optouts.hookimpl
        def register_providers(self, register: object) -> None:
            register(Impostor)  # type: ignore[operator]

    _plugins.get_plugin_manager().register(ImpostorPlugin(), name="impostor")
    with pytest.raises(ConfigurationError, match="two plugins register a provider named 'local'"):
        optouts.providers()


def test_load_plugins_variable_restricts_entry_points(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPTOUTS_LOAD_PLUGINS", "")
    assert [info.name for info in optouts.providers()] == ["local"]


def test_load_plugins_variable_names_distributions(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = {ep.name for ep in importlib.metadata.entry_points(group="optouts")}
    if "azure" not in installed:
        pytest.skip("optouts-azure is not installed")
    monkeypatch.setenv("OPTOUTS_LOAD_PLUGINS", "optouts-azure")
    assert [info.name for info in optouts.providers()] == ["azure", "local"]


def test_a_broken_plugin_does_not_take_the_others_down(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = importlib.metadata.EntryPoint(
        name="broken", value="optouts_no_such_module", group="optouts"
    )
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [broken])
    with caplog.at_level(logging.WARNING, logger="optouts"):
        assert [info.name for info in optouts.providers()] == ["local"]
    assert "'broken' failed to load" in caplog.text
    with pytest.raises(ConfigurationError, match="plugin 'broken' failed to load"):
        optouts.Client("broken")


def test_unknown_provider_names_the_installed_ones() -> None:
    with pytest.raises(ConfigurationError, match="unknown provider 'nope'; installed: .*local"):
        optouts.Client("nope")


def test_load_plugins_variable_restricts_webhook_formats(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    installed = {ep.name for ep in importlib.metadata.entry_points(group="optouts")}
    if not {"azure", "ringcentral"} <= installed:
        pytest.skip("optouts-azure and optouts-ringcentral are not both installed")
    monkeypatch.setenv("OPTOUTS_LOAD_PLUGINS", "optouts-ringcentral")
    assert list(optouts.inbound.parsers()) == ["ringcentral"]
    with pytest.raises(ConfigurationError, match="install optouts-azure.*installed: ringcentral"):
        optouts.inbound.parse("azure", b"[]")


def test_an_unknown_webhook_format_names_the_plugins_that_failed(
    fresh_registry: None, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    broken = importlib.metadata.EntryPoint(
        name="broken", value="optouts_no_such_module", group="optouts"
    )
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [broken])
    with caplog.at_level(logging.WARNING, logger="optouts"):
        assert dict(optouts.inbound.parsers()) == {}
    with pytest.raises(ConfigurationError, match="installed: none; plugin 'broken' failed"):
        optouts.inbound.parse("acme", b"{}")
