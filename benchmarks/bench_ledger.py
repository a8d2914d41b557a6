"""Ledger throughput: build, check and import a million pairs through ``optouts.Client``.

Compares the end-to-end check (numbers validated, deduplicated, batched, results in input
order and read one by one) with a raw ``sqlite3`` script doing the ledger's own lookup (the
store's query text and encoding, with its connection settings) on the same file, in the
same run: the two alternate, and the best of each counts. The ratio is of CPU time (both
run in one thread), so other work on a shared machine does not tilt it; the wall-clock
ratio is printed beside it. Targets on a 2-core machine: check >= 300,000 recipients/s
and within 2x the raw script's time, import >= 200,000 pairs/s, peak RSS <= 300 MB.

    python benchmarks/bench_ledger.py [--size 1000000] [--json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import resource
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import optouts
from optouts.ledger._sqlite import _OPTED_OUT

SENDER = "+18005550100"
AREA_CODES = ("202", "206", "212", "303", "305", "312", "404", "415", "503", "512", "602", "617")
CHUNK = 100_000
ROUNDS = 5
"""Check and raw lookups alternate this many times; the best time of each counts."""


def number(index: int) -> str:
    """The index-th of 96 million distinct, valid-looking US numbers."""
    area = AREA_CODES[index % len(AREA_CODES)]
    rest = index // len(AREA_CODES)
    return f"+1{area}{200 + rest % 800:03d}{rest // 800 % 10_000:04d}"


def members(size: int) -> Iterator[str]:
    return (number(i) for i in range(size))


def probe(size: int) -> Iterator[str]:
    """Half ledger members, half strangers, in a scrambled order, generated lazily."""
    step = 7_919  # prime, so k -> k * step mod size visits every slot once
    half = size // 2
    for k in range(size):
        slot = k * step % size
        yield number(slot) if slot < half else number(size + slot)


def imports(size: int) -> Iterator[str]:
    return (number(2 * size + i) for i in range(size))


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    value = action()
    return time.perf_counter() - started, value


def timed_both(action: Callable[[], Any]) -> tuple[float, float, Any]:
    """Wall-clock and CPU seconds (this process, all threads) of ``action``, and its value."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = action()
    return time.perf_counter() - wall, time.process_time() - cpu, value


def peak_rss_mb() -> float:
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024 / (1024 if sys.platform == "darwin" else 1)  # macOS reports bytes


def raw_lookups(path: Path, recipients: Iterable[str]) -> int:
    """What a careful hand-written script does: the ledger's own batched, sorted lookup (its
    query, on a connection set up as the ledger's reads are), with no validation,
    deduplication or result objects."""
    db = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
    db.execute("PRAGMA cache_size = -16384")
    db.execute("PRAGMA temp_store = MEMORY")
    (sender_id,) = db.execute("SELECT id FROM senders WHERE sender = ?", (SENDER,)).fetchone()
    query = _OPTED_OUT.format(senders="?")
    opted_out = 0
    batch = list(itertools.islice(recipients, CHUNK))
    while batch:
        digits = [int(r[1:]) for r in batch]
        payload = json.dumps(sorted(digits))
        found = {row[0] for row in db.execute(query, (payload, sender_id))}
        opted_out += sum(d in found for d in digits)
        batch = list(itertools.islice(recipients, CHUNK))
    db.close()
    return opted_out


def run(size: int) -> dict[str, Any]:
    """Inputs are built before each timed step, as a caller holding a list would have them."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ledger.db"
        with optouts.Client("local", database=str(path)) as client:
            batch = list(members(size))
            build_s, built_ok = timed(lambda: client.add(SENDER, batch).ok)
            assert built_ok

            batch = list(probe(size))

            def check_all() -> int:
                return sum(1 for item in client.check(SENDER, batch) if item.opted_out)

            checks, raws = [], []
            for _ in range(ROUNDS):
                checks.append(timed_both(check_all))
                raws.append(timed_both(lambda: raw_lookups(path, iter(batch))))
            check_s, raw_s = min(c[0] for c in checks), min(r[0] for r in raws)
            check_cpu, raw_cpu = min(c[1] for c in checks), min(r[1] for r in raws)
            opted_out, raw_opted_out = checks[0][2], raws[0][2]

            batch = list(imports(size))
            import_s, imported_ok = timed(lambda: client.add("+18005550111", batch).ok)
            assert imported_ok
    assert opted_out == raw_opted_out == size // 2, (opted_out, raw_opted_out)
    return {
        "size": size,
        "build_pairs_per_s": size / build_s,
        "check_recipients_per_s": size / check_s,
        "check_seconds": check_s,
        "raw_sqlite_check_seconds": raw_s,
        "check_vs_raw_sqlite": check_cpu / raw_cpu,
        "check_vs_raw_sqlite_wall": check_s / raw_s,
        "import_pairs_per_s": size / import_s,
        "peak_rss_mb": peak_rss_mb(),
    }


def report(figures: dict[str, Any]) -> Iterator[str]:
    python = f"{platform.python_implementation()} {platform.python_version()}"
    yield f"machine: {platform.machine()}, {python}, SQLite {sqlite3.sqlite_version}"
    yield f"ledger of {figures['size']:,} pairs"
    yield f"  build (Client.add):   {figures['build_pairs_per_s']:>12,.0f} pairs/s"
    yield (
        f"  check (Client.check): {figures['check_recipients_per_s']:>12,.0f} recipients/s "
        f"(target >= 300,000)"
    )
    raw = figures["size"] / figures["raw_sqlite_check_seconds"]
    yield f"  raw sqlite3 lookups:  {raw:>12,.0f} recipients/s"
    yield (
        f"  check vs raw:         {figures['check_vs_raw_sqlite']:>12.2f}x the raw script's "
        f"CPU time (wall clock {figures['check_vs_raw_sqlite_wall']:.2f}x) (target <= 2x)"
    )
    imported = figures["import_pairs_per_s"]
    yield f"  import (Client.add):  {imported:>12,.0f} pairs/s (target >= 200,000)"
    yield f"  peak RSS:             {figures['peak_rss_mb']:>12,.0f} MB (target <= 300)"
    for name, met in verdicts(figures).items():
        yield f"  {name}: {'met' if met else 'MISSED'}"


def verdicts(figures: dict[str, Any]) -> dict[str, bool]:
    return {
        "check >= 300,000/s": figures["check_recipients_per_s"] >= 300_000,
        "check <= 2x raw sqlite3": figures["check_vs_raw_sqlite"] <= 2.0,
        "import >= 200,000/s": figures["import_pairs_per_s"] >= 200_000,
        "peak RSS <= 300 MB": figures["peak_rss_mb"] <= 300,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    figures = run(args.size)
    print(json.dumps(figures, indent=2) if args.json else "\n".join(report(figures)))
    if args.size == 1_000_000 and not all(verdicts(figures).values()):
        print("one or more targets missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
