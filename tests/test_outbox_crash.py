"""The outbox killed with ``kill -9`` in the middle of a fan-out, then started again.

The worker is this file run as a script: an ``Outbox`` over a SQLite ledger, talking HTTP to
both emulators, which this test serves on 127.0.0.1 behind ``Recorder``s that count every
(sender, recipient) an add carried. What a target confirmed before the kill is never sent
again; what was in flight may be (a second add changes nothing); everything arrives. The
restarted worker is the same instance (``Identity``), so it takes its leases back at once
instead of waiting for them to run out.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import optouts
from optouts.emulators import serve_in_thread
from optouts.ledger import Change
from optouts.server._courier import Backoff, Timing
from optouts.server._identity import Identity
from optouts.server._metrics import Metrics
from optouts.server._outbox import Outbox
from optouts_azure import AzureEmulator
from optouts_ringcentral import Emulator, RateLimit
from optouts_ringcentral.testing import make_provider
from test_outbox import Recorder

S1 = "+16505550100"
S2 = "+16505550111"
EACH = 2_500
LEASE = 15.0
"""Long: the restarted worker sends long before the killed one's lease could run out."""


def work(database: str, azure: str, ringcentral: str, locks: str) -> None:
    """The worker: carry the ledger to both vendors until SIGTERM (a clean stop), as the
    instance "serve" of this host, its lock in the folder ``locks``."""

    async def main() -> None:
        identity = Identity.claim(database, "serve", folder=Path(locks))
        owner = identity.owner
        print(f"owner {owner}", flush=True)
        with optouts.Ledger.open(database) as ledger:
            async with (
                optouts.AsyncClient("azure", connection_string=azure) as to_azure,
                optouts.AsyncClient(make_provider(server_url=ringcentral)) as to_rc,
            ):
                timing = Timing(rescan=0.1, lease=LEASE, lookback=0.5, backoff=Backoff(base=0.1))
                outbox = Outbox(
                    ledger, [to_azure, to_rc], metrics=Metrics(), owner=owner, timing=timing
                )
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, outbox.stop)
                await outbox.run()
        identity.close()

    asyncio.run(main())


class Worker:
    def __init__(self, database: str, azure: str, ringcentral: str, locks: Path, log: Path) -> None:
        self.log = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, __file__, database, azure, ringcentral, str(locks)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.log.close()

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(10)
        finally:
            self.log.close()


@pytest.fixture
def vendors() -> Iterator[tuple[AzureEmulator, Emulator, Recorder, Recorder, str, str]]:
    azure = AzureEmulator(latency=0.1)
    rc = Emulator(rate_limit=RateLimit(50, 60.0), latency=0.3)
    azure_seen, rc_seen = Recorder(azure), Recorder(rc)
    azure_url, stop_azure = serve_in_thread(azure_seen)
    rc_url, stop_rc = serve_in_thread(rc_seen)
    yield azure, rc, azure_seen, rc_seen, azure.connection_string(azure_url), rc_url
    stop_azure()
    stop_rc()


def confirmed(
    ledger: optouts.Ledger, target: str, everyone: set[tuple[str, str]]
) -> set[tuple[str, str]]:
    owed = {(s, f"+{r}") for s, _, recipients in ledger.pending(target) for r in recipients}
    return everyone - owed


def lease_owner(ledger: optouts.Ledger) -> str:
    """Who holds the Azure outbox's lease (its row reads "<expiry> <owner>")."""
    value = ledger.checkpoint("lease:outbox:azure")
    assert value is not None
    return value.partition(" ")[2]


def wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"still not so after {timeout}s"
        time.sleep(0.02)


def test_a_worker_killed_mid_fan_out_finishes_after_a_restart_sending_nothing_twice(
    database: str,
    tmp_path: Path,
    vendors: tuple[AzureEmulator, Emulator, Recorder, Recorder, str, str],
) -> None:
    azure, rc, azure_seen, rc_seen, azure_connection, rc_url = vendors
    first = [f"+1202555{i:04d}" for i in range(EACH)]
    second = [f"+1202556{i:04d}" for i in range(EACH)]
    everyone = {(S1, n) for n in first} | {(S2, n) for n in second}
    with optouts.Ledger.open(database) as ledger:
        now = optouts.Ledger.now()
        ledger.record([Change(S1, int(n[1:]), True, "inbound:test", now) for n in first])
        ledger.record([Change(S2, int(n[1:]), True, "inbound:test", now) for n in second])

        locks = tmp_path / "locks"
        killed = Worker(database, azure_connection, rc_url, locks, tmp_path / "first.log")
        wait_for(
            lambda: all(
                len(confirmed(ledger, target, everyone)) >= 1_000
                for target in ("azure", "ringcentral")
            ),
            timeout=20,
        )
        held_by = lease_owner(ledger)
        killed.kill()
        killed_at = time.monotonic()
        told = {target: confirmed(ledger, target, everyone) for target in ("azure", "ringcentral")}
        seen_before = {"azure": Counter(azure_seen.sent), "ringcentral": Counter(rc_seen.sent)}
        assert any(len(pairs) < len(everyone) for pairs in told.values())  # killed midway

        restarted = Worker(database, azure_connection, rc_url, locks, tmp_path / "second.log")
        wait_for(
            lambda: all(
                len(confirmed(ledger, target, everyone)) == len(everyone)
                for target in ("azure", "ringcentral")
            ),
            timeout=30,
        )
        assert lease_owner(ledger) == held_by  # the same owner, its lease taken back
        assert restarted.stop() == 0  # a clean stop, after its calls were answered
        assert ledger.checkpoint("lease:outbox:azure") is None

    for target, seen in (("azure", azure_seen), ("ringcentral", rc_seen)):
        after = seen.sent - seen_before[target]
        assert set(after), f"{target}: nothing left to send after the kill"
        assert not set(after) & told[target], f"{target}: sent again what it had confirmed"
        assert set(seen.sent) == everyone
        assert max(after.values()) == 1
        # The killed worker's lease, renewed every third of it, had a good 10 s to run: the
        # restarted worker sent long before, as the lease's owner.
        first_after = min(at for at in seen.times if at > killed_at)
        assert first_after < killed_at + LEASE * 2 / 3 - 0.05
    assert azure.opted_out(S1) == set(first)
    assert azure.opted_out(S2) == set(second)
    assert rc.records() == dict.fromkeys(everyone, "OptOut")
    log = (tmp_path / "second.log").read_text()
    assert "Traceback" not in log, log


if __name__ == "__main__":
    arguments = argparse.ArgumentParser(description="run the outbox until SIGTERM")
    for name in ("database", "azure", "ringcentral", "locks"):
        arguments.add_argument(name)
    given = arguments.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    work(given.database, given.azure, given.ringcentral, given.locks)
