"""``optouts serve``: the service (``optouts.server``) on uvicorn, until SIGTERM or Ctrl+C.

Everything that can fail is done before the first request is taken, so a mistake is one
line on stderr and exit code 2: the settings, the port, the ledger (created if missing,
as the service writes), the targets' clients. A signal then stops taking connections,
lets requests in flight finish, stops the outbox once its sends in flight are done, and
closes the ledger; the exit code is 0.

The server's libraries load only when the command runs, so the rest of the command line
works without the ``server`` extra. The extra brings httptools, which takes about a third
off the service's CPU a webhook against h11, and uvloop (not on Windows); without them it
runs on h11 and asyncio's loop, and the line saying where it listens names both.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import click

from ._cli_options import Options
from ._errors import ConfigurationError

__all__ = ["register"]

_EXTRA = frozenset({"starlette", "uvicorn", "prometheus_client"})
_LEVELS = ("debug", "info", "warning", "error")
_LOOPS = ("auto", "asyncio", "uvloop")
_GRACE = 30
"""Seconds requests in flight get to finish once told to stop."""

logger = logging.getLogger("optouts.serve")


@click.command(name="serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="TCP port."
)
@click.option(
    "--target",
    "targets",
    multiple=True,
    help="Vendor to carry every opt-out to (repeatable; default: targets in [serve]).",
)
@click.option(
    "--log-level", type=click.Choice(_LEVELS), default="info", show_default=True, help="Logging."
)
@click.option(
    "--loop",
    type=click.Choice(_LOOPS),
    default="auto",
    show_default=True,
    help="Event loop (auto: uvloop when installed).",
)
@click.pass_obj
def serve_command(
    options: Options, host: str, port: int, targets: tuple[str, ...], log_level: str, loop: str
) -> int:
    """Serve vendor webhooks, the check API, /healthz and /metrics over the ledger."""
    try:
        import uvicorn

        from .server import ServeSettings, create_app
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] not in _EXTRA:
            raise
        raise ConfigurationError(
            f"optouts serve needs the server extra ({exc.name} is missing): "
            "pip install 'optouts[server]'"
        ) from None
    loop, run = _event_loop(loop)
    http = _http_parser()
    settings = ServeSettings.from_settings(config=options.config)
    with options.ledger() as ledger:
        app = create_app(
            ledger, targets=list(targets) or None, settings=settings, config=options.config
        )
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                lifespan="off",  # run around the server below: its errors are ours to tell
                log_config=None,
                access_log=False,  # the app logs each request itself
                server_header=False,
                ws="none",
                http=http,  # uvicorn's "loop" is left alone: the loop is the one run() makes
                timeout_graceful_shutdown=_GRACE,
            )
        )
        with _listen(host, port) as sock, _stopping_on_signals(server):
            _log_to_stderr(log_level)
            for name, why in settings.not_served.items():
                logger.info("/webhooks/%s is not served: %s", name, why)
            run(_serve(app, server, sock, f"http://{_shown(sock)}", (loop, http)))
    return 0


async def _serve(
    app: Any, server: Any, sock: socket.socket, url: str, running: tuple[str, str]
) -> None:
    async with app.router.lifespan_context(app):
        if not server.should_exit:  # a signal during startup: stop before serving
            logger.info(
                "optouts serve: listening on %s (event loop %s, HTTP parser %s)", url, *running
            )
            await server.serve(sockets=[sock])


def _event_loop(choice: str) -> tuple[str, Callable[[Coroutine[Any, Any, None]], None]]:
    """The loop to serve on (``--loop``) and the function that runs a coroutine on it:
    uvloop when it is installed, unless told otherwise; asked for and missing, an error."""
    if choice != "asyncio":
        try:
            import uvloop
        except ImportError as exc:
            if (exc.name or "").partition(".")[0] != "uvloop":
                raise
            if choice == "uvloop":
                raise ConfigurationError(
                    "optouts serve --loop uvloop needs uvloop, which the server extra brings "
                    "(not on Windows or PyPy): pip install 'optouts[server]'"
                ) from None
        else:
            return "uvloop", uvloop.run  # 0.18 and later; Python 3.10 too
    return "asyncio", asyncio.run


def _http_parser() -> str:
    """uvicorn's HTTP/1.1 parser: httptools when installed, as uvicorn's "auto" would pick,
    named here so that the log says which."""
    try:
        import httptools  # noqa: F401
    except ImportError:
        return "h11"
    return "httptools"


@contextmanager
def _stopping_on_signals(server: Any) -> Iterator[None]:
    """SIGTERM and SIGINT stop the server gracefully, at any point; a second SIGINT
    stops waiting for requests in flight. uvicorn handles them itself while it serves,
    then hands each one back to these handlers, which have nothing more to do then."""

    def stop(signum: int, _frame: FrameType | None) -> None:
        if server.should_exit and signum == signal.SIGINT:
            server.force_exit = True
        server.should_exit = True

    handled = [signal.SIGINT, signal.SIGTERM]
    previous = {signum: signal.signal(signum, stop) for signum in handled}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound now: a port in use is a one-line error, not a trace."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)  # connections made before the server starts wait, not fail
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    return sock


def _shown(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _log_to_stderr(level: str) -> None:
    """optouts' and uvicorn's log lines (one per request among them) at ``level`` on stderr,
    unless the process has set up logging already."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    for name in ("optouts", "uvicorn"):
        logging.getLogger(name).setLevel(level.upper())


def register(group: click.Group) -> None:
    group.add_command(serve_command)
