"""Commands that move opt-outs between systems: sync, import, export, audit.

They attach to the ``optouts`` group defined in ``cli``; kept apart so each file has one job.
What the ledger or a vendor holds (sources, notes, reasons) is printed through
``printable`` and into tables as ``Text``, so it is shown and never obeyed.

Reads (export, audit, a sync's dry run) never create a ledger; a write that creates one
says so once on stderr (``announcing``), so a mistyped path does not pass unseen.
"""

from __future__ import annotations

import io
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import attrs
import click
from rich.console import Console
from rich.table import Table

from ._cli_options import Options
from ._client import Client
from ._csvio import export_csv, import_csv
from ._errors import ConfigurationError, printable
from ._numbers import normalize
from ._sync import SyncSummary, sync
from ._terminal import cell
from .ledger import Ledger

__all__ = ["register"]


def _when(micros: int) -> str:
    moment = datetime.fromtimestamp(micros / 1_000_000, tz=timezone.utc)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


@click.command(name="sync")
@click.option("--source", required=True, help="Provider to read every record from (must list).")
@click.option("--target", "targets", multiple=True, required=True, help="Provider to update.")
@click.option("--dry-run", is_flag=True, help="Print the plan; change nothing.")
@click.pass_obj
def sync_command(options: Options, source: str, targets: tuple[str, ...], dry_run: bool) -> int:
    """Carry opt-outs from SOURCE to every TARGET through the ledger (resumable)."""
    with options.ledger() as ledger:
        summary = sync(source, list(targets), ledger=ledger, dry_run=dry_run)
    _print_summary(options.output, summary)
    return 0 if summary.ok else 1


def _print_summary(output: str, summary: SyncSummary) -> None:
    if output == "json":
        click.echo(json.dumps(attrs.asdict(summary), indent=2))
        return
    heading = "plan (dry run)" if summary.dry_run else "sync"
    click.echo(
        f"{heading}: {printable(summary.source)} listed {summary.listed:,} records in "
        f"{summary.source_requests:,} requests; {summary.recorded:,} new to the ledger "
        f"({summary.seconds:.1f} s)"
    )
    table = Table("target", "added", "removed", "skipped", "failed", "requests", "notes")
    for t in summary.targets:
        notes = "; ".join(t.notes)
        table.add_row(
            cell(t.target),
            *(f"{n:,}" for n in (t.added, t.removed, t.skipped, t.failed, t.requests)),
            cell(notes),
        )
    Console(width=200 if not sys.stdout.isatty() else None).print(table)
    for t in summary.targets:
        for action, sender, recipient in t.first:
            click.echo(printable(f"  {t.target}: {action} {sender} {recipient}"))


@click.command(name="export")
@click.option("--from", "sender", help="Only this sender's records.")
@click.option(
    "--status",
    type=click.Choice(["opted-out", "opted-in", "all"]),
    default="all",
    show_default=True,
)
@click.pass_obj
def export_command(options: Options, sender: str | None, status: str) -> int:
    """Write every record as CSV (sender,recipient,status,source,updated_at) to stdout."""
    with _ledger_or_client(options) as target:
        export_csv(target, sys.stdout, sender=sender, status=status)
    return 0


def _ledger_or_client(options: Options) -> Ledger | Client:
    """Imports and exports work on the ledger itself (times and sources kept), else a vendor."""
    return options.ledger(chosen=True) if options.uses_ledger() else options.client()


@click.command(name="import")
@click.argument("path", type=click.Path(dir_okay=False, allow_dash=True))
@click.pass_obj
def import_command(options: Options, path: str) -> int:
    """Record every row of a CSV file (or - for stdin); bad lines are listed, never fatal."""
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
    try:
        with _ledger_or_client(options) as target:
            name = "stdin" if path == "-" else Path(path).name
            report = import_csv(target, handle, source=f"import:{name}")
    except ValueError as exc:
        raise ConfigurationError(f"{path}: {exc}") from None
    finally:
        if path == "-":
            handle.detach()  # leave stdin itself open
        else:
            handle.close()
    for line, reason in report.errors:
        click.echo(printable(f"{path}:{line}: {reason}"), err=True)
    if report.failed > len(report.errors):
        click.echo(f"… and {report.failed - len(report.errors):,} more bad lines", err=True)
    click.echo(
        f"read {report.rows:,} rows: {report.applied:,} recorded, "
        f"{report.rows - report.applied - report.failed:,} already so, {report.failed:,} failed",
        err=True,
    )
    return 0 if report.ok else 1


@click.command(name="audit")
@click.argument("recipient")
@click.pass_obj
def audit_command(options: Options, recipient: str) -> int:
    """Show what the ledger knows of RECIPIENT: state per sender, history, vendor confirmations."""
    number = normalize(recipient, options.default_region)
    with options.ledger() as ledger:
        trail = ledger.audit(number)
    if options.output == "json":
        click.echo(
            json.dumps(
                {
                    "recipient": number,
                    "current": [
                        {
                            "sender": s,
                            "status": "opted-out" if out else "opted-in",
                            "country": c,
                            "source": src,
                            "first_received": _when(first),
                            "updated_at": _when(last),
                        }
                        for s, out, c, src, first, last in trail.current
                    ],
                    "history": [
                        {
                            "sender": s,
                            "action": "opt-out" if out else "opt-in",
                            "source": src,
                            "at": _when(at),
                        }
                        for s, out, src, at in trail.history
                    ],
                    "confirmations": [
                        {
                            "sender": s,
                            "target": t,
                            "status": "opted-out" if out else "opted-in",
                            "at": _when(at),
                        }
                        for s, t, out, at in trail.confirmations
                    ],
                },
                indent=2,
            )
        )
        return 0
    console = Console(width=200 if not sys.stdout.isatty() else None)
    if not trail.current:
        click.echo(f"{number}: the ledger has no record of this recipient")
        return 0
    current = Table(
        "sender", "status", "country", "source", "first received", "last change", title=number
    )
    for s, out, c, src, first, last in trail.current:
        current.add_row(
            cell(s),
            "opted-out" if out else "opted-in",
            cell(c or ""),
            cell(src),
            _when(first),
            _when(last),
        )
    console.print(current)
    history = Table("at", "sender", "action", "source", title="history")
    for s, out, src, at in trail.history:
        history.add_row(_when(at), cell(s), "opt-out" if out else "opt-in", cell(src))
    console.print(history)
    if trail.confirmations:
        confirmed = Table("sender", "vendor", "state confirmed", "at", title="vendor confirmations")
        for s, t, out, at in trail.confirmations:
            confirmed.add_row(cell(s), cell(t), "opted-out" if out else "opted-in", _when(at))
        console.print(confirmed)
    return 0


def register(group: click.Group) -> None:
    for command in (sync_command, import_command, export_command, audit_command):
        group.add_command(command)
