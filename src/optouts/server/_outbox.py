"""The outbox of ``optouts serve``: every target told, durably.

The ledger is the outbox. What a target has not confirmed (``Ledger.pending``) is what it
still has to be told, so nothing is queued anywhere else: a route records a STOP in the
ledger and calls ``wake()``, and a worker carries it to every target through the service's
long-lived clients (one RingCentral session and one pacer for the process), confirming in
the ledger what each target accepted. A service killed with ``kill -9`` and restarted reads
what is still pending and sends it; what a target confirmed is not pending, so it is not
sent again. A state sent but not yet confirmed when the process died is sent once more:
add and remove set a state, so the second send changes nothing.

Targets progress independently, one ``Courier`` each (``_courier`` says how a round reads,
sends, paces, backs off and claims its target): a RingCentral pacing wait never delays
Azure. Several instances over one PostgreSQL (or SQLite) ledger share the work through a
lease per target in the ledger, so each pending state is sent by one of them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from .._client import AsyncClient
from ..ledger import Ledger
from ._courier import Courier, Timing
from ._metrics import Metrics

__all__ = ["Outbox"]

_LEDGER = "local"
"""The ledger's own provider: it holds every state already, so it is never a target."""


class Outbox:
    """Carries every state the ledger holds to each of ``targets`` until it is confirmed.

    ``owner`` names this instance in the ledger's leases (``_identity.Identity``: the same
    after a restart, so a restarted service takes its leases back at once): two live
    instances with the same owner would take each other for themselves. ``timing`` is for tests and
    tuning; the defaults are the service's.
    """

    def __init__(
        self,
        ledger: Ledger,
        targets: Sequence[AsyncClient],
        *,
        metrics: Metrics,
        owner: str,
        timing: Timing | None = None,
    ) -> None:
        if not isinstance(ledger, Ledger):
            raise TypeError(f"the outbox reads an optouts.Ledger, not {type(ledger).__name__}")
        if not owner:
            raise ValueError("the outbox needs an owner: the name of this instance")
        for target in targets:
            if not isinstance(target, AsyncClient):
                raise TypeError(f"outbox targets are open AsyncClients, not {target!r}")
        names = [target.provider.name for target in targets]
        if _LEDGER in names:
            raise ValueError("the ledger holds every state already: it is no outbox target")
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"one client per target: {', '.join(repeated)} given twice")
        self.owner = owner
        self._couriers = [
            Courier(ledger, target, metrics=metrics, owner=owner, timing=timing or Timing())
            for target in targets
        ]
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped = asyncio.Event()

    def wake(self) -> None:
        """Something new was recorded: send it soon. Many wakes before a round make one
        round. Safe from any thread."""
        self._on_loop(self._wake)

    async def run(self) -> None:
        """The worker: one loop per target. Returns after ``stop()``, once the calls in
        flight are answered and confirmed; cancelled, it leaves them (they stay pending)."""
        if self._loop is not None:
            raise RuntimeError("the outbox runs once")
        self._loop = asyncio.get_running_loop()
        loops = [asyncio.ensure_future(courier.run()) for courier in self._couriers]
        try:
            await asyncio.gather(*loops, self._stopped.wait())  # no targets: until stopped
        finally:
            for running in loops:
                running.cancel()
            await asyncio.gather(*loops, return_exceptions=True)

    def stop(self) -> None:
        """Send nothing new and give up the leases; ``run()`` returns when the calls in
        flight are done. Safe from any thread."""
        self._on_loop(self._stop)

    def health(self) -> dict[str, dict[str, object]]:
        """Per target: ``last_success`` (ISO 8601 UTC, the end of the last round the target
        accepted all it was sent, or had nothing to take), ``last_error`` and
        ``last_error_at`` (kept after a recovery), ``pending`` (states not confirmed: exact
        after each full read, counted between them; None before the first round or while
        another instance holds the target), ``skipped`` (pending states the target cannot
        hold), ``failures`` (rounds in a row that failed) and ``leased`` (whether this
        instance sends to the target)."""
        return {courier.name: courier.health() for courier in self._couriers}

    def _wake(self) -> None:
        for courier in self._couriers:
            courier.wake()

    def _stop(self) -> None:
        self._stopped.set()
        for courier in self._couriers:
            courier.stop()

    def _on_loop(self, act: Callable[[], None]) -> None:
        """Do ``act`` on the loop's thread: the couriers' events belong to it."""
        loop = self._loop
        if loop is None or loop.is_closed() or _running(loop):
            act()
        else:
            loop.call_soon_threadsafe(act)


def _running(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the caller runs on ``loop``'s thread."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
