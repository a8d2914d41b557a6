"""The PostgreSQL test server, shared by the tests that need one.

It is ``OPTOUTS_TEST_POSTGRESQL_URL`` (a database the tests may create schemas in); each
test works in a fresh schema dropped afterwards. Without a reachable server tests skip,
saying why, except under CI (``CI`` set), where they fail: CI must not pass without them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

# Read at import: the autouse fixture in conftest clears OPTOUTS_* before every test.
POSTGRESQL_URL = os.environ.get("OPTOUTS_TEST_POSTGRESQL_URL", "").strip()
IN_CI = bool(os.environ.get("CI"))

_unreachable: list[str] = []


def postgresql_url() -> str:
    """The test server's URL, or skip (fail under CI) saying why there is none."""
    reason = _unreachable[0] if _unreachable else None
    if reason is None and not POSTGRESQL_URL:
        reason = "OPTOUTS_TEST_POSTGRESQL_URL is not set"
    if reason is None:
        try:
            import psycopg

            from optouts.ledger._postgres import mask_url

            try:
                psycopg.connect(POSTGRESQL_URL, connect_timeout=5).close()
            except psycopg.Error as error:
                detail = " ".join(str(error).split())[:200]
                reason = f"cannot connect to {mask_url(POSTGRESQL_URL)}: {detail}"
        except ImportError:
            reason = "psycopg is not installed (pip install 'optouts[postgresql]')"
        if reason is not None:
            _unreachable.append(reason)
    if reason is not None:
        message = (
            f"no PostgreSQL server for the tests: {reason}. Set OPTOUTS_TEST_POSTGRESQL_URL, "
            "e.g. postgresql://optouts:optouts@127.0.0.1:5432/optouts_test"
        )
        if IN_CI:
            pytest.fail(f"{message} (CI is set: a missing server fails)", pytrace=False)
        pytest.skip(message)
    return POSTGRESQL_URL


def with_search_path(url: str, schema: str) -> str:
    """``url`` connecting with ``schema`` first on the search path."""
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}options=-csearch_path%3D{schema}"


def admin_execute(sql: str, *params: object, url: str | None = None) -> list[tuple[Any, ...]]:
    """Run one statement on the test database (autocommit) and return its rows, if any."""
    import psycopg

    with psycopg.connect(url or postgresql_url(), autocommit=True) as db:
        cur = db.execute(sql, params or None)
        return cur.fetchall() if cur.description else []


@contextmanager
def fresh_schema() -> Iterator[tuple[str, str]]:
    """A new, empty schema on the test server: (URL using it, schema name); dropped after."""
    name = f"optouts_test_{uuid.uuid4().hex[:12]}"
    admin_execute(f'CREATE SCHEMA "{name}"')
    try:
        yield with_search_path(postgresql_url(), name), name
    finally:
        admin_execute(f'DROP SCHEMA "{name}" CASCADE')
