"""The ``optouts`` command line: the same four operations as the library, for shells and cron.

Exit codes: 0 success, 1 when any recipient failed or the vendor refused the call,
2 for usage and configuration errors (a ledger that does not exist, for a read). Errors are
one line on stderr, never a traceback, and a command that fails before its first result
prints nothing on stdout.

Text that came from a vendor or a file is shown, never obeyed: tables get it as ``Text``
(no rich markup) with control characters escaped, and CSV cells a spreadsheet would run
as formulas get a leading ``'``.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from typing import IO, Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from . import _cli_ledger, _cli_serve
from ._cli_options import Options
from ._client import Operation
from ._csvparse import guarded
from ._errors import (
    ConfigurationError,
    InvalidNumber,
    OptOutError,
    UnsupportedOperation,
    printable,
    quote_value,
)
from ._models import OptOut, RecipientResult
from ._plugins import get_plugin_manager, providers
from ._terminal import cell

__all__ = ["cli", "main"]

_USAGE_ERRORS = (ConfigurationError, InvalidNumber, UnsupportedOperation, ValueError)
_RESULT_FIELDS = ("sender", "recipient", "opted_out", "ok", "error")
_RECORD_FIELDS = ("sender", "recipient", "status", "country", "source", "updated_at")
_NUMBER_FIELDS = frozenset({"sender", "recipient"})
_FLAGS = {None: "", True: "true", False: "false"}
"""How CSV writes a flag that may be unknown."""
_PROGRESS_STEP = 1_000


def _parse_settings(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> dict[str, str]:
    settings: dict[str, str] = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise click.BadParameter(f"expected NAME=VALUE, got {quote_value(item)}", ctx, param)
        settings[name.strip()] = value
    return settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--provider", "-p", help="Provider to use (default: config, $OPTOUTS_PROVIDER, local)."
)
@click.option("--config", "-c", type=click.Path(dir_okay=False), help="Path of optouts.toml.")
@click.option(
    "--format",
    "output",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@click.option(
    "--set",
    "-s",
    "settings",
    multiple=True,
    callback=_parse_settings,
    metavar="NAME=VALUE",
    help="A provider setting, e.g. -s database=optouts.db (repeatable).",
)
@click.option("--default-region", help="Country (ISO code) for numbers written without +code.")
@click.option(
    "--max-concurrency",
    type=click.IntRange(min=1),
    help="Batches in flight at once (default: the provider's own).",
)
@click.version_option(package_name="optouts")
@click.pass_context
def cli(
    ctx: click.Context,
    provider: str | None,
    config: str | None,
    output: str,
    settings: dict[str, str],
    default_region: str | None,
    max_concurrency: int | None,
) -> None:
    """Manage SMS opt-out lists across vendors through one interface."""
    ctx.obj = Options(provider, config, output, settings, default_region, max_concurrency)


def _recipient_options(command: Any) -> Any:
    command = click.argument("recipients", nargs=-1)(command)
    command = click.option(
        "--file",
        "-f",
        "files",
        multiple=True,
        type=click.Path(dir_okay=False, allow_dash=True),
        help="Read recipients from a file, one per line ('-' for stdin).",
    )(command)
    return click.option(
        "--from", "sender", required=True, help="The sender (E.164, short code or *)."
    )(command)


@cli.command()
@_recipient_options
@click.pass_obj
def add(options: Options, sender: str, recipients: tuple[str, ...], files: tuple[str, ...]) -> int:
    """Opt recipients out of messages from a sender."""
    return _run_batch(options, "add", sender, recipients, files)


@cli.command()
@_recipient_options
@click.pass_obj
def remove(
    options: Options, sender: str, recipients: tuple[str, ...], files: tuple[str, ...]
) -> int:
    """Opt recipients back in to messages from a sender."""
    return _run_batch(options, "remove", sender, recipients, files)


@cli.command()
@_recipient_options
@click.pass_obj
def check(
    options: Options, sender: str, recipients: tuple[str, ...], files: tuple[str, ...]
) -> int:
    """Tell whether each recipient opted out of a sender."""
    return _run_batch(options, "check", sender, recipients, files)


def _run_batch(
    options: Options,
    operation: Operation,
    sender: str,
    recipients: tuple[str, ...],
    files: tuple[str, ...],
) -> int:
    if "-" in recipients:
        files = (*files, "-")
        recipients = tuple(r for r in recipients if r != "-")
    if not recipients and not files:
        raise click.UsageError("give recipients as arguments, or --file PATH, or - for stdin")
    failures = 0
    with ExitStack() as stack:
        client = stack.enter_context(options.client())
        total = len(recipients) + sum(_count_lines(path) for path in files if path != "-")
        known_total = total if "-" not in files else None
        results = client.stream(operation, sender, _recipients(recipients, files, stack))
        writer = _ResultWriter(options.output, sender)
        stack.push(writer.finish)  # after the bar is gone, so a table is drawn cleanly
        progress = stack.enter_context(_Progress(operation, known_total))
        for item in results:
            failures += not item.ok
            writer.write(item)
            progress.advance()
    return 1 if failures else 0


def _count_lines(path: str) -> int:
    """Counted up front so the progress bar can show an ETA; files stream, never load."""
    try:
        with open(path, "rb") as handle:
            return sum(1 for line in handle if line.strip())
    except OSError as exc:
        raise click.UsageError(f"cannot read {path}: {exc.strerror}") from None


def _recipients(arguments: Iterable[str], files: Iterable[str], stack: ExitStack) -> Iterator[str]:
    yield from arguments
    for path in files:
        handle: IO[str] = (
            sys.stdin
            if path == "-"
            else stack.enter_context(
                open(path, encoding="utf-8-sig")  # noqa: SIM115 - closed by the stack
            )
        )
        for line in handle:
            number = line.strip()
            if number:
                yield number


class _Rate(ProgressColumn):
    """Recipients a second, once there is enough to measure."""

    def render(self, task: Task) -> Text:
        speed = task.speed
        return Text(f"{speed:,.0f}/s" if speed else "", style="progress.data.speed")


class _Progress:
    """A progress bar with rate and ETA on a terminal (no ETA for stdin); nothing when piped."""

    def __init__(self, label: str, total: int | None) -> None:
        self._bar: Progress | None = None
        self._pending = 0
        if sys.stderr.isatty():
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                _Rate(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                transient=True,
                # Results go to stdout as they come; through rich they crawl (1,000 rows/s).
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._bar.add_task(label, total=total)

    def __enter__(self) -> _Progress:
        if self._bar:
            self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar:
            self._flush()
            self._bar.stop()

    def advance(self) -> None:
        """Counted here and passed on in steps: rich takes about a millisecond an update."""
        if self._bar:
            self._pending += 1
            if self._pending >= _PROGRESS_STEP:
                self._flush()

    def _flush(self) -> None:
        if self._bar and self._pending:
            self._bar.advance(self._task, self._pending)
            self._pending = 0


class _ResultWriter:
    """Writes results as they come: JSON and CSV stream; a table is drawn at the end.

    Nothing is written until the first result (or a successful end): a command that fails
    before any result (a ledger that is not there, refused credentials) leaves stdout empty.
    """

    def __init__(self, output: str, sender: str) -> None:
        self.output = output
        self.sender = sender
        self._rows: list[RecipientResult] = []
        self._first = True
        self._started = False
        self._csv = csv.writer(sys.stdout, lineterminator="\n")
        self._sender_cell = guarded(sender, number=True)

    def _start(self) -> None:
        if self._started:
            return
        self._started = True
        if self.output == "csv":
            self._csv.writerow(_RESULT_FIELDS)
        elif self.output == "json":
            sys.stdout.write("[")

    def write(self, item: RecipientResult) -> None:
        self._start()
        if self.output == "csv":
            self._csv.writerow(
                (
                    self._sender_cell,
                    guarded(item.recipient, number=True),
                    _FLAGS[item.opted_out],
                    _FLAGS[item.ok],
                    "" if item.error is None else guarded(item.error),
                )
            )
            return
        row = {
            "sender": self.sender,
            "recipient": item.recipient,
            "opted_out": item.opted_out,
            "ok": item.ok,
            "error": item.error,
        }
        if self.output == "json":
            sys.stdout.write(("\n" if self._first else ",\n") + json.dumps(row))
            self._first = False
        else:
            self._rows.append(item)

    def finish(self, kind: type[BaseException] | None, *_: object) -> None:
        """At the command's end: complete the output, unless it failed before any result."""
        if kind is None or self._started:
            self.close()

    def close(self) -> None:
        self._start()
        if self.output == "json":
            sys.stdout.write("\n]\n" if not self._first else "]\n")
        elif self.output == "table":
            table = Table("recipient", "opted out", "ok", "error")
            for item in self._rows:
                shown = "unknown" if item.opted_out is None else "yes" if item.opted_out else "no"
                table.add_row(
                    cell(item.recipient), shown, "yes" if item.ok else "no", cell(item.error)
                )
            _console().print(table)


@cli.command(name="list")
@click.option("--from", "sender", help="Only this sender's records.")
@click.option(
    "--status",
    type=click.Choice(["opted-out", "opted-in", "all"]),
    default="opted-out",
    show_default=True,
)
@click.option(
    "--page-size", type=int, help="Records per request (default: the provider's largest)."
)
@click.pass_obj
def list_(options: Options, sender: str | None, status: str, page_size: int | None) -> int:
    """List opt-out records, every page."""
    with options.client() as client:
        records = client.list(sender, status=status, page_size=page_size)
        first = list(itertools.islice(records, 1))  # a failing first page prints nothing
        _write_records(options.output, itertools.chain(first, records))
    return 0


def _record_row(record: OptOut) -> dict[str, Any]:
    return {
        "sender": record.sender,
        "recipient": record.recipient,
        "status": record.status.value,
        "country": record.country,
        "source": record.source,
        "updated_at": record.updated_at.isoformat() if record.updated_at else None,
    }


def _write_records(output: str, records: Iterable[OptOut]) -> None:
    if output == "json":
        first = True
        sys.stdout.write("[")
        for record in records:
            sys.stdout.write(("\n" if first else ",\n") + json.dumps(_record_row(record)))
            first = False
        sys.stdout.write("]\n" if first else "\n]\n")
    elif output == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(_RECORD_FIELDS)
        for record in records:
            writer.writerow(_csv_row(_record_row(record)))
    else:
        table = Table(*_RECORD_FIELDS)
        for record in records:
            table.add_row(*(cell(v) for v in _record_row(record).values()))
        _console().print(table)


def _csv_row(row: dict[str, Any]) -> list[object]:
    return [_csvcell(name, value) for name, value in row.items()]


def _csvcell(name: str, value: object) -> object:
    """Flags as true/false, None empty, and text guarded so that a spreadsheet never runs
    it (numbers in E.164 stay as they are)."""
    if value is None or isinstance(value, bool):
        return _FLAGS[value]
    if isinstance(value, str):
        return guarded(value, number=name in _NUMBER_FIELDS)
    return value


@cli.command(name="providers")
@click.pass_obj
def providers_(options: Options) -> int:
    """Show the installed providers and what each can do."""
    installed = providers()
    operations = ("add", "remove", "check", "list")
    if options.output == "json":
        rows = [
            {
                "name": info.name,
                "capabilities": sorted(c.value for c in info.capabilities),
                "max_batch": info.max_batch,
                "module": info.module,
            }
            for info in installed
        ]
        click.echo(json.dumps(rows, indent=2))
        return 0
    table = Table("provider", *operations, "max batch", "module")
    writer = csv.writer(sys.stdout, lineterminator="\n")
    if options.output == "csv":
        writer.writerow(["name", *operations, "max_batch", "module"])
    for info in installed:
        offered = {c.value for c in info.capabilities}
        marks = ["yes" if op in offered else "no" for op in operations]
        if options.output == "csv":
            writer.writerow([guarded(info.name), *marks, info.max_batch, guarded(info.module)])
        else:
            table.add_row(cell(info.name), *marks, str(info.max_batch), cell(info.module))
    if options.output == "table":
        _console().print(table)
    return 0


@cli.group()
def emulate() -> None:
    """Serve a vendor emulator on 127.0.0.1 for tests and demos."""


get_plugin_manager().hook.register_emulators(emulate=emulate)
_cli_ledger.register(cli)
_cli_serve.register(cli)


def _console() -> Console:
    """Tables are cut to 80 columns when piped unless told otherwise; keep them whole."""
    return Console() if sys.stdout.isatty() else Console(width=200)


def _fail(message: str, code: int) -> int:
    click.echo(f"optouts: error: {printable(message)}", err=True)
    return code


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (for tests and embedding)."""
    try:
        code = cli.main(
            args=list(argv) if argv is not None else None,
            prog_name="optouts",
            standalone_mode=False,
        )
    except click.exceptions.Abort:
        return _fail("interrupted", 130)
    except click.ClickException as exc:
        return _fail(exc.format_message().splitlines()[0], 2)
    except _USAGE_ERRORS as exc:
        return _fail(str(exc), 2)
    except OptOutError as exc:
        return _fail(str(exc), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
    except BrokenPipeError:
        return 1
    return code if isinstance(code, int) else 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":  # pragma: no cover
    main()
