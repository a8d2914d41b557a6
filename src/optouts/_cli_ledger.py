"""Commands that move opt-outs between systems: sync, import, export (and audit, from
``_cli_audit``).

They attach to the ``optouts`` group defined in ``cli``; kept apart so each file has one job.
What the ledger or a vendor holds (sources, notes, reasons) is printed through
``printable`` and into tables as ``Text``, so it is shown and never obeyed.

Reads (export, audit, a sync's dry run) never create a ledger; a write that creates one
says so once on stderr (``announcing``), so a mistyped path does not pass unseen.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import sys
from pathlib import Path

import attrs
import click
from rich.table import Table

from ._cli_audit import audit_command
from ._cli_options import Options
from ._cli_output import console, environment_failure
from ._client import Client
from ._csvio import ImportReport, export_csv, import_csv
from ._csvparse import guarded
from ._errors import ConfigurationError, OptOutError, ProviderError, printable
from ._sync import LEDGER, SyncSummary, sync
from ._terminal import cell, shown
from .ledger import Ledger

__all__ = ["register"]

_TARGET_FIELDS = ("target", "added", "removed", "skipped", "failed", "requests", "notes")


@click.command(name="sync")
@click.option("--source", required=True, help="Provider to read every record from (must list).")
@click.option(
    "--target",
    "targets",
    multiple=True,
    required=True,
    help="Provider to update (repeatable: --target azure --target local).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.pass_obj
def sync_command(options: Options, source: str, targets: tuple[str, ...], dry_run: bool) -> int:
    """Carry opt-outs from SOURCE to every TARGET through the ledger (resumable)."""
    with options.ledger() as ledger:
        summary = sync(source, list(targets), ledger=ledger, dry_run=dry_run)
    _print_summary(options.format, summary)
    return 0 if summary.ok else 1


def _heading(summary: SyncSummary) -> str:
    """What the sync read, in words that are true of a vendor source and of the ledger."""
    heading = "plan (dry run)" if summary.dry_run else "sync"
    took = f"({summary.seconds:.1f} s)"
    if summary.source == LEDGER:
        return (
            f"{heading}: from the ledger, which needs no listing; each target "
            f"{'would get' if summary.dry_run else 'got'} what it had not confirmed {took}"
        )
    return (
        f"{heading}: {printable(summary.source)} listed {_count(summary.listed, 'record')} in "
        f"{_count(summary.source_requests, 'request')}; {summary.recorded:,} new to the ledger "
        f"{took}"
    )


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _print_summary(output: str, summary: SyncSummary) -> None:
    if output == "json":
        click.echo(json.dumps(attrs.asdict(summary), indent=2))
        return
    if output == "csv":  # stdout holds the CSV alone; the heading goes to stderr
        click.echo(_heading(summary), err=True)
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(_TARGET_FIELDS)
        for t in summary.targets:
            counts = (t.added, t.removed, t.skipped, t.failed, t.requests)
            writer.writerow((guarded(t.target), *counts, guarded("; ".join(t.notes))))
        return
    click.echo(_heading(summary))
    table = Table(*_TARGET_FIELDS)
    for t in summary.targets:
        notes = "; ".join(t.notes)
        table.add_row(
            cell(t.target),
            *(f"{n:,}" for n in (t.added, t.removed, t.skipped, t.failed, t.requests)),
            cell(notes),
        )
    console().print(table)
    for t in summary.targets:
        for action, sender, recipient in t.first:
            click.echo(printable(f"  {t.target}: {action} {sender} {recipient}"))


@click.command(name="export")
@click.option("--from", "sender", help="Only this sender's records (default: every sender).")
@click.option(
    "--status",
    type=click.Choice(["opted-out", "opted-in", "all"]),
    default="all",
    show_default=True,
    help="Which records: every one unless told otherwise.",
)
@click.pass_obj
def export_command(options: Options, sender: str | None, status: str) -> int:
    """Write every record (opt-outs and opt-ins, by default) as CSV to stdout:
    sender,recipient,status,source,updated_at."""
    with _ledger_or_client(options) as target:
        export_csv(target, shown(sys.stdout), sender=sender, status=status)
    return 0


def _ledger_or_client(options: Options) -> Ledger | Client:
    """Imports and exports work on the ledger itself (times and sources kept), else a vendor."""
    return options.ledger() if options.uses_ledger() else options.client()


@click.command(name="import")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.pass_obj
def import_command(options: Options, path: str) -> int:
    """Record every row of a CSV file (or - for stdin); bad lines are listed, never fatal."""
    into_ledger = options.uses_ledger()
    if into_ledger and options.default_region is not None:
        raise click.UsageError(
            "the ledger takes numbers in E.164 only (+ and country code); "
            "--default-region applies to an import into a vendor"
        )
    # Bytes that are not UTF-8 come through as surrogates, so the rows holding them are
    # reported one by one instead of stopping the import.
    try:
        if path == "-":
            handle = io.TextIOWrapper(
                sys.stdin.buffer, encoding="utf-8-sig", errors="surrogateescape", newline=""
            )
        else:
            handle = open(  # noqa: SIM115
                path, encoding="utf-8-sig", errors="surrogateescape", newline=""
            )
    except OSError as exc:
        raise click.UsageError(f"cannot read {path}: {exc.strerror}") from None
    kept = _Kept()
    try:
        with options.ledger() if into_ledger else options.client() as target:
            name = "stdin" if path == "-" else Path(path).name
            report = import_csv(target, handle, source=f"import:{name}", progress=kept.add)
    except ValueError as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
    except (OSError, sqlite3.Error, ProviderError) as exc:
        if not kept.rows:
            raise
        # Stopped midway (a full disk, a lost vendor): say what is kept, not only why.
        why = environment_failure(exc) or str(exc)
        raise OptOutError(
            f"{why}; the import stopped after the first {kept.rows:,} rows of "
            f"{'stdin' if path == '-' else path}, which are recorded (importing the file "
            "again leaves them unchanged)"
        ) from exc
    finally:
        if path == "-":
            handle.detach()  # leave stdin itself open
        else:
            handle.close()
    _print_report(options.format, path, report)
    return 0 if report.ok else 1


@attrs.define
class _Kept:
    """Rows of an import already committed, counted as each window is, so an import that
    stops can say how far it got."""

    rows: int = 0

    def add(self, rows: int) -> None:
        self.rows += rows


def _print_report(output: str, path: str, report: ImportReport) -> None:
    """The bad lines and the counts: on stderr, or as one JSON object on stdout."""
    already = max(report.rows - report.applied - report.failed, 0)
    if output == "json":
        shown = {
            "rows": report.rows,
            "recorded": report.applied,
            "already": already,
            "failed": report.failed,
            "errors": [{"line": line, "reason": reason} for line, reason in report.errors],
        }
        click.echo(json.dumps(shown, indent=2))
        return
    for line, reason in report.errors:
        click.echo(printable(f"{path}:{line}: {reason}"), err=True)
    if report.failed > len(report.errors):
        click.echo(f"… and {report.failed - len(report.errors):,} more bad lines", err=True)
    click.echo(
        f"read {report.rows:,} rows: {report.applied:,} recorded, "
        f"{already:,} unchanged, {report.failed:,} failed",
        err=True,
    )


def register(group: click.Group) -> None:
    for command in (sync_command, import_command, export_command, audit_command):
        group.add_command(command)
