"""An emulator served from a background thread leaves the caller's asyncio alone."""

from __future__ import annotations

import asyncio

import httpx

from optouts.emulators import serve_in_thread
from optouts_azure import AzureEmulator


def test_serving_in_a_thread_keeps_the_event_loop_policy() -> None:
    policy = asyncio.get_event_loop_policy()
    url, stop = serve_in_thread(AzureEmulator())
    try:
        assert httpx.get(f"{url}/").status_code == 404  # it serves
    finally:
        stop()
    assert asyncio.get_event_loop_policy() is policy
