"""``optouts audit``: what the ledger can prove of one recipient, as tables or JSON.

Sources and notes the ledger holds are shown through ``cell`` (no markup, escapes
written out), so they are read, never obeyed. Times are written as everywhere else.
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from ._cli_options import Options
from ._cli_output import console, when_micros
from ._numbers import normalize
from ._terminal import cell

__all__ = ["audit_command"]


@click.command(name="audit")
@click.argument("recipient")
@click.pass_obj
def audit_command(options: Options, recipient: str) -> int:
    """Show what the ledger knows of RECIPIENT: state per sender, history, vendor confirmations."""
    number = normalize(recipient, options.region())
    with options.ledger() as ledger:
        trail = ledger.audit(number)
    if options.format == "json":
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
                            "first_received": when_micros(first),
                            "updated_at": when_micros(last),
                        }
                        for s, out, c, src, first, last in trail.current
                    ],
                    "history": [
                        {
                            "sender": s,
                            "action": "opt-out" if out else "opt-in",
                            "source": src,
                            "at": when_micros(at),
                        }
                        for s, out, src, at in trail.history
                    ],
                    "confirmations": [
                        {
                            "sender": s,
                            "target": t,
                            "status": "opted-out" if out else "opted-in",
                            "at": when_micros(at),
                        }
                        for s, t, out, at in trail.confirmations
                    ],
                },
                indent=2,
            )
        )
        return 0
    screen = console()
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
            when_micros(first),
            when_micros(last),
        )
    screen.print(current)
    history = Table("at", "sender", "action", "source", title="history")
    for s, out, src, at in trail.history:
        history.add_row(when_micros(at), cell(s), "opt-out" if out else "opt-in", cell(src))
    screen.print(history)
    if trail.confirmations:
        confirmed = Table("sender", "vendor", "state confirmed", "at", title="vendor confirmations")
        for s, t, out, at in trail.confirmations:
            confirmed.add_row(cell(s), cell(t), "opted-out" if out else "opted-in", when_micros(at))
        screen.print(confirmed)
    return 0
