"""Fixtures shared by the core tests."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from optouts.ledger import SQLiteLedger
from pgserver import fresh_schema


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's own optouts settings, config file or ledger."""
    for name in list(os.environ):
        if name.startswith("OPTOUTS_") and name != "OPTOUTS_LOAD_PLUGINS":
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # vendor sessions kept
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def database(tmp_path: Path) -> str:
    """Where a test's ledger goes; no file is there yet (the first write creates it)."""
    return str(tmp_path / "ledger.db")


@pytest.fixture
def empty_ledger(database: str) -> str:
    """``database`` holding an empty ledger, for tests that read first: reads need one."""
    store = SQLiteLedger(database)
    try:
        store.open(write=True)
    finally:
        store.close()
    return database


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The ``database`` of an empty ledger: a SQLite file, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield str(tmp_path / "ledger.db")
        return
    with fresh_schema() as (url, _):
        yield url
