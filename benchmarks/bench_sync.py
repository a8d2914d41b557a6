"""Carrying opt-outs between vendors, measured against the limits in the same run.

1. sync: 100,000 opt-outs listed from the RingCentral emulator under its real rate limit
   (50 requests a 60 s window) and carried to the Azure emulator and the ledger. The bound
   is the time the rate limit itself needs for the list pages (target: >= 90 % of it); the
   second run, with nothing new, must send only the list pages.
2. csv: 1,000,000 rows imported into the ledger and exported again, in a fresh process
   (targets: >= 150,000 rows/s each way, peak RSS <= 200 MB); then, in another fresh
   process, a hand-written ``sqlite3`` import of the same file (no validation, the
   ledger's merge rule as one upsert a row) and the ratio of the two times, measured in
   the same run: the rates move with the machine's load, the ratio much less. Each way
   also prints the CPU time a row (the import's two threads together), which a shared
   machine's load moves less than the rates. A third fresh process imports 1,000,000 rows
   of UK numbers (+44, which the UK shares with Guernsey, Jersey and Man, so each number's
   country is read from the whole number, not its prefix): the same target, and its time
   against the US file's.

    python benchmarks/bench_sync.py [--only sync,csv] [--scale 1.0]
"""

from __future__ import annotations

import contextlib
import csv
import itertools
import json
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import optouts
from bench_bulk import emulator_process, number, peak_rss_mb, run_benchmarks
from optouts import export_csv, import_csv
from optouts.emulators import serve_in_thread
from optouts_ringcentral import Emulator, RateLimit
from optouts_ringcentral.testing import CREDENTIALS

SENDER = "+16505550100"
LIMIT, WINDOW, PAGE = 50, 60.0, 1000
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)
RAW_UPSERT = """
INSERT INTO optouts (sender_id, recipient, opted_out, country, source, created_at, updated_at)
VALUES (?1, ?2, ?3, NULL, ?4, ?5, ?5)
ON CONFLICT (sender_id, recipient) DO UPDATE
SET opted_out = excluded.opted_out, source = excluded.source, updated_at = excluded.updated_at
WHERE excluded.updated_at >= optouts.updated_at
  AND (optouts.opted_out IS NOT excluded.opted_out
       OR (excluded.opted_out = 1 AND excluded.updated_at > optouts.updated_at))
"""
"""The ledger's rule for dated changes, as a hand-written script would send it."""
COUNTRIES = "SELECT country, count(*) FROM optouts GROUP BY country ORDER BY 2 DESC"
ROWS_PER_S, RSS_MB = 150_000, 200
"""The csv targets: rows a second each way, and peak memory."""


def bench_sync(scale: float) -> dict[str, Any]:
    count = int(100_000 * scale)
    rc = Emulator(rate_limit=RateLimit(LIMIT, WINDOW))
    rc.put_many((SENDER, number(i)) for i in range(count))
    url, stop = serve_in_thread(rc)
    pages = math.ceil(count / PAGE)
    bound = (math.ceil(pages / LIMIT) - 1) * WINDOW
    try:
        with tempfile.TemporaryDirectory() as folder, emulator_process() as azure_string:
            credentials: dict[str, Any] = dict(CREDENTIALS)
            source = optouts.Client("ringcentral", server_url=url, **credentials)
            target = optouts.Client("azure", connection_string=azure_string)
            ledger = optouts.Ledger.open(Path(folder) / "ledger.db")
            with source, target, ledger:
                started = time.perf_counter()
                first = optouts.sync(source, [target, "local"], ledger=ledger)
                first_s = time.perf_counter() - started
                listed_before = sum(rc.counts.values())
                started = time.perf_counter()
                second = optouts.sync(source, [target, "local"], ledger=ledger)
                second_s = time.perf_counter() - started
                assert all(ledger.opted_out(SENDER, [number(i) for i in range(0, count, 97)]))
    finally:
        stop()
    azure_first = next(t for t in first.targets if t.target == "azure")
    azure_second = next(t for t in second.targets if t.target == "azure")
    assert azure_first.added == count, azure_first
    assert azure_first.failed == 0, azure_first
    return {
        "opt_outs": count,
        "list_pages": pages,
        "rate_limit": f"{LIMIT}/{WINDOW:g}s",
        "bound_seconds": bound,
        "first_seconds": first_s,
        "of_bound": bound / first_s if first_s else 0.0,
        "first_source_requests": first.source_requests,
        "first_azure_requests": azure_first.requests,
        "second_seconds": second_s,
        "second_source_requests": second.source_requests,
        "second_vendor_requests_seen": sum(rc.counts.values()) - listed_before,
        "second_azure_requests": azure_second.requests,
        "second_recorded": second.recorded,
    }


def child_uk(folder: str, count: int) -> None:
    """Runs in a fresh process: import ``count`` rows of UK numbers; print the figures."""
    path = Path(folder) / "uk.csv"
    write_rows(path, count, uk_number)
    load = os.getloadavg()[0]
    with optouts.Ledger.open(Path(folder) / "uk.db") as ledger:
        started, cpu = time.perf_counter(), time.process_time()
        with path.open(encoding="ascii", newline="") as lines:
            report = import_csv(ledger, lines)
        seconds, spent = time.perf_counter() - started, time.process_time() - cpu
        assert report.ok, report
        assert report.applied == count, report
    with contextlib.closing(sqlite3.connect(Path(folder) / "uk.db")) as db:
        print(
            json.dumps(
                {
                    "uk_import_seconds": seconds,
                    "uk_import_rows_per_s": count / seconds,
                    "uk_import_cpu_us_per_row": spent / count * 1e6,
                    "uk_load": max(load, os.getloadavg()[0]),
                    "uk_countries": dict(db.execute(COUNTRIES).fetchall()),
                }
            )
        )


def uk_number(index: int) -> str:
    """Distinct +44 7 mobiles spread over the whole range, Guernsey's, Jersey's and Man's
    among them."""
    return f"+447{(index * 7_919) % 900_000_000 + 100_000_000:09d}"


def child_csv(folder: str, count: int) -> None:
    """Runs in a fresh process: write, import and export ``count`` rows; print the figures."""
    path = Path(folder) / "in.csv"
    write_rows(path, count)
    load = os.getloadavg()[0]
    with optouts.Ledger.open(Path(folder) / "ledger.db") as ledger:
        started, cpu = time.perf_counter(), time.process_time()
        with path.open(encoding="ascii", newline="") as lines:
            report = import_csv(ledger, lines)
        import_s = time.perf_counter() - started
        import_cpu = time.process_time() - cpu
        assert report.ok, report
        assert report.applied == count, report
        started, cpu = time.perf_counter(), time.process_time()
        with (Path(folder) / "out.csv").open("w", encoding="ascii") as out:
            exported = export_csv(ledger, out)
        export_s = time.perf_counter() - started
        export_cpu = time.process_time() - cpu
        assert exported == count
    print(
        json.dumps(
            {
                "rows": count,
                "import_seconds": import_s,
                "import_rows_per_s": count / import_s,
                "import_cpu_us_per_row": import_cpu / count * 1e6,
                "export_rows_per_s": count / export_s,
                "export_cpu_us_per_row": export_cpu / count * 1e6,
                "peak_rss_mb": peak_rss_mb(),
                "load": max(load, os.getloadavg()[0]),
            }
        )
    )


def child_raw(folder: str, count: int) -> None:
    """Runs in a fresh process: what a careful hand-written script does with the same file.

    csv.reader, each cell converted as it is (no validation, no country), sorted by key, and
    one upsert a row (``executemany``) with the ledger's rule, 100,000 rows a transaction,
    into a ledger optouts created (the same tables, settings and history triggers)."""
    database = Path(folder) / "raw.db"
    with optouts.Ledger.open(database) as ledger:
        ledger.require(write=True)  # the tables, created as for any ledger
    db = sqlite3.connect(database, isolation_level=None)
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute("PRAGMA cache_size = -16384")
    senders: dict[str, int] = {}
    started = time.perf_counter()
    with (Path(folder) / "in.csv").open(encoding="ascii", newline="") as lines:
        reader = csv.reader(lines)
        next(reader)
        while rows := list(itertools.islice(reader, 100_000)):
            batch = []
            for sender, recipient, status, source, when in rows:
                sender_id = senders.get(sender)
                if sender_id is None:
                    db.execute("INSERT OR IGNORE INTO senders (sender) VALUES (?)", (sender,))
                    found = db.execute("SELECT id FROM senders WHERE sender = ?", (sender,))
                    sender_id = senders[sender] = found.fetchone()[0]
                at = (datetime.fromisoformat(when.replace("Z", "+00:00")) - EPOCH) // MICROSECOND
                batch.append((sender_id, int(recipient[1:]), status == "opted-out", source, at))
            batch.sort()
            db.execute("BEGIN IMMEDIATE")
            db.executemany(RAW_UPSERT, batch)
            db.execute("COMMIT")
    raw_s = time.perf_counter() - started
    assert db.execute("SELECT count(*) FROM history").fetchone()[0] == count
    db.close()
    print(json.dumps({"raw_import_seconds": raw_s}))


def write_rows(path: Path, count: int, recipient: Callable[[int], str] = number) -> None:
    with path.open("w", encoding="ascii") as out:
        out.write("sender,recipient,status,source,updated_at\n")
        base = 1_767_225_600  # 2026-01-01
        for i in range(count):
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(base + i))
            state = "opted-in" if i % 10 == 0 else "opted-out"
            out.write(f"+1800555{i % 4:04d},{recipient(i)},{state},Recipient,{when}\n")


def bench_csv(scale: float) -> dict[str, Any]:
    count = int(1_000_000 * scale)
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as folder:
        for step in ("optouts", "raw", "uk"):
            output = subprocess.run(
                [sys.executable, __file__, "--child", folder, str(count), step],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            figures.update(json.loads(output))
    figures["import_vs_raw"] = figures["import_seconds"] / figures["raw_import_seconds"]
    figures["uk_vs_us"] = figures["uk_import_seconds"] / figures["import_seconds"]
    return figures


def report(name: str, f: dict[str, Any]) -> list[str]:
    if name == "sync":
        return [
            f"1. sync {f['opt_outs']:,} opt-outs RingCentral ({f['rate_limit']}) -> Azure + ledger",
            f"   {f['first_seconds']:.1f} s against the rate limit's {f['bound_seconds']:.0f} s "
            f"for {f['list_pages']} list pages = {f['of_bound']:.1%} (target >= 90 %); "
            f"{f['first_source_requests']} list requests, "
            f"{f['first_azure_requests']:,} Azure requests",
            f"   second run, nothing new: {f['second_source_requests']} list requests, "
            f"{f['second_azure_requests']} Azure requests, {f['second_recorded']} changes "
            f"({f['second_seconds']:.1f} s)",
        ]
    return [
        f"2. csv, {f['rows']:,} rows: import {f['import_rows_per_s']:,.0f} rows/s "
        f"({_check(f['import_rows_per_s'] >= ROWS_PER_S)} >= {ROWS_PER_S:,}), "
        f"{f['import_cpu_us_per_row']:.2f} us CPU a row (both threads); "
        f"export {f['export_rows_per_s']:,.0f} rows/s "
        f"({_check(f['export_rows_per_s'] >= ROWS_PER_S)} >= {ROWS_PER_S:,}), "
        f"{f['export_cpu_us_per_row']:.2f} us CPU a row",
        f"   peak RSS {f['peak_rss_mb']:.0f} MB "
        f"({_check(f['peak_rss_mb'] <= RSS_MB)} <= {RSS_MB}); "
        f"load average {f['load']:.1f} on {os.cpu_count()} CPUs: on a shared machine the "
        "rates read low, the CPU time a row much less so",
        f"   raw sqlite3 import of the same file: {f['rows'] / f['raw_import_seconds']:,.0f} "
        f"rows/s -> optouts takes {f['import_vs_raw']:.2f}x the raw script's time",
        f"   UK numbers (+44: each country read from the whole number): import "
        f"{f['uk_import_rows_per_s']:,.0f} rows/s "
        f"({_check(f['uk_import_rows_per_s'] >= ROWS_PER_S)} >= {ROWS_PER_S:,}), "
        f"{f['uk_import_cpu_us_per_row']:.2f} us CPU a row; {f['uk_vs_us']:.2f}x the US "
        f"file's time; countries {f['uk_countries']}",
    ]


def _check(met: bool) -> str:
    return "pass" if met else "MISS"


def passed(name: str, f: dict[str, Any]) -> bool:
    if name == "sync":
        return bool(f["of_bound"] >= 0.9 and f["second_azure_requests"] == 0)
    return bool(
        min(f["import_rows_per_s"], f["export_rows_per_s"], f["uk_import_rows_per_s"]) >= ROWS_PER_S
        and f["peak_rss_mb"] <= RSS_MB
    )


BENCHMARKS = {"sync": bench_sync, "csv": bench_csv}


def main() -> int:
    return run_benchmarks(__doc__.splitlines()[0], BENCHMARKS, report, passed, child)


def child(arguments: list[str]) -> None:
    folder, count, step = arguments
    {"optouts": child_csv, "raw": child_raw, "uk": child_uk}[step](folder, int(count))


if __name__ == "__main__":
    sys.exit(main())
