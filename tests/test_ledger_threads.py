"""One ledger shared by threads, on both backends: each thread's client sees its own writes,
and concurrent re-adds of the same pairs leave one history row per pair."""

from __future__ import annotations

import threading

from optouts import Ledger

SENDER = "+18005550100"
THREADS = 4
PER_THREAD = 200


def numbers(start: int, count: int) -> list[str]:
    return [f"+1202{start + i:07d}" for i in range(count)]


def test_a_ledger_is_safe_to_share_between_threads(ledger_database: str) -> None:
    shared = Ledger.open(ledger_database)
    errors: list[BaseException] = []

    def work(offset: int) -> None:
        client = shared.client()  # its own client; closing it leaves the shared ledger open
        recipients = numbers(4_000_000 + offset * 1_000, PER_THREAD)
        try:
            for _ in range(5):
                assert client.add(SENDER, recipients).ok
                assert {r.opted_out for r in client.check(SENDER, recipients)} == {True}
        except BaseException as error:  # reported to the main thread below
            errors.append(error)
        finally:
            client.close()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with shared, shared.client() as client:
        listed = [record.recipient for record in client.list(page_size=10_000)]
        assert len(listed) == THREADS * PER_THREAD
        # five adds of each pair, one change: the re-adds wrote no history
        for recipient in listed:
            assert [entry[1] for entry in shared.audit(recipient).history] == [True]
