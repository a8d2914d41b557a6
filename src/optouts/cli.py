"""The ``optouts`` command line: the same four operations as the library, for shells and cron.

Exit codes: 0 success, 1 when any recipient failed or the vendor refused the call,
2 for usage and configuration errors (a ledger that does not exist, for a read; an option
the command would ignore). Errors are one line on stderr, never a traceback, and a command
that fails before its first result prints nothing on stdout.

The global options (``--provider``, ``--format``, ``--config``, ``--set``,
``--default-region``, ``--max-concurrency``) go before the subcommand or after it
(``_cli_globals``); results stream in every format (``_cli_output``); recipients come from
arguments, files and stdin (``_cli_recipients``).
"""

from __future__ import annotations

import csv
import itertools
import json
import sqlite3
import sys
from collections.abc import Sequence
from contextlib import ExitStack

import click
import httpx
from rich.table import Table

from . import _cli_globals, _cli_ledger, _cli_logout, _cli_serve, _cli_waits
from ._cli_help import Group, add_examples
from ._cli_options import Options
from ._cli_output import (
    RecordWriter,
    ResultWriter,
    console,
    drop_stdout,
    environment_failure,
    standard_streams,
)
from ._cli_progress import Bar, wanted
from ._cli_recipients import Recipients, count_lines
from ._client import Operation
from ._csvparse import guarded
from ._errors import (
    ConfigurationError,
    InvalidNumber,
    OptOutError,
    UnsupportedOperation,
    printable,
)
from ._plugins import get_plugin_manager, providers
from ._terminal import cell

__all__ = ["cli", "main"]

_USAGE_ERRORS = (ConfigurationError, InvalidNumber, UnsupportedOperation, ValueError)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="optouts")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Manage SMS opt-out lists across vendors through one interface.

    The options below work before the command or after it: `optouts check --format csv …`
    is `optouts --format csv check …`.
    """
    ctx.ensure_object(Options)
    _cli_globals.check_plugin_selection()
    _cli_waits.show(ctx)
    _cli_logout.keep_sessions(ctx)


def _recipient_options(command: click.decorators.FC) -> click.decorators.FC:
    command = click.argument("recipients", nargs=-1)(command)
    command = click.option(
        "--file",
        "-f",
        "files",
        multiple=True,
        type=click.Path(dir_okay=False, allow_dash=True),
        help="Read recipients from a file, one a line; blank and # lines skipped ('-': stdin).",
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
        lines = Recipients(recipients, files, stack)  # a missing file fails here, first
        client = stack.enter_context(options.client())
        total = None
        if wanted() and "-" not in files:  # an ETA is worth a first reading of the files
            total = len(recipients) + sum(count_lines(path) for path in files)
        results = lines.mend(client.stream(operation, sender, lines))
        writer = ResultWriter(options.format, sender)
        stack.push(writer.finish)  # after the bar is gone, so no row is torn
        progress = stack.enter_context(Bar(operation, total))
        for item in results:
            failures += not item.ok
            writer.write(item)
            progress.advance()
    return 1 if failures else 0


@cli.command(name="list")
@click.option("--from", "sender", help="Only this sender's records (default: every sender).")
@click.option(
    "--status",
    type=click.Choice(["opted-out", "opted-in", "all"]),
    default="opted-out",
    show_default=True,
    help="Which records: opt-outs unless told otherwise.",
)
@click.option(
    "--page-size", type=int, help="Records per request (default: the provider's largest)."
)
@click.pass_obj
def list_(options: Options, sender: str | None, status: str, page_size: int | None) -> int:
    """List the opt-outs (opted-out records, by default; --status all for every one), every
    page, as they arrive."""
    with ExitStack() as stack:
        client = stack.enter_context(options.client())
        records = client.list(sender, status=status, page_size=page_size)
        first = list(itertools.islice(records, 1))  # a failing first page prints nothing
        writer = RecordWriter(options.format)
        stack.push(writer.finish)  # a page failing later still leaves JSON that parses
        for record in itertools.chain(first, records):
            writer.write(record)
    return 0


@cli.command(name="providers")
@click.pass_obj
def providers_(options: Options) -> int:
    """Show the installed providers and what each can do."""
    installed = providers()
    operations = ("add", "remove", "check", "list")
    if options.format == "json":
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
    if options.format == "csv":
        writer.writerow(["name", *operations, "max_batch", "module"])
    for info in installed:
        offered = {c.value for c in info.capabilities}
        marks = ["yes" if op in offered else "no" for op in operations]
        if options.format == "csv":
            writer.writerow([guarded(info.name), *marks, info.max_batch, guarded(info.module)])
        else:
            table.add_row(cell(info.name), *marks, str(info.max_batch), cell(info.module))
    if options.format == "table":
        console().print(table)
    return 0


@cli.group(cls=Group)
@click.pass_obj
def emulate(options: Options) -> None:
    """Serve a vendor emulator on 127.0.0.1 for tests and demos; it prints the variables
    that point optouts at it, as shell lines to source."""
    options.check_used("emulate")


get_plugin_manager().hook.register_emulators(emulate=emulate)
_cli_ledger.register(cli)
_cli_serve.register(cli)
_cli_logout.register(cli)
_cli_globals.give_group(cli)
for _command in cli.commands.values():
    if _command is not emulate:
        _cli_globals.attach(_command)
add_examples(cli)


def _fail(message: str, code: int) -> int:
    click.echo(f"optouts: error: {printable(message)}", err=True)
    return code


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code (for tests and embedding)."""
    try:
        with standard_streams():
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
        drop_stdout()
        return 1
    except (OSError, sqlite3.Error) as exc:
        # The machine, not the input: a full disk, a closed stdout, a path not allowed.
        return _fail(environment_failure(exc) or str(exc), 1)
    except httpx.TransportError as exc:  # a vendor lost outside a call (closing a session)
        return _fail(f"could not reach the vendor: {exc} ({type(exc).__name__})", 1)
    return code if isinstance(code, int) else 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":  # pragma: no cover
    main()
