"""What ``--help`` shows beyond the options: whole descriptions, and examples to copy.

Click cuts each command's description in a group's list to one short line ending in
"..."; ``Group`` lists the whole first paragraph, wrapped. Every command's help ends with
one or two examples (``EXAMPLES``, or the command's own epilog, as a plugin's may have).
"""

from __future__ import annotations

from collections.abc import Iterable

import click

__all__ = ["EXAMPLES", "Group", "add_examples", "examples"]

EXAMPLES = {
    "add": (
        "optouts add --from +18005550100 +12025550101 +12025550102",
        "optouts add --from +18005550100 -f stops.txt      # one number a line, # comments",
    ),
    "remove": (
        "optouts remove --from +18005550100 +12025550101",
        "optouts -p azure remove --from +18005550100 -f opt-ins.txt",
    ),
    "check": (
        "optouts check --from +18005550100 +12025550101 +12025550199",
        "cat recipients.txt | optouts check --from +18005550100 --format csv - > answers.csv",
    ),
    "list": (
        "optouts list --from +18005550100",
        "optouts -p ringcentral list --status all --format json",
    ),
    "providers": ("optouts providers", "optouts providers --format json"),
    "sync": (
        "optouts sync --source ringcentral --target azure --target local --dry-run",
        "optouts sync --source ringcentral --target azure --target local",
    ),
    "import": ("optouts import optouts.csv", "optouts export | ssh backup optouts import -"),
    "export": (
        "optouts export > optouts.csv",
        "optouts export --from +18005550100 --status opted-out > stops.csv",
    ),
    "audit": (
        "optouts audit +12025550101",
        "optouts audit --format json 2025550101 --default-region US",
    ),
    "serve": (
        "optouts serve --target azure --target ringcentral",
        "optouts serve --host 0.0.0.0 --port 8443 --log-level debug",
    ),
    "emulate": (
        "optouts emulate azure --port 8101 > azure.env &",
        "optouts emulate ringcentral --port 8102 --rate-limit 50/60s",
    ),
}


def examples(lines: Iterable[str]) -> str:
    """An epilog of example command lines, kept as written (click rewraps other text)."""
    return "Examples:\n\n\b\n" + "\n".join(f"  {line}" for line in lines)


def add_examples(group: click.Group) -> None:
    """Each command of ``group`` without an epilog of its own gets its examples; so does
    each emulator a plugin brings without any."""
    for name, command in group.commands.items():
        if not command.epilog and name in EXAMPLES:
            command.epilog = examples(EXAMPLES[name])
    emulate = group.commands.get("emulate")
    if isinstance(emulate, click.Group):
        for name, command in emulate.commands.items():
            if not command.epilog:
                command.epilog = examples(
                    (f"optouts emulate {name} > {name}.env & sleep 2; . ./{name}.env",)
                )


def _summary(command: click.Command) -> str:
    """The command's short help, else the first paragraph of its help, whole."""
    if command.short_help:
        return command.short_help
    text = (command.help or "").split("\f", 1)[0]
    return " ".join(text.strip().split("\n\n", 1)[0].split())


class Group(click.Group):
    """A group whose list of commands shows each one's whole description."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, _summary(command)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)
