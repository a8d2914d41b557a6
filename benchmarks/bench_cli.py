"""The command line's default table against CSV, for a large check: time and peak memory.

200,000 recipients (half of them opted out) are checked against a local ledger by the
real ``optouts`` command, each run in a process of its own, its output read by this one:

- through a pipe, as in ``optouts check … | grep``: ``--format csv`` and the default table;
- on a terminal (a pseudo-terminal this process reads), where a person sees the table.

Each figure is the best of three runs, the formats alternated so that the machine's load
falls on both alike. Wall time is from start to exit; CPU time and peak RSS are the child's
own (``os.wait4``). The target: the table within 1.5 times CSV's wall time and peak RSS.
The first release drew the table at the end, holding every row: 103 s and 582 MB against
3.3 s and 105 MB for CSV, on this check.

    python benchmarks/bench_cli.py [--count 200000] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import pty
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import attrs

import optouts

SENDER = "+18005550100"
TARGET = 1.5


def number(i: int) -> str:
    """A distinct, valid US number for each ``i`` below 8,000,000."""
    return f"+1202{2_000_000 + i:07d}"


@attrs.frozen
class Run:
    wall: float
    cpu: float
    rss_mb: float
    lines: int


def _drain(fd: int, counted: list[int]) -> None:
    """Read ``fd`` to its end (or the terminal's hang-up), counting lines."""
    lines = 0
    while True:
        try:
            chunk = os.read(fd, 1 << 16)
        except OSError:  # EIO: the terminal's last writer has gone
            break
        if not chunk:
            break
        lines += chunk.count(b"\n")
    counted.append(lines)


def run_cli(argv: list[str], environ: dict[str, str], *, terminal: bool) -> Run:
    """One run of ``optouts`` with stdout on a pipe or a terminal; stderr is a pipe."""
    if terminal:
        reader, writer = pty.openpty()
    else:
        reader, writer = os.pipe()
    counted: list[int] = []
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "optouts.cli", *argv],
        stdout=writer,
        stderr=subprocess.PIPE,
        env=environ,
    )
    os.close(writer)
    drain = threading.Thread(target=_drain, args=(reader, counted))
    drain.start()
    assert process.stderr is not None
    errors = process.stderr.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    drain.join()
    os.close(reader)
    process.stderr.close()
    if process.returncode != 0:
        raise RuntimeError(f"optouts {' '.join(argv)} failed: {errors.decode()[-500:]}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, counted[0])


def best(runs: list[Run]) -> Run:
    return Run(
        min(r.wall for r in runs),
        min(r.cpu for r in runs),
        min(r.rss_mb for r in runs),
        runs[0].lines,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        database = Path(folder) / "ledger.db"
        numbers = Path(folder) / "recipients.txt"
        with optouts.Ledger.open(database) as ledger, ledger.client() as client:
            client.add(SENDER, [number(i) for i in range(0, args.count, 2)]).raise_for_failures()
        numbers.write_text("".join(f"{number(i)}\n" for i in range(args.count)), "utf-8")
        environ = {**os.environ, "OPTOUTS_LOCAL_DATABASE": str(database), "COLUMNS": "120"}
        check = ["check", "--from", SENDER, "--file", str(numbers)]
        cases: dict[str, Callable[[], Run]] = {
            "csv, piped": lambda: run_cli(["--format", "csv", *check], environ, terminal=False),
            "table, piped": lambda: run_cli(check, environ, terminal=False),
            "csv, terminal": lambda: run_cli(["--format", "csv", *check], environ, terminal=True),
            "table, terminal": lambda: run_cli(check, environ, terminal=True),
        }
        measured: dict[str, list[Run]] = {name: [] for name in cases}
        for _ in range(args.runs):
            for name, case in cases.items():
                measured[name].append(case())
    figures = {name: best(runs) for name, runs in measured.items()}
    print(f"optouts check of {args.count:,} recipients against the ledger, best of {args.runs}:")
    for name, run in figures.items():
        print(
            f"  {name:<16} {run.wall:6.2f} s wall  {run.cpu:6.2f} s CPU  "
            f"{run.rss_mb:6.1f} MB peak RSS  {run.lines:,} lines"
        )
    missed = False
    for where in ("piped", "terminal"):
        csv_run, table = figures[f"csv, {where}"], figures[f"table, {where}"]
        assert table.lines >= args.count, table  # every result printed, header aside
        time_ratio = table.wall / csv_run.wall
        cpu_ratio = table.cpu / csv_run.cpu
        rss_ratio = table.rss_mb / csv_run.rss_mb
        ok = time_ratio <= TARGET and rss_ratio <= TARGET
        missed |= not ok
        print(
            f"table ÷ csv, {where}: {time_ratio:.2f}× wall time ({cpu_ratio:.2f}× CPU), "
            f"{rss_ratio:.2f}× peak RSS (target <= {TARGET}×): {'pass' if ok else 'MISS'}"
        )
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
