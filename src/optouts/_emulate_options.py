"""The options every ``optouts emulate <vendor>`` command takes, declared once.

Kept out of ``optouts.emulators`` on purpose: a plugin's command is built when the plugin
loads, and loading a plugin to open a client must not load the emulator helpers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

import click

__all__ = ["latency_option", "port_option"]

F = TypeVar("F", bound=Callable[..., Any])


def port_option() -> Callable[[F], F]:
    """``--port``: where on 127.0.0.1 the emulator listens (0: a free port)."""
    return click.option(
        "--port",
        type=click.IntRange(0, 65535),
        default=0,
        show_default=True,
        help="Port on 127.0.0.1 (0: a free one).",
    )


def _seconds(_: click.Context, __: click.Parameter, value: float) -> float:
    # click's FloatRange lets nan and inf through
    if not math.isfinite(value) or value < 0:
        raise click.BadParameter(f"{value} is not a number of seconds of 0 or more")
    return value


def latency_option() -> Callable[[F], F]:
    """``--latency``: seconds added to every answer (a finite number, 0 or more)."""
    return click.option(
        "--latency",
        type=float,
        default=0.0,
        show_default=True,
        callback=_seconds,
        help="Seconds added to every answer.",
    )
