"""Who owns the outbox's leases: the same instance after a restart, never two live ones.

A service killed with ``kill -9`` and started again is the same owner in the ledger, so it
sends at once instead of waiting for its own lease to run out; two processes running side
by side are two owners, so only one of them sends to a target.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest

import optouts
from optouts.server._identity import Identity
from test_outbox import FAST, S1, Instance, Vendors, all_told, numbers, stops, until

LEASE = 30.0
"""Long: a test that passes took the lease back, it did not wait for it."""


@pytest.fixture
def locks(tmp_path: Path) -> Path:
    return tmp_path / "locks"


@pytest.fixture
async def opened() -> AsyncIterator[list[Instance]]:
    made: list[Instance] = []
    yield made
    for instance in made:
        await instance.close()


def test_one_process_holds_an_owner_and_a_second_beside_it_gets_another(
    locks: Path, database: str
) -> None:
    first = Identity.claim(database, "serve", folder=locks, host="host-a")
    second = Identity.claim(database, "serve", folder=locks, host="host-a")
    assert (first.owner, second.owner) == ("host-a/serve/0", "host-a/serve/1")
    assert first.stable
    assert second.stable
    first.close()
    again = Identity.claim(database, "serve", folder=locks, host="host-a")
    assert again.owner == "host-a/serve/0"  # the one that was given up, not a third
    other_name = Identity.claim(database, "west", folder=locks, host="host-a")
    other_ledger = Identity.claim(database + "-2", "serve", folder=locks, host="host-a")
    assert other_name.owner == "host-a/west/0"
    assert other_ledger.owner == "host-a/serve/0"  # leases of another ledger: no clash
    for identity in (second, again, other_name, other_ledger):
        identity.close()


HOLDER = """
import sys, time
from pathlib import Path
from optouts.server._identity import Identity
identity = Identity.claim(sys.argv[1], "serve", folder=Path(sys.argv[2]), host="host-a")
print(identity.owner, flush=True)
time.sleep(60)
"""


def test_a_killed_process_leaves_its_owner_to_the_next(locks: Path, database: str) -> None:
    """The lock is the process's: ``kill -9`` frees it, and a live one keeps it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, database, str(locks)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "host-a/serve/0"
        beside = Identity.claim(database, "serve", folder=locks, host="host-a")
        assert beside.owner == "host-a/serve/1"  # it is alive: slot 0 is its own
        beside.close()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    restarted = Identity.claim(database, "serve", folder=locks, host="host-a")
    assert restarted.owner == "host-a/serve/0"
    restarted.close()


def test_without_a_folder_to_lock_in_the_owner_is_this_process_alone(
    tmp_path: Path, database: str, caplog: pytest.LogCaptureFixture
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    one = Identity.claim(database, "serve", folder=blocked / "locks", host="host-a")
    two = Identity.claim(database, "serve", folder=blocked / "locks", host="host-a")
    assert not one.stable
    assert one.owner != two.owner
    assert one.owner.startswith(f"host-a/serve/{os.getpid()}-")
    assert "waits for them to run out" in caplog.text


async def test_a_restarted_instance_takes_its_own_leases_back_at_once(
    locks: Path, database: str, opened: list[Instance]
) -> None:
    vendors = Vendors()
    timing = attrs.evolve(FAST, lease=LEASE)
    with optouts.Ledger.open(database) as ledger:
        identity = Identity.claim(database, "serve", folder=locks)
        killed = Instance(vendors, ledger, identity.owner, timing=timing).start()
        opened.append(killed)
        await until(lambda: all(h["leased"] for h in killed.outbox.health().values()))
        # killed: no stop, so nothing gives the leases up; the process's lock goes with it
        assert killed.task is not None
        killed.task.cancel()
        await asyncio.gather(killed.task, return_exceptions=True)
        identity.close()
        assert ledger.checkpoint("lease:outbox:azure") is not None  # still held, 30 s to go

        restarted_as = Identity.claim(database, "serve", folder=locks)
        assert restarted_as.owner == identity.owner
        restarted = Instance(vendors, ledger, restarted_as.owner, timing=timing).start()
        opened.append(restarted)
        pending = numbers(50)
        stops(ledger, S1, pending)
        restarted.outbox.wake()
        took = await until(all_told(ledger), timeout=10)
        assert took < LEASE / 10
        assert all(h["leased"] for h in restarted.outbox.health().values())
        assert restarted.azure_seen.sent.keys() == {(S1, n) for n in pending}
        await restarted.stop()
        restarted_as.close()


async def test_two_instances_side_by_side_never_both_hold_a_target(
    locks: Path, database: str, opened: list[Instance]
) -> None:
    vendors = Vendors()
    timing = attrs.evolve(FAST, lease=LEASE)
    with optouts.Ledger.open(database) as ledger_a, optouts.Ledger.open(database) as ledger_b:
        stops(ledger_a, S1, numbers(1))
        one = Identity.claim(database, "serve", folder=locks)
        two = Identity.claim(database, "serve", folder=locks)
        assert one.owner != two.owner
        a = Instance(vendors, ledger_a, one.owner, timing=timing).start()
        opened.append(a)
        await until(lambda: all(h["leased"] for h in a.outbox.health().values()))
        b = Instance(vendors, ledger_b, two.owner, timing=timing).start()
        opened.append(b)
        stops(ledger_b, S1, numbers(40, 556))
        b.outbox.wake()
        await until(all_told(ledger_a))
        started = time.monotonic()
        while time.monotonic() - started < 0.5:  # b keeps trying for the leases, in vain
            assert not any(h["leased"] for h in b.outbox.health().values())
            await asyncio.sleep(0.05)
        assert b.azure_seen.requests == b.rc_seen.requests == 0
        for instance in (a, b):
            await instance.stop()
        one.close()
        two.close()
